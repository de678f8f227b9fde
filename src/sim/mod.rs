//! A simulator of the AI/ML API's video endpoints: a real HTTP server (axum) that validates
//! requests with the vendor's OpenAPI schemas, moves generations through `queued` →
//! `generating` → `completed`/`succeeded`/`error` on a clock, and serves real MP4 files from
//! presigned-style URLs that expire.
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
mod ids;
mod limits;
pub mod media;
pub mod schema;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::GENERATIONS_PATH;
use chaos::{Chaos, Fault};
use ids::GenerationId;
use limits::{Active, TokenBucket};
use media::Video;
use schema::{Schemas, Verdict};
pub use stats::{DownloadStats, GenerationStats, SimStats};

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
        }
    }
}

/// One generation created by a submit (each one is paid), as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitRecord {
    pub generation_id: String,
    /// When it arrived.
    pub at: SystemTime,
    pub path: String,
    pub body: Value,
    /// SHA-256 of the canonical body: equal bodies, equal hashes.
    pub body_sha256: String,
    /// The client's `X-Client-Request-Id`, if it sent one.
    pub request_id: Option<String>,
    /// What became of the answer that carried the generation id.
    pub answer: Answer,
    /// Whether the generation ends in `error`.
    pub fails: bool,
}

/// What the client got back from a submit that created a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A 200 with the generation id was sent.
    Delivered,
    /// A 504: the generation exists, the client was not told its id.
    GatewayTimeout,
    /// The connection was closed without an answer.
    Dropped,
}

/// Every POST to a submit path, whatever became of it, logged when it is answered (the client
/// never sends one request id twice at once, so each id's attempts are in order).
#[derive(Debug, Clone, Serialize)]
pub struct SubmitAttempt {
    pub request_id: Option<String>,
    pub at: SystemTime,
    /// The status answered; `None` when the connection was closed without an answer.
    pub status: Option<u16>,
    /// The injected fault, if one decided the answer (slow answers are not counted here).
    pub fault: Option<Fault>,
    /// The generation created, if one was.
    pub generation_id: Option<String>,
}

/// One file request.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadRecord {
    pub generation_id: String,
    pub status: u16,
    /// Whether the request carried an `Authorization` header (it never should).
    pub had_authorization: bool,
    /// Served by the other host, after a redirect.
    pub via_redirect: bool,
    pub fault: Option<Fault>,
}

/// A request that reached the other host (where redirects point) for anything but a file.
#[derive(Debug, Clone, Serialize)]
pub struct RedirectedRequest {
    pub method: String,
    pub path: String,
    pub had_authorization: bool,
    pub at: SystemTime,
}

/// Everything the simulator saw, for tests and for `GET /_sim/log`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimLog {
    /// Generations created, in order.
    pub submits: Vec<SubmitRecord>,
    /// Refused requests: (HTTP status, message, when).
    pub refused: Vec<(u16, String, SystemTime)>,
    pub polls: u64,
    pub downloads: Vec<DownloadRecord>,
    /// Every POST to a submit path, as answered.
    pub submit_attempts: Vec<SubmitAttempt>,
    /// POSTs to a submit path received so far (counted on arrival, before any answer).
    pub submits_received: u64,
    /// API requests that followed a redirect to the other host.
    pub redirected: Vec<RedirectedRequest>,
    /// Faults injected, per kind.
    pub faults: BTreeMap<Fault, u64>,
}

impl SimLog {
    /// The generations created for one client request id, in order.
    pub fn creates_for(&self, request_id: &str) -> Vec<&SubmitRecord> {
        self.submits
            .iter()
            .filter(|s| s.request_id.as_deref() == Some(request_id))
            .collect()
    }

    /// Every POST that carried one client request id, in order.
    pub fn attempts_for(&self, request_id: &str) -> Vec<&SubmitAttempt> {
        self.submit_attempts
            .iter()
            .filter(|a| a.request_id.as_deref() == Some(request_id))
            .collect()
    }

