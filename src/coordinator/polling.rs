//! When to poll a generation: learned from how long renders of its kind have taken, in this run
//! and in earlier runs into the same `--out`. Pure functions of (age, what is known), so the
//! policy is tested without a clock or a server.
//!
//! A poll that finds the generation still running is a request wasted; a poll long after it
//! finished wastes its concurrency slot. So the first poll goes near the early end of the learned
//! durations, and later ones follow the distribution of what is left: each next poll is placed
//! where a fixed share of the generations still running at this age would have finished. Near
//! and past the expected end that gives short intervals; far from it, long ones. Within a floor
//! (a few percent of the typical render) and a ceiling.

use std::collections::HashMap;
use std::time::Duration;

/// Durations seen per kind of generation (a model, or a model and template when they differ).
#[derive(Debug, Default, Clone)]
pub struct RenderTimes {
    kinds: HashMap<String, Samples>,
}

/// The most recent durations of one kind, sorted, at most [`Samples::KEEP`].
#[derive(Debug, Default, Clone)]
struct Samples {
    sorted: Vec<Duration>,
    /// In arrival order, to forget the oldest first.
    arrival: std::collections::VecDeque<Duration>,
}

impl Samples {
    /// Enough to follow a drifting service, few enough that an insert stays cheap.
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

    /// The `q` quantile of the durations longer than `age` (`None` when there are none).
    fn quantile_beyond(&self, age: Duration, q: f64) -> Option<Duration> {
        let from = self.sorted.partition_point(|x| *x <= age);
        let rest = &self.sorted[from..];
        if rest.is_empty() {
            return None;
        }
        let i = ((rest.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(rest[i])
    }

    fn median(&self) -> Option<Duration> {
        self.quantile_beyond(Duration::ZERO, 0.5)
    }
}

impl RenderTimes {
    pub fn record(&mut self, kind: &str, render: Duration) {
        self.kinds.entry(kind.to_string()).or_default().add(render);
    }

    pub fn count(&self, kind: &str) -> usize {
        self.kinds.get(kind).map_or(0, |s| s.sorted.len())
    }

    /// The median duration of a kind, if any was seen.
    pub fn median(&self, kind: &str) -> Option<Duration> {
        self.kinds.get(kind).and_then(Samples::median)
    }
}

/// The knobs of adaptive polling.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    /// What a render is assumed to take before any was seen.
    pub prior: Duration,
    /// No two polls of one generation closer than this, whatever was learned.
    pub min_interval: Duration,
    /// Intervals never shorter than this share of the typical render: a few percent of it is
    /// the detection latency aimed at.
    pub floor_share: f64,
    /// Nor longer than this share of it.
    pub ceiling_share: f64,
    /// The first poll is placed where this share of the generations would be done.
    pub first: f64,
    /// Each later poll is placed where this share of the generations still running would be done.
    pub step: f64,
}

impl PollPolicy {
    /// For the real service: renders take minutes; no generation is polled more than once a
    /// second.
    pub fn service() -> PollPolicy {
        PollPolicy {
            prior: Duration::from_secs(120),
            min_interval: Duration::from_secs(1),
            floor_share: 0.02,
            ceiling_share: 0.5,
            first: 0.1,
            step: 0.35,
        }
    }

    /// Scaled for renders that take about `prior` (a simulator's).
    pub fn scaled(prior: Duration) -> PollPolicy {
        PollPolicy {
            prior,
            min_interval: (prior / 100).max(Duration::from_millis(10)),
            ..PollPolicy::service()
        }
    }

