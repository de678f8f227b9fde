//! Seeded faults for the simulator: each kind happens to a request with its own probability,
//! decided by a generator seeded from the chaos seed and the request's identity (the client's
//! `X-Client-Request-Id` and how many submits carried it before; the generation id and how many
//! polls or downloads it had before), so the same seed gives every request the same fate
//! whatever order concurrent requests arrive in.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Submit answered 429 with `Retry-After`; nothing created.
    SubmitThrottled,
    /// Submit answered 500, 502 or 503; nothing created.
    SubmitServerError,
    /// The connection is closed before the request is read; nothing created.
    SubmitReset,
    /// Submit answered 200 with an HTML page (a CDN's challenge); nothing created.
    SubmitHtml,
    /// Submit answered with a redirect to another host; nothing created here.
    SubmitRedirect,
    /// The generation is created, and the answer is a 504.
    SubmitGatewayTimeout,
    /// The generation is created, and the connection is closed without an answer.
    SubmitLostCreate,
    /// The submit is answered 50–300 ms late (then as usual, or with another fault).
    SubmitSlow,
    /// The generation created ends in `error`.
    GenerationError,
    /// Poll answered 429 with `Retry-After`.
    PollThrottled,
    /// Poll answered 500, 502, 503 or 504.
    PollServerError,
    /// The connection is closed before the poll is answered.
    PollReset,
    /// Poll answered 200 with an HTML page.
    PollHtml,
    /// Poll answered with a redirect to another host.
    PollRedirect,
    /// Poll answered late.
    PollSlow,
    /// A pending generation is reported with another pending word (`processing`, `rendering`…).
    PollOddStatus,
    /// A finished generation's video carries a file name that climbs out of any folder.
    HostileFileName,
    /// The download URL is refused as expired (403, XML), whatever its date.
    DownloadExpired,
    /// The download announces its full length, sends part of it and closes the connection.
    DownloadTruncated,
    /// The download is redirected to the same file on another host (fine to follow: no key).
    DownloadRedirect,
}

impl Fault {
    pub const ALL: &'static [Fault] = &[
        Fault::SubmitThrottled,
        Fault::SubmitServerError,
        Fault::SubmitReset,
        Fault::SubmitHtml,
        Fault::SubmitRedirect,
        Fault::SubmitGatewayTimeout,
        Fault::SubmitLostCreate,
        Fault::SubmitSlow,
        Fault::GenerationError,
        Fault::PollThrottled,
        Fault::PollServerError,
        Fault::PollReset,
        Fault::PollHtml,
        Fault::PollRedirect,
        Fault::PollSlow,
        Fault::PollOddStatus,
        Fault::HostileFileName,
        Fault::DownloadExpired,
        Fault::DownloadTruncated,
        Fault::DownloadRedirect,
    ];

    /// Submit faults that answer before anything is created, in the order they are drawn.
    pub const SUBMIT_BEFORE_CREATE: &'static [Fault] = &[
        Fault::SubmitReset,
        Fault::SubmitThrottled,
        Fault::SubmitServerError,
        Fault::SubmitHtml,
        Fault::SubmitRedirect,
    ];
    /// Submit faults that lose the answer of a generation that was created.
    pub const SUBMIT_AFTER_CREATE: &'static [Fault] = &[Fault::SubmitGatewayTimeout, Fault::SubmitLostCreate];
    /// Poll faults that replace the answer.
    pub const POLL: &'static [Fault] = &[
        Fault::PollReset,
        Fault::PollThrottled,
        Fault::PollServerError,
        Fault::PollHtml,
        Fault::PollRedirect,
    ];
    pub const DOWNLOAD: &'static [Fault] = &[
        Fault::DownloadExpired,
        Fault::DownloadTruncated,
        Fault::DownloadRedirect,
    ];
}

/// Which faults happen, how often, and the seed that decides which requests get them.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub seed: u64,
    /// Probability of each kind, per request it can apply to (a missing kind never happens).
    pub rates: BTreeMap<Fault, f64>,
    /// What a 429 asks for in `Retry-After` (whole seconds are sent as an integer).
    pub retry_after: Duration,
    /// The range of delays of slow answers.
    pub slow: (Duration, Duration),
}

