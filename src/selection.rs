//! What a run will send, decided before anything is sent, by one set of functions that `run`
//! and `validate` share (so that `validate` shows exactly what `run` would do):
//!
//! 1. [`narrow`]: the plan cut to this run's part: `--shard`, then `--limit` or `--sample`.
//! 2. [`fate`]: what the output folder's state says of each job: done, to fetch, running,
//!    failed, unknown, or to submit (paid), with `--paid-retries` and `--resubmit-unknown`.
//! 3. [`sending`]: the jobs to submit, in the order the run takes them, and `--max-credits`:
//!    what the folder already committed plus what they should cost. Over the cap, a run refuses
//!    to start ([`Sending::check`]) unless `--within-cap` says which of them go: those that
//!    fit in plan order, or spread evenly over models, templates and inputs.
//!
//! Jobs already paid for (in the state) are not estimated again: only what is still to be sent
//! is priced, beside what the folder has committed.

use std::collections::HashMap;
use std::path::Path;

use crate::cost::{Estimate, Prices};
use crate::plan::{Job, JobKey, Plan};
use crate::shard::Shard;
use crate::sinks::thousands;
use crate::state::{Failure, JobRecord, Phase};

/// The options of `run` (and `validate`) that change what a run sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub shard: Option<Shard>,
    /// The first N jobs (after the shard).
    pub limit: Option<usize>,
    /// N jobs that cover the plan ([`crate::plan::sample`]).
    pub sample: Option<usize>,
    pub max_credits: Option<f64>,
    /// What to do when the jobs to send would pass `max_credits`; `None`: refuse.
    pub within_cap: Option<WithinCap>,
    pub paid_retries: u32,
    pub resubmit_unknown: bool,
}

/// Which jobs a run whose estimate passes `--max-credits` sends: those that fit, taken in this
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WithinCap {
    /// In the manifest's order.
    Order,
    /// Spread evenly over models, templates and inputs, so that the part sent is an even grid.
    Spread,
}

impl WithinCap {
    pub fn as_str(self) -> &'static str {
        match self {
            WithinCap::Order => "order",
            WithinCap::Spread => "spread",
        }
    }
}

/// The jobs of the plan that this run leaves out, and the options that did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub jobs: usize,
    /// `shard 2/3`, `--sample 3`, …
    pub by: Vec<String>,
}

impl LeftOut {
    /// `21 jobs of the plan not run (--sample 3)`; `None` when the run has the whole plan.
    pub fn sentence(&self) -> Option<String> {
        (self.jobs > 0).then(|| format!("{} of the plan not run ({})", jobs(self.jobs), self.by.join(", ")))
    }
}

/// `1 job`, `12 jobs`.
fn jobs(n: usize) -> String {
    crate::wording::count(n, "job")
}

/// Cuts `plan` to this run's part: the shard's jobs, then the first `limit` or a `sample` of them.
/// File names were decided over the whole plan, so a part's files are named as in a run of all.
pub fn narrow(plan: &mut Plan, options: &Options) -> LeftOut {
    let whole = plan.jobs.len();
    let mut by = Vec::new();
    if let Some(shard) = options.shard {
        plan.jobs.retain(|j| shard.keeps(&j.key));
        by.push(format!("shard {shard}"));
    }
    if let Some(n) = options.sample.filter(|n| *n < plan.jobs.len()) {
        let all: Vec<usize> = (0..plan.jobs.len()).collect();
        let chosen = crate::plan::sample(&plan.jobs, &all, n);
        let mut keep = vec![false; plan.jobs.len()];
        for i in chosen {
            keep[i] = true;
        }
        let mut at = 0;
        plan.jobs.retain(|_| {
            at += 1;
            keep[at - 1]
        });
        by.push(format!("--sample {n}"));
    }
    if let Some(n) = options.limit.filter(|n| *n < plan.jobs.len()) {
        plan.jobs.truncate(n);
        by.push(format!("--limit {n}"));
    }
    let jobs = whole - plan.jobs.len();
    if jobs == 0 {
        by.clear();
    }
    LeftOut { jobs, by }
}

