//! A simulator of the AI/ML API's video endpoints: a real HTTP server (axum) that accepts every
//! catalogued model and validates requests with the vendor's schemas ([`schema`], [`specs`]),
//! charges them by its own price table ([`pricing`], listed at `/v1/models` with ETags), moves
//! generations through `queued` → `generating` → `completed`/`succeeded`/`error` on a clock, and
//! serves real MP4 files from presigned-style URLs that expire.
//!
//! Generation ids carry their creation time and fate, so any simulator instance can answer for
//! an id another one issued: a `run --simulate` that was killed resumes against a new one just
//! as a real run resumes against the service.
//!
//! Faults: the `*_first_*` counters of [`SimConfig`] inject a fixed number of one kind, and
//! [`chaos`] injects every kind at a rate, seeded. Redirects point to a second server, the "other
//! host", which serves the same files and logs any API request that followed a redirect there.
//! The log ([`SimLog`]) keeps every submit attempt per client request id, each generation created
//! with what became of its answer, each file request with whether it carried a key.
//!
//! For benchmarks it can also act like a busy account and a slow service, each off by default:
//! render times drawn per generation ([`SimConfig::render`], derived from the id like the rest),
//! a limit on API requests per second and one on generations running at once (answered 429 with
//! the service's error body and a `code`), videos padded to any size and streamed; and it counts
//! ([`SimStats`]) requests, 429s per code, and per generation its polls and how long after its
//! finish a poll first reported it.

pub mod chaos;
mod files;
mod ids;
mod limits;
mod listing;
mod log;
pub mod media;
pub mod models;
mod poll;
pub mod pricing;
pub mod schema;
pub mod specs;
pub mod stats;
mod submit;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::api::GENERATIONS_PATH;
use chaos::{Chaos, Fault};
use files::{file, redirected};
use ids::GenerationId;
use limits::{Active, TokenBucket};
pub use listing::{ListingFault, MODELS_PATH};
pub use log::{Answer, DownloadRecord, RedirectedRequest, SimLog, SubmitAttempt, SubmitRecord};
use poll::poll;
use schema::Schemas;
pub use stats::{DownloadStats, GenerationStats, SimStats};
use submit::{api_error, submit_legacy, submit_universal, throttled};

/// The legacy path that answers for pixverse models.
pub const LEGACY_PIXVERSE_PATH: &str = "/v2/generate/video/pixverse/generation";

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Time a generation spends `queued`.
    pub queued: Duration,
    /// Time it then spends `generating`.
    pub generating: Duration,
    /// Lifetime of a download URL (the service's is 600 s).
    pub url_ttl: Duration,
    /// The first N generations of each distinct request body end in `error`.
    pub fail_first: u32,
    /// The first N download URLs given for each generation are already expired.
    pub expire_first_urls: u32,
    /// When set, only this bearer key is accepted; otherwise any non-empty key is.
    pub key: Option<String>,
    /// A pause in the middle of every download, to make partial downloads observable.
    pub download_pause: Duration,
    /// The first N submits are answered 429 with `Retry-After: <retry_after>` (nothing created).
    pub throttle_first_submits: u32,
    pub retry_after: Duration,
    /// The first N polls are answered 503.
    pub unavailable_first_polls: u32,
    /// The first N submits are answered 403, as for an account out of credits (nothing created).
    pub out_of_credits_first_submits: u32,
    /// The first N submits are answered 401, as if the key were refused (nothing created).
    pub unauthorized_first_submits: u32,
    /// Seeded random faults (off by default); [`RunningSim::set_chaos`] changes them later.
    pub chaos: Option<Chaos>,
    /// When set, the time each generation spends `generating` is drawn uniformly from this range
    /// (derived from its id, so every instance with this configuration gives it the same one)
    /// instead of the fixed `generating`.
    pub render: Option<(Duration, Duration)>,
    /// API requests (submits and polls) allowed per second, in a token bucket with a burst of
    /// 2; the rest are answered 429 with the code `rate_limit_exceeded`.
    pub rate_limit: Option<f64>,
    /// Generations that may be queued or generating at once; a submit beyond them is answered
    /// 429 with the code `concurrency_limit_exceeded` and `Retry-After: <retry_after>`, and
    /// creates nothing. Counts the generations this instance created.
    pub max_active: Option<usize>,
    /// Pad every video to this many bytes (streamed; the natural size when smaller).
    pub video_size: Option<u64>,
    /// What `/v1/models` does instead of answering, for tests of a client that must not be
    /// blocked by its price list; `None` answers normally.
    pub listing_fault: Option<ListingFault>,
    /// Fields whose `data:` URIs are refused with a 400, as the service does for fields that take
    /// URLs only (`image_url: base64 is not supported`).
    pub urls_only: Vec<String>,
    /// The time generations and download links are judged by: the system's, plus whatever a test
    /// moved it on by ([`SimClock::advance`]), so a test need not race the wall clock.
    pub clock: SimClock,
}

