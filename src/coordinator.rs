//! The one component that owns a run. Outline of a run:
//!
//! 1. Every job of the plan is registered in the state database; what a previous run left is
//!    read back and each job is placed (`resume.rs`): done (its file verified), to poll (a
//!    generation id is known), to fetch, to submit, or `unknown` (a submit whose answer was lost).
//! 2. The loop hands out work (`dispatch.rs`): every API request waits for a turn of the one
//!    rate limiter, and the coordinator chooses what each turn is spent on (`schedule.rs`): a
//!    submit while fewer generations than the ceiling are in flight (`--concurrency`, lowered
//!    when the service says too many are active), else a due poll. Polls are timed from how
//!    long renders of their kind take (`polling.rs`) and kept in one heap by time, not a task
//!    per job. Downloads start as soon as a generation completes.
//! 3. Workers (submit, poll, download tasks) never touch the state: they return an [`Event`],
//!    whose consequence is decided by pure functions (`decide.rs`); its handler (`events.rs`)
//!    returns what to do as values — writes, events, queues, polls, a stop (`effects.rs`) — and
//!    the loop carries them out synchronously before anything else happens. A submit is
//!    recorded when its rate-limiter turn comes and committed before its POST, and its
//!    generation id committed the moment it returns, before any poll; what a finish writes may
//!    share a commit with the next ones for up to `LAZY_COMMIT` (lost in a crash, it is found
//!    again for free).
//! 4. A job's failure is state, never an early return: the loop runs until no work is left, the
//!    run is cancelled, or something every job would meet stops it (a refused key, an
//!    unreachable API, an unwritable state or output folder).
//! 5. The caller writes the final results from the state (the loop refreshes them on the way);
//!    the exit code is decided once, at the end.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::api::{ApiClient, ApiError, GenerationStatus, Paced, Submission, Turn};
use crate::cost::{Ledger, Prices};
use crate::download::{DownloadError, Downloaded, Downloader};
use crate::plan::{Job, Plan};
use crate::retry::RetryPolicy;
use crate::sinks::notice::Notice;
use crate::sinks::{RunEvent, Sinks, Started};
use crate::state::{Phase, RunState, StateError};

mod decide;
mod dispatch;
mod effects;
mod events;
pub mod halt;
mod progress;
mod record;
use record::LAZY_COMMIT;
pub mod polling;
mod resume;
pub mod schedule;
mod shutdown;
mod track;

pub use halt::Halt;
pub use resume::{AdoptError, Adoption, adopt, earlier_run};
pub use shutdown::{CancelLevel, Shutdown, StopReason};
use track::{Fetch, Next, Outcome, Remote, Slots, Stage, Track};

#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Most generations in flight at once (submitted, not yet seen finished).
    pub concurrency: usize,
    /// Most downloads at once; downloads do not count as generations in flight.
    pub downloads: usize,
    /// How often to poll: a fixed interval (`--poll-interval`), or learned from render times.
    pub polling: Polling,
    /// Paid resubmissions allowed per job after a generation ends in `error`.
    pub paid_retries: u32,
    /// Submit again the jobs whose earlier submit has an unknown outcome (may pay twice).
    pub resubmit_unknown: bool,
    /// How long to wait for one generation before giving up on it (for this run).
    pub generation_timeout: Duration,
    pub retry: RetryPolicy,
    /// How often the sinks hear where the run stands (each keeps its own pace from there).
    pub progress_every: Duration,
    /// Most credits committed in this output folder, every run counted (`--max-credits`).
    pub max_credits: Option<f64>,
    /// Free bytes the output disk must have before a paid submit (`--min-free`); `None`: twice
    /// the largest video seen, at least [`DEFAULT_MIN_FREE`].
    pub min_free: Option<u64>,
    /// The vendor's price list, when it could be read: jobs it prices are quoted exactly.
    pub price_list: Option<Arc<crate::pricing::PriceList>>,
    /// When failing generations stop the submits of their kind, or of the run (`halt.rs`).
    pub halt: Halt,
}