/// What a run does with a job, from its record in the output folder's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Submitted, and paid for: no record, or one that names no generation to follow.
    New,
    /// A generation that ended in `error`, submitted again within `--paid-retries` (paid again).
    Retry,
    /// A submit whose answer was lost, sent again by `--resubmit-unknown` (may pay twice).
    Resubmit,
    Done,
    /// Generated and paid for, its video to fetch again (free).
    Fetch,
    /// A generation still running remotely: polled (free).
    Running,
    /// A submit whose answer was lost: left `unknown`.
    Unknown,
    /// Failed; left so unless `--paid-retries` allows another generation.
    Failed,
}

impl Fate {
    /// Whether the run submits the job, and so pays for it.
    pub fn sends(self) -> bool {
        matches!(self, Fate::New | Fate::Retry | Fate::Resubmit)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Fate::New => "new",
            Fate::Retry => "retry",
            Fate::Resubmit => "resubmit",
            Fate::Done => "done",
            Fate::Fetch => "to fetch",
            Fate::Running => "running",
            Fate::Unknown => "unknown",
            Fate::Failed => "failed",
        }
    }
}

/// What a run into `out` does with a job, as the coordinator places it when the run starts
/// (`coordinator/resume.rs`). A completed job's file is checked by its size here; the run also
/// checks its SHA-256, and fetches again (free) a video that was changed.
pub fn fate(out: &Path, record: Option<&JobRecord>, options: &Options) -> Fate {
    let Some(r) = record else { return Fate::New };
    match (r.phase, &r.generation_id) {
        (Phase::Queued, _) => Fate::New,
        (Phase::Submitting, _) if options.resubmit_unknown => Fate::Resubmit,
        (Phase::Submitting, _) => Fate::Unknown,
        (Phase::Generating, Some(_)) => Fate::Running,
        (Phase::Downloading, Some(_)) => Fate::Fetch,
        (Phase::Generating | Phase::Downloading, None) => Fate::New,
        (Phase::Completed, id) => match std::fs::metadata(out.join(&r.file)) {
            Ok(m) if Some(m.len()) == r.bytes => Fate::Done,
            _ if id.is_some() => Fate::Fetch,
            _ => Fate::New,
        },
        (Phase::Failed, id) => match (r.failure, id) {
            (Some(Failure::Generation), _) if r.attempts > options.paid_retries => Fate::Failed,
            (Some(Failure::Generation), _) => Fate::Retry,
            (Some(Failure::Download), Some(_)) => Fate::Fetch,
            (Some(Failure::Unfinished), Some(_)) => Fate::Running,
            _ => Fate::New,
        },
    }
}

/// A completed job keeps the file its video was saved under, whatever the naming says now (a
/// newer vidbatch may name it otherwise): nothing is paid again, moved, or fetched twice.
pub fn keep_recorded_files(jobs: &mut [Job], records: &HashMap<JobKey, JobRecord>) {
    for job in jobs {
        if let Some(r) = records.get(&job.key)
            && r.phase == Phase::Completed
            && !r.file.is_empty()
        {
            job.file.clone_from(&r.file);
        }
    }
}

/// What a run sends, and what the cap does to it.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Per job of the plan: what the run does with it.
    pub fates: Vec<Fate>,
    /// Per job: what it should cost, for the jobs to submit.
    pub estimates: Vec<Option<Estimate>>,
    /// The jobs to submit, in the order the run takes them.
    pub order: Vec<usize>,
    /// Of those, the ones `--max-credits` leaves unsent (in plan order): each would pass it.
    pub left: Vec<usize>,
    /// Credits the folder has already committed: charges, and generations not priced yet.
    pub committed: f64,
    pub cap: Option<f64>,
    pub within_cap: Option<WithinCap>,
}

/// Whether a job was left pending by `--max-credits`, from the reason the coordinator gave it
/// (its record's `error`, or a `Pending` event's reason): the words `coordinator/dispatch.rs`
/// writes. A typed reason in the event would be better; until the coordinator gives one, the
/// tests of the one line said for these jobs (`tests/preview.rs`) hold the two together.
pub fn left_by_cap(reason: &str) -> bool {
    reason.starts_with("budget reached")
}

