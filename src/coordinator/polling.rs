//! When to poll a generation: learned from how long renders of its kind have taken, in this run
//! and in earlier runs into the same `--out`. Pure functions of (age, what is known), so the
//! policy is tested without a clock or a server.
//!
//! A poll that finds the generation still running is a request wasted; a poll long after it
//! finished wastes its concurrency slot. The poll ages are planned once per kind from the
//! durations seen, as the schedule that minimises the expected detection latency plus a price per
//! poll: a dynamic programme over the sorted durations ([`plan`]). Where finishes are dense the
//! polls come close together, where they are sparse far apart, and before the earliest finish
//! seen there is none. Older than anything seen, a generation is late and looked at every
//! twentieth of a typical render.
//!
//! The price of a poll is what a request is worth now. While the rate limit has turns to spare it
//! is [`POLL_PRICE`] of the typical render; when submits and polls together want more than the
//! rate, the run gives the policy a budget of polls per generation ([`RenderTimes::set_budget`])
//! and each kind's plan is made with the least price that keeps within it: fewer polls, each
//! placed where it finds the most, instead of the same polls arriving late behind the limiter.
//!
//! Durations are learned from every finish this process saw happen (a failure too, at its own
//! time), whether the generation was submitted in this run or an earlier one. A finish is known
//! only to lie between two polls; the durations are estimated from all those spans together
//! ([`censored`]), not a point taken from each.
//!
//! Before anything is learned of a kind, its first four generations and an eighth of the others (64 at most)
//! scout: they probe at ages doubling from 1/64 of the prior (a render 30 times shorter is seen
//! within twice its time), staggered over the octave, so the first finishes
//! are seen early whether the prior was right or far off. The others probe at ages doubling from
//! the prior, and move to the plan as soon as the scouts learn something. A new kind's prior is
//! what the run has learned of the others, when it has.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

mod censored;

/// Before anything is known of a kind, the least start of a span learned, as a share of its end.
/// A scout's probes double, so a span between two of them starts at half its end; less when the
/// second was late.
const FIRST_SPAN: f64 = 0.4;

/// What one poll is worth, as a share of the typical render spent waiting to notice a finish.
/// The plan weighs a poll against that much detection latency: on renders spread ±33 % around
/// their mean it spends about four and a half polls for a mean latency under 4 % of the render;
/// on renders spread ±5 %, about two polls for 1.5 % (the tests below walk both). Fewer polls
/// cannot do much better on spread-out renders: at 1.5 polls per generation the best any schedule
/// does on a uniform spread of ±33 % is a latency of 15 % (BENCHMARKS.md).
pub const POLL_PRICE: f64 = 1.0 / 100.0;

/// Durations seen per kind of generation (a model, or a model and template when they differ),
/// and the poll plan made from them.
#[derive(Debug, Default, Clone)]
pub struct RenderTimes {
    kinds: HashMap<String, Kind>,
    /// Polls per generation the request budget leaves (`None`: as many as the plan wants).
    budget: Option<f64>,
}

#[derive(Debug, Default, Clone)]
struct Kind {
    samples: Samples,
    /// Poll ages planned from `samples`, ascending.
    plan: Vec<Duration>,
    /// Samples added since `plan` was made.
    unplanned: usize,
    /// Polls per generation of the plan at the base price, [`POLL_PRICE`].
    free_polls: f64,
}

/// What the most recent finishes of one kind say of their durations (at most
/// [`Samples::KEEP`]), and the durations estimated from that.
#[derive(Debug, Default, Clone)]
struct Samples {
    /// Each finish's span in seconds, `(lo, hi)`: the duration lies in `(lo, hi]`, or is `hi`
    /// when known exactly (`lo == hi`). In arrival order, to forget the oldest first.
    spans: VecDeque<(f64, f64)>,
    /// As many durations, ascending, equally likely, estimated from all the spans together
    /// ([`censored::quantiles`]); made again with the plan.
    sorted: Vec<Duration>,
}

