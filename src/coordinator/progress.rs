//! Where the run stands, counted for the sinks a few times a second; and the flow of submits and
//! finishes, which says how many polls per generation the rate limit leaves.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, Outcome, Polling, Stage, Track};
use crate::sinks::notice::Notice;
use crate::sinks::{Progress, RunEvent};

impl Coordinator<'_> {
    /// Tells the sinks where the run stands, at the pace of `progress_every`: generations take
    /// minutes and say nothing meanwhile.
    pub(super) fn progress(&mut self) {
        let now = Instant::now();
        if now < self.next_progress {
            return;
        }
        self.next_progress = now + self.config.progress_every;
        // What the sinks read from the state (results.csv) includes the finishes still waiting
        // for their shared commit.
        if self.lazy_since.is_some() {
            self.commit();
        }
        self.emit_progress();
    }

    pub(super) fn emit_progress(&mut self) {
        let progress = self.snapshot();
        self.sinks.emit(RunEvent::Progress(&progress));
    }

    /// Where every job is: one pass over the jobs, a few times a second at most.
    pub(super) fn snapshot(&mut self) -> Progress {
        let now = Instant::now();
        let mut p = Progress {
            total: self.tracks.len(),
            credits: self.ledger.reported_now(),
            requests: self.api.requests_sent(),
            elapsed: now.duration_since(self.started_at),
            ..Progress::default()
        };
        for track in &self.tracks {
            match track {
                Track::Queued | Track::Submitting { sent: false, .. } => p.waiting += 1,
                Track::Submitting { sent: true, .. } => p.submitting += 1,
                Track::Remote(r) => match r.stage {
                    Stage::Rendering {
                        slot: Some(_),
                        queued: true,
                        ..
                    } => p.queued += 1,
                    Stage::Rendering { slot: Some(_), .. } => p.generating += 1,
                    _ => p.downloading += 1,
                },
                Track::Settled(Outcome::Done) => p.done += 1,
                Track::Settled(Outcome::Failed) => p.failed += 1,
                Track::Settled(Outcome::Unknown) => p.unknown += 1,
                Track::Settled(Outcome::Left) => p.deferred += 1,
            }
        }
        // The request rate over the last five seconds or so.
        self.request_samples.push_back((now, p.requests));
        while self.request_samples.len() > 2 && now.duration_since(self.request_samples[1].0) >= Duration::from_secs(5)
        {
            self.request_samples.pop_front();
        }
        if let Some(&(then, sent)) = self.request_samples.front() {
            let span = now.duration_since(then).as_secs_f64();
            if span > 0.0 {
                p.requests_per_second = (p.requests - sent) as f64 / span;
            }
        }
        p
    }

    /// Gives the poll policy the request budget: the polls per generation that the rate leaves
    /// once the submits have theirs, from the flow of submits and finishes over the last typical
    /// render (5 s at least). Looked at every [`Flow::EVERY`]; a budget that moved little changes
    /// nothing ([`super::polling::RenderTimes::set_budget`]), one that did times the waiting polls again.
    pub(super) fn rebudget(&mut self) {
        let now = Instant::now();
        if !matches!(self.config.polling, Polling::Adaptive(_)) || now < self.flow.next {
            return;
        }
        self.flow.next = now + Flow::EVERY;
        let window = self.render_times.typical().unwrap_or_default().max(Flow::WINDOW);
        // The rate the connections can carry, not only the one asked for.
        let rate = self.api.throughput();
        // While too few finishes fall in the window to tell (a lull between bursts), the budget
        // measured last stands: lifting it would re-plan every kind unbudgeted just as the next
        // burst arrives.
        let budget = self.flow.budget(now, window, rate).or(self.render_times.budget());
        if self.render_times.set_budget(budget) {
            let plans = format!("{:?}", self.render_times.plans());
            self.sinks.emit(RunEvent::Notice(&Notice::Budget {
                polls: budget,
                plans: &plans,
            }));
            self.retime_polls(None);
            self.carry_out();
        }
    }
}

/// Submits sent and generations seen finished in this run, sampled over time.
#[derive(Debug)]
pub(super) struct Flow {
    pub(super) submits: u64,
    pub(super) finishes: u64,
    samples: VecDeque<(Instant, u64, u64)>,
    next: Instant,
}

impl Default for Flow {
    fn default() -> Flow {
        Flow {
            submits: 0,
            finishes: 0,
            samples: VecDeque::new(),
            next: Instant::now(),
        }
    }
}

impl Flow {
    const EVERY: Duration = Duration::from_millis(250);
    const WINDOW: Duration = Duration::from_secs(5);
    /// The share of the rate the plans may count on. All of it: measured side by side on the
    /// mixed regime (BENCHMARKS.md), polls held to 90 % of the rate found finishes later than
    /// the same polls queued a little behind the limiter; the budget is for plans that would
    /// want far more than the rate.
    const USABLE: f64 = 1.0;
    /// Finishes in the window below which the flow says nothing yet.
    const FEW: u64 = 8;

    /// Polls per generation the rate leaves: (usable rate − submits a second) ÷ finishes a second,
    /// over the last `window`. `None` while too few finishes were seen to tell.
    fn budget(&mut self, now: Instant, window: Duration, rate: f64) -> Option<f64> {
        self.samples.push_back((now, self.submits, self.finishes));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= window {
            self.samples.pop_front();
        }
        let &(then, submits, finishes) = self.samples.front()?;
        let span = now.duration_since(then).as_secs_f64();
        let finished = self.finishes - finishes;
        if span < window.as_secs_f64() / 2.0 || finished < Self::FEW {
            return None;
        }
        let submit_rate = (self.submits - submits) as f64 / span;
        let finish_rate = finished as f64 / span;
        Some(((Self::USABLE * rate - submit_rate) / finish_rate).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_rate_left_by_the_submits_per_finish() {
        let mut flow = Flow::default();
        let start = Instant::now();
        let window = Duration::from_secs(5);
        assert_eq!(flow.budget(start, window, 40.0), None, "nothing measured yet");
        // 10 s at 14 submits and 14 finishes a second, under a rate of 40: (40 − 14) / 14 polls.
        (flow.submits, flow.finishes) = (140, 140);
        let budget = flow.budget(start + Duration::from_secs(10), window, 40.0).unwrap();
        assert!((budget - 26.0 / 14.0).abs() < 1e-9, "{budget}");
        // Submits wanting the whole rate leave one poll per generation, never less.
        (flow.submits, flow.finishes) = (140 + 400, 140 + 50);
        let budget = flow.budget(start + Duration::from_secs(20), window, 40.0).unwrap();
        assert_eq!(budget, 1.0);
        // Too few finishes in the window to tell.
        flow.submits += 10;
        flow.finishes += 3;
        assert_eq!(flow.budget(start + Duration::from_secs(26), window, 40.0), None);
    }
}
