//! `--rate`: the one budget submits and polls share. A turn of the limiter is asked for before a
//! request is chosen (the coordinator decides what each turn is spent on), and the request is
//! then paced on its way out, so turns spent together never reach the service closer than the
//! rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{Quota, RateLimiter};
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

/// The spacing of sends (see [`RateLimit::pace`]).
struct Pacer {
    /// The next place free to take.
    next: Instant,
    /// When the next request may really leave, by the ones sent so far.
    due: Instant,
}

impl RateLimit {
    /// `rate` is the most API requests per second, submits and polls together.
    pub(super) fn new(rate: f64) -> Result<RateLimit, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "`--rate` must be a positive number of requests per second, not `{rate}`"
            ));
        }
        // One turn per 1/rate seconds, with a burst of 50 ms' worth so that the coordinator can
        // spend the turns that came while it was busy in one batch; sends are then paced
        // (`pacer`, in `pace`), so the service sees no more than about `rate` a second.
        let period = Duration::try_from_secs_f64(1.0 / rate).map_err(|_| "`--rate` is too low".to_string())?;
        let burst = NonZeroU32::new((rate * 0.05).clamp(1.0, 1000.0) as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .ok_or("`--rate` is too high")?
            .allow_burst(burst);
        Ok(RateLimit {
            limiter: RateLimiter::direct(quota),
            pacer: std::sync::Mutex::new(Pacer {
                next: Instant::now(),
                due: Instant::now(),
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
    pub(super) async fn pace(&self, _turn: Turn) {
        // Each request has its own place (so waiting ones wake one at a time), and goes when
        // its place comes unless the requests before it went out late and close together (the
        // run's one thread was busy): then it takes a new place behind them. `due` is when the
        // next request may leave by what has really been sent; up to `slack` early is allowed:
        // a quarter of a period (or the timer's millisecond grain), well under the service's own
        // tolerance, so that jitter on the way does not make two requests look like three.
        let slack = (self.period / 4).max(Duration::from_millis(1));
        loop {
            let at = {
                let mut p = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
                let at = p.next.max(Instant::now());
                p.next = at + self.period;
                at
            };
            tokio::time::sleep_until(at).await;
            let mut p = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if p.due <= now + slack {
                p.due = p.due.max(now) + self.period;
                return;
            }
        }
    }
}
