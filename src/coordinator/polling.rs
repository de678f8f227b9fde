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
//! time), whether the generation was submitted in this run or an earlier one. Before anything is
//! learned of a kind, its first four generations and an eighth of the others (64 at most)
//! scout: they probe at ages doubling from 1/64 of the prior (a render 30 times shorter is seen
//! within twice its time), staggered over the octave, so the first finishes
//! are seen early whether the prior was right or far off. The others probe at ages doubling from
//! the prior, and move to the plan as soon as the scouts learn something. A new kind's prior is
//! what the run has learned of the others, when it has.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

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

/// The most recent durations of one kind, sorted, at most [`Samples::KEEP`].
#[derive(Debug, Default, Clone)]
struct Samples {
    sorted: Vec<Duration>,
    /// In arrival order, to forget the oldest first.
    arrival: VecDeque<Duration>,
}

impl Samples {
    /// Enough to follow a drifting service, few enough that an insert and a plan stay cheap.
    const KEEP: usize = 256;

    fn add(&mut self, d: Duration) {
        if self.arrival.len() == Self::KEEP
            && let Some(old) = self.arrival.pop_front()
            && let Ok(i) = self.sorted.binary_search(&old)
        {
            self.sorted.remove(i);
        }
        self.arrival.push_back(d);
        let at = self.sorted.partition_point(|x| *x < d);
        self.sorted.insert(at, d);
    }

    fn median(&self) -> Option<Duration> {
        self.sorted.get(self.sorted.len() / 2).copied()
    }
}

impl Kind {
    /// Re-plans once a sixteenth of what it knows is new (at every sample while fewer than 32
    /// are known): a plan costs O(samples²), and with thousands of generations finishing a minute
    /// it must not be made per finish.
    fn add(&mut self, d: Duration, budget: Option<f64>) {
        self.samples.add(d);
        self.unplanned += 1;
        if self.unplanned >= (self.samples.sorted.len() / 16).max(1) {
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
    /// Learns one duration. Returns whether the polls already planned for this kind should be
    /// timed again: the first few durations change what is known the most (from nothing at all
    /// to a first estimate), so generations waiting on a guess move to the new plan.
    pub fn record(&mut self, kind: &str, render: Duration) -> bool {
        let k = self.kinds.entry(kind.to_string()).or_default();
        k.add(render, self.budget);
        let n = k.samples.sorted.len();
        n <= 64 && n.is_power_of_two()
    }

    /// Learns a duration known only to lie in `(lo, hi]`: between the last time the generation
    /// was known running and the poll that saw it finished. It is drawn (by `pick`, in [0, 1):
    /// random) from the part of that span no shorter than the shortest duration known, so that
    /// a generation found finished at its first poll does not count as half its age (polls would
    /// then be planned where nothing finishes), and so that the learned durations keep a spread
    /// (one value for every such span piles them up into a spike where the plan polls once, and
    /// nothing earlier is ever looked at again). A span shorter than anything known is new: it is
    /// learned when narrow enough to mean something (at most half its end, as a scout's doubling
    /// probes are); a wide span with nothing known teaches nothing. Returns the duration learned,
    /// and whether the polls planned should be timed again ([`RenderTimes::record`]).
    pub fn record_between(&mut self, kind: &str, lo: Duration, hi: Duration, pick: f64) -> Option<(Duration, bool)> {
        let shortest = self.kinds.get(kind).and_then(|k| k.samples.sorted.first().copied());
        let from = match shortest {
            Some(shortest) if shortest.max(lo) < hi => shortest.max(lo),
            _ if hi.saturating_sub(lo) <= hi / 2 => lo,
            _ => return None,
        };
        let render = from + (hi - from).mul_f64(pick.clamp(0.0, 1.0));
        Some((render, self.record(kind, render)))
    }

    /// Learns the durations earlier runs recorded, planning each kind once at the end (not at
    /// every sixteenth of thousands of them, at start-up).
    pub fn load(&mut self, durations: impl IntoIterator<Item = (String, Duration)>) {
        for (kind, d) in durations {
            self.kinds.entry(kind).or_default().samples.add(d);
        }
        let budget = self.budget;
        self.kinds.values_mut().for_each(|k| k.replan(budget));
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
        self.kinds.get(kind).map_or(0, |k| k.samples.sorted.len())
    }

    /// The median duration of a kind, if any was seen.
    pub fn median(&self, kind: &str) -> Option<Duration> {
        self.kinds.get(kind).and_then(|k| k.samples.median())
    }
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
    /// No two polls of one generation closer than this, whatever was learned.
    pub min_interval: Duration,
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
            documented_priors: true,
        }
    }

