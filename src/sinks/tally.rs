//! What the end-of-run summary hears during the run and the state does not keep: the videos'
//! bytes and download rate, each job's time from its submit to its saved video, and which of the
//! jobs to submit got a generation (so the credits line can say what was spent beside what the
//! jobs submitted were expected to cost, and what a stop left unspent).
//!
//! [`Tally`] is a handle: one clone goes into the run's sinks, the other reads what was heard.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::downloads::DownloadMeter;
use super::summary::SLOWEST;
use super::{RunEvent, Sink};
use crate::cost::Prices;
use crate::plan::JobKey;

/// One job's time from its submit (in this run) to its saved video.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTiming {
    pub job_id: String,
    /// How the summary names it: its file's label (model, template, input).
    pub name: String,
    /// The manifest's `label`, when it has one.
    pub label: Option<String>,
    pub took: Duration,
}

/// What a run's events said, for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heard {
    pub downloads: DownloadMeter,
    /// How long each job submitted and saved in this run took, slowest first.
    pub took: Vec<Duration>,
    /// The [`SLOWEST`] of them that took longest, slowest first: only these are named, so only
    /// these keep their names (at 10,000 jobs, a name each was megabytes held to the end).
    pub slowest: Vec<JobTiming>,
    /// Generations created in this run (paid retries included).
    pub generations: usize,
    /// What they were expected to cost.
    pub expected: f64,
    /// Jobs this run was to submit that got no generation, no refusal and no lost submit: the
    /// run stopped first, or `--max-credits` left them.
    pub not_submitted: usize,
    /// What those jobs were expected to cost: the part of the estimate not spent.
    pub not_spent: f64,
}

#[derive(Default)]
struct Listening {
    prices: Prices,
    to_submit: usize,
    estimate: f64,
    heard: Heard,
    submitted_at: HashMap<JobKey, Instant>,
    /// Jobs that got an answer to a submit in this run: a generation, a refusal or a lost answer.
    answered: HashSet<JobKey>,
    expected_answered: f64,
}

impl Listening {
    fn answered(&mut self, job: &crate::plan::Job) {
        if self.answered.insert(job.key.clone()) {
            self.expected_answered += self.prices.estimate_job(job).credits;
        }
    }
}

/// A sink that keeps what the summary needs; clones share what they heard.
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Listening>>);

impl Tally {
    /// `prices` are the run's: what a job is expected to cost, as the coordinator estimated it.
    pub fn new(prices: Prices) -> Tally {
        Tally(Arc::new(Mutex::new(Listening {
            prices,
            ..Listening::default()
        })))
    }

    /// What was heard so far.
    pub fn heard(&self) -> Heard {
        let listening = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut heard = listening.heard.clone();
        heard.took.sort_unstable_by(|a, b| b.cmp(a));
        heard.not_submitted = listening.to_submit.saturating_sub(listening.answered.len());
        heard.not_spent = match heard.not_submitted {
            0 => 0.0,
            _ => (listening.estimate - listening.expected_answered).max(0.0),
        };
        heard
    }

