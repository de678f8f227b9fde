//! `--rate`: the one budget submits and polls share. A turn of the limiter is asked for before a
//! request is chosen (the coordinator decides what each turn is spent on), and the request is
//! then paced on its way out, so turns spent together never reach the service closer than the
//! rate.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

/// Proof that the run's rate limiter let one request through: every request needs one.
pub struct Turn(());

pub(super) struct RateLimit {
    limiter: Limiter,
    /// Requests leave at least `period` apart whatever bunches them up before (several turns
    /// spent in one turn of the coordinator's loop, the commit a submit waits for), so the
    /// service never sees more than `--rate`.
    pacer: std::sync::Mutex<Pacer>,
    period: Duration,
}

/// What a request is for, which decides which waiting request leaves first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Lane {
    /// A submit holds a slot that stays idle until it goes: it leaves before any poll waiting.
    Submit,
    Poll,
}

/// The spacing of sends (see [`RateLimit::pace`]).
struct Pacer {
    /// When the next request may leave, by the ones sent so far.
    due: Instant,
    /// The requests waiting to leave, the next to go first: submits, then polls, each in the
    /// order their turns came. Only the first waits on the clock; the others wait to be first.
    waiting: BTreeMap<(Lane, u64), Arc<Notify>>,
    arrivals: u64,
}

impl Pacer {
    /// Wakes the request now first, so that it starts waiting for its time.
    fn wake_first(&self) {
        if let Some(next) = self.waiting.values().next() {
            next.notify_one();
        }
    }
}

impl RateLimit {
    /// Requests per second.
    pub(super) fn per_second(&self) -> f64 {
        1.0 / self.period.as_secs_f64()
    }