/// The simulator's clock: the system time, moved on by hand in tests. Clones share one clock.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<std::sync::atomic::AtomicU64>);

impl SimClock {
    pub fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_millis(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves the clock on: generations and links age by `by` at once.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The code of a 429 for too many requests per second.
pub const RATE_LIMIT_EXCEEDED: &str = "rate_limit_exceeded";
/// The code of a 429 for too many generations running at once.
pub const CONCURRENCY_LIMIT_EXCEEDED: &str = "concurrency_limit_exceeded";

impl SimConfig {
    /// How long a generation spends `queued`, then `generating`.
    fn timeline(&self, id: &GenerationId) -> (Duration, Duration) {
        let render = match self.render {
            Some((min, max)) => min + max.saturating_sub(min).mul_f64(id.fraction()),
            None => self.generating,
        };
        (self.queued, render)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            queued: Duration::from_millis(300),
            generating: Duration::from_millis(900),
            url_ttl: Duration::from_secs(600),
            fail_first: 0,
            expire_first_urls: 0,
            key: None,
            download_pause: Duration::ZERO,
            throttle_first_submits: 0,
            retry_after: Duration::from_secs(1),
            unavailable_first_polls: 0,
            out_of_credits_first_submits: 0,
            unauthorized_first_submits: 0,
            chaos: None,
            render: None,
            rate_limit: None,
            max_active: None,
            video_size: None,
            listing_fault: None,
            urls_only: Vec::new(),
            clock: SimClock::default(),
        }
    }
}
struct Inner {
    config: SimConfig,
    chaos: Mutex<Option<Chaos>>,
    /// What `/v1/models` does now ([`SimConfig::listing_fault`], then [`RunningSim::set_listing_fault`]).
    listing_fault: Mutex<Option<ListingFault>>,
    schemas: Schemas,
    /// Signs download URLs; random per process, so URLs from another instance are refused.
    secret: String,
    base_url: String,
    /// The other host redirects point to.
    other_url: String,
    log: Mutex<SimLog>,
    counters: Mutex<Counters>,
    stats: Mutex<SimStats>,
    bucket: Option<Mutex<TokenBucket>>,
    active: Mutex<Active>,
}

#[derive(Default)]
struct Counters {
    /// Generations per body hash (for `fail_first`).
    per_body: HashMap<String, u32>,
    /// URLs given per generation (for `expire_first_urls`).
    urls_per_id: HashMap<String, u32>,
    submits_throttled: u32,
    submits_unpaid: u32,
    submits_unauthorized: u32,
    polls_failed: u32,
    /// Requests seen per (scope, key), numbering each one's chaos dice.
    chaos_seq: HashMap<(&'static str, String), u32>,
    /// The request id and its creation number behind each generation, so that its polls and
    /// downloads draw the same dice whatever random id it got.
    chaos_key: HashMap<String, String>,
}

impl Inner {
    /// Answers an error the way the service does, and logs the refusal for tests and `/_sim/log`.
    fn refuse(&self, status: StatusCode, message: &str, path: &str, details: Option<Vec<String>>) -> Response {
        let logged = match &details {
            Some(d) => format!("{message}: {}", d.join("; ")),
            None => message.to_string(),
        };
        self.log
            .lock()
            .unwrap()
            .refused
            .push((status.as_u16(), logged, SystemTime::now()));
        api_error(status, message, path, details.map(|d| json!(d)))
    }