    /// Generations paid twice: created for a request id whose earlier generation was delivered
    /// to the client and did not end in `error`.
    pub fn duplicate_paid_submits(&self) -> Vec<&SubmitRecord> {
        let mut done: std::collections::HashSet<&str> = Default::default();
        let mut duplicates = Vec::new();
        for s in &self.submits {
            let Some(id) = s.request_id.as_deref() else { continue };
            if done.contains(id) {
                duplicates.push(s);
            }
            if s.answer == Answer::Delivered && !s.fails {
                done.insert(id);
            }
        }
        duplicates
    }

    /// Requests that carried an `Authorization` header where no key belongs: the file endpoint,
    /// or any host a redirect pointed to. Each as `(where, what)`.
    pub fn key_leaks(&self) -> Vec<(String, String)> {
        let files = self.downloads.iter().filter(|d| d.had_authorization).map(|d| {
            let host = if d.via_redirect { "file (redirected)" } else { "file" };
            (host.to_string(), d.generation_id.clone())
        });
        let redirected = self
            .redirected
            .iter()
            .filter(|r| r.had_authorization)
            .map(|r| ("redirect target".to_string(), format!("{} {}", r.method, r.path)));
        files.chain(redirected).collect()
    }

    pub fn fault_count(&self, fault: Fault) -> u64 {
        self.faults.get(&fault).copied().unwrap_or(0)
    }
}

struct Inner {
    config: SimConfig,
    chaos: Mutex<Option<Chaos>>,
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
        .route("/files/{name}", get(file))
        .route("/_sim/log", get(log))
        .fallback(not_found)
        .with_state(inner.clone());
    let other_app = Router::new()
        .route("/files/{name}", get(redirected_file))
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

/// The service's error body shape.
fn api_error(status: StatusCode, message: &str, path: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "message": message,
        "path": path,
        "requestId": format!("{:08x}", fastrand::u32(..)),
        "statusCode": status.as_u16().to_string(),
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    });
    if let Some(d) = details {
        body["errors"] = d;
    }
    (status, axum::Json(body)).into_response()
}

fn check_key(inner: &Inner, headers: &HeaderMap, path: &str) -> Result<(), Box<Response>> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let ok = match &inner.config.key {
        Some(key) => given == key,
        None => !given.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        let message = if given.is_empty() {
            "Missing authorization token"
        } else {
            "Invalid API key"
        };
        Err(Box::new(inner.refuse(StatusCode::UNAUTHORIZED, message, path, None)))
    }
}

async fn submit_universal(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    submit(&inner, GENERATIONS_PATH, &headers, body).await
}

async fn submit_legacy(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    submit(&inner, LEGACY_PIXVERSE_PATH, &headers, body).await
}

/// The largest body a submit may carry (what axum allows a `String` by default).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What chaos holds for one submit, drawn before anything happens.
#[derive(Default)]
struct SubmitChaos {
    slow: Option<Duration>,
    before: Option<Fault>,
    server_error: u16,
    redirect: u16,
    fails: bool,
    after: Option<Fault>,
    /// The dice's identity, which the generation's polls and downloads inherit.
    key: Option<String>,
    retry_after: Duration,
}

fn submit_chaos(inner: &Inner, request_id: Option<&str>) -> SubmitChaos {
    let Some(draws) = inner.draws("submit", request_id.unwrap_or("-")) else {
        return SubmitChaos::default();
    };
    let mut dice = draws.dice();
    let slow = dice.hit(Fault::SubmitSlow);
    let delay = dice.delay();
    SubmitChaos {
        slow: slow.then_some(delay),
        before: dice.pick(Fault::SUBMIT_BEFORE_CREATE),
        server_error: dice.choose(&[500, 502, 503]),
        redirect: dice.choose(&[301, 302, 303, 307, 308]),
        fails: dice.hit(Fault::GenerationError),
        after: dice.pick(Fault::SUBMIT_AFTER_CREATE),
        key: Some(format!("{}#{}", draws.key, draws.n)),
        retry_after: draws.chaos.retry_after,
    }
}