    /// Scaled for renders that take about `prior` (a simulator's).
    pub fn scaled(prior: Duration) -> PollPolicy {
        PollPolicy {
            prior,
            min_interval: (prior / 100).max(Duration::from_millis(10)),
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
        let late = typical / 20;
        let first = known.plan[0];
        if phase < SCOUTS && age < first {
            // A scout keeps looking below the plan's first poll, at ages √2 apart from a quarter
            // of it: what finishes earlier is only ever seen by such polls (the others find it
            // at their first, too late to say when), so without them a first estimate too long
            // would stay for good. A few polls each, for at most `MOST_SCOUTS` of a kind.
            let start = (first / 4)
                .mul_f64(2f64.powf(phase / SCOUTS / 2.0))
                .max(self.min_interval);
            // (A poll at a step, its age read back in nanoseconds, is at that step, not under it.)
            let steps = (2.0 * (age.as_secs_f64() / start.as_secs_f64()).log2() + 1e-6)
                .floor()
                .max(-1.0)
                + 1.0;
            let next = start.mul_f64(2f64.powf(steps.min(120.0) / 2.0));
            if next < first {
                return (next - age).max(self.min_interval);
            }
        }
        let wait = match known.plan.iter().find(|&&at| at > age) {
            // From a handful of durations the plan is a sketch, with gaps where nothing was seen
            // yet: past its first poll, no longer waits than for a late generation.
            Some(&at) if known.samples.sorted.len() < Self::SKETCH && at > known.plan[0] => (at - age).min(late),
            Some(&at) => at - age,
            // Older than anything seen: late, so looked at often, but not at every moment.
            None => late,
        };
        wait.max(self.min_interval)
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
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Durations learned in a scrambled order, as finishes come in.
    fn learned(durations: &[f64]) -> RenderTimes {
        let mut t = RenderTimes::default();
        let n = durations.len();
        for k in 0..n {
            t.record("m", secs(durations[k * 17 % n]));
        }
        t
    }

    /// Walks one generation of each duration through the policy: (polls per generation, mean
    /// detection latency in seconds).
    fn walk(p: &PollPolicy, t: &RenderTimes, durations: &[f64]) -> (f64, f64) {
        let (mut polls, mut latency) = (0usize, 0f64);
        for &d in durations {
            let mut age = Duration::ZERO;
            loop {
                age += p.next_poll(t, "m", age, 0.5);
                polls += 1;
                if age >= secs(d) {
                    latency += (age - secs(d)).as_secs_f64();
                    break;
                }
            }
        }
        let n = durations.len() as f64;
        (polls as f64 / n, latency / n)
    }

    /// Expected latency plus `price` per poll of a schedule, over durations `s`.
    fn cost(schedule: &[f64], s: &[f64], price: f64) -> f64 {
        s.iter()
            .map(|&d| match schedule.iter().position(|&at| at >= d) {
                Some(k) => schedule[k] - d + price * (k + 1) as f64,
                None => f64::INFINITY,
            })
            .sum::<f64>()
            / s.len() as f64
    }

    #[test]
    fn before_anything_is_learned_scouts_probe_at_doubling_ages() {
        let p = PollPolicy::service();
        let t = RenderTimes::default();
        // A scout (phase 0): 120 s / 64 = 1.875 s, then the age doubles: 3.75, 7.5, 15, 30, 60,
        // 120, 240.
        let mut age = Duration::ZERO;
        let mut ages = Vec::new();
        for _ in 0..8 {
            age += p.next_poll(&t, "m", age, 0.0);
            ages.push(age.as_secs_f64());
        }
        assert_eq!(ages, [1.875, 3.75, 7.5, 15.0, 30.0, 60.0, 120.0, 240.0]);
        // However old, the next probe is at twice the last: a render 30 times the prior (an hour)
        // is seen within twice its time, after a dozen polls in all.
        assert_eq!(p.next_poll(&t, "m", secs(500.0), 0.0), secs(460.0));
        let hour = 3600.0;
        let mut age = Duration::ZERO;
        let mut polls = 0;
        while age < secs(hour) {
            age += p.next_poll(&t, "m", age, 0.0);
            polls += 1;
        }
        assert!(
            age <= secs(2.0 * hour) && polls <= 12,
            "seen at {age:?} after {polls} polls"
        );
        // Renders 50 times shorter than the prior are still seen within a factor of two.
        let p = PollPolicy::scaled(secs(120.0));
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.0), secs(1.875));
        assert_eq!(p.next_poll(&t, "m", secs(3.75), 0.0), secs(3.75));
        // Another scout probes half an octave later: between them, the first finishes are seen
        // within a factor of √2.
        let half = p.next_poll(&t, "m", Duration::ZERO, SCOUTS / 2.0).as_secs_f64();
        assert!((half - 1.875 * 2f64.sqrt()).abs() < 1e-6, "{half}");
        assert_eq!(p.next_poll(&t, "m", secs(half), SCOUTS / 2.0), secs(half));
        // A poll that went out late (behind the rate limiter) keeps its probe ages: this scout's
        // are 0.0375 × 2^¼ × 2^k s, so from 1.0 s the next is at 1.43 s, not at twice the age.
        let p = PollPolicy::scaled(secs(2.4));
        let start = 0.0375 * 2f64.powf(0.25);
        let next = secs(1.0) + p.next_poll(&t, "m", secs(1.0), SCOUTS / 4.0);
        assert!((next.as_secs_f64() - start * 32.0).abs() < 1e-6, "{next:?}");
        let after = next + p.next_poll(&t, "m", next, SCOUTS / 4.0);
        assert!((after.as_secs_f64() - start * 64.0).abs() < 1e-6, "{after:?}");
    }