    /// Whether this request gets one of the `limit` injected faults counted by `counter`.
    fn take_fault(&self, counter: impl FnOnce(&mut Counters) -> &mut u32, limit: u32) -> bool {
        let mut counters = self.counters.lock().unwrap();
        let n = counter(&mut counters);
        if *n < limit {
            *n += 1;
            true
        } else {
            false
        }
    }

    /// The chaos draws for the next request of `scope` about `key`, or none when chaos is off.
    fn draws(&self, scope: &'static str, key: &str) -> Option<Draws> {
        let chaos = self.chaos.lock().unwrap().clone()?;
        let n = {
            let mut counters = self.counters.lock().unwrap();
            let key = counters.chaos_key.get(key).cloned().unwrap_or_else(|| key.to_string());
            let seq = counters.chaos_seq.entry((scope, key.clone())).or_default();
            let n = *seq;
            *seq += 1;
            (key, n)
        };
        Some(Draws {
            chaos,
            scope,
            key: n.0,
            n: n.1,
        })
    }

    fn count_fault(&self, fault: Fault) {
        *self.log.lock().unwrap().faults.entry(fault).or_default() += 1;
    }

    /// Counts an API request as it arrives.
    fn count_request(&self, submit: bool) {
        let mut stats = self.stats.lock().unwrap();
        stats.requests += 1;
        if submit {
            stats.submits += 1;
        } else {
            stats.polls += 1;
        }
    }

    /// The 429 of the request-rate limit, if this request is over it.
    fn over_rate(&self, path: &str) -> Option<Response> {
        let wait = self
            .bucket
            .as_ref()?
            .lock()
            .unwrap()
            .take(std::time::Instant::now())
            .err()?;
        // Whole seconds, as the service's `Retry-After` says them.
        let after = Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64);
        Some(throttled(self, path, after, Some(RATE_LIMIT_EXCEEDED)))
    }
}

/// The chaos configuration and the identity of one request, to roll its dice.
struct Draws {
    chaos: Chaos,
    scope: &'static str,
    key: String,
    n: u32,
}

impl Draws {
    fn dice(&self) -> chaos::Dice<'_> {
        self.chaos.dice(self.scope, &self.key, self.n)
    }
}

/// A running simulator.
pub struct RunningSim {
    pub base_url: String,
    pub addr: SocketAddr,
    /// The other host that chaos redirects point to (it serves files, and logs anything else).
    pub other_url: String,
    inner: Arc<Inner>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// What the simulator has seen so far.
    pub fn log(&self) -> SimLog {
        self.inner.log.lock().unwrap().clone()
    }