    fn observe(&self, event: &RunEvent<'_>, now: Instant) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        l.heard.downloads.observe(event, now);
        match event {
            RunEvent::Started(s) => {
                l.to_submit = s.to_submit;
                l.estimate = s.estimate.unwrap_or(0.0);
            }
            RunEvent::Submitted { job, .. } => {
                let expected = l.prices.estimate_job(job).credits;
                l.heard.generations += 1;
                l.heard.expected += expected;
                l.submitted_at.entry(job.key.clone()).or_insert(now);
                l.answered(job);
            }
            // Refused at its submit: nothing was created.
            RunEvent::Failed {
                job,
                generation_id: None,
                ..
            }
            | RunEvent::Unknown { job, .. } => l.answered(job),
            RunEvent::Completed { job, .. } => {
                if let Some(at) = l.submitted_at.remove(&job.key) {
                    let took = now.saturating_duration_since(at);
                    l.heard.took.push(took);
                    let slowest = &mut l.heard.slowest;
                    let job_id = job.key.short();
                    // Slowest first; of two as slow, the first by id.
                    let before = |t: &JobTiming| took.cmp(&t.took).then_with(|| t.job_id.as_str().cmp(job_id));
                    if slowest.len() < SLOWEST || slowest.last().is_some_and(|t| before(t).is_gt()) {
                        let at = slowest.partition_point(|t| before(t).is_le());
                        slowest.insert(
                            at,
                            JobTiming {
                                job_id: job_id.to_string(),
                                name: job.label().to_string(),
                                label: job.user_label.clone(),
                                took,
                            },
                        );
                        slowest.truncate(SLOWEST);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Sink for Tally {
    fn event(&mut self, event: &RunEvent<'_>) {
        self.observe(event, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Started;

    #[tokio::test(start_paused = true)]
    async fn jobs_are_timed_from_submit_to_saved_and_the_unsent_share_is_priced() {
        let jobs = crate::sinks::tests::jobs(4);
        let tally = Tally::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Without a price list, a `magic/` job is expected at 1,050,000.
        let started = Started {
            jobs: 4,
            to_submit: 4,
            estimate: Some(4_200_000.0),
            ..Started::default()
        };
        tally.observe(&RunEvent::Started(&started), at(0));
        for (i, job) in jobs.iter().take(2).enumerate() {
            let submitted = RunEvent::Submitted {
                job,
                generation_id: "g",
                attempt: 1,
                credits: None,
            };
            tally.observe(&submitted, at(i as u64 * 100));
        }
        let refused = RunEvent::Failed {
            job: &jobs[2],
            generation_id: None,
            error: "HTTP 400",
            resubmitting: false,
        };
        tally.observe(&refused, at(150));
        for (job, ms) in [(&jobs[0], 900), (&jobs[1], 2_600)] {
            let completed = RunEvent::Completed {
                job,
                generation_id: Some("g"),
                bytes: 1_000_000,
                credits: Some(1_050_000.0),
            };
            tally.observe(&completed, at(ms));
        }
        let heard = tally.heard();
        assert_eq!(
            heard
                .slowest
                .iter()
                .map(|t| (t.job_id.as_str(), t.took))
                .collect::<Vec<_>>(),
            [
                (jobs[1].key.short(), Duration::from_millis(2_500)),
                (jobs[0].key.short(), Duration::from_millis(900))
            ]
        );
        assert_eq!(heard.took, [Duration::from_millis(2_500), Duration::from_millis(900)]);
        assert_eq!((heard.generations, heard.expected), (2, 2_100_000.0));
        // The fourth job was never sent: its share of the estimate was not spent.
        assert_eq!((heard.not_submitted, heard.not_spent), (1, 1_050_000.0));
        assert_eq!(heard.downloads.videos, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_slowest_keep_their_names_and_every_time_counts_for_the_median() {
        let jobs = crate::sinks::tests::jobs(6);
        let tally = Tally::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for job in &jobs {
            let submitted = RunEvent::Submitted {
                job,
                generation_id: "g",
                attempt: 1,
                credits: None,
            };
            tally.observe(&submitted, at(0));
        }
        // Two as slow as each other: the first by id goes first; the fastest are not named.
        let took = [400, 900, 100, 900, 700, 200];
        for (job, ms) in jobs.iter().zip(took) {
            let completed = RunEvent::Completed {
                job,
                generation_id: Some("g"),
                bytes: 1,
                credits: None,
            };
            tally.observe(&completed, at(ms));
        }
        let heard = tally.heard();
        let mut tied = [jobs[1].key.short(), jobs[3].key.short()];
        tied.sort();
        assert_eq!(
            heard.slowest.iter().map(|t| t.job_id.as_str()).collect::<Vec<_>>(),
            [tied[0], tied[1], jobs[4].key.short()]
        );
        assert_eq!(heard.took, [900, 900, 700, 400, 200, 100].map(Duration::from_millis));
    }
}