impl Samples {
    /// Enough to follow a drifting service, few enough that an insert and a plan stay cheap.
    const KEEP: usize = 256;

    fn add(&mut self, lo: Duration, hi: Duration) {
        if self.spans.len() == Self::KEEP {
            self.spans.pop_front();
        }
        self.spans.push_back((lo.min(hi).as_secs_f64(), hi.as_secs_f64()));
    }

    /// Estimates the durations again from the spans.
    fn estimate(&mut self) {
        self.sorted = censored::quantiles(self.spans.make_contiguous())
            .into_iter()
            .map(|d| Duration::try_from_secs_f64(d).unwrap_or_default())
            .collect();
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn median(&self) -> Option<Duration> {
        self.sorted.get(self.sorted.len() / 2).copied()
    }
}

impl Kind {
    /// Re-plans once a sixteenth of what it knows is new (at every sample while fewer than 32
    /// are known): a plan costs O(samples²), and with thousands of generations finishing a minute
    /// it must not be made per finish.
    fn add(&mut self, (lo, hi): (Duration, Duration), budget: Option<f64>) {
        self.samples.add(lo, hi);
        self.unplanned += 1;
        if self.unplanned >= (self.samples.len() / 16).max(1) {
            self.samples.estimate();
            self.replan(budget);
        }
    }

    fn replan(&mut self, budget: Option<f64>) {
        if let Some(typical) = self.samples.median() {
            let sorted = &self.samples.sorted;
            let price = typical.mul_f64(POLL_PRICE);
            let free = plan(sorted, price);
            self.free_polls = polls_per_generation(&free, sorted);
            self.plan = match budget {
                Some(budget) if budget < self.free_polls => dearer_plan(sorted, price, budget),
                _ => free,
            };
        }
        self.unplanned = 0;
    }

    /// Whether a budget holds this kind's plan back.
    fn held_by(&self, budget: Option<f64>) -> bool {
        budget.is_some_and(|b| b < self.free_polls)
    }
}

impl RenderTimes {
    /// Learns one duration known exactly. Returns whether the polls already planned for this
    /// kind should be timed again: the first few durations change what is known the most (from
    /// nothing at all to a first estimate), so generations waiting on a guess move to the new
    /// plan.
    pub fn record(&mut self, kind: &str, render: Duration) -> bool {
        self.learn(kind, (render, render))
    }

    fn learn(&mut self, kind: &str, span: (Duration, Duration)) -> bool {
        let k = self.kinds.entry(kind.to_string()).or_default();
        k.add(span, self.budget);
        let n = k.samples.len();
        n <= 64 && n.is_power_of_two()
    }

    /// Learns a duration known only to lie in `(lo, hi]`: between the last time the generation
    /// was known running and the poll that saw it finished. The span is kept as it is, and the
    /// durations are estimated from all the spans together ([`censored`]): a wide one counts
    /// where the narrow ones say finishes happen. Before anything is known of the kind, only a
    /// narrow span is learned (its start at least [`FIRST_SPAN`] of its end, as a scout's
    /// doubling probes give, even one late behind the rate limit): a generation found finished
    /// at its first poll would only say "shorter than this", and all of that at once would
    /// spread the first plan down to nothing.
    ///
    /// Returns a duration for later runs to start from (drawn by `pick`, in [0, 1), from the part
    /// of the span no shorter than the shortest estimated, so that the ones found finished at
    /// their first poll do not count as half their age), and whether the polls planned should be
    /// timed again ([`RenderTimes::record`]); `None` when nothing was learned.
    pub fn record_between(&mut self, kind: &str, lo: Duration, hi: Duration, pick: f64) -> Option<(Duration, bool)> {
        let shortest = match self.kinds.get(kind).filter(|k| k.samples.len() > 0) {
            Some(k) => k.samples.sorted.first().copied(),
            None if lo.as_secs_f64() >= FIRST_SPAN * hi.as_secs_f64() => None,
            None => return None,
        };
        let from = shortest.map(|s| s.max(lo)).filter(|&from| from < hi).unwrap_or(lo);
        let render = from + (hi - from).mul_f64(pick.clamp(0.0, 1.0));
        Some((render, self.learn(kind, (lo, hi))))
    }

