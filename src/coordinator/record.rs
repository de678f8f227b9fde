//! The run's writes to its state: what must be on disk before the run goes on (a submit before
//! its POST, a generation id), what may share a later commit, and the folder syncs that make a
//! saved video durable before it is recorded completed.

use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, StopReason};
use crate::sinks::RunEvent;
use crate::sinks::notice::Notice;
use crate::state::{RunState, StateError};

/// How long writes that nothing depends on may wait for a commit: at thousands of finishes a
/// second, one commit per turn of the loop was most of the state's cost.
pub(super) const LAZY_COMMIT: Duration = Duration::from_millis(50);

impl Coordinator<'_> {
    /// Commits what this turn of the loop recorded, then sends the POSTs it decided: none leaves
    /// before its `submitting` record is on disk. One sync covers every write of the turn. A
    /// batch of writes that may wait (a finish, a saved video) is committed within
    /// [`LAZY_COMMIT`] instead, together with the ones after it.
    /// Says whether POSTs were sent.
    pub(super) fn flush(&mut self) -> bool {
        self.hold_back_posts();
        let waited = self.lazy_since.is_some_and(|t| t.elapsed() >= LAZY_COMMIT);
        if !self.urgent && self.outbox.is_empty() && !waited {
            return false;
        }
        self.commit()
    }

    /// POSTs decided earlier in this turn of the loop, before a failure stopped their kind or the
    /// run's paying (`--halt-kind`, `--halt-run`, a full disk), are not sent: their `submitting`
    /// records are undone in the same batch, so nothing is paid and nothing is left `unknown`.
    fn hold_back_posts(&mut self) {
        let paying_stopped = matches!(self.stopped, Some(StopReason::Failing(_) | StopReason::DiskFull(_)));
        if !paying_stopped && !self.failures.any_stopped() {
            return;
        }
        let outbox = std::mem::take(&mut self.outbox);
        for (i, post) in outbox {
            let job = &self.jobs[i];
            if !paying_stopped && !self.failures.stopped(&super::halt::kind_of(job)) {
                self.outbox.push((i, post));
                continue;
            }
            drop(post);
            let was_unknown = self.unknown_earlier.contains(&i);
            self.effects.record(i, super::effects::Write::Unsent { was_unknown });
            self.flow.submits = self.flow.submits.saturating_sub(1);
            if !self.held_back(i) {
                self.withdraw(i);
            }
        }
        self.carry_out();
    }

    /// Commits the open batch, then sends the POSTs that waited for it (says whether there were
    /// any).
    pub(super) fn commit(&mut self) -> bool {
        debug_assert!(
            self.effects.is_empty(),
            "effects decided, not carried out: {:?}",
            self.effects
        );
        self.urgent = false;
        self.lazy_since = None;
        self.sync_folders();
        if let Err(e) = self.state.commit() {
            // Its writes were rolled back: nothing that depends on them may go out.
            let text = format!("the run state could not be written: {}", crate::api::error_chain(&e));
            self.sinks.emit(RunEvent::Notice(&Notice::Fatal { text: &text }));
            self.outbox.clear();
            self.stop(StopReason::Fatal(text));
            return false;
        }
        let sent = !self.outbox.is_empty();
        for (_, request) in self.outbox.drain(..) {
            self.submits.spawn(request);
        }
        sent
    }

    /// Makes the videos saved since the last commit durable under their names before the
    /// commit records them completed: one folder sync serves them all. A folder that cannot be
    /// synced stops the run (the disk is failing); the batch is committed all the same, since it
    /// may hold generation ids, and a video lost with its folder is fetched again by the next run
    /// (it checks every finished file at start-up), for free.
    pub(super) fn sync_folders(&mut self) {
        for dir in std::mem::take(&mut self.unsynced) {
            if let Err(e) = crate::download::sync_folder(&dir) {
                let text = format!("cannot sync the folder `{}`: {e}", dir.display());
                self.sinks.emit(RunEvent::Notice(&Notice::Fatal { text: &text }));
                self.stop(StopReason::Fatal(text));
            }
        }
    }

    /// Records with the state store, in the batch of this turn of the loop, committed at its end;
    /// a failure here stops the run (we must not spend without a record). What must be on disk
    /// before the run goes on goes through here: a `submitting` record (before its POST), a
    /// generation id (the moment it is known: lost, it would leave a paid generation `unknown`),
    /// a job back in the queue.
    pub(super) fn record(&mut self, what: impl FnOnce(&mut RunState) -> Result<(), StateError>) -> bool {
        self.urgent = true;
        self.write(what)
    }

    /// Records what may wait up to [`LAZY_COMMIT`] for its commit: nothing is sent or paid on
    /// its strength, and if a crash loses it the next run finds the job one step back (a
    /// generation polled again, a video fetched again), both free.
    pub(super) fn record_lazily(&mut self, what: impl FnOnce(&mut RunState) -> Result<(), StateError>) -> bool {
        self.lazy_since.get_or_insert_with(Instant::now);
        self.write(what)
    }

    pub(super) fn write(&mut self, what: impl FnOnce(&mut RunState) -> Result<(), StateError>) -> bool {
        match self.state.begin().and_then(|()| what(&mut self.state)) {
            Ok(()) => true,
            Err(e) => {
                let text = format!("the run state could not be written: {}", crate::api::error_chain(&e));
                self.sinks.emit(RunEvent::Notice(&Notice::Fatal { text: &text }));
                self.stop(StopReason::Fatal(text));
                false
            }
        }
    }
}