    /// Turns chaos on, changes it, or (with `None`) turns it off, from the next request on.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        *self.inner.chaos.lock().unwrap() = chaos;
    }

    /// Makes `/v1/models` fail (or answer again, with `None`) from now on.
    pub fn set_listing_fault(&self, fault: Option<ListingFault>) {
        *self.inner.listing_fault.lock().unwrap() = fault;
    }

    /// The counters so far: requests, 429s, and each generation's timing and polls.
    pub fn stats(&self) -> SimStats {
        self.inner.stats.lock().unwrap().clone()
    }

    pub fn stop(self) {
        // `Drop` stops the servers.
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Binds `addr` (port 0 picks a free one) and serves in the background. A second server, the
/// "other host" of redirects, listens on 127.0.0.2 (or another port of 127.0.0.1 where that
/// address cannot be bound).
pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let other = match tokio::net::TcpListener::bind("127.0.0.2:0").await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let other_url = format!("http://{}", other.local_addr()?);
    let bucket = config.rate_limit.map(|rate| Mutex::new(TokenBucket::new(rate)));
    let inner = Arc::new(Inner {
        chaos: Mutex::new(config.chaos.clone()),
        listing_fault: Mutex::new(config.listing_fault),
        config,
        schemas: Schemas::load(),
        secret: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        base_url: base_url.clone(),
        other_url: other_url.clone(),
        log: Mutex::default(),
        counters: Mutex::default(),
        stats: Mutex::default(),
        bucket,
        active: Mutex::default(),
    });
    let app = Router::new()
        .route(GENERATIONS_PATH, get(poll).post(submit_universal))
        .route(LEGACY_PIXVERSE_PATH, get(poll).post(submit_legacy))
        .route(MODELS_PATH, get(listing::models))
        .route("/files/{name}", get(file::<false>))
        .route("/_sim/log", get(log))
        .fallback(not_found)
        .with_state(inner.clone());
    let other_app = Router::new()
        .route("/files/{name}", get(file::<true>))
        .fallback(redirected)
        .with_state(inner.clone());
    let servers = vec![
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
        tokio::spawn(async move {
            let _ = axum::serve(other, other_app).await;
        }),
    ];
    Ok(RunningSim {
        base_url,
        addr,
        other_url,
        inner,
        servers,
    })
}

async fn log(State(inner): State<Arc<Inner>>) -> Response {
    let log = inner.log.lock().unwrap().clone();
    axum::Json(log).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "Cannot find the requested path",
        uri.path(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::schema::Verdict;
    use super::*;

    #[test]
    fn fixtures_load_and_refuse_what_the_api_refuses() {
        let s = Schemas::load();
        let ok = json!({"model": "magic/image-to-video", "image_url": "https://x/a.png", "template": "Rotating Cards"});
        assert_eq!(s.validate(GENERATIONS_PATH, &ok), Verdict::Valid);
        let cyrillic = json!({"model": "magic/image-to-video", "image_url": "https://x/a.png", "template": "Rotating \u{0421}ards"});
        assert!(matches!(s.validate(GENERATIONS_PATH, &cyrillic), Verdict::Invalid(_)));
        let long =
            json!({"model": "pixverse/v5/image-to-video", "image_url": "https://x/a.png", "prompt": "x".repeat(2049)});
        assert!(matches!(s.validate(GENERATIONS_PATH, &long), Verdict::Invalid(_)));
        let hd8 = json!({"model": "pixverse/v5/image-to-video", "image_url": "https://x/a.png", "prompt": "p", "resolution": "1080p", "duration": 8});
        assert!(matches!(s.validate(LEGACY_PIXVERSE_PATH, &hd8), Verdict::Invalid(_)));
        let hd5 = json!({"model": "pixverse/v5/image-to-video", "image_url": "data:image/png;base64,iVBORw0KGgo=", "prompt": "p", "resolution": "1080p", "duration": 5});
        assert_eq!(s.validate(LEGACY_PIXVERSE_PATH, &hd5), Verdict::Valid);
        let no_input = json!({"model": "magic/video-to-video"});
        assert!(matches!(s.validate(GENERATIONS_PATH, &no_input), Verdict::Invalid(_)));
        // Magic models are not served on the legacy pixverse path.
        assert!(matches!(s.validate(LEGACY_PIXVERSE_PATH, &ok), Verdict::Invalid(_)));
        // Every catalogued model is checked with its spec, by id or alias.
        assert_eq!(
            s.validate(GENERATIONS_PATH, &json!({"model": "google/veo3", "prompt": "x"})),
            Verdict::Valid
        );
        let wrong = json!({"model": "google/veo3", "prompt": "x", "duration": 7});
        assert!(matches!(s.validate(GENERATIONS_PATH, &wrong), Verdict::Invalid(_)));
    }
}