impl Chaos {
    /// Every kind of fault at `rate`.
    pub fn uniform(seed: u64, rate: f64) -> Chaos {
        Chaos::only(seed, &Fault::ALL.iter().map(|&f| (f, rate)).collect::<Vec<_>>())
    }

    /// Only these kinds, at these rates.
    pub fn only(seed: u64, rates: &[(Fault, f64)]) -> Chaos {
        Chaos {
            seed,
            rates: rates.iter().copied().collect(),
            retry_after: Duration::from_secs(1),
            slow: (Duration::from_millis(50), Duration::from_millis(300)),
        }
    }

    /// The same, with `fault` at `rate` (0 turns it off).
    pub fn with(mut self, fault: Fault, rate: f64) -> Chaos {
        self.rates.insert(fault, rate);
        self
    }

    pub fn rate(&self, fault: Fault) -> f64 {
        self.rates.get(&fault).copied().unwrap_or(0.0)
    }

    /// The dice for the `n`-th request of `scope` about `key`.
    pub(super) fn dice(&self, scope: &str, key: &str, n: u32) -> Dice<'_> {
        let digest = Sha256::digest(format!("{}|{scope}|{key}|{n}", self.seed).as_bytes());
        let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        Dice {
            chaos: self,
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

/// The draws for one request. Every candidate is always drawn, so one kind's rate never shifts
/// the draws of the others.
pub(super) struct Dice<'c> {
    chaos: &'c Chaos,
    pub rng: fastrand::Rng,
}

impl Dice<'_> {
    /// The first of `kinds` that happens to this request, if any.
    pub fn pick(&mut self, kinds: &[Fault]) -> Option<Fault> {
        let mut hit = None;
        for &kind in kinds {
            let roll = self.rng.f64();
            if hit.is_none() && roll < self.chaos.rate(kind) {
                hit = Some(kind);
            }
        }
        hit
    }

    pub fn hit(&mut self, kind: Fault) -> bool {
        self.pick(&[kind]).is_some()
    }

    /// A slow answer's delay.
    pub fn delay(&mut self) -> Duration {
        let (lo, hi) = self.chaos.slow;
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(self.rng.u64(0..=span))
    }

    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.usize(..items.len())]
    }
}

/// What a challenge page of a CDN in front of the API looks like.
pub const CHALLENGE_PAGE: &str = "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>\
<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"></head><body><div class=\"main-wrapper\">\
<h1>api.aimlapi.com</h1><p>Checking if the site connection is secure. Just a moment...</p></div></body></html>";

/// File names a hostile or broken service could put in a video's description.
pub const HOSTILE_FILE_NAMES: &[&str] = &[
    "../../../../../chaos-escape.mp4",
    "..\\..\\..\\..\\chaos-escape.mp4",
    "videos/../../../chaos-escape.mp4",
    "/tmp/vidbatch-chaos-escape.mp4",
    "chaos-escape\u{0}.mp4",
];

/// Pending words other than the usual ones; the last one is made up.
pub const ODD_PENDING: &[&str] = &["processing", "active", "pending", "rendering"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_the_same_for_the_same_seed_and_request() {
        let chaos = Chaos::uniform(7, 0.5);
        let draw = |c: &Chaos, key: &str, n| {
            let mut d = c.dice("submit", key, n);
            (d.pick(Fault::SUBMIT_BEFORE_CREATE), d.delay())
        };
        assert_eq!(draw(&chaos, "a", 0), draw(&chaos, "a", 0));
        let differ = (0..20).any(|n| draw(&chaos, "a", n) != draw(&chaos, "a", 0));
        assert!(differ);
        let other = Chaos::uniform(8, 0.5);
        assert!((0..20).any(|n| draw(&chaos, "a", n) != draw(&other, "a", n)));
    }

    #[test]
    fn rates_are_roughly_kept_and_zero_is_never() {
        let chaos = Chaos::only(1, &[(Fault::SubmitReset, 0.1)]);
        let hits = (0..10_000)
            .filter(|&n| chaos.dice("s", "k", n).pick(Fault::SUBMIT_BEFORE_CREATE).is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!((0..1000).all(|n| !chaos.dice("s", "k", n).hit(Fault::SubmitHtml)));
    }
}