    /// Learns the durations earlier runs recorded, planning each kind once at the end (not at
    /// every sixteenth of thousands of them, at start-up).
    pub fn load(&mut self, durations: impl IntoIterator<Item = (String, Duration)>) {
        for (kind, d) in durations {
            self.kinds.entry(kind).or_default().samples.add(d, d);
        }
        let budget = self.budget;
        self.kinds.values_mut().for_each(|k| {
            k.samples.estimate();
            k.replan(budget);
        });
    }

    /// Sets the polls per generation that the request budget leaves (`None`: no limit). Kinds are
    /// planned again when the budget moved by more than a sixth, or was set or lifted; returns
    /// whether a plan changed, so that the polls waiting on the old plans are timed again.
    pub fn set_budget(&mut self, budget: Option<f64>) -> bool {
        let budget = budget.map(|b| b.max(1.0));
        let moved = match (self.budget, budget) {
            (Some(old), Some(new)) => (new / old - 1.0).abs() > 1.0 / 6.0,
            (None, None) => false,
            _ => true,
        };
        if !moved {
            return false;
        }
        let old = std::mem::replace(&mut self.budget, budget);
        let mut changed = false;
        // A kind whose plan is within the budget, old and new, keeps it (the usual case when
        // the rate has turns to spare).
        for k in self.kinds.values_mut().filter(|k| k.held_by(old) || k.held_by(budget)) {
            let before = std::mem::take(&mut k.plan);
            k.replan(budget);
            changed |= k.plan != before;
        }
        changed
    }

    /// The typical render over every kind: the median of their medians.
    pub fn typical(&self) -> Option<Duration> {
        self.learned_elsewhere(None)
    }

    /// Each kind's poll ages, for a look at what the policy does (`-vv`).
    pub fn plans(&self) -> Vec<(&str, &[Duration])> {
        self.kinds
            .iter()
            .map(|(k, known)| (k.as_str(), known.plan.as_slice()))
            .collect()
    }

    /// The polls per generation the plans are held to.
    pub fn budget(&self) -> Option<f64> {
        self.budget
    }

    /// What the run has learned of renders elsewhere: the median of the other kinds' medians, a
    /// prior for a kind not seen yet (renders of one service take alike, more or less).
    fn learned_elsewhere(&self, kind: Option<&str>) -> Option<Duration> {
        let mut medians: Vec<Duration> = self
            .kinds
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != kind)
            .filter_map(|(_, known)| known.samples.median())
            .collect();
        medians.sort();
        medians.get(medians.len() / 2).copied()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.kinds.get(kind).map_or(0, |k| k.samples.len())
    }

    /// The chance that a generation of `kind` found running at age `since` has finished by age
    /// `age`, from the durations estimated (`None` before any is known): what a poll of it now is
    /// likely to find. Where turns of the rate limit are scarce, they go to the polls likeliest
    /// to free a slot.
    pub fn chance_finished(&self, kind: &str, since: Duration, age: Duration) -> Option<f64> {
        let sorted = &self.kinds.get(kind)?.samples.sorted;
        let (before, by) = (share_under(sorted, since), share_under(sorted, age));
        Some(if before >= 1.0 {
            1.0
        } else {
            ((by - before) / (1.0 - before)).clamp(0.0, 1.0)
        })
    }

    /// The median duration of a kind, if any was seen.
    pub fn median(&self, kind: &str) -> Option<Duration> {
        self.kinds.get(kind).and_then(|k| k.samples.median())
    }
}

