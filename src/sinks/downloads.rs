//! What the videos of a run weigh and how fast they came: bytes saved, and the time during
//! which at least one video was being fetched, so that the rate is the download link's, not the
//! run's (renders take minutes and fetch nothing). Each sink that shows it keeps its own meter,
//! fed with the run's events.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::RunEvent;
use crate::plan::JobKey;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct DownloadMeter {
    pub videos: usize,
    pub bytes: u64,
    /// Time with at least one video being fetched.
    busy: Duration,
    /// Jobs whose generation finished in this run and whose video is not saved yet.
    fetching: HashSet<JobKey>,
    /// Videos being fetched as the last progress event counted them: also those of generations
    /// that an earlier run saw finished, which send no event before their video is saved.
    downloading: usize,
    last: Option<Instant>,
}

impl DownloadMeter {
    /// Takes `event`, which happened at `now`.
    pub fn observe(&mut self, event: &RunEvent<'_>, now: Instant) {
        // The time since the last event was busy if something was being fetched then.
        if let Some(last) = self.last.filter(|_| self.is_busy()) {
            self.busy += now.saturating_duration_since(last);
        }
        self.last = Some(now);
        match event {
            RunEvent::Generated { job, .. } => {
                self.fetching.insert(job.key.clone());
            }
            RunEvent::Completed { job, bytes, .. } => {
                self.fetching.remove(&job.key);
                self.videos += 1;
                self.bytes += bytes;
            }
            RunEvent::Failed { job, .. } | RunEvent::Pending { job, .. } | RunEvent::Unknown { job, .. } => {
                self.fetching.remove(&job.key);
            }
            RunEvent::Progress(p) => self.downloading = p.downloading,
            RunEvent::Finished(_) => {
                self.fetching.clear();
                self.downloading = 0;
            }
            RunEvent::Started(_)
            | RunEvent::Submitted { .. }
            | RunEvent::Retrying { .. }
            | RunEvent::Halted { .. }
            | RunEvent::Notice(_) => {}
        }
    }

    /// A meter that measured `videos` of `bytes` in `busy`, for the tests of what shows it.
    #[cfg(test)]
    pub(crate) fn measured(videos: usize, bytes: u64, busy: Duration) -> DownloadMeter {
        DownloadMeter {
            videos,
            bytes,
            busy,
            ..DownloadMeter::default()
        }
    }

    fn is_busy(&self) -> bool {
        !self.fetching.is_empty() || self.downloading > 0
    }

    /// Time spent fetching so far.
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// `1.2 GB at 34 MB/s`, `1.2 GB` while no fetching time is measured, `None` before a video is
    /// saved.
    pub fn describe(&self) -> Option<String> {
        if self.videos == 0 {
            return None;
        }
        let size = crate::wording::bytes(self.bytes);
        Some(match crate::wording::rate(self.bytes, self.busy.as_secs_f64()) {
            Some(rate) => format!("{size} at {rate}"),
            None => size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Progress;

    #[tokio::test(start_paused = true)]
    async fn the_rate_counts_only_time_spent_fetching() {
        let jobs = crate::sinks::tests::jobs(2);
        let mut meter = DownloadMeter::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(meter.describe(), None);
        // 100 s of rendering fetch nothing.
        meter.observe(&RunEvent::Progress(&Progress::default()), at(0));
        meter.observe(
            &RunEvent::Generated {
                job: &jobs[0],
                generation_id: "g1",
            },
            at(100),
        );
        meter.observe(
            &RunEvent::Generated {
                job: &jobs[1],
                generation_id: "g2",
            },
            at(101),
        );
        meter.observe(
            &RunEvent::Completed {
                job: &jobs[0],
                generation_id: Some("g1"),
                bytes: 30_000_000,
                credits: None,
            },
            at(102),
        );
        meter.observe(
            &RunEvent::Completed {
                job: &jobs[1],
                generation_id: Some("g2"),
                bytes: 38_000_000,
                credits: None,
            },
            at(104),
        );
        // Idle again, then a video an earlier run saw finished: only progress says it is fetched.
        let fetching = Progress {
            downloading: 1,
            ..Progress::default()
        };
        meter.observe(&RunEvent::Progress(&fetching), at(200));
        meter.observe(
            &RunEvent::Completed {
                job: &jobs[0],
                generation_id: Some("g0"),
                bytes: 34_000_000,
                credits: None,
            },
            at(202),
        );
        assert_eq!(meter.busy(), Duration::from_secs(6));
        assert_eq!(meter.describe().as_deref(), Some("102 MB at 17 MB/s"));
    }
}