/// The least free space a submit needs when no `--min-free` is given: real videos weigh tens of
/// MB, and the state and `results.csv` need room beside them.
pub const DEFAULT_MIN_FREE: u64 = 64 << 20;

/// How the coordinator decides when to poll a generation.
#[derive(Debug, Clone)]
pub enum Polling {
    /// Every generation at this interval, whatever its renders take.
    Fixed(Duration),
    /// From the durations of this kind of render, in this run and earlier ones (`polling.rs`).
    Adaptive(polling::PollPolicy),
}

#[derive(Debug)]
pub struct RunReport {
    pub stopped: Option<StopReason>,
    /// Jobs found already done on disk at the start.
    pub resumed_done: usize,
    pub api_requests: u64,
    /// The most generations in flight the service accepted, when it refused more (and how often).
    pub concurrency_found: Option<(usize, u32)>,
    /// Jobs (by index) whose failure was recorded by an earlier run: reported as old news.
    pub failed_before: Vec<usize>,
    /// Charges the service reported during this run.
    pub credits_now: f64,
    /// What the jobs to submit were expected to cost, at the start.
    pub estimate: f64,
}

/// What a worker reports back.
enum Event {
    /// A submit's turn came and the pacer let it go: it is recorded, then sent.
    Paced { job: usize, paced: Paced },
    Submitted {
        job: usize,
        result: Result<Submission, ApiError>,
    },
    Polled {
        job: usize,
        result: Result<GenerationStatus, ApiError>,
    },
    Downloaded {
        job: usize,
        result: Result<Downloaded, DownloadError>,
    },
}

/// How long a stopping run waits for the answers of submits already sent.
const SUBMIT_GRACE: Duration = Duration::from_secs(20);