    /// How long after now to poll a generation of `kind` that has been running for `age` and was
    /// still running at its last poll.
    pub fn next_poll(&self, times: &RenderTimes, kind: &str, age: Duration) -> Duration {
        let Some(samples) = times.kinds.get(kind).filter(|s| !s.sorted.is_empty()) else {
            // Nothing learned yet: probe at ages that double from a small share of the prior, so
            // that the first completions are seen within a factor of two of their time whether
            // the prior was right or far off, for a handful of polls.
            let start = (self.prior / 32).max(self.min_interval);
            let wait = if age < start { start - age } else { age };
            return wait.clamp(self.min_interval, self.prior.max(self.min_interval));
        };
        let typical = samples.median().unwrap_or(self.prior);
        let floor = self.min_interval.max(typical.mul_f64(self.floor_share));
        let ceiling = typical.mul_f64(self.ceiling_share).max(floor);
        let share = if age.is_zero() { self.first } else { self.step };
        let wait = match samples.quantile_beyond(age, share) {
            Some(at) => at.saturating_sub(age),
            // Older than anything seen: late, so looked at often, but not at every moment.
            None => typical / 10,
        };
        wait.clamp(floor, ceiling)
    }
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

    fn learned(durations: &[f64]) -> RenderTimes {
        let mut t = RenderTimes::default();
        for &d in durations {
            t.record("m", secs(d));
        }
        t
    }

    #[test]
    fn before_anything_is_learned_polls_probe_at_doubling_ages() {
        let p = PollPolicy::service();
        let t = RenderTimes::default();
        // 120 s / 32 = 3.75 s, then the age doubles: 7.5, 15, 30, 60, 120, then every 120 s.
        let mut age = Duration::ZERO;
        let mut ages = Vec::new();
        for _ in 0..7 {
            age += p.next_poll(&t, "m", age);
            ages.push(age.as_secs_f64());
        }
        assert_eq!(ages, [3.75, 7.5, 15.0, 30.0, 60.0, 120.0, 240.0]);
        // Renders 50 times shorter than the prior are still seen within a factor of two.
        let p = PollPolicy::scaled(secs(120.0));
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO), secs(3.75));
        assert_eq!(p.next_poll(&t, "m", secs(3.75)), secs(3.75));
    }

    #[test]
    fn polls_follow_the_learned_durations_and_tighten_near_the_end() {
        let p = PollPolicy::scaled(secs(3.0));
        // Renders of 2.0 to 4.0 s.
        let durations: Vec<f64> = (0..=20).map(|i| 2.0 + i as f64 * 0.1).collect();
        let t = learned(&durations);
        // The first poll near the early end, at most half the typical render away.
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO), secs(1.5));
        // At 2.0 s, the next poll is where 35 % of those still running would be done.
        let at2 = p.next_poll(&t, "m", secs(2.0));
        assert!(at2 >= secs(0.6) && at2 <= secs(0.8), "{at2:?}");
        // Close to the end, intervals shrink to the floor: 2 % of the 3 s median.
        assert_eq!(p.next_poll(&t, "m", secs(3.95)), secs(0.06));
        // Past everything seen, it is late: a tenth of the typical render.
        assert_eq!(p.next_poll(&t, "m", secs(9.0)), secs(0.3));
    }

    #[test]
    fn the_number_of_polls_stays_small() {
        // Walk one generation of each duration through the policy and count polls.
        let p = PollPolicy::scaled(secs(3.0));
        let durations: Vec<f64> = (0..=40).map(|i| 2.0 + i as f64 * 0.05).collect();
        let t = learned(&durations);
        let (mut polls, mut latency) = (0usize, 0f64);
        for &d in &durations {
            let mut age = Duration::ZERO;
            loop {
                age += p.next_poll(&t, "m", age);
                polls += 1;
                if age >= secs(d) {
                    latency += (age - secs(d)).as_secs_f64();
                    break;
                }
            }
        }
        let n = durations.len() as f64;
        let (per_job, mean_latency) = (polls as f64 / n, latency / n);
        eprintln!("{per_job:.2} polls per generation, mean detection latency {mean_latency:.3} s");
        assert!(per_job < 4.5, "{per_job} polls per generation");
        assert!(mean_latency < 0.1 * 3.0, "mean detection latency {mean_latency} s");
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
