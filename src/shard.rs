//! `--shard K/N`: a deterministic split of a manifest's jobs across machines (a CI matrix, a
//! Kubernetes Indexed Job), each running the same manifest into its own `--out`. A job goes to
//! the shard its job id names, so the split depends on nothing but the job's content: the same
//! job lands in the same shard whatever the manifest's order or the other jobs, and file names
//! (decided over the whole plan) do not depend on the shard.

use crate::plan::JobKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, as people count machines.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `2/3`: the second of three.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not a shard such as 1/3 (the first of three)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{text}`: a shard is K/N with 1 ≤ K ≤ N"));
        }
        Ok(Shard { index, count })
    }

    /// Kubernetes' Indexed Jobs set `JOB_COMPLETION_INDEX` (0-based) and, from 1.28 on,
    /// `JOB_COMPLETION_COUNT`. `None` when neither is set. One without the other is an error: run
    /// unsharded, every pod would pay for every job.
    pub fn from_kubernetes(index: Option<&str>, count: Option<&str>) -> Result<Option<Shard>, String> {
        let (index, count) = match (index, count) {
            (None, None) => return Ok(None),
            (Some(index), Some(count)) => (index, count),
            (Some(_), None) => {
                return Err(
                    "`JOB_COMPLETION_INDEX` is set but `JOB_COMPLETION_COUNT` is not (Kubernetes before \
                            1.28): pass `--shard K/N` (K = index + 1, N = completions)"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "`JOB_COMPLETION_COUNT` is set but `JOB_COMPLETION_INDEX` is not: pass `--shard K/N`".into(),
                );
            }
        };
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("JOB_COMPLETION_INDEX `{index}` is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("JOB_COMPLETION_COUNT `{count}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "JOB_COMPLETION_INDEX {index} is not below JOB_COMPLETION_COUNT {count}"
            ));
        }
        Ok(Some(Shard {
            index: index + 1,
            count,
        }))
    }

    /// Whether this shard runs the job.
    pub fn keeps(&self, key: &JobKey) -> bool {
        shard_of(key, self.count) == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The 0-based shard of a job: its id is a content hash, so its leading bits are uniform.
fn shard_of(key: &JobKey, count: u32) -> u32 {
    let head = key.0.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok());
    // Not hex (never, for keys the planner makes): hash the text instead, still deterministic.
    let value = head.unwrap_or_else(|| {
        key.0.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        })
    });
    (value % count as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_as_people_write_them() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("1/0").is_err());
        assert!(Shard::parse("x").is_err());
        assert_eq!(
            Shard::from_kubernetes(Some("0"), Some("4")),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert!(Shard::from_kubernetes(Some("4"), Some("4")).is_err());
        assert_eq!(Shard::from_kubernetes(None, None), Ok(None));
        assert!(
            Shard::from_kubernetes(Some("1"), None).is_err(),
            "every pod would run every job"
        );
    }

    #[test]
    fn every_job_is_in_exactly_one_shard_and_shards_are_even() {
        let keys: Vec<JobKey> = (0..3000u32)
            .map(|i| {
                use sha2::Digest as _;
                JobKey(format!("{:x}", sha2::Sha256::digest(i.to_le_bytes())))
            })
            .collect();
        let count = 3;
        let mut sizes = [0usize; 3];
        for key in &keys {
            let owners: Vec<u32> = (1..=count).filter(|&k| Shard { index: k, count }.keeps(key)).collect();
            assert_eq!(owners.len(), 1, "{key:?}");
            sizes[owners[0] as usize - 1] += 1;
        }
        for size in sizes {
            assert!((800..1200).contains(&size), "{sizes:?}");
        }
    }
}