pub struct Coordinator<'p> {
    jobs: &'p [Job],
    /// Where the run's events go: nothing else is said or written by the coordinator itself.
    sinks: Sinks<'p>,
    prices: Prices,
    ledger: Ledger,
    started_at: Instant,
    /// Requests sent, sampled at each progress event, for the recent request rate.
    request_samples: VecDeque<(Instant, u64)>,
    failed_before: Vec<usize>,
    out: PathBuf,
    state: RunState,
    api: Arc<ApiClient>,
    downloader: Arc<Downloader>,
    config: RunConfig,
    tracks: Vec<Track>,
    /// Generations created so far per job: its record's count at the start, and this run's. A
    /// failure's paid retry is decided from it, with no read of the state in the middle.
    attempts: Vec<u32>,
    /// What the event being handled decided, waiting to be carried out ([`effects`]).
    effects: effects::Effects,
    queue: VecDeque<usize>,
    /// Jobs followed remotely (polled, fetched): while any is, the run goes on.
    remote: usize,
    /// Polls by due time, earliest first. An entry is live while its job's `next_poll` still
    /// says that time (a job rescheduled leaves its old entry behind, skipped when it comes up),
    /// so the next poll is found without looking at every generation in flight.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Polls whose time has come, waiting for a turn of the rate limiter, most likely to find
    /// their generation finished first ([`Coordinator::next_poll`]); live as `due`'s entries are.
    ready_polls: BinaryHeap<((u64, u64), Reverse<Instant>, usize)>,
    /// When `ready_polls` was last ranked again.
    ready_ranked: Instant,
    /// Jobs whose video is ready, waiting for a download slot.
    fetches: VecDeque<usize>,
    /// Folders that received videos since the last commit, synced before it
    /// ([`Coordinator::sync_folders`]).
    unsynced: Vec<PathBuf>,
    /// The next turn of the rate limiter, asked for while some request wants one. Every API
    /// request goes through here, so the coordinator chooses what each turn is spent on.
    turn: Option<Pin<Box<dyn Future<Output = Turn> + Send>>>,
    /// Submits waiting out a retry delay (they hold their slot), by when they may go.
    retrying: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Submits holding a slot whose delay is over, waiting for a turn.
    ready_retries: VecDeque<usize>,
    /// POSTs decided in this turn of the loop (with their job), sent once their `submitting`
    /// records are committed ([`Coordinator::flush`]).
    outbox: Vec<(usize, futures::future::BoxFuture<'static, Event>)>,
    /// No new generation before this (the service said too many are active).
    submits_paused_until: Option<Instant>,
    ceiling: schedule::Ceiling,
    /// Generations in flight: slots held by submitting and running jobs.
    slots: Slots,
    /// Downloads under way: one slot each, held by its `Stage::Downloading`.
    downloads: Slots,
    /// POSTs in the air, kept apart: on the way out their answers are awaited (a dropped answer
    /// is a generation paid for and forgotten), while everything else is simply dropped.
    submits: JoinSet<Event>,
    /// Waits for the rate limiter, polls and downloads: free to drop and redo.
    lookups: JoinSet<Event>,
    stopped: Option<StopReason>,
    resumed_done: usize,
    shutdown: Shutdown,
    next_progress: Instant,
    /// Status words outside the documented ones, each reported once.
    odd_statuses: std::collections::HashSet<String>,
    /// How long renders take, per kind: what adaptive polling is based on.
    render_times: polling::RenderTimes,
    /// The open batch of writes holds one that must be on disk at the end of this turn of the
    /// loop (see [`Coordinator::record`]).
    urgent: bool,
    /// Since when the open batch has held writes that may wait ([`Coordinator::record_lazily`]).
    lazy_since: Option<Instant>,
    /// Generations followed so far per kind: each gets the next place in the octave of early
    /// probes, so every kind has its scouts however its jobs are spread over the plan.
    followed: std::collections::HashMap<Arc<str>, usize>,
    /// Jobs whose earlier submit's outcome is unknown, queued again by `--resubmit-unknown`:
    /// the state keeps them `unknown` until their new submit is recorded, so one that this run
    /// does not send (the cap, a stop) stays `unknown` rather than becoming a plain pending job.
    unknown_earlier: std::collections::HashSet<usize>,
    /// The largest video saved in this folder, for the room a submit needs on the disk.
    largest_video: u64,
    /// (model, field, why): the service refused a local file there; jobs of that model with a
    /// file there are left pending, not sent.
    refused_files: Vec<(String, &'static str, String)>,
    /// The last look at the disk's free space: when, and whether there was room.
    disk_checked: Option<(Instant, bool)>,
    /// Submits sent and generations seen finished, sampled for the request budget of polls.
    flow: progress::Flow,
    /// Generations finished in this run by kind, for `--halt-kind` and `--halt-run`.
    failures: halt::Failures,
}

impl<'p> Coordinator<'p> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &'p Plan,
        out: &Path,
        mut state: RunState,
        api: Arc<ApiClient>,
        downloader: Arc<Downloader>,
        config: RunConfig,
        shutdown: &Shutdown,
        mut sinks: Sinks<'p>,
    ) -> Result<Coordinator<'p>, StateError> {
        let moved = state.rekey(&plan.jobs)?;
        if moved > 0 {
            sinks.emit(RunEvent::Notice(&Notice::Rekeyed { jobs: moved }));
        }
        state.register(&plan.jobs)?;
        let removed = crate::download::remove_stale_parts(&out.join("videos"));
        if removed > 0 {
            sinks.emit(RunEvent::Notice(&Notice::StaleParts { removed }));
        }
        let next_progress = Instant::now() + config.progress_every;
        let ceiling = schedule::Ceiling::new(config.concurrency);
        let prices = Prices::new(state.charges_by_model()?).with_list(config.price_list.clone());
        let ledger = Ledger::new(config.max_credits, 0.0);
        let mut coordinator = Coordinator {
            jobs: &plan.jobs,
            sinks,
            prices,
            ledger,
            started_at: Instant::now(),
            request_samples: VecDeque::new(),
            failed_before: Vec::new(),
            out: out.to_path_buf(),
            state,
            api,
            downloader,
            config,
            tracks: Vec::with_capacity(plan.jobs.len()),
            attempts: Vec::with_capacity(plan.jobs.len()),
            effects: effects::Effects::default(),
            queue: VecDeque::new(),
            remote: 0,
            due: BinaryHeap::new(),
            ready_polls: BinaryHeap::new(),
            ready_ranked: Instant::now(),
            fetches: VecDeque::new(),
            unsynced: Vec::new(),
            turn: None,
            outbox: Vec::new(),
            retrying: BinaryHeap::new(),
            ready_retries: VecDeque::new(),
            submits_paused_until: None,
            ceiling,
            slots: Slots::default(),
            downloads: Slots::default(),
            submits: JoinSet::new(),
            lookups: JoinSet::new(),
            stopped: None,
            resumed_done: 0,
            shutdown: shutdown.clone(),
            next_progress,
            odd_statuses: Default::default(),
            render_times: polling::RenderTimes::default(),
            urgent: false,
            lazy_since: None,
            followed: Default::default(),
            unknown_earlier: Default::default(),
            largest_video: 0,
            refused_files: Vec::new(),
            disk_checked: None,
            flow: progress::Flow::default(),
            failures: halt::Failures::default(),
        };
        coordinator.render_times.load(coordinator.state.render_times()?);
        let records = coordinator.state.records()?;
        coordinator.largest_video = records.values().filter_map(|r| r.bytes).max().unwrap_or(0);
        // Every run into this folder counts against `--max-credits`, this one's jobs or not.
        coordinator.ledger = Ledger::new(
            coordinator.config.max_credits,
            coordinator.prices.committed(records.values()),
        );
        let planned: std::collections::HashSet<&crate::plan::JobKey> = plan.jobs.iter().map(|j| &j.key).collect();
        let orphans = records
            .values()
            .filter(|r| !planned.contains(&r.key))
            .filter(|r| matches!(r.phase, Phase::Submitting | Phase::Generating | Phase::Downloading))
            .count();
        if orphans > 0 {
            coordinator.sinks.emit(RunEvent::Notice(&Notice::Orphans {
                generations: orphans,
                state: coordinator.state.path(),
            }));
        }
        for (i, job) in plan.jobs.iter().enumerate() {
            let record = records.get(&job.key);
            let track = coordinator.place(job, record)?;
            if matches!(track, Track::Queued) {
                coordinator.queue.push_back(i);
                if record.is_some_and(|r| r.phase == Phase::Submitting) {
                    coordinator.unknown_earlier.insert(i);
                }
            }
            if let Track::Remote(_) = &track {
                coordinator.remote += 1;
            }
            if matches!(track, Track::Settled(Outcome::Failed)) {
                coordinator.failed_before.push(i);
            }
            coordinator.tracks.push(track);
            coordinator.attempts.push(record.map_or(0, |r| r.attempts));
            coordinator.schedule(i);
        }
        coordinator.carry_out();
        Ok(coordinator)
    }

    /// Runs until every job is settled, or the run is stopped. Returns a plain report: failures
    /// live in the state, so there is nothing to `?` out of here.
    pub async fn run(mut self) -> (RunState, RunReport, Sinks<'p>) {
        let mut cancel = self.shutdown.subscribe();
        let estimate: f64 = self
            .queue
            .iter()
            .map(|&i| self.prices.estimate_job(&self.jobs[i]).credits)
            .sum();
        let started = Started {
            jobs: self.jobs.len(),
            to_submit: self.queue.len(),
            to_follow: self.remote,
            already_done: self.resumed_done,
            settled: self.tracks.iter().filter(|t| matches!(t, Track::Settled(_))).count(),
            estimate: Some(estimate),
            max_credits: self.config.max_credits,
        };
        self.sinks.emit(RunEvent::Started(&started));
        loop {
            let level = *cancel.borrow_and_update();
            if level == CancelLevel::Abort {
                break;
            }
            self.rebudget();
            self.start_work(level);
            if self.flush() {
                // The POSTs just recorded leave before anything else this turn does (a results
                // refresh, progress): a kill meanwhile would leave them `unknown` unsent.
                tokio::task::yield_now().await;
            }
            // Every job followed remotely is polling, due to be polled, fetching, or waiting to;
            // every job to submit is queued or waiting out a retry.
            let submits_left = (level == CancelLevel::Running && !self.queue.is_empty())
                || !self.retrying.is_empty()
                || !self.ready_retries.is_empty();
            if self.submits.is_empty() && self.lookups.is_empty() && self.remote == 0 && !submits_left {
                break;
            }
            self.progress();
            let wake = self.next_wake();
            let turn = async {
                match self.turn.as_mut() {
                    Some(t) => t.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                turn = turn => {
                    self.turn = None;
                    self.dispatch(turn, level);
                }
                changed = cancel.changed() => {
                    // A drain the run asked for itself (a full disk) has said why already.
                    if changed.is_ok() && *cancel.borrow() == CancelLevel::Drain && self.stopped.is_none() {
                        self.stop(StopReason::Interrupted);
                        let in_flight = self.slots.in_use();
                        self.sinks.emit(RunEvent::Notice(&Notice::Stopping { in_flight }));
                    }
                }
                Some(joined) = self.submits.join_next() => self.joined(joined),
                Some(joined) = self.lookups.join_next() => self.joined(joined),
                _ = tokio::time::sleep_until(wake) => {}
            }
            // Whatever else has finished meanwhile is handled in the same batch of writes. The
            // run has one thread: letting the other tasks move once first (answers being read)
            // gathers several events per commit instead of one.
            tokio::task::yield_now().await;
            for _ in 0..256 {
                match self.submits.try_join_next().or_else(|| self.lookups.try_join_next()) {
                    Some(joined) => self.joined(joined),
                    None => break,
                }
            }
        }
        // Requests decided but not sent: a POST's `submitting` record is undone (it never went).
        for (i, _) in std::mem::take(&mut self.outbox) {
            let key = self.jobs[i].key.clone();
            let was_unknown = self.unknown_earlier.contains(&i);
            self.record(|s| s.unsend(&key, was_unknown));
            self.withdraw(i);
        }
        if self.stopped.is_none() && self.shutdown.level() > CancelLevel::Running {
            self.stopped = Some(StopReason::Interrupted);
        }
        // Leaving: polls and downloads can be redone for free, so they are dropped; a submit's
        // answer cannot be asked for again, so it is awaited (briefly) and recorded.
        self.lookups.abort_all();
        if !self.submits.is_empty() {
            let submits = self.submits.len();
            self.sinks
                .emit(RunEvent::Notice(&Notice::WaitingForSubmits { submits }));
        }
        let deadline = Instant::now() + SUBMIT_GRACE;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, self.submits.join_next()).await {
            self.joined(joined);
            // Its generation id on disk now: a kill during this wait must not lose it.
            self.commit();
        }
        self.submits.abort_all();
        self.outbox.clear();
        self.sync_folders();
        if let Err(e) = self.state.commit() {
            let text = format!("the run state could not be written: {}", crate::api::error_chain(&e));
            self.sinks.emit(RunEvent::Notice(&Notice::Fatal { text: &text }));
            self.stopped
                .get_or_insert(StopReason::Fatal("the run state could not be written".into()));
        }
        self.note_why_left();
        self.emit_progress();
        let report = RunReport {
            stopped: self.stopped,
            resumed_done: self.resumed_done,
            api_requests: self.api.requests_sent(),
            concurrency_found: self.ceiling.found().map(|n| (n, self.ceiling.refusals())),
            failed_before: self.failed_before,
            credits_now: self.ledger.reported_now(),
            estimate,
        };
        (self.state, report, self.sinks)
    }

    fn joined(&mut self, joined: Result<Event, tokio::task::JoinError>) {
        match joined {
            Ok(event) => {
                self.handle(event);
                self.carry_out();
            }
            Err(e) if e.is_panic() => {
                // A worker bug must not strand the run: stop, the state stays resumable.
                self.stop(StopReason::Fatal(format!("internal error in a worker: {e}")));
            }
            Err(_) => {}
        }
    }

    /// The next place in the octave of early probes for a generation of `kind`.
    fn next_phase(&mut self, kind: &Arc<str>) -> f64 {
        let n = self.followed.entry(kind.clone()).or_default();
        *n += 1;
        polling::phase(*n - 1)
    }
}

#[cfg(test)]
mod tests;
