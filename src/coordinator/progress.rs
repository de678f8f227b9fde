//! Where the run stands, counted for the sinks a few times a second.

use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, Outcome, Track};
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
                Track::Remote(r) if r.slot.is_some() && r.queued => p.queued += 1,
                Track::Remote(r) if r.slot.is_some() => p.generating += 1,
                Track::Remote(_) => p.downloading += 1,
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
}