    #[test]
    fn a_model_whose_docs_give_its_render_time_is_first_polled_from_it() {
        let service = PollPolicy::service();
        // Documented at 5-6 minutes: not polled every few seconds in its first wave.
        assert_eq!(
            service.prior_for(&RenderTimes::default(), "klingai/v2.1-master-image-to-video"),
            Duration::from_secs(330)
        );
        let first = service.next_poll(
            &RenderTimes::default(),
            "klingai/v2.1-master-image-to-video",
            Duration::ZERO,
            0.5,
        );
        assert!(first >= Duration::from_secs(300), "{first:?}");
        // No documented time, or a simulator: the policy's own prior.
        assert_eq!(
            service.prior_for(&RenderTimes::default(), "acme/video-9000"),
            Duration::from_secs(120)
        );
        let sim = PollPolicy::scaled(Duration::from_millis(1200));
        assert_eq!(
            sim.prior_for(&RenderTimes::default(), "klingai/v2.1-master-image-to-video"),
            Duration::from_millis(1200)
        );
    }

    #[test]
    fn the_others_wait_for_the_scouts_and_then_probe_from_the_prior() {
        let p = PollPolicy::scaled(secs(2.4));
        let t = RenderTimes::default();
        // Phases past the scouts' eighth spread over the octave from the prior.
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO, SCOUTS), secs(2.4));
        let mid = p.next_poll(&t, "m", Duration::ZERO, SCOUTS + (1.0 - SCOUTS) / 2.0);
        assert!((mid.as_secs_f64() - 2.4 * 2f64.sqrt()).abs() < 1e-6, "{mid:?}");
        // Jobs in a row: one in eight scouts, 64 at most per kind.
        // The first four of every kind scout, spread over the scouts' octave.
        let first: Vec<f64> = (0..4).map(phase).collect();
        assert_eq!(first, [0.0, SCOUTS / 2.0, SCOUTS / 4.0, SCOUTS * 3.0 / 4.0]);
        let scouts = (0..400).filter(|&i| phase(i) < SCOUTS).count();
        assert_eq!(scouts, 50 + 3);
        let scouts = (0..10_000).filter(|&i| phase(i) < SCOUTS).count();
        assert_eq!(scouts, MOST_SCOUTS + 3);
        // The later ones still spread over the others' octave.
        let later: Vec<f64> = (512..576).map(phase).collect();
        assert!(later.iter().all(|x| (SCOUTS..1.0).contains(x)), "{later:?}");
        let mean = later.iter().sum::<f64>() / later.len() as f64;
        assert!((mean - (SCOUTS + 1.0) / 2.0).abs() < 0.02, "{mean}");
        // Once a duration is known, everyone follows the plan.
        let t = learned(&[3.0]);
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.9), secs(3.0));
    }

    #[test]
    fn phases_spread_consecutive_jobs_over_the_octave() {
        let phases: Vec<f64> = (4..8).map(phase).collect();
        assert_eq!(phases, [0.125, 0.625, 0.375, 0.875]);
        assert!((0..10_000).map(phase).all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn the_plan_beats_every_evenly_spaced_schedule() {
        // Durations bunched at both ends, where even spacing is a poor fit.
        let s: Vec<f64> = (0..60)
            .map(|i| {
                if i % 3 == 0 {
                    2.0 + i as f64 / 100.0
                } else {
                    5.0 + i as f64 / 50.0
                }
            })
            .collect();
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        let price = 0.1;
        let planned: Vec<f64> = plan(&sorted.iter().map(|&x| secs(x)).collect::<Vec<_>>(), secs(price))
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        let ours = cost(&planned, &s, price);
        let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
        for k in 1..=40 {
            for start in [0.0, lo, lo / 2.0] {
                let even: Vec<f64> = (1..=k).map(|i| start + (hi - start) * i as f64 / k as f64).collect();
                assert!(ours <= cost(&even, &s, price) + 1e-9, "{k} polls from {start}");
            }
        }
        // It never polls before the earliest finish, and its last poll sees the latest one.
        assert!(planned[0] >= lo, "{planned:?}");
        assert_eq!(planned.last(), Some(&hi));
    }

    #[test]
    fn spread_out_renders_are_seen_within_a_few_percent_for_a_few_polls() {
        let p = PollPolicy::scaled(secs(3.0));
        // Renders of 2.0 to 4.0 s, ±33 % around their mean: nothing before 2 s.
        let durations: Vec<f64> = (0..=40).map(|i| 2.0 + i as f64 * 0.05).collect();
        let t = learned(&durations);
        // New renders fall between the ones learned from.
        let fresh: Vec<f64> = (0..40).map(|i| 2.025 + i as f64 * 0.05).collect();
        let first = p.next_poll(&t, "m", Duration::ZERO, 0.5);
        assert!(first >= secs(2.0) && first <= secs(2.5), "{first:?}");
        let (polls, latency) = walk(&p, &t, &fresh);
        eprintln!("{polls:.2} polls per generation, mean detection latency {latency:.3} s");
        assert!(polls < 5.0, "{polls} polls per generation");
        assert!(latency < 0.04 * 3.0, "mean detection latency {latency} s");
        // Past everything seen, it is late: a twentieth of the typical render.
        assert_eq!(p.next_poll(&t, "m", secs(9.0), 0.5), secs(0.15));
    }

    #[test]
    fn tightly_spread_renders_take_about_two_polls() {
        let p = PollPolicy::scaled(secs(40.0));
        // 38 to 42 s: ±5 %.
        let durations: Vec<f64> = (0..=40).map(|i| 38.0 + i as f64 * 0.1).collect();
        let t = learned(&durations);
        let fresh: Vec<f64> = (0..40).map(|i| 38.05 + i as f64 * 0.1).collect();
        let (polls, latency) = walk(&p, &t, &fresh);
        eprintln!("{polls:.2} polls per generation, mean detection latency {latency:.3} s");
        assert!(polls < 2.5, "{polls} polls per generation");
        assert!(latency < 0.02 * 40.0, "mean detection latency {latency} s");
    }

    #[test]
    fn a_plan_from_a_few_durations_leaves_no_long_gap() {
        let p = PollPolicy::scaled(secs(3.0));
        let t = learned(&[2.0, 4.0]);
        // Nothing before the earliest finish seen; after it, no wait past a twentieth of the
        // median.
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.5), secs(2.0));
        assert_eq!(p.next_poll(&t, "m", secs(2.0), 0.5), secs(0.2));
        assert_eq!(p.next_poll(&t, "m", secs(3.9), 0.5), secs(0.1));
    }

    #[test]
    fn the_first_durations_ask_for_pending_polls_to_be_timed_again() {
        let mut t = RenderTimes::default();
        let asks: Vec<usize> = (1..=200).filter(|_| t.record("m", secs(3.0))).collect();
        assert_eq!(asks, [1, 2, 4, 8, 16, 32, 64]);
    }

    #[test]
    fn durations_loaded_from_earlier_runs_are_planned_once_from_all_of_them() {
        let durations: Vec<f64> = (0..=40).map(|i| 2.0 + i as f64 * 0.05).collect();
        let mut loaded = RenderTimes::default();
        loaded.load(durations.iter().map(|&d| ("m".to_string(), secs(d))));
        assert_eq!(loaded.count("m"), durations.len());
        // Planned at once from every duration: the same plan as the last sample would make.
        let all: Vec<Duration> = durations.iter().map(|&d| secs(d)).collect();
        assert_eq!(loaded.kinds["m"].plan, plan(&all, secs(3.0).mul_f64(POLL_PRICE)));
    }

    #[test]
    fn old_durations_are_forgotten_first() {
        let mut t = RenderTimes::default();
        for _ in 0..Samples::KEEP {
            t.record("m", secs(100.0));
        }
        for _ in 0..Samples::KEEP {
            t.record("m", secs(10.0));
        }
        assert_eq!(t.count("m"), Samples::KEEP);
        assert_eq!(t.median("m"), Some(secs(10.0)));
        // The plan follows (it is remade every sixteenth sample).
        let p = PollPolicy::scaled(secs(10.0));
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO, 0.5), secs(10.0));
    }

    #[test]
    fn a_finish_seen_between_two_polls_is_learned_within_its_span_past_the_shortest_known() {
        let mut t = RenderTimes::default();
        // Nothing known yet: within a narrow span; a wide one (found finished at its first poll,
        // 1 s after its submit) teaches nothing.
        assert_eq!(
            t.record_between("m", secs(2.0), secs(4.0), 0.5),
            Some((secs(3.0), true))
        );
        assert_eq!(t.clone().record_between("m", Duration::ZERO, secs(1.0), 0.3), None);
        // Found finished at its first poll, at 5 s: not 2.5 s (the middle from its submit), but
        // between the shortest known (3 s) and 5 s, spread by the pick.
        let picks: Vec<Duration> = [0.0, 0.5, 0.99]
            .iter()
            .map(|&p| t.clone().record_between("m", Duration::ZERO, secs(5.0), p).unwrap().0)
            .collect();
        assert_eq!(picks, [secs(3.0), secs(4.0), secs(4.98)]);
        // Seen running past the shortest: from there.
        assert_eq!(
            t.clone().record_between("m", secs(4.0), secs(5.0), 0.5).unwrap().0,
            secs(4.5)
        );
        // Shorter than anything known, and narrow: new, learned.
        assert_eq!(
            t.clone().record_between("m", secs(1.0), secs(1.5), 0.5).unwrap().0,
            secs(1.25)
        );
        // Shorter than anything known and wide: nothing.
        assert_eq!(t.record_between("m", Duration::ZERO, secs(2.0), 0.5), None);
    }

    #[test]
    fn scouts_keep_looking_below_the_plans_first_poll() {
        let p = PollPolicy::scaled(secs(3.0));
        // Learned from coarse probes: nothing under 4 s is known, though renders may be shorter.
        let t = learned(&[4.0, 4.5, 5.0]);
        assert_eq!(
            p.next_poll(&t, "m", Duration::ZERO, 0.5),
            secs(4.0),
            "the others follow the plan"
        );
        let mut age = Duration::ZERO;
        let mut ages = Vec::new();
        while age < secs(4.0) {
            age += p.next_poll(&t, "m", age, 0.0);
            ages.push(age.as_secs_f64());
        }
        // From a quarter of the first poll, √2 apart, then the plan.
        let expected = [1.0, 2f64.sqrt(), 2.0, 2.0 * 2f64.sqrt(), 4.0];
        assert_eq!(ages.len(), expected.len(), "{ages:?}");
        for (a, e) in ages.iter().zip(expected) {
            assert!((a - e).abs() < 1e-6, "{ages:?}");
        }
    }

    #[test]
    fn a_kind_not_seen_yet_takes_its_prior_from_what_the_others_took() {
        let p = PollPolicy::scaled(secs(120.0));
        let mut t = RenderTimes::default();
        assert_eq!(p.prior_for(&t, "new"), secs(120.0));
        for d in [2.0, 3.0, 4.0] {
            t.record("magic", secs(d));
        }
        t.record("other", secs(10.0));
        t.record("third", secs(1.0));
        // The median of the medians of 3, 10 and 1 s.
        assert_eq!(p.prior_for(&t, "new"), secs(3.0));
        // A PixVerse kind with three jobs and renders of 1-3 s: its scout probes from 3 s / 64,
        // the others from 3 s, not from two minutes.
        let first = p.next_poll(&t, "pixverse/v5/image-to-video|540p|5", Duration::ZERO, 0.9);
        assert!(first <= secs(6.0), "{first:?}");
    }

    #[test]
    fn a_request_budget_makes_fewer_polls_placed_where_they_find_most() {
        // Renders of 2.5 to 4.5 s (a queue, then 2-4 s), as in the mixed regime of issue 18.
        let durations: Vec<f64> = (0..=80).map(|i| 2.5 + i as f64 * 0.025).collect();
        let sorted: Vec<Duration> = durations.iter().map(|&d| secs(d)).collect();
        let price = secs(3.5).mul_f64(POLL_PRICE);
        let free = plan_within(&sorted, price, None);
        let free_polls = polls_per_generation(&free, &sorted);
        assert!(free_polls > 3.0, "{free_polls}");
        for budget in [1.0, 1.5, 1.8, 2.5] {
            let held = plan_within(&sorted, price, Some(budget));
            let polls = polls_per_generation(&held, &sorted);
            assert!(polls <= budget + 1e-9, "{polls} polls for a budget of {budget}");
            // The plan made for the budget is the best of all plans within it: no evenly spaced
            // schedule of the same polls finds the renders sooner.
            let late = |ages: &[Duration]| -> f64 {
                sorted
                    .iter()
                    .map(|d| (ages[ages.partition_point(|a| a < d).min(ages.len() - 1)] - *d).as_secs_f64())
                    .sum::<f64>()
            };
            for k in 1..=8 {
                let even: Vec<Duration> = (1..=k).map(|i| secs(2.5 + 2.0 * i as f64 / k as f64)).collect();
                if polls_per_generation(&even, &sorted) <= budget {
                    assert!(
                        late(&held) <= late(&even) + 1e-9,
                        "{k} even polls beat the plan at {budget}"
                    );
                }
            }
        }
        // The run sets the budget; a plan that changes asks for the polls to be timed again.
        let mut t = RenderTimes::default();
        t.load(sorted.iter().map(|&d| ("m".to_string(), d)));
        assert!(t.set_budget(Some(1.8)));
        assert!(!t.set_budget(Some(1.9)), "a small move keeps the plans");
        let p = PollPolicy::scaled(secs(3.5));
        let (polls, _) = walk(&p, &t, &durations);
        assert!(polls <= 1.8 + 0.05, "{polls}");
        assert!(t.set_budget(None));
        let (polls, _) = walk(&p, &t, &durations);
        assert!(polls > 3.0, "{polls}");
    }

    #[test]
    fn pixverse_kinds_split_by_resolution_and_duration() {
        let params = |v: serde_json::Value| v.as_object().unwrap().clone();
        let pixverse = "pixverse/v5/image-to-video";
        let a = kind_of(
            pixverse,
            &params(serde_json::json!({"resolution": "1080p", "duration": 5})),
        );
        let b = kind_of(
            pixverse,
            &params(serde_json::json!({"resolution": "540p", "duration": 5})),
        );
        assert_ne!(a, b);
        assert_eq!(a, "pixverse/v5/image-to-video|1080p|5");
        let m = kind_of("magic/image-to-video", &params(serde_json::json!({"template": "X"})));
        assert_eq!(m, "magic/image-to-video");
    }
}
