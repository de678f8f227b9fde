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
    /// No two polls of one generation closer than this.
    pub floor: Duration,
    /// No generation left unpolled longer than this, or half the typical render if that is
    /// longer (the first poll of a learned kind may need to wait that long).
    pub ceiling: Duration,
    /// Intervals never shorter than this share of the typical render: a few percent of it is
    /// the detection latency aimed at.
    pub floor_share: f64,
    /// The first poll is placed where this share of the generations would be done.
    pub first: f64,
    /// Each later poll is placed where this share of the generations still running would be done.
    pub step: f64,
}

impl PollPolicy {
    /// For the real service: renders take minutes.
    pub fn service() -> PollPolicy {
        PollPolicy {
            prior: Duration::from_secs(120),
            floor: Duration::from_secs(2),
            ceiling: Duration::from_secs(30),
            floor_share: 0.02,
            first: 0.1,
            step: 0.35,
        }
    }

    /// Scaled for a simulator whose renders take about `prior`.
    pub fn scaled(prior: Duration) -> PollPolicy {
        PollPolicy {
            prior,
            floor: (prior / 100).max(Duration::from_millis(20)),
            ceiling: (prior / 10).max(Duration::from_millis(100)),
            ..PollPolicy::service()
        }
    }

    /// How long after now to poll a generation of `kind` that has been running for `age` and was
    /// still running at its last poll.
    pub fn next_poll(&self, times: &RenderTimes, kind: &str, age: Duration) -> Duration {
        let samples = times.kinds.get(kind).filter(|s| !s.sorted.is_empty());
        let typical = samples.and_then(Samples::median).unwrap_or(self.prior);
        let floor = self.floor.max(typical.mul_f64(self.floor_share));
        let wait = match samples {
            // Nothing learned yet: the first poll at half the prior, then often enough to learn
            // fast from the first completions.
            None if age < self.prior / 2 => self.prior / 2 - age,
            None => self.prior / 10,
            Some(s) => match s.quantile_beyond(age, if age.is_zero() { self.first } else { self.step }) {
                Some(at) => at.saturating_sub(age),
                // Older than anything seen: it is late, so look often.
                None => floor,
            },
        };
        wait.clamp(floor, self.ceiling.max(typical / 2).max(floor))
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
    fn before_anything_is_learned_the_prior_decides() {
        let p = PollPolicy::service();
        let t = RenderTimes::default();
        assert_eq!(p.next_poll(&t, "m", Duration::ZERO), secs(60.0), "half the prior");
        assert_eq!(p.next_poll(&t, "m", secs(60.0)), secs(12.0));
        assert_eq!(p.next_poll(&t, "m", secs(500.0)), secs(12.0));
    }

    #[test]
    fn polls_follow_the_learned_durations_and_tighten_near_the_end() {
        let p = PollPolicy::scaled(secs(3.0));
        // Renders of 2.0 to 4.0 s.
        let durations: Vec<f64> = (0..=20).map(|i| 2.0 + i as f64 * 0.1).collect();
        let t = learned(&durations);
        // The first poll near the early end: at most half the typical render.
        let first = p.next_poll(&t, "m", Duration::ZERO);
        assert_eq!(first, secs(1.5), "{first:?}");
        // At 2.0 s, the next poll is where 35 % of those still running would be done.
        let at2 = p.next_poll(&t, "m", secs(2.0));
        assert!(at2 >= secs(0.6) && at2 <= secs(0.8), "{at2:?}");
        // Close to the end, intervals shrink to the floor.
        let at39 = p.next_poll(&t, "m", secs(3.95));
        assert_eq!(at39, secs(0.06), "floor: 2 % of the 3 s median");
        // Past everything seen, it is late: poll at the floor.
        assert_eq!(p.next_poll(&t, "m", secs(9.0)), secs(0.06));
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