/// The jobs of `jobs` a run into `out` submits, in the order it takes them, and those the cap
/// leaves: the one decision `run` and `validate` share. The cap is walked as the run's ledger
/// walks it: each job in turn is sent if the folder's committed credits plus its estimate stay
/// under the cap, else left (a cheaper one behind it may still go).
pub fn sending(
    out: &Path,
    jobs: &[Job],
    records: &HashMap<JobKey, JobRecord>,
    prices: &Prices,
    options: &Options,
) -> Sending {
    let fates: Vec<Fate> = jobs.iter().map(|j| fate(out, records.get(&j.key), options)).collect();
    let mut estimates = vec![None; jobs.len()];
    let to_send: Vec<usize> = (0..jobs.len()).filter(|&i| fates[i].sends()).collect();
    for &i in &to_send {
        estimates[i] = Some(prices.estimate_job(&jobs[i]));
    }
    let order = match options.within_cap {
        Some(WithinCap::Spread) => crate::plan::spread_order(jobs, &to_send),
        _ => to_send,
    };
    let committed = prices.committed(records.values());
    let mut left = Vec::new();
    if let Some(cap) = options.max_credits {
        let mut spent = committed;
        for &i in &order {
            let credits = estimates[i].map_or(0.0, |e| e.credits);
            // As `Ledger::allows`: a rounding error must not leave a job that fits exactly.
            if spent + credits <= cap + 1e-6 {
                spent += credits;
            } else {
                left.push(i);
            }
        }
        left.sort_unstable();
    }
    Sending {
        fates,
        estimates,
        order,
        left,
        committed,
        cap: options.max_credits,
        within_cap: options.within_cap,
    }
}

/// A run whose jobs to send would pass `--max-credits`, and no `--within-cap` to say which go.
#[derive(Debug, Clone, PartialEq)]
pub struct OverCap {
    /// The jobs to submit.
    pub jobs: usize,
    pub estimate: f64,
    pub committed: f64,
    pub cap: f64,
}

impl std::fmt::Display for OverCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.jobs == 1 { "is" } else { "are" };
        write!(
            f,
            "the {} to submit {verb} expected to cost {} credits",
            jobs(self.jobs),
            thousands(self.estimate)
        )?;
        if self.committed > 0.0 {
            write!(
                f,
                ", and {} are already committed in this folder",
                thousands(self.committed)
            )?;
        }
        write!(
            f,
            ": that passes --max-credits {} by {}; nothing was sent",
            thousands(self.cap),
            thousands(self.committed + self.estimate - self.cap)
        )
    }
}

impl std::error::Error for OverCap {}

impl OverCap {
    /// The cap that lets every job go.
    pub fn needed(&self) -> u64 {
        (self.committed + self.estimate).ceil() as u64
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        format!(
            "to send them all, raise the cap (`--max-credits {}`) or drop it; to spend up to the cap, add \
             `--within-cap order` (the jobs that fit, in the manifest's order) or `--within-cap spread` (spread \
             evenly over models, templates and inputs); `vidbatch validate` with the same options shows which jobs go",
            self.needed()
        )
    }
}

impl Sending {
    /// What the jobs to submit should cost, all of them.
    pub fn estimate(&self) -> f64 {
        self.order
            .iter()
            .filter_map(|&i| self.estimates[i])
            .map(|e| e.credits)
            .sum()
    }

    /// What the jobs the cap leaves should cost.
    pub fn left_estimate(&self) -> f64 {
        self.left
            .iter()
            .filter_map(|&i| self.estimates[i])
            .map(|e| e.credits)
            .sum()
    }

    pub fn is_left(&self, i: usize) -> bool {
        self.left.binary_search(&i).is_ok()
    }

    /// `Err` when the jobs to send pass the cap and no `--within-cap` says which go.
    pub fn check(&self) -> Result<(), OverCap> {
        match (self.cap, self.within_cap) {
            (Some(cap), None) if !self.left.is_empty() => Err(OverCap {
                jobs: self.order.len(),
                estimate: self.estimate(),
                committed: self.committed,
                cap,
            }),
            _ => Ok(()),
        }
    }

