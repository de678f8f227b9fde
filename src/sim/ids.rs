//! Simulator generation ids. They carry their creation time and fate, so any simulator instance
//! answers for an id another one issued.

use std::time::{SystemTime, UNIX_EPOCH};

/// A simulator generation id: creation time, model and fate, plus randomness. Pixverse ids end
/// in `:<model>` as the service's do, so ids with `:` and `/` are exercised.
pub(super) struct GenerationId {
    pub created_ms: u64,
    pub model_code: char,
    pub fails: bool,
    pub random: u64,
    /// What the generation was charged, for models other than the seed ones (whose charge is
    /// fixed): a poll answers it without the request body.
    pub credits: Option<u64>,
}

const MODEL_CODES: &[(char, &str)] = &[
    ('i', "magic/image-to-video"),
    ('v', "magic/video-to-video"),
    ('t', "magic/text-to-video"),
    ('p', "pixverse/v5/image-to-video"),
];

impl GenerationId {
    /// A generation created `now` (the simulator's clock).
    pub fn new(model: &str, fails: bool, now: SystemTime) -> GenerationId {
        let model_code = MODEL_CODES.iter().find(|(_, m)| *m == model).map_or('x', |(c, _)| *c);
        GenerationId {
            created_ms: now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
            model_code,
            fails,
            random: fastrand::u64(..),
            credits: None,
        }
    }

    pub fn model(&self) -> &'static str {
        MODEL_CODES
            .iter()
            .find(|(c, _)| *c == self.model_code)
            .map_or("other", |(_, m)| *m)
    }

    /// A number in `[0, 1)` drawn from the id's random bits: what its render time is derived
    /// from, so every simulator instance with the same configuration gives it the same one.
    pub fn fraction(&self) -> f64 {
        // SplitMix64's finaliser, so these bits are not the ones other draws might read raw.
        let mut z = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn encode(&self) -> String {
        let fate = if self.fails { 'e' } else { 'k' };
        let mut id = format!("{:011x}{}{fate}-{:016x}", self.created_ms, self.model_code, self.random);
        if let Some(credits) = self.credits {
            id.push_str(&format!("-{credits:x}"));
        }
        if self.model_code == 'p' {
            format!("{id}:{}", self.model())
        } else {
            id
        }
    }

    pub fn decode(text: &str) -> Option<GenerationId> {
        let core = text.split(':').next()?;
        let mut parts = core.split('-');
        let (head, random) = (parts.next()?, parts.next()?);
        let credits = match parts.next() {
            Some(hex) => Some(u64::from_str_radix(hex, 16).ok()?),
            None => None,
        };
        if head.len() != 13 || random.len() != 16 || parts.next().is_some() {
            return None;
        }
        let created_ms = u64::from_str_radix(&head[..11], 16).ok()?;
        let mut tail = head[11..].chars();
        let model_code = tail.next()?;
        let fails = match tail.next()? {
            'e' => true,
            'k' => false,
            _ => return None,
        };
        Some(GenerationId {
            created_ms,
            model_code,
            fails,
            random: u64::from_str_radix(random, 16).ok()?,
            credits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_ids_round_trip() {
        let id = GenerationId::new("pixverse/v5/image-to-video", true, SystemTime::now());
        let text = id.encode();
        assert!(text.ends_with(":pixverse/v5/image-to-video"));
        let back = GenerationId::decode(&text).unwrap();
        assert_eq!(
            (back.created_ms, back.model_code, back.fails, back.random),
            (id.created_ms, 'p', true, id.random)
        );
        assert!(GenerationId::decode("f_X_2Wxezmp5xNVjO1S92").is_none());
        assert_eq!(back.fraction(), id.fraction());
        let mut other = GenerationId::new("google/veo3", false, SystemTime::now());
        other.credits = Some(3_150_000);
        let back = GenerationId::decode(&other.encode()).unwrap();
        assert_eq!((back.model_code, back.credits), ('x', Some(3_150_000)));
    }

    #[test]
    fn fractions_spread_over_the_unit_interval() {
        let draws: Vec<f64> = (0..10_000)
            .map(|_| GenerationId::new("magic/text-to-video", false, SystemTime::now()).fraction())
            .collect();
        assert!(draws.iter().all(|f| (0.0..1.0).contains(f)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
        for decile in 0..10 {
            let lo = decile as f64 / 10.0;
            let n = draws.iter().filter(|f| (lo..lo + 0.1).contains(*f)).count();
            assert!((800..1200).contains(&n), "decile {decile}: {n}");
        }
    }
}
