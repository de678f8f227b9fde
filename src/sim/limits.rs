//! The account limits the simulator can enforce: API requests per second (a token bucket) and
//! generations running at once (a min-heap of their finish times, so a submit costs O(log n)
//! whatever the number running).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant, SystemTime};

/// Requests per second, with a burst of a couple of requests: a client that spaces its requests
/// at the rate is never refused for the jitter of its own scheduling.
pub(super) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub const BURST: f64 = 2.0;

    pub fn new(rate: f64) -> TokenBucket {
        let burst = if rate >= 1.0 { Self::BURST } else { 1.0 };
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).min(3600.0)))
        }
    }
}

/// Finish times of the generations still queued or generating, soonest first.
#[derive(Default)]
pub(super) struct Active {
    finishes: BinaryHeap<Reverse<SystemTime>>,
}

impl Active {
    /// Forgets those finished by `now`, then admits one finishing at `finish` if fewer than `max`
    /// remain. Says whether it was admitted.
    pub fn admit(&mut self, now: SystemTime, finish: SystemTime, max: usize) -> bool {
        while let Some(Reverse(first)) = self.finishes.peek()
            && *first <= now
        {
            self.finishes.pop();
        }
        if self.finishes.len() >= max {
            return false;
        }
        self.finishes.push(Reverse(finish));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10.0);
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        let wait = b.take(start).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(b.take(start + Duration::from_millis(100)).is_ok());
        assert!(b.take(start + Duration::from_millis(100)).is_err());
        // Idle time never banks more than the burst.
        let later = start + Duration::from_secs(60);
        assert!(b.take(later).is_ok() && b.take(later).is_ok() && b.take(later).is_err());
    }

    #[test]
    fn active_generations_are_counted_by_their_finish_times() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Duration::from_secs;
        let mut a = Active::default();
        assert!(a.admit(t0, t0 + s(10), 2));
        assert!(a.admit(t0, t0 + s(5), 2));
        assert!(!a.admit(t0 + s(4), t0 + s(20), 2), "both still running");
        assert!(a.admit(t0 + s(5), t0 + s(20), 2), "one finished at 5 s");
        assert!(!a.admit(t0 + s(9), t0 + s(30), 2));
        // Many at once: a submit only pops what has finished.
        let mut many = Active::default();
        for i in 0..10_000u64 {
            assert!(many.admit(t0, t0 + s(100) + Duration::from_millis(i), 10_000));
        }
        assert!(!many.admit(t0 + s(50), t0 + s(200), 10_000));
        assert!(many.admit(t0 + s(100), t0 + s(200), 10_000));
    }
}
