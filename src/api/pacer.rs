//! When the next API request may leave: the run's one rate limit, `--rate`, submits and polls
//! together.
//!
//! A request takes its place on a grid `1/--rate` apart when its turn is granted, not when it is
//! sent, and a turn is granted only when its place has come. So the coordinator chooses what a
//! turn is spent on at the moment it can go out, and no request stands in line behind the limit
//! while a poll that would free a slot comes due. (A token bucket with a burst in front of a
//! send pacer let granted turns queue at the pacer: measured in the slot-bound benchmark, a poll
//! left 44 ms after it was due on average, 1.5 % of a render; about 30 ms with this.) A place that goes by unused, because nothing
//! wanted it or the loop was busy, is not made up later: `--rate` is a ceiling, and the service
//! counts what it receives.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct Pacer {
    period: Duration,
    /// How early a place may be taken: a quarter period, or the timer's millisecond grain, so
    /// that a timer firing a little late does not cost the place (well under the service's own
    /// tolerance: two requests a quarter period apart do not look like three).
    slack: Duration,
    places: Mutex<Places>,
}

struct Places {
    /// The next place free on the grid.
    next: Instant,
    /// When the next request may really leave, by the ones already sent: a POST that waited for
    /// its commit may leave late, next to the request after it, and the service sees them a
    /// period apart all the same.
    due: Instant,
}

/// Proof that the rate limit let one request through, with its place on the grid: every request
/// needs one.
pub struct Turn {
    at: Instant,
}

impl Pacer {
    /// `rate`: the most requests per second.
    pub fn new(rate: f64) -> Result<Pacer, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "`--rate` must be a positive number of requests per second, not `{rate}`"
            ));
        }
        let period = Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|p| !p.is_zero())
            .ok_or_else(|| format!("`--rate` {rate} is out of range"))?;
        let now = Instant::now();
        Ok(Pacer {
            period,
            slack: (period / 4).max(Duration::from_millis(1)),
            places: Mutex::new(Places { next: now, due: now }),
        })
    }

    fn places(&self) -> std::sync::MutexGuard<'_, Places> {
        self.places.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A turn if a place is free now, without waiting.
    pub fn try_turn(&self) -> Option<Turn> {
        let now = Instant::now();
        let mut p = self.places();
        if p.next > now + self.slack {
            return None;
        }
        let at = p.next.max(now);
        p.next = at + self.period;
        Some(Turn { at })
    }

    /// Waits for a free place. Cancel-safe: a waiter dropped before it returns took no place.
    pub async fn turn(&self) -> Turn {
        loop {
            if let Some(turn) = self.try_turn() {
                return turn;
            }
            let free = self.places().next;
            tokio::time::sleep_until(free.checked_sub(self.slack).unwrap_or(free)).await;
        }
    }

    /// Waits until `turn`'s place has come and the request sent before it is a period behind.
    pub async fn wait_to_send(&self, turn: Turn) {
        if turn.at > Instant::now() {
            tokio::time::sleep_until(turn.at).await;
        }
        loop {
            let due = {
                let mut p = self.places();
                let now = Instant::now();
                if p.due <= now + self.slack {
                    p.due = p.due.max(now) + self.period;
                    return;
                }
                p.due
            };
            tokio::time::sleep_until(due.checked_sub(self.slack).unwrap_or(due)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_granted_one_place_at_a_time() {
        let pacer = Pacer::new(100.0).unwrap();
        let start = Instant::now();
        // One place now; the next is 10 ms on, so nothing more is granted before then (a
        // burst would have let requests queue behind the limit).
        assert!(pacer.try_turn().is_some());
        assert!(pacer.try_turn().is_none());
        tokio::time::advance(ms(7)).await;
        assert!(pacer.try_turn().is_none());
        // Up to a quarter period early.
        tokio::time::advance(ms(1)).await;
        let early = pacer.try_turn().expect("within the slack");
        assert_eq!(early.at, start + ms(10), "the place is on the grid");
        // Waiting for turns: one every period.
        let mut granted = Vec::new();
        for _ in 0..5 {
            let turn = pacer.turn().await;
            granted.push(turn.at - start);
        }
        assert_eq!(granted, [ms(20), ms(30), ms(40), ms(50), ms(60)]);
        assert!(Instant::now() - start <= ms(60), "granted up to the slack early");
    }

    #[tokio::test(start_paused = true)]
    async fn places_that_went_by_are_not_made_up() {
        let pacer = Pacer::new(100.0).unwrap();
        let start = Instant::now();
        assert!(pacer.try_turn().is_some());
        // The loop was busy for 100 ms: one turn now, then the grid goes on from here, so the
        // service never sees the ten places missed come at once.
        tokio::time::advance(ms(100)).await;
        assert_eq!(pacer.try_turn().map(|t| t.at - start), Some(ms(100)));
        assert!(pacer.try_turn().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_sent_late_keeps_the_next_one_a_period_behind() {
        let pacer = Pacer::new(100.0).unwrap();
        let start = Instant::now();
        let first = pacer.try_turn().unwrap();
        // The first waits 9 ms for its commit, then leaves at once.
        tokio::time::advance(ms(9)).await;
        pacer.wait_to_send(first).await;
        assert_eq!(Instant::now() - start, ms(9));
        // The second's place comes 1 ms later; it leaves a period after the first (less the
        // slack), not next to it.
        tokio::time::advance(ms(1)).await;
        let second = pacer.try_turn().unwrap();
        pacer.wait_to_send(second).await;
        let left = Instant::now() - start;
        assert!(left >= ms(16) && left <= ms(19), "{left:?}");
    }

    #[test]
    fn a_rate_that_is_no_rate_is_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Pacer::new(rate).is_err(), "{rate}");
        }
    }
}