/// The share of durations `sorted` (equally likely, each at the middle of its share) under `x`,
/// drawn as a line between them so that it grows with `x` between two of them too.
fn share_under(sorted: &[Duration], x: Duration) -> f64 {
    let n = sorted.len();
    let i = sorted.partition_point(|d| *d < x);
    if n == 0 || i == 0 {
        return 0.0;
    }
    if i == n {
        return 1.0;
    }
    let (a, b) = (sorted[i - 1].as_secs_f64(), sorted[i].as_secs_f64());
    let along = if b > a { (x.as_secs_f64() - a) / (b - a) } else { 1.0 };
    (i as f64 - 0.5 + along) / n as f64
}

/// The poll ages (from the submit) that minimise, for a duration drawn from `sorted` (ascending,
/// each equally likely), the expected time from its finish to the poll that sees it plus `price`
/// for every poll made. A poll at a seen duration finds every generation at most that long, so
/// the optimal ages are among the seen durations; `best[j]` is the least cost of the generations
/// from the `j`-th on once all before it are found, and the plan follows the choices from 0.
pub fn plan(sorted: &[Duration], price: Duration) -> Vec<Duration> {
    let n = sorted.len();
    let s: Vec<f64> = sorted.iter().map(Duration::as_secs_f64).collect();
    let price = price.as_secs_f64();
    let mut prefix = vec![0.0; n + 1];
    for (i, x) in s.iter().enumerate() {
        prefix[i + 1] = prefix[i] + x;
    }
    let mut best = vec![0.0; n + 1];
    let mut choice = vec![n; n + 1];
    for j in (0..n).rev() {
        // The next poll at s[k]: every generation from j on pays for it, those from j to k are
        // found by it, each after s[k] − its own duration.
        let (mut least, mut at) = (f64::INFINITY, n - 1);
        for k in j..n {
            let cost = price * (n - j) as f64 + (k - j + 1) as f64 * s[k] - (prefix[k + 1] - prefix[j]) + best[k + 1];
            if cost < least {
                (least, at) = (cost, k);
            }
        }
        best[j] = least;
        choice[j] = at;
    }
    let mut ages = Vec::new();
    let mut j = 0;
    while j < n {
        ages.push(sorted[choice[j]]);
        j = choice[j] + 1;
    }
    ages
}

/// Expected polls per generation of `ages` over durations `sorted` (each equally likely): the
/// polls up to the first at or after its finish (one more past the last age, as a late one).
fn polls_per_generation(ages: &[Duration], sorted: &[Duration]) -> f64 {
    let total: usize = sorted.iter().map(|d| ages.partition_point(|at| at < d) + 1).sum();
    total as f64 / sorted.len().max(1) as f64
}

/// [`plan`] at `price`, or at the least higher price whose plan spends at most `budget` polls per
/// generation: a dearer poll makes a plan of fewer polls. The price is found by bisection (on a
/// log scale, 20 steps: a few milliseconds for 256 durations, made a handful of times a minute).
pub fn plan_within(sorted: &[Duration], price: Duration, budget: Option<f64>) -> Vec<Duration> {
    let cheap = plan(sorted, price);
    match budget {
        Some(budget) if polls_per_generation(&cheap, sorted) > budget => dearer_plan(sorted, price, budget),
        _ => cheap,
    }
}

/// The plan at the least price above `price` that keeps within `budget` polls per generation.
fn dearer_plan(sorted: &[Duration], price: Duration, budget: f64) -> Vec<Duration> {
    if sorted.is_empty() {
        return Vec::new();
    }
    // At a price beyond the longest duration, one poll at the end beats any second one.
    let (mut lo, mut hi) = (
        price.as_secs_f64().max(1e-9),
        sorted[sorted.len() - 1].as_secs_f64() * 2.0,
    );
    let mut best = plan(sorted, Duration::from_secs_f64(hi));
    for _ in 0..20 {
        let mid = (lo * hi).sqrt();
        let ages = plan(sorted, Duration::from_secs_f64(mid));
        if polls_per_generation(&ages, sorted) <= budget {
            (hi, best) = (mid, ages);
        } else {
            lo = mid;
        }
    }
    best
}

