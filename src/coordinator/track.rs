//! Where each job is in this run (the state database says where it is across runs): its track,
//! the stage of a generation it follows, and the slots they hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::cost::{Charge, Reservation};

/// Where a job is in this run (the state database says where it is across runs).
#[derive(Debug)]
pub(super) enum Track {
    Queued,
    /// Holds a concurrency slot and its share of `--max-credits` from the moment it is chosen
    /// (both go back by themselves when it is withdrawn or refused). `sent` once its POST is out
    /// (the state says `submitting`); before that it is waiting for the pacer, or to retry.
    Submitting {
        retries: u32,
        sent: bool,
        slot: Slot,
        reservation: Reservation,
    },
    Remote(Remote),
    /// Nothing more happens to it in this run.
    Settled(Outcome),
}

/// How a job's run ended, for the counts people see (the state holds the details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    Failed,
    Unknown,
    /// Still pending: not submitted (`--max-credits`), no longer waited for (`--timeout`), or
    /// paid for with its video not saved (`awaiting_download`).
    Left,
}

#[derive(Debug)]
pub(super) struct Remote {
    /// Shared with the writes and events that name it: cloned per poll, never copied.
    pub(super) generation_id: Arc<str>,
    /// What its render time is learned under ([`super::polling::kind_of`]).
    pub(super) kind: Arc<str>,
    /// When waiting began, for the generation timeout.
    pub(super) since: Instant,
    /// When it was submitted (in this run, or by an earlier one as its record says; `None` when
    /// no record says): its age, which its polls are timed by.
    pub(super) submitted: Option<Instant>,
    /// When it was last known to be running: its submit, or a poll that saw it so. `None` for a
    /// generation an earlier run submitted, until a poll sees it running: its finish then falls
    /// between the two, and its render time is learned from the middle.
    pub(super) last_pending: Option<Instant>,
    /// Submitted by an earlier run: its submit time is known to the second only.
    pub(super) resumed: bool,
    /// Its place among the generations of its kind, for the early probes ([`super::polling::phase`]).
    pub(super) phase: f64,
    /// Where it is: rendering (holding its slot), or fetched.
    pub(super) stage: Stage,
    /// What it counts for against `--max-credits`.
    pub(super) charge: Charge,
    pub(super) poll_errors: u32,
    pub(super) download_tries: u32,
    /// Since when its video has been fetched: tries go on until `--timeout` from here.
    pub(super) fetching_since: Option<Instant>,
}

/// Where a followed generation is, one value: each stage holds what is true of it (its slot while
/// it renders, a download slot while its video is fetched, when it is polled next), so no flag can
/// disagree with another.
#[derive(Debug)]
pub(super) enum Stage {
    /// Rendering remotely. It holds its concurrency slot until the service reports it finished
    /// (`None`: followed without one, its submit's slot given back by a stop); `queued` by the
    /// last poll, else generating.
    Rendering {
        slot: Option<Slot>,
        queued: bool,
        next: Next,
    },
    /// Seen completed, its slot given back: its video is fetched.
    Fetching(Fetch),
}

/// When a generation is polled next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Next {
    /// At this time (an entry in the heap of due polls). `planned`: where the poll policy put it,
    /// so the first durations learned or a new request budget may move it
    /// ([`super::Coordinator::retime_polls`]); not a back-off, nor a poll for a fresh link.
    PollAt { at: Instant, planned: bool },
    /// A poll is under way.
    Polling,
}

/// Where the fetch of a completed generation's video is.
#[derive(Debug)]
pub(super) enum Fetch {
    /// Its video is at `url`, waiting for a download slot.
    Ready { url: String, size: Option<u64> },
    /// Being fetched, on one of the `--downloads` slots (given back when the stage changes,
    /// whichever way the fetch ends).
    Downloading(#[allow(dead_code)] Slot),
    /// Its link failed: the generation is polled again for a fresh one.
    Relink(Next),
}

impl Stage {
    /// A stage whose next step is a poll at `at` (`planned` by the policy), keeping what else it
    /// holds: a rendering generation its slot, a fetched one its place as fetched.
    pub(super) fn poll_at(&mut self, at: Instant, planned: bool) {
        match self {
            Stage::Rendering { next, .. } => *next = Next::PollAt { at, planned },
            Stage::Fetching(fetch) => *fetch = Fetch::Relink(Next::PollAt { at, planned }),
        }
    }

    /// When it is polled next, if a poll is what it waits for.
    pub(super) fn next(&self) -> Option<Next> {
        match self {
            Stage::Rendering { next, .. } | Stage::Fetching(Fetch::Relink(next)) => Some(*next),
            Stage::Fetching(_) => None,
        }
    }

    /// Whether it holds a concurrency slot (renders, as far as anyone knows).
    pub(super) fn in_flight(&self) -> bool {
        matches!(self, Stage::Rendering { slot: Some(_), .. })
    }
}

/// One place of a pool: one of the generations allowed in flight, held by a job from the moment
/// its submit is sent until the service reports its generation finished (or the submit gives
/// up), or one of the downloads allowed at once, held by its `Stage::Downloading`. Dropping it
/// frees the place, so no path through the coordinator can forget to.
#[derive(Debug)]
pub(super) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where slots come from, and how many are held.
#[derive(Debug, Clone, Default)]
pub(super) struct Slots(Arc<AtomicUsize>);

impl Slots {
    pub(super) fn take(&self) -> Slot {
        self.0.fetch_add(1, Ordering::Relaxed);
        Slot(self.0.clone())
    }

    pub(super) fn in_use(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}
