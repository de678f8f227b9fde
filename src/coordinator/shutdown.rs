//! How a run stops: the levels of a shutdown, who triggers one, why a run stopped, and what
//! the rows it left say about it.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Coordinator, Track};
use crate::sinks::RunEvent;
use crate::sinks::notice::Notice;

/// How far a shutdown has gone. Ordered: each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelLevel {
    Running,
    /// No new submissions; in-flight generations are still polled and fetched.
    Drain,
    /// Leave now; everything recorded so far is resumable.
    Abort,
}

/// The trigger side of a shutdown, held by whoever decides (signal handler, a test).
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<CancelLevel>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(CancelLevel::Running).0),
        }
    }
}

impl Shutdown {
    /// Raises the level (never lowers it).
    pub fn escalate(&self, level: CancelLevel) {
        self.tx.send_if_modified(|current| {
            let raise = level > *current;
            if raise {
                *current = level;
            }
            raise
        });
    }

    pub fn level(&self) -> CancelLevel {
        *self.tx.borrow()
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<CancelLevel> {
        self.tx.subscribe()
    }
}

/// Why a run stopped before its work was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    /// The service refused the key (or the account): nothing can succeed.
    Refused(String),
    /// The API could not be reached at all, however long we retried: nothing can succeed now.
    Unreachable(String),
    /// The output disk has too little room for another video: nothing more is paid for; the
    /// generations in flight are still followed.
    DiskFull(String),
    /// Too many of the run's generations failed (`--halt-run`): nothing more is paid for; the
    /// generations in flight are still followed.
    Failing(String),
    /// The run cannot go on safely: the state or the output folder cannot be written (going on
    /// would pay for generations it cannot record or keep), or a worker failed.
    Fatal(String),
}

impl Coordinator<'_> {
    /// Records why the run stops (the first serious reason wins) and tells every worker: a
    /// refused key or an unwritable state ends the run now, an interrupt drains it.
    pub(super) fn stop(&mut self, reason: StopReason) {
        let level = match reason {
            StopReason::Interrupted | StopReason::DiskFull(_) | StopReason::Failing(_) => CancelLevel::Drain,
            StopReason::Refused(_) | StopReason::Unreachable(_) | StopReason::Fatal(_) => CancelLevel::Abort,
        };
        // The most serious reason wins: a stop for everyone over a full disk, over an interrupt.
        let rank = |r: &StopReason| match r {
            StopReason::Interrupted => 0,
            StopReason::DiskFull(_) | StopReason::Failing(_) => 1,
            _ => 2,
        };
        if self.stopped.as_ref().is_none_or(|now| rank(&reason) > rank(now)) {
            self.stopped = Some(reason);
        }
        self.shutdown.escalate(level);
    }

    /// A run stopped by something every job would meet (a refused key, an unreachable API, an
    /// unwritable disk) says why in the rows it left, so `results.csv` is not a page of blanks.
    pub(super) fn note_why_left(&mut self) {
        let why = match &self.stopped {
            Some(
                StopReason::Refused(m)
                | StopReason::Unreachable(m)
                | StopReason::Fatal(m)
                | StopReason::DiskFull(m)
                | StopReason::Failing(m),
            ) => {
                format!("not submitted: the run stopped: {m}")
            }
            Some(StopReason::Interrupted) | None => return,
        };
        // Queued, or chosen and waiting for the pacer when the run stopped: `queued` in the state.
        let left: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| matches!(self.tracks[i], Track::Queued | Track::Submitting { sent: false, .. }))
            .collect();
        for i in left {
            let key = &self.jobs[i].key;
            self.record(|s| s.note_left(key, &why));
        }
        if let Err(e) = self.state.commit() {
            let text = format!("the run state could not be written: {}", crate::api::error_chain(&e));
            self.sinks.emit(RunEvent::Notice(&Notice::Fatal { text: &text }));
        }
    }
}