/// The share of generations that probe early while nothing is learned of their kind.
pub const SCOUTS: f64 = 1.0 / 8.0;

/// The knobs of adaptive polling.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    /// What a render is assumed to take before any was seen.
    pub prior: Duration,
    /// No two polls of one generation closer than this before anything is learned of its kind:
    /// a share of the prior. Once renders are known, a share of the typical one instead.
    pub min_interval: Duration,
    /// No two polls of one generation closer than this, whatever was learned or assumed.
    pub least_interval: Duration,
    /// Take a model's render time from the catalog (the vendor's pages: "5–6 minutes for a
    /// 5-second video") as its prior, where the docs give one. Off for a simulator, whose renders
    /// are compressed.
    pub documented_priors: bool,
}

impl PollPolicy {
    /// Fewer durations than this make a plan with gaps in it.
    const SKETCH: usize = 16;

    /// For the real service: renders take minutes; no generation is polled more than once a
    /// second.
    pub fn service() -> PollPolicy {
        PollPolicy {
            prior: Duration::from_secs(120),
            min_interval: Duration::from_secs(1),
            least_interval: Duration::from_secs(1),
            documented_priors: true,
        }
    }

    /// Scaled for renders that take about `prior` (a simulator's).
    pub fn scaled(prior: Duration) -> PollPolicy {
        PollPolicy {
            prior,
            min_interval: (prior / 100).max(Duration::from_millis(10)),
            least_interval: Duration::from_millis(10),
            documented_priors: false,
        }
    }

    /// What a render of `kind` is assumed to take before any was seen: the model's documented
    /// time (the middle of its range) when there is one, else what this run learned of other
    /// kinds, else [`PollPolicy::prior`].
    pub fn prior_for(&self, times: &RenderTimes, kind: &str) -> Duration {
        let model = kind.split('|').next().unwrap_or(kind);
        self.documented_priors
            .then(|| crate::catalog::model(model)?.render_seconds)
            .flatten()
            .and_then(|(lo, hi)| Duration::try_from_secs_f64((lo + hi) / 2.0).ok())
            .filter(|d| !d.is_zero())
            .or_else(|| times.learned_elsewhere(Some(kind)))
            .unwrap_or(self.prior)
    }