async fn submit(inner: &Inner, path: &'static str, headers: &HeaderMap, body: Body) -> Response {
    let request_id = headers
        .get("x-client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    inner.log.lock().unwrap().submits_received += 1;
    inner.count_request(true);
    let mut attempt = SubmitAttempt {
        request_id: request_id.clone(),
        at: SystemTime::now(),
        status: None,
        fault: None,
        generation_id: None,
    };
    let response = submit_inner(inner, path, headers, body, &mut attempt).await;
    if attempt.status.is_none() && attempt.fault.is_none() {
        attempt.status = Some(response.status().as_u16());
    }
    inner.log.lock().unwrap().submit_attempts.push(attempt);
    response
}

async fn submit_inner(
    inner: &Inner,
    path: &'static str,
    headers: &HeaderMap,
    body: Body,
    attempt: &mut SubmitAttempt,
) -> Response {
    let chaos = submit_chaos(inner, attempt.request_id.as_deref());
    if let Some(delay) = chaos.slow {
        inner.count_fault(Fault::SubmitSlow);
        tokio::time::sleep(delay).await;
    }
    if let Err(r) = check_key(inner, headers, path) {
        return *r;
    }
    if let Some(fault) = chaos.before {
        inner.count_fault(fault);
        attempt.fault = Some(fault);
        let response = gateway_fault(
            inner,
            fault,
            path,
            path,
            chaos.server_error,
            chaos.redirect,
            chaos.retry_after,
        );
        attempt.status = (fault != Fault::SubmitReset).then(|| response.status().as_u16());
        return response;
    }
    if let Some(response) = inner.over_rate(path) {
        return response;
    }
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large", path, None);
    };
    let refuse =
        |details: Vec<String>| inner.refuse(StatusCode::BAD_REQUEST, "Body validation error!", path, Some(details));
    if inner.take_fault(|c| &mut c.submits_unauthorized, inner.config.unauthorized_first_submits) {
        return inner.refuse(StatusCode::UNAUTHORIZED, "Invalid API key", path, None);
    }
    if inner.take_fault(|c| &mut c.submits_unpaid, inner.config.out_of_credits_first_submits) {
        let message = "Insufficient credits: top up your balance to continue";
        return inner.refuse(StatusCode::FORBIDDEN, message, path, None);
    }
    if inner.take_fault(|c| &mut c.submits_throttled, inner.config.throttle_first_submits) {
        return throttled(inner, path, inner.config.retry_after, None);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(vec!["body: not valid JSON".into()]);
    };
    if let Verdict::Invalid(details) = inner.schemas.validate(path, &body) {
        return refuse(details);
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let body_sha256 = format!("{:x}", Sha256::digest(body.to_string().as_bytes()));
    // The id first: its time and random bits say when it would finish, which the limit on
    // generations running at once needs to know.
    let mut id = GenerationId::new(&model, false);
    let created_at = UNIX_EPOCH + Duration::from_millis(id.created_ms);
    let (queued, render) = inner.config.timeline(&id);
    if let Some(max) = inner.config.max_active {
        let admitted = inner
            .active
            .lock()
            .unwrap()
            .admit(SystemTime::now(), created_at + queued + render, max);
        if !admitted {
            return throttled(inner, path, inner.config.retry_after, Some(CONCURRENCY_LIMIT_EXCEEDED));
        }
    }
    let fails_first = {
        let mut counters = inner.counters.lock().unwrap();
        let n = counters.per_body.entry(body_sha256.clone()).or_default();
        *n += 1;
        *n <= inner.config.fail_first
    };
    if chaos.fails && !fails_first {
        inner.count_fault(Fault::GenerationError);
    }
    let fails = fails_first || chaos.fails;
    id.fails = fails;
    let id = id.encode();
    inner.stats.lock().unwrap().generations.insert(
        id.clone(),
        GenerationStats {
            created_at,
            queued,
            render,
            created_here: true,
            fails,
            polls: 0,
            first_finished_poll: None,
        },
    );
    if let Some(key) = chaos.key {
        inner.counters.lock().unwrap().chaos_key.insert(id.clone(), key);
    }
    let answer = match chaos.after {
        Some(Fault::SubmitGatewayTimeout) => Answer::GatewayTimeout,
        Some(_) => Answer::Dropped,
        None => Answer::Delivered,
    };
    attempt.generation_id = Some(id.clone());
    inner.log.lock().unwrap().submits.push(SubmitRecord {
        generation_id: id.clone(),
        at: SystemTime::now(),
        path: path.into(),
        body,
        body_sha256,
        request_id: attempt.request_id.clone(),
        answer,
        fails,
    });
    if let Some(fault) = chaos.after {
        inner.count_fault(fault);
        attempt.fault = Some(fault);
        return match answer {
            Answer::GatewayTimeout => {
                attempt.status = Some(504);
                api_error(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", path, None)
            }
            _ => connection_reset(),
        };
    }
    let credits = credits_of(&model);
    (
        StatusCode::OK,
        [("x-inference-id", id.as_str())],
        axum::Json(json!({"id": id, "status": "queued", "meta": {"usage": {"credits_used": credits}}})),
    )
        .into_response()
}

/// A 429 asking the client to come back after `after`; `code` says which limit was hit (the
/// injected faults have none).
fn throttled(inner: &Inner, path: &str, after: Duration, code: Option<&str>) -> Response {
    let message = match code {
        Some(CONCURRENCY_LIMIT_EXCEEDED) => "Too many active generations: wait for one to finish",
        _ => "Too many requests, please slow down",
    };
    *inner
        .stats
        .lock()
        .unwrap()
        .throttled
        .entry(code.unwrap_or("-").to_string())
        .or_default() += 1;
    let mut response = inner.refuse(StatusCode::TOO_MANY_REQUESTS, message, path, None);
    if let Some(code) = code {
        // The same body, with the code the service's 429s carry.
        let body = json!({
            "message": message,
            "code": code,
            "path": path,
            "requestId": format!("{:08x}", fastrand::u32(..)),
            "statusCode": "429",
            "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        });
        response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    }
    let value = if after.subsec_nanos() == 0 {
        after.as_secs().max(1).to_string()
    } else {
        format!("{:.3}", after.as_secs_f64())
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, value.parse().unwrap());
    response
}

/// The answers of faults in front of the service (a gateway, a CDN), for submits and polls
/// alike: nothing reaches the service. `target` is the path and query a redirect points to.
fn gateway_fault(
    inner: &Inner,
    fault: Fault,
    path: &str,
    target: &str,
    server_error: u16,
    redirect: u16,
    retry_after: Duration,
) -> Response {
    match fault {
        Fault::SubmitReset | Fault::PollReset => connection_reset(),
        Fault::SubmitThrottled | Fault::PollThrottled => throttled(inner, path, retry_after, None),
        Fault::SubmitHtml | Fault::PollHtml => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            chaos::CHALLENGE_PAGE,
        )
            .into_response(),
        Fault::SubmitRedirect | Fault::PollRedirect => {
            let status = StatusCode::from_u16(redirect).unwrap_or(StatusCode::FOUND);
            let location = format!("{}{target}", inner.other_url);
            (status, [(header::LOCATION, location)], "").into_response()
        }
        _ => {
            let status = StatusCode::from_u16(server_error).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = status.canonical_reason().unwrap_or("Server Error");
            inner.refuse(status, reason, path, None)
        }
    }
}

/// An answer that never comes: the head announces a body, the body fails at once, and the
/// server closes the connection without sending anything.
fn connection_reset() -> Response {
    let stream = futures::stream::once(async {
        Err::<Vec<u8>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))
    });
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header(header::CONTENT_LENGTH, "512")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// What a generation is charged: the vendor's pages show 1,050,000 for every magic generation;
/// PixVerse's charge is not listed (clients cannot know it before the first one).
fn credits_of(model: &str) -> u64 {
    match model {
        m if m.starts_with("magic/") => 1_050_000,
        m if m.starts_with("pixverse/") => 1_260_000,
        _ => 1_000_000,
    }
}

#[derive(Deserialize)]
struct PollQuery {
    generation_id: Option<String>,
}

/// What chaos holds for one poll.
#[derive(Default)]
struct PollChaos {
    slow: Option<Duration>,
    fault: Option<Fault>,
    server_error: u16,
    redirect: u16,
    retry_after: Duration,
    odd_status: Option<&'static str>,
    hostile_name: Option<&'static str>,
}

fn poll_chaos(inner: &Inner, generation_id: &str) -> PollChaos {
    let Some(draws) = inner.draws("poll", generation_id) else {
        return PollChaos::default();
    };
    let mut dice = draws.dice();
    let slow = dice.hit(Fault::PollSlow);
    let delay = dice.delay();
    let fault = dice.pick(Fault::POLL);
    let server_error = dice.choose(&[500, 502, 503, 504]);
    let redirect = dice.choose(&[301, 302, 303, 307, 308]);
    let odd = dice.hit(Fault::PollOddStatus);
    let odd_word = dice.choose(chaos::ODD_PENDING);
    let hostile = dice.hit(Fault::HostileFileName);
    let hostile_name = dice.choose(chaos::HOSTILE_FILE_NAMES);
    PollChaos {
        slow: slow.then_some(delay),
        fault,
        server_error,
        redirect,
        retry_after: draws.chaos.retry_after,
        odd_status: odd.then_some(odd_word),
        hostile_name: hostile.then_some(hostile_name),
    }
}

async fn poll(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(query): Query<PollQuery>,
) -> Response {
    let path = uri.path().to_string();
    inner.count_request(false);
    if let Err(r) = check_key(&inner, &headers, &path) {
        return *r;
    }
    inner.log.lock().unwrap().polls += 1;
    let raw_id = query.generation_id.clone().unwrap_or_default();
    let chaos = poll_chaos(&inner, &raw_id);
    if let Some(delay) = chaos.slow {
        inner.count_fault(Fault::PollSlow);
        tokio::time::sleep(delay).await;
    }
    if let Some(fault) = chaos.fault {
        inner.count_fault(fault);
        let target = uri.path_and_query().map_or(path.as_str(), |p| p.as_str());
        return gateway_fault(
            &inner,
            fault,
            &path,
            target,
            chaos.server_error,
            chaos.redirect,
            chaos.retry_after,
        );
    }
    if let Some(response) = inner.over_rate(&path) {
        return response;
    }
    if inner.take_fault(|c| &mut c.polls_failed, inner.config.unavailable_first_polls) {
        return inner.refuse(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", &path, None);
    }
    let Some(raw) = query.generation_id.filter(|s| !s.is_empty()) else {
        return api_error(StatusCode::BAD_REQUEST, "generation_id is required", &path, None);
    };
    let Some(id) = GenerationId::decode(&raw) else {
        return api_error(StatusCode::NOT_FOUND, "Generation not found", &path, None);
    };
    let now = SystemTime::now();
    let created_at = UNIX_EPOCH + Duration::from_millis(id.created_ms);
    let elapsed = now.duration_since(created_at).unwrap_or_default();
    let config = &inner.config;
    let (queued, render) = config.timeline(&id);
    let finished = elapsed >= queued + render;
    {
        let mut stats = inner.stats.lock().unwrap();
        let generation = stats.generations.entry(raw.clone()).or_insert_with(|| GenerationStats {
            created_at,
            queued,
            render,
            created_here: false,
            fails: id.fails,
            polls: 0,
            first_finished_poll: None,
        });
        generation.polls += 1;
        if finished && generation.first_finished_poll.is_none() {
            generation.first_finished_poll = Some(now);
        }
    }
    let pixverse = id.model_code == 'p';
    let status = if elapsed < queued {
        if pixverse { "waiting" } else { "queued" }
    } else if !finished {
        "generating"
    } else if id.fails {
        "error"
    } else if pixverse {
        "succeeded"
    } else {
        "completed"
    };
    let status = match chaos.odd_status {
        Some(word) if matches!(status, "queued" | "waiting" | "generating") => {
            inner.count_fault(Fault::PollOddStatus);
            word
        }
        _ => status,
    };
    let mut answer = json!({"id": raw, "status": status});
    match status {
        "completed" | "succeeded" => {
            let expired = {
                let mut counters = inner.counters.lock().unwrap();
                let n = counters.urls_per_id.entry(raw.clone()).or_default();
                *n += 1;
                *n <= config.expire_first_urls
            };
            answer["video"] = if pixverse {
                json!({"url": signed_url(&inner, &raw, expired)})
            } else {
                // The magic models describe the file too; a client may check the size it gets.
                json!({
                    "url": signed_url(&inner, &raw, expired),
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": Video::new(&raw, config.video_size).len,
                })
            };
            if let Some(name) = chaos.hostile_name {
                inner.count_fault(Fault::HostileFileName);
                answer["video"]["file_name"] = json!(name);
            }
            // Both spellings occur in the wild; the client must take either.
            let usage_key = if pixverse { "tokens_used" } else { "credits_used" };
            answer["meta"] = json!({"usage": {usage_key: credits_of(id.model())}});
        }
        "error" if pixverse => {
            answer["error"] = json!({"detail": [{"loc": ["body", "image_url"], "msg": "simulated failure: the image could not be animated", "type": "value_error"}]});
        }
        "error" => {
            answer["error"] = json!({"name": "RenderError", "message": "simulated failure: the template renderer gave up on this input"});
        }
        _ => {}
    }
    axum::Json(answer).into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn signature(inner: &Inner, id: &str, date: u64, expires: u64) -> String {
    let digest = Sha256::digest(format!("{}|{id}|{date}|{expires}", inner.secret).as_bytes());
    format!("{digest:x}")[..32].to_string()
}

fn signed_url(inner: &Inner, id: &str, expired: bool) -> String {
    let expires = inner.config.url_ttl.as_secs().max(1);
    let date = if expired { now_secs() - expires - 1 } else { now_secs() };
    let sig = signature(inner, id, date, expires);
    let name: String = url_encode(id);
    format!(
        "{}/files/{name}.mp4?X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}",
        inner.base_url
    )
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct FileQuery {
    #[serde(rename = "X-Amz-Date")]
    date: Option<u64>,
    #[serde(rename = "X-Amz-Expires")]
    expires: Option<u64>,
    #[serde(rename = "X-Amz-Signature")]
    signature: Option<String>,
}

async fn file(
    State(inner): State<Arc<Inner>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<FileQuery>,
) -> Response {
    serve_file(&inner, &name, &headers, &uri, &q, false).await
}

/// The same files, served by the other host to clients that followed a redirect.
async fn redirected_file(
    State(inner): State<Arc<Inner>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<FileQuery>,
) -> Response {
    serve_file(&inner, &name, &headers, &uri, &q, true).await
}

async fn serve_file(
    inner: &Arc<Inner>,
    name: &str,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    q: &FileQuery,
    via_redirect: bool,
) -> Response {
    let id = name.strip_suffix(".mp4").unwrap_or(name).to_string();
    let had_authorization = headers.contains_key(header::AUTHORIZATION);
    let mut valid = match (q.date, q.expires, &q.signature) {
        (Some(date), Some(expires), Some(sig)) => {
            if *sig != signature(inner, &id, date, expires) {
                Err("SignatureDoesNotMatch")
            } else if now_secs() > date + expires {
                Err("Request has expired")
            } else {
                Ok(())
            }
        }
        _ => Err("Query-string authentication requires the Signature, Expires and Date parameters"),
    };
    // The fault, and where a truncated file is cut (a third to two thirds of the way).
    let (fault, cut) = match inner.draws("download", &id) {
        Some(draws) => {
            let mut dice = draws.dice();
            let fault = match dice.pick(Fault::DOWNLOAD) {
                // The other host does not redirect again.
                Some(Fault::DownloadRedirect) if via_redirect => None,
                fault => fault,
            };
            (fault, 1.0 + dice.rng.f64())
        }
        None => (None, 1.0),
    };
    let fault = fault.filter(|_| valid.is_ok());
    if fault == Some(Fault::DownloadExpired) {
        valid = Err("Request has expired");
    }
    let status = match (&valid, fault) {
        (Err(_), _) => 403,
        (Ok(()), Some(Fault::DownloadRedirect)) => 302,
        (Ok(()), _) => 200,
    };
    if let Some(fault) = fault {
        inner.count_fault(fault);
    }
    inner.log.lock().unwrap().downloads.push(DownloadRecord {
        generation_id: id.clone(),
        status,
        had_authorization,
        via_redirect,
        fault,
    });
    if let Err(message) = valid {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        );
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml")], xml).into_response();
    }
    if fault == Some(Fault::DownloadRedirect) {
        let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let location = format!("{}{target}", inner.other_url);
        return (StatusCode::FOUND, [(header::LOCATION, location)], "").into_response();
    }
    let video = Video::new(&id, inner.config.video_size);
    let len = video.len;
    // Where the body stops: the whole file, or (truncated) a third to two thirds of it, after
    // which the connection is cut.
    let truncated = fault == Some(Fault::DownloadTruncated);
    let end = if truncated {
        (len as f64 * cut / 3.0) as u64
    } else {
        len
    };
    // A pause halfway, so that a kill in between leaves a partial download.
    let pause = inner.config.download_pause;
    let pause_at = (!pause.is_zero()).then_some(len / 2);
    let record = {
        let mut stats = inner.stats.lock().unwrap();
        stats.downloads.push(DownloadStats {
            generation_id: id.clone(),
            bytes: len,
            started_at: SystemTime::now(),
            finished_at: None,
        });
        stats.downloads.len() - 1
    };
    struct Sending {
        video: Video,
        sent: u64,
        paused: bool,
        over: bool,
        inner: Arc<Inner>,
    }
    let sending = Sending {
        video,
        sent: 0,
        paused: false,
        over: false,
        inner: inner.clone(),
    };
    // In chunks, so a large file is never whole in memory.
    let stream = futures::stream::unfold(sending, move |mut s| async move {
        if s.over {
            return None;
        }
        if s.sent < end {
            let mut max = end - s.sent;
            if let Some(at) = pause_at {
                if s.sent == at && !s.paused {
                    s.paused = true;
                    tokio::time::sleep(pause).await;
                } else if s.sent < at {
                    max = max.min(at - s.sent);
                }
            }
            let chunk = s.video.chunk(s.sent, max.min(1 << 20) as usize);
            s.sent += chunk.len() as u64;
            if s.sent == s.video.len {
                // The last byte goes out (the connection may not ask for the end of the body).
                s.inner.stats.lock().unwrap().downloads[record].finished_at = Some(SystemTime::now());
            }
            return Some((Ok(chunk), s));
        }
        s.over = true;
        if truncated {
            // A moment for what was sent to go out, then the connection is cut.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated truncated download");
            return Some((Err(cut), s));
        }
        None
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Anything but a file that reaches the other host: a client followed an API redirect. Logged
/// (with whether the key came along) and answered as a stranger would.
async fn redirected(
    State(inner): State<Arc<Inner>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    inner.log.lock().unwrap().redirected.push(RedirectedRequest {
        method: method.to_string(),
        path: uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_string(),
        had_authorization: headers.contains_key(header::AUTHORIZATION),
        at: SystemTime::now(),
    });
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>404 Not Found</h1></body></html>",
    )
        .into_response()
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
        assert_eq!(
            s.validate(GENERATIONS_PATH, &json!({"model": "google/veo3", "prompt": "x"})),
            Verdict::Unchecked
        );
    }
}