    /// `12 jobs not sent: they would pass --max-credits 10,000,000 (est. 19,000,000 more)`, when
    /// the cap leaves some.
    pub fn left_line(&self) -> Option<String> {
        let cap = self.cap?;
        (!self.left.is_empty()).then(|| cap_left_line(self.left.len(), cap, self.left_estimate()))
    }

    /// What `--within-cap` sends, in words, when the cap leaves jobs: `--within-cap spread: 9 of
    /// the 14 jobs to submit fit under --max-credits 10,000,000; 5 jobs not sent: they would pass
    /// --max-credits 10,000,000 (est. 5,250,000 more)`.
    pub fn within_cap_line(&self) -> Option<String> {
        let (cap, how, left) = (self.cap?, self.within_cap?, self.left_line()?);
        let fits = match self.order.len() - self.left.len() {
            0 => "none".to_string(),
            n => n.to_string(),
        };
        let already = match self.committed > 0.0 {
            true => format!(" ({} already committed in the folder)", thousands(self.committed)),
            false => String::new(),
        };
        Some(format!(
            "--within-cap {}: {fits} of the {} to submit fit under --max-credits {}{already}; {left}",
            how.as_str(),
            jobs(self.order.len()),
            thousands(cap),
        ))
    }

    /// Where the run starts from: the jobs to send in the order the run takes them, then the
    /// others in plan order. `None` when that is the plan's order.
    pub fn run_order(&self) -> Option<Vec<usize>> {
        if self.within_cap != Some(WithinCap::Spread) || self.left.is_empty() {
            return None;
        }
        let mut order = self.order.clone();
        order.extend((0..self.fates.len()).filter(|&i| !self.fates[i].sends()));
        Some(order)
    }
}

/// `12 jobs not sent: they would pass --max-credits 10,000,000 (est. 19,000,000 more)`.
pub fn cap_left_line(left: usize, cap: f64, estimate: f64) -> String {
    format!(
        "{} not sent: {} would pass --max-credits {} (est. {} more)",
        jobs(left),
        if left == 1 { "it" } else { "they" },
        thousands(cap),
        thousands(estimate)
    )
}

/// The jobs a run's cap left unsent, read back from the state after the run (real charges may
/// have let more go, or fewer, than the estimate said).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapLeft {
    pub jobs: usize,
    pub cap: f64,
    /// What they should cost.
    pub estimate: f64,
    /// The cap that would let them all go: what the folder has committed, plus their estimate.
    pub needed: f64,
}

impl CapLeft {
    /// `12 jobs not sent: they would pass --max-credits 10,000,000 (est. 19,000,000 more)`.
    pub fn line(&self) -> String {
        cap_left_line(self.jobs, self.cap, self.estimate)
    }
}

/// The jobs of `jobs` that `--max-credits` left pending, from their records; `None` when none.
pub fn cap_left(
    jobs: &[Job],
    records: &HashMap<JobKey, JobRecord>,
    prices: &Prices,
    cap: Option<f64>,
) -> Option<CapLeft> {
    let cap = cap?;
    let left: Vec<&Job> = jobs
        .iter()
        .filter(|j| {
            records
                .get(&j.key)
                .is_some_and(|r| r.phase == Phase::Queued && r.error.as_deref().is_some_and(left_by_cap))
        })
        .collect();
    if left.is_empty() {
        return None;
    }
    let estimate: f64 = left.iter().map(|j| prices.estimate_job(j).credits).sum();
    Some(CapLeft {
        jobs: left.len(),
        cap,
        estimate,
        needed: (prices.committed(records.values()) + estimate).ceil(),
    })
}

/// Puts `items` in `order` (a permutation of their indices).
pub fn reorder<T>(items: &mut Vec<T>, order: &[usize]) {
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.iter().map(|&i| slots[i].take().expect("order is a permutation")));
}

/// Undoes [`reorder`]: the item at position `p` goes back to `order[p]`.
pub fn restore<T>(items: &mut Vec<T>, order: &[usize]) {
    let mut slots: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    for (item, &i) in items.drain(..).zip(order) {
        slots[i] = Some(item);
    }
    items.extend(slots.into_iter().map(|s| s.expect("order is a permutation")));
}

#[cfg(test)]
mod tests;