    /// `rate` is the most API requests per second, submits and polls together.
    pub(super) fn new(rate: f64) -> Result<RateLimit, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "`--rate` must be a positive number of requests per second, not `{rate}`"
            ));
        }
        // One turn per 1/rate seconds, with a burst of 50 ms' worth so that the coordinator can
        // spend the turns that came while it was busy in one batch; sends are then paced
        // (`pacer`, in `pace`), so the service sees no more than about `rate` a second. Never
        // less than two: with a burst of one, a turn taken late (the timer's grain, a busy loop)
        // moves every later turn back by as much, and at 20 a second that lost 2-3 % of the rate.
        let period = Duration::try_from_secs_f64(1.0 / rate).map_err(|_| "`--rate` is too low".to_string())?;
        let burst = NonZeroU32::new((rate * 0.05).clamp(2.0, 1000.0) as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .ok_or("`--rate` is too high")?
            .allow_burst(burst);
        Ok(RateLimit {
            limiter: RateLimiter::direct(quota),
            pacer: std::sync::Mutex::new(Pacer {
                due: Instant::now(),
                waiting: BTreeMap::new(),
                arrivals: 0,
            }),
            period,
        })
    }

    /// Waits until the limiter lets one more request through.
    pub(super) async fn turn(&self) -> Turn {
        use governor::clock::Clock as _;
        // Waits on tokio's timer rather than governor's `until_ready`, whose timer thread costs a
        // cross-thread wake-up per turn (measurable at thousands of requests a second).
        loop {
            match self.limiter.check() {
                Ok(()) => return Turn(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// A turn if one is free right now, without waiting.
    pub(super) fn try_turn(&self) -> Option<Turn> {
        self.limiter.check().ok().map(|()| Turn(()))
    }

    /// Waits until the request `_turn` was granted for may leave.
    ///
    /// Turns are granted in bursts (governor's, and the ones the coordinator spends together
    /// after a busy moment), so requests queue here for a few periods. A submit does not queue
    /// behind polls: its slot is idle until it goes (at 200 requests a second, requests waited
    /// here about 30 ms on average). A request goes when it is first and the one before
    /// it left a period ago; up to `slack` early is allowed: a quarter of a period (or the timer's
    /// millisecond grain), well under the service's own tolerance, so that jitter on the way does
    /// not make two requests look like three.
    pub(super) async fn pace(&self, _turn: Turn, lane: Lane) {
        let slack = (self.period / 4).max(Duration::from_millis(1));
        let notify = Arc::new(Notify::new());
        let key = {
            let mut p = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
            p.arrivals += 1;
            let key = (lane, p.arrivals);
            p.waiting.insert(key, notify.clone());
            key
        };
        // A request given up while it waits (a cancelled run) must not hold up the ones behind.
        let mut queued = Queued {
            rate: self,
            key: Some(key),
        };
        loop {
            let wait_until = {
                let mut p = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
                if p.waiting.keys().next() != Some(&key) {
                    None
                } else {
                    let now = Instant::now();
                    if p.due <= now + slack {
                        p.due = p.due.max(now) + self.period;
                        p.waiting.remove(&key);
                        queued.key = None;
                        p.wake_first();
                        return;
                    }
                    // Woken `slack` early: the timer fires up to its millisecond grain late,
                    // and a period lost at every send would lower the rate.
                    Some(p.due - slack)
                }
            };
            match wait_until {
                // First: wait for the time, or for a submit that comes in ahead.
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = notify.notified() => {}
                    }
                }
                None => notify.notified().await,
            }
        }
    }
}

/// A request waiting in the pacer; dropped before it leaves, it takes itself out of the queue.
struct Queued<'a> {
    rate: &'a RateLimit,
    key: Option<(Lane, u64)>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut p = self.rate.pacer.lock().unwrap_or_else(|e| e.into_inner());
            p.waiting.remove(&key);
            p.wake_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` requests of `lane` that record when they leave, in order.
    fn spawn_paced(
        rate: &Arc<RateLimit>,
        lane: Lane,
        n: usize,
        name: &'static str,
        left: &Arc<std::sync::Mutex<Vec<(&'static str, Instant)>>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let (rate, left) = (rate.clone(), left.clone());
                tokio::spawn(async move {
                    rate.pace(Turn(()), lane).await;
                    left.lock().unwrap().push((name, Instant::now()));
                })
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn sends_are_a_period_apart_and_a_submit_overtakes_waiting_polls() {
        let rate = Arc::new(RateLimit::new(100.0).unwrap());
        let left = Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = spawn_paced(&rate, Lane::Poll, 5, "poll", &left);
        tokio::time::sleep(Duration::from_millis(15)).await;
        tasks.extend(spawn_paced(&rate, Lane::Submit, 1, "submit", &left));
        for t in tasks {
            t.await.unwrap();
        }
        let left = left.lock().unwrap();
        let order: Vec<&str> = left.iter().map(|(name, _)| *name).collect();
        // Two polls left by 15 ms (at 0 and 7.5 ms: a quarter period early is allowed); the
        // submit goes next, before the three polls that were waiting.
        assert_eq!(order, ["poll", "poll", "submit", "poll", "poll", "poll"]);
        // A period apart, less the quarter period a send may leave early (the timer's grain)...
        for pair in left.windows(2) {
            assert!(pair[1].1 - pair[0].1 >= Duration::from_micros(7_500), "{left:?}");
        }
        // ...but never faster than the rate over a run, and no time lost either.
        let span = left[5].1 - left[0].1;
        assert!(span >= Duration::from_micros(47_500), "{left:?}");
        assert!(left[5].1 - start <= Duration::from_millis(51), "{left:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_given_up_while_it_waits_holds_nobody_up() {
        let rate = Arc::new(RateLimit::new(100.0).unwrap());
        let left = Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = spawn_paced(&rate, Lane::Poll, 1, "first", &left);
        tokio::task::yield_now().await;
        // The second waits for the first's period, then is cancelled while it is first in line.
        let given_up = spawn_paced(&rate, Lane::Poll, 1, "given up", &left);
        tokio::task::yield_now().await;
        let rest = spawn_paced(&rate, Lane::Poll, 2, "rest", &left);
        tokio::time::sleep(Duration::from_millis(5)).await;
        given_up[0].abort();
        for t in first.into_iter().chain(rest) {
            // A dead entry left first in line would hold the rest for ever.
            tokio::time::timeout(Duration::from_secs(1), t)
                .await
                .expect("held up")
                .unwrap();
        }
        let left = left.lock().unwrap();
        let order: Vec<&str> = left.iter().map(|(name, _)| *name).collect();
        assert_eq!(order, ["first", "rest", "rest"]);
        assert!(left[2].1 - left[0].1 <= Duration::from_millis(21), "{left:?}");
    }
}