    /// How long after now to poll a generation of `kind` that has been running for `age` and was
    /// still running at its last poll. `phase` (in [0, 1), different from one generation to the
    /// next: see [`phase`]) staggers the probes made before anything is learned.
    pub fn next_poll(&self, times: &RenderTimes, kind: &str, age: Duration, phase: f64) -> Duration {
        let Some(known) = times.kinds.get(kind).filter(|k| !k.plan.is_empty()) else {
            let prior = self.prior_for(times, kind);
            // Nothing learned yet. Probe ages are fixed points (start × 2^k), not "twice the age
            // now", so a poll delayed behind the rate limiter keeps its place in the octave.
            let phase = phase.clamp(0.0, 1.0);
            let (start, phase) = if phase < SCOUTS {
                (prior / 64, phase / SCOUTS)
            } else {
                (prior, (phase - SCOUTS) / (1.0 - SCOUTS))
            };
            let start = start.mul_f64(2f64.powf(phase)).max(self.min_interval);
            let octaves = (age.as_secs_f64() / start.as_secs_f64()).log2().floor().max(-1.0) + 1.0;
            let next = start.mul_f64(2f64.powf(octaves.min(60.0)));
            // Doubling, however old: a render 30 times longer than the prior is seen within twice
            // its time, after five polls or so (a wait capped at the prior cost one per prior).
            return next.saturating_sub(age).max(self.min_interval);
        };
        let typical = known.samples.median().unwrap_or(self.prior);
        // The interval a prior 30 times too long set (a second for 3-second renders) would hold
        // every late generation a second apart, and each retiming as the first durations come
        // in would put their polls off by as much again: what is learned sets it now.
        let min_interval = self.min_interval.min(typical / 100).max(self.least_interval);
        let late = typical / 20;
        let first = known.plan[0];
        if phase < SCOUTS && age < first {
            // A scout keeps looking below the plan's first poll, at ages √2 apart from a quarter
            // of it: what finishes earlier is only ever seen by such polls (the others find it
            // at their first, too late to say when), so without them a first estimate too long
            // would stay for good. A few polls each, for at most `MOST_SCOUTS` of a kind.
            let start = (first / 4).mul_f64(2f64.powf(phase / SCOUTS / 2.0)).max(min_interval);
            // (A poll at a step, its age read back in nanoseconds, is at that step, not under it.)
            let steps = (2.0 * (age.as_secs_f64() / start.as_secs_f64()).log2() + 1e-6)
                .floor()
                .max(-1.0)
                + 1.0;
            let next = start.mul_f64(2f64.powf(steps.min(120.0) / 2.0));
            if next < first {
                return (next - age).max(min_interval);
            }
        }
        let wait = match known.plan.iter().find(|&&at| at > age) {
            // From a handful of durations the plan is a sketch, with gaps where nothing was seen
            // yet: past its first poll, no longer waits than for a late generation.
            Some(&at) if known.samples.len() < Self::SKETCH && at > known.plan[0] => (at - age).min(late),
            Some(&at) => at - age,
            // Older than anything seen: late, so looked at often, but not at every moment.
            None => late,
        };
        wait.max(min_interval)
    }
}

/// At most this many generations of a kind scout: they are there to see its first finishes, and
/// 64 probes staggered over the octave see them as well as 1,250 do. (At 10,000 in flight, an
/// eighth of them scouting cost 0.75 polls per job, mostly at ages no render ends.)
const MOST_SCOUTS: usize = 64;

/// The first generations of every kind scout: a kind of a handful of jobs (three PixVerse
/// variants) sees its first finish early even when one render is an outlier or fails slowly.
const FIRST_SCOUTS: usize = 4;

/// A generation's place in the octave of early probes, from its index among the generations of
/// its kind: the van der Corput sequence (0, ½, ¼, ¾, …), so any run of consecutive ones spreads
/// evenly over it. The first [`FIRST_SCOUTS`] scout, spread over the scouts' octave; of the
/// first [`MOST_SCOUTS`] × 8 an eighth fall among the scouts; the later ones spread over the
/// others' places only.
pub fn phase(index: usize) -> f64 {
    if index < FIRST_SCOUTS {
        return SCOUTS * van_der_corput(index);
    }
    let x = van_der_corput(index);
    if index < (MOST_SCOUTS as f64 / SCOUTS) as usize {
        x
    } else {
        SCOUTS + (1.0 - SCOUTS) * x
    }
}

fn van_der_corput(index: usize) -> f64 {
    let (mut x, mut i, mut unit) = (0.0, index, 0.5);
    while i > 0 {
        if i & 1 == 1 {
            x += unit;
        }
        i >>= 1;
        unit /= 2.0;
    }
    x
}

/// The kind a generation's duration is learned under. Templates of the magic models render
/// alike; what changes a pixverse render is its resolution and duration.
pub fn kind_of(model: &str, params: &serde_json::Map<String, serde_json::Value>) -> String {
    let param = |k: &str| match params.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    if model.starts_with("pixverse/") {
        format!("{model}|{}|{}", param("resolution"), param("duration"))
    } else {
        model.to_string()
    }
}

#[cfg(test)]
mod tests;
