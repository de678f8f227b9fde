//! Fail fast: a kind of job whose paid generations keep failing is not submitted any more, and a
//! run where most generations fail stops submitting altogether. Each failed generation is paid
//! for; a template the service cannot render, or inputs it refuses to animate, would otherwise
//! be paid for job after job. The jobs not sent stay pending (a rerun sends them), the
//! generations already in flight are still followed, and the run says which kind stopped and
//! why. Pure bookkeeping, tested without a run.

use std::collections::{HashMap, HashSet};

use crate::plan::Job;

/// When to stop submitting (`--halt-kind`, `--halt-run`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halt {
    /// A kind of job stops after this many failed generations with none of its generations
    /// completed (0: never).
    pub kind_failures: u32,
    /// The run stops submitting once this share of its finished generations failed (0: never),
    /// judged after [`Halt::RUN_MIN`] of them.
    pub run_share: f64,
}

impl Halt {
    /// Fewer finished generations say little about the whole run.
    pub const RUN_MIN: u32 = 10;
}

impl Default for Halt {
    /// Three failures of a kind and no success: the template or its inputs are the likely
    /// cause, not bad luck. Half of the run's generations failing: something every job meets.
    fn default() -> Halt {
        Halt {
            kind_failures: 3,
            run_share: 0.5,
        }
    }
}

/// The kind a job's failures are counted under: its model and template, or its model and the
/// parameters that change its render (a PixVerse resolution and duration).
pub fn kind_of(job: &Job) -> String {
    match &job.template {
        Some(template) => format!("{} · {template}", job.model),
        None => super::polling::kind_of(&job.model, job.params()).replace('|', " · "),
    }
}

/// What a finished generation decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Go,
    /// This kind is not submitted any more: `failed` generations failed and none completed.
    StopKind {
        failed: u32,
    },
    /// Nothing more is submitted: `failed` of `finished` generations failed.
    StopRun {
        failed: u32,
        finished: u32,
    },
}

/// Generations finished in this run, by kind.
#[derive(Debug, Default)]
pub struct Failures {
    by_kind: HashMap<String, (u32, u32)>,
    stopped: HashSet<String>,
    failed: u32,
    finished: u32,
    run_stopped: bool,
}

impl Failures {
    pub fn completed(&mut self, kind: &str) {
        self.by_kind.entry(kind.to_string()).or_default().1 += 1;
        self.finished += 1;
    }

    /// A paid generation of `kind` failed: whether the kind, or the run, stops here. Each
    /// verdict to stop is given once.
    pub fn failed(&mut self, kind: &str, halt: &Halt) -> Verdict {
        let (failed, completed) = self.by_kind.entry(kind.to_string()).or_default();
        *failed += 1;
        let failed_here = *failed;
        let stop_kind = halt.kind_failures > 0 && *completed == 0 && failed_here >= halt.kind_failures;
        // Recorded whatever else is said: a stopped run's kind stays stopped, said once.
        let kind_now_stopped = stop_kind && self.stopped.insert(kind.to_string());
        self.failed += 1;
        self.finished += 1;
        if !self.run_stopped
            && halt.run_share > 0.0
            && self.finished >= Halt::RUN_MIN
            && f64::from(self.failed) >= halt.run_share * f64::from(self.finished)
        {
            self.run_stopped = true;
            return Verdict::StopRun {
                failed: self.failed,
                finished: self.finished,
            };
        }
        if kind_now_stopped {
            return Verdict::StopKind { failed: failed_here };
        }
        Verdict::Go
    }

    /// Whether any kind is held back: the question the submit path asks first, so that it names
    /// a job's kind (a string made per job) only when one is.
    pub fn any_stopped(&self) -> bool {
        !self.stopped.is_empty()
    }

    /// Whether jobs of `kind` are held back.
    pub fn stopped(&self, kind: &str) -> bool {
        self.stopped.contains(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_stops_after_its_failures_with_no_success_and_once() {
        let halt = Halt {
            run_share: 0.0,
            ..Halt::default()
        };
        let mut f = Failures::default();
        assert_eq!(f.failed("a", &halt), Verdict::Go);
        assert_eq!(f.failed("a", &halt), Verdict::Go);
        assert!(!f.stopped("a"));
        assert_eq!(f.failed("a", &halt), Verdict::StopKind { failed: 3 });
        assert!(f.stopped("a"));
        // Said once; a generation already in flight failing after it changes nothing.
        assert_eq!(f.failed("a", &halt), Verdict::Go);
        // A kind that rendered once is not the template's fault: it goes on.
        f.completed("b");
        for _ in 0..5 {
            assert_eq!(f.failed("b", &halt), Verdict::Go);
        }
        assert!(!f.stopped("b"));
        // 0: never.
        let never = Halt {
            kind_failures: 0,
            run_share: 0.0,
        };
        let mut f = Failures::default();
        for _ in 0..20 {
            assert_eq!(f.failed("a", &never), Verdict::Go);
        }
    }

    #[test]
    fn the_run_stops_when_half_its_generations_fail_judged_after_ten() {
        let halt = Halt {
            kind_failures: 0,
            run_share: 0.5,
        };
        let mut f = Failures::default();
        // Four failures in the first five: too few to judge a run by.
        for i in 0..4 {
            assert_eq!(f.failed(&format!("k{i}"), &halt), Verdict::Go);
        }
        f.completed("k9");
        for _ in 0..4 {
            f.completed("k9");
        }
        // 9 finished, 4 failed; then 10 with 5 failed: half.
        assert_eq!(f.finished, 9);
        assert_eq!(
            f.failed("k5", &halt),
            Verdict::StopRun {
                failed: 5,
                finished: 10
            }
        );
        assert_eq!(f.failed("k6", &halt), Verdict::Go, "said once");
    }
}
