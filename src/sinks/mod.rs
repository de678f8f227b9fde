//! What people and programs see of a run. The coordinator emits one typed stream of
//! [`RunEvent`]s and never writes prose or files of its own; each sink turns the stream into one
//! view: the live view on a terminal ([`live`]), plain lines for a log file ([`lines`]), JSON
//! lines for machines ([`json`]), a fresh `results.csv` while the run goes on
//! ([`results_file`]), and the end-of-run summary ([`summary`]).
//!
//! Sinks are called synchronously from the coordinator's loop, so each one does little per
//! event (a counter, a line) and keeps anything costly (rewriting `results.csv`) on its own
//! clock.

use std::time::Duration;

use crate::plan::Job;

pub mod downloads;
pub mod json;
pub mod lines;
pub mod live;
pub mod logs;
pub mod notice;
pub mod results_file;
pub mod summary;
pub mod tally;

/// One thing that happened in a run. Job events borrow the job, so a sink can name it by id,
/// model, template, input and file without a lookup.
#[derive(Debug)]
pub enum RunEvent<'a> {
    Started(&'a Started),
    /// The service accepted a submit and created a generation (paid from here on).
    Submitted {
        job: &'a Job,
        generation_id: &'a str,
        /// Generations created for this job so far, this one included.
        attempt: u32,
        credits: Option<f64>,
    },
    /// A submit that created nothing is tried again after `delay`.
    Retrying {
        job: &'a Job,
        /// The retry about to be made (1 for the first).
        attempt: u32,
        delay: Duration,
        error: &'a str,
    },
    /// The generation finished remotely; its video is being fetched.
    Generated {
        job: &'a Job,
        generation_id: &'a str,
    },
    Completed {
        job: &'a Job,
        generation_id: Option<&'a str>,
        bytes: u64,
        credits: Option<f64>,
    },
    Failed {
        job: &'a Job,
        generation_id: Option<&'a str>,
        error: &'a str,
        /// A paid retry follows (`--paid-retries`).
        resubmitting: bool,
    },
    /// A submit whose answer was lost: a generation may exist and be paid for.
    Unknown {
        job: &'a Job,
        error: &'a str,
    },
    /// Left pending for this run: not submitted (`--max-credits` would be passed), or no longer
    /// waited for (`--timeout`). A rerun picks it up.
    Pending {
        job: &'a Job,
        reason: &'a str,
    },
    /// Paid generations kept failing: `kind` (a model and template) is not submitted any more
    /// (`--halt-kind`), or, with no kind, nothing is (`--halt-run`). `failed` of `finished`
    /// generations (of the kind, or of the run) failed.
    Halted {
        kind: Option<&'a str>,
        failed: u32,
        finished: u32,
    },
    /// Something the run met that people should hear of, besides the jobs' own events.
    Notice(&'a notice::Notice<'a>),
    /// Where the run stands; sent often (a few times a second), each sink keeps its own pace.
    Progress(&'a Progress),
    Finished(&'a Finished),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Started {
    pub jobs: usize,
    pub to_submit: usize,
    pub to_follow: usize,
    pub already_done: usize,
    /// Jobs with nothing to do in this run from the start (done, failed before, unknown): the
    /// time left is estimated from the pace of the others.
    pub settled: usize,
    /// What the jobs to submit are expected to cost (credits), when every price is known.
    pub estimate: Option<f64>,
    pub max_credits: Option<f64>,
}

/// Counts of the jobs by where they are, and what the run has spent. `done` counts jobs found
/// finished at the start too, so `done + failed + unknown + deferred == total` at the end of a
/// run that went through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub total: usize,
    /// Not submitted yet (in the queue, or waiting for the rate limiter or a retry).
    pub waiting: usize,
    /// A POST is out.
    pub submitting: usize,
    /// Remotely `queued`.
    pub queued: usize,
    /// Remotely `generating` (or not polled yet since the submit).
    pub generating: usize,
    pub downloading: usize,
    pub done: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Left pending for this run (`--max-credits`, or given up waiting for).
    pub deferred: usize,
    /// Charges reported by the service in this run.
    pub credits: f64,
    pub requests: u64,
    /// API requests per second over the last few seconds.
    pub requests_per_second: f64,
    pub elapsed: Duration,
}

impl Progress {
    /// Jobs with nothing more to happen in this run.
    pub fn settled(&self) -> usize {
        self.done + self.failed + self.unknown + self.deferred
    }

    /// Time left, from the pace of the jobs settled in this run so far.
    pub fn eta(&self, settled_at_start: usize) -> Option<Duration> {
        let settled_now = self.settled().checked_sub(settled_at_start)?;
        let left = self.total.checked_sub(self.settled())?;
        if settled_now == 0 || self.elapsed.is_zero() {
            return None;
        }
        Some(self.elapsed.mul_f64(left as f64 / settled_now as f64))
    }
}

/// The end of a run, with the totals of `results.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub completed: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Generated and paid for, the video not saved yet.
    pub awaiting_download: usize,
    pub pending: usize,
    /// Credits of every generation recorded in this output folder.
    pub credits: f64,
    pub api_requests: u64,
    pub elapsed: Duration,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    pub exit_code: i32,
}

/// A consumer of run events.
pub trait Sink {
    fn event(&mut self, event: &RunEvent<'_>);
}

/// Every sink of a run, fed in order. `'a` is the plan's lifetime: a sink may hold its jobs.
#[derive(Default)]
pub struct Sinks<'a>(Vec<Box<dyn Sink + 'a>>);

impl<'a> Sinks<'a> {
    pub fn push(&mut self, sink: impl Sink + 'a) {
        self.0.push(Box::new(sink));
    }

    pub fn emit(&mut self, event: RunEvent<'_>) {
        for sink in &mut self.0 {
            sink.event(&event);
        }
    }
}

/// `1050000` → `1,050,000`: credits are large numbers read at a glance.
pub fn thousands(n: f64) -> String {
    let whole = n.round() as i128;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if whole < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `75s` → `1m15s`; whole seconds.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// How a log line names a job: its id (the `job_id` of `results.csv`, for grep) and its file
/// name, which says its model, template and input.
pub fn job_name(job: &Job) -> String {
    format!("{} {}", job.key.short(), job.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` jobs of a text-to-video manifest, for the sinks' tests: `prompt-1`, `prompt-2`, ….
    pub(crate) fn jobs(n: usize) -> Vec<Job> {
        let prompts: Vec<String> = (1..=n).map(|i| format!("\"prompt-{i}\"")).collect();
        let text = format!(
            "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
            prompts.join(", ")
        );
        let manifest = crate::manifest::parse(std::path::Path::new("m.yaml"), text.into()).unwrap();
        crate::plan::plan(&manifest).unwrap().jobs
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_050_000.0), "1,050,000");
        assert_eq!(thousands(-12345.0), "-12,345");
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(short_duration(Duration::from_secs(5)), "5s");
        assert_eq!(short_duration(Duration::from_secs(75)), "1m15s");
        assert_eq!(short_duration(Duration::from_secs(3 * 3600 + 120)), "3h02m");
    }

    #[test]
    fn eta_comes_from_the_pace_of_this_run() {
        let p = Progress {
            total: 100,
            done: 30,
            elapsed: Duration::from_secs(20),
            ..Progress::default()
        };
        // 10 were done before the run: 20 in 20 s, 70 left → 70 s.
        assert_eq!(p.eta(10), Some(Duration::from_secs(70)));
        assert_eq!(p.eta(30), None);
    }
}
