//! The AI/ML API's two video endpoints: submit a generation, poll it. Every request waits on the
//! run's one rate limiter first. Answers are read tolerantly (the service says `completed` or
//! `succeeded`, `credits_used` or `tokens_used`); errors are classified once, here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::retry::parse_retry_after;

mod answer;
mod errors;
mod rate;
#[cfg(test)]
mod tests;

use answer::credits;
pub use answer::{GenerationStatus, Pending, Submission, read_status};
pub use errors::{ApiError, Disposition, Op, error_chain, error_message, truncate};
use errors::{classify_transport, error_code, web_page_title};
pub use rate::Turn;

/// Proof that a submit's turn came and the pacer let it go ([`ApiClient::pace_submit`]),
/// holding one of the [`MAX_CONNECTIONS`] the request will go out on.
pub struct Paced(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

/// The most API requests under way at once, and so the most connections open to the API: every
/// request that finds none idle in the pool opens one, and at 2,000 requests a second that was
/// 10,072 connections for 10,000 submits (85 with this cap). 64 requests of a few hundred
/// milliseconds each still carry hundreds a second.
pub const MAX_CONNECTIONS: usize = 64;

/// Of the [`MAX_CONNECTIONS`], the most that polls may hold: the rest are kept for submits, whose
/// idle slots cost more than a poll's wait (the permits are handed out first come, first served,
/// so without this a submit would queue behind every poll once connections run short).
const MOST_POLL_CONNECTIONS: usize = MAX_CONNECTIONS - 8;
use rate::{Lane, RateLimit};

/// The path the client appends to the base URL.
pub const GENERATIONS_PATH: &str = "/v2/video/generations";
/// Where the real service lives when `AIMLAPI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.aimlapi.com";

/// How long API requests may take, chosen for the real service: a submit is answered within a
/// few seconds (the render happens later), a poll within one, and each answer is a few hundred
/// bytes. The limits leave room for a slow day many times over, while a server that trickles
/// its answer a byte at a time cannot hold a request (and its slot) for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimits {
    /// No byte for this long on an open connection: the request has failed.
    pub read_idle: Duration,
    /// The whole of a submit, from sending to the last byte of its answer. One cut off by this
    /// is `unknown` (the POST reached the service), never sent again on its own.
    pub submit: Duration,
    /// The whole of a poll; one cut off is simply asked again later, for free.
    pub poll: Duration,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            read_idle: Duration::from_secs(30),
            submit: Duration::from_secs(90),
            poll: Duration::from_secs(30),
        }
    }
}

/// The largest answer read from the API. Its answers are a few KB: a larger one is not the
/// service's (a misrouted file, a hostile server) and is refused before it fills the memory.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The API key. Its `Debug` never shows it, so no log line or error can leak it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

pub struct ApiClient {
    http: reqwest::Client,
    /// Parsed once: reqwest parses a URL given as text at every request.
    endpoint: reqwest::Url,
    /// `Bearer <key>`, made once and marked sensitive (kept out of debug output).
    authorization: reqwest::header::HeaderValue,
    /// `--rate`: every request waits for a turn, and is sent on pace.
    rate: RateLimit,
    limits: TimeLimits,
    requests: AtomicU64,
    /// How long a request holds its connection, smoothed (µs; 0 before the first answer).
    latency_us: AtomicU64,
    /// One permit per request under way ([`MAX_CONNECTIONS`]).
    connections: Arc<tokio::sync::Semaphore>,
    /// One more per poll under way ([`MOST_POLL_CONNECTIONS`]), taken before its connection.
    poll_connections: Arc<tokio::sync::Semaphore>,
}

impl ApiClient {
    /// `rate` is the most API requests per second, submits and polls together.
    pub fn new(base_url: &str, key: ApiKey, rate: f64) -> Result<Arc<ApiClient>, String> {
        ApiClient::with_limits(base_url, key, rate, TimeLimits::default())
    }

    /// [`ApiClient::new`] with other time limits (tests give short ones).
    pub fn with_limits(base_url: &str, key: ApiKey, rate: f64, limits: TimeLimits) -> Result<Arc<ApiClient>, String> {
        let rate = RateLimit::new(rate)?;
        let http = http_client()
            .read_timeout(limits.read_idle)
            // A redirect is answered, never followed: the key would go along to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let base = base_url.trim_end_matches('/');
        check_base_url(base)?;
        // Checked now, not at the first request: the key goes into a header as it is.
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.0))
            .map_err(|_| "`AIMLAPI_KEY` holds characters that cannot be sent in an HTTP header".to_string())?;
        authorization.set_sensitive(true);
        let endpoint = reqwest::Url::parse(&format!("{base}{GENERATIONS_PATH}"))
            .map_err(|e| format!("`AIMLAPI_BASE_URL` is not a usable URL ({e}): `{base}`"))?;
        Ok(Arc::new(ApiClient {
            http,
            endpoint,
            authorization,
            rate,
            limits,
            requests: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            connections: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
            poll_connections: Arc::new(tokio::sync::Semaphore::new(MOST_POLL_CONNECTIONS)),
        }))
    }

    /// `--rate`: the most requests per second, submits and polls together.
    pub fn rate(&self) -> f64 {
        self.rate.per_second()
    }

    /// The requests a second this client can send: `--rate`, or fewer when its
    /// [`MAX_CONNECTIONS`] cannot carry that many at the time each request takes (a slow link, a
    /// loaded service). Polls are planned within this, not within a rate they could not reach.
    pub fn throughput(&self) -> f64 {
        let latency = self.latency_us.load(Ordering::Relaxed) as f64 / 1e6;
        match latency > 0.0 {
            true => self.rate().min(MAX_CONNECTIONS as f64 / latency),
            false => self.rate(),
        }
    }

    /// Folds one request's time on its connection into the smoothed latency (an eighth of the
    /// way: one slow answer moves it, and a few quick ones bring it back). Updates that race
    /// may lose one sample: it is an estimate.
    fn took(&self, elapsed: Duration) {
        let sample = elapsed.as_micros().clamp(1, u64::MAX as u128) as u64;
        let before = self.latency_us.load(Ordering::Relaxed);
        let after = match before {
            0 => sample,
            _ => before - before / 8 + sample / 8,
        };
        self.latency_us.store(after.max(1), Ordering::Relaxed);
    }

    /// API requests sent so far (submits and polls).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Waits until the rate limiter lets one more request through. Separate from sending, so a
    /// caller can give up its place (a cancelled run) before anything goes out.
    pub async fn turn(&self) -> Turn {
        self.rate.turn().await
    }

    /// A turn if one is free right now, without waiting.
    pub fn try_turn(&self) -> Option<Turn> {
        self.rate.try_turn()
    }

    /// Waits until a submit granted `turn` may leave (the pacer's spacing, submits ahead of
    /// polls). The caller records the submit after this and before [`ApiClient::submit`], so that
    /// a run killed while the request waits here leaves no `unknown` behind.
    pub async fn pace_submit(&self, turn: Turn) -> Paced {
        self.rate.pace(turn, Lane::Submit).await;
        Paced(self.connection().await)
    }

    /// One of the [`MAX_CONNECTIONS`], waited for when all are in use.
    async fn connection(&self) -> tokio::sync::OwnedSemaphorePermit {
        acquire(&self.connections).await
    }

    /// Sends a request that has been paced.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), ApiError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = tokio::time::Instant::now();
        let response = request
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .send()
            .await;
        // A request that timed out held its connection all that time too.
        self.took(sent.elapsed());
        let response = response.map_err(|e| classify_transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_redirection() {
            let location = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "(no Location)".to_string(), |l| truncate(l, 200));
            return Err(ApiError::Redirected {
                status: status.as_u16(),
                location,
            });
        }
        let text = read_answer(response).await?;
        if let Some(title) = web_page_title(&headers, &text) {
            return Err(ApiError::NotTheApi {
                status: status.as_u16(),
                title,
            });
        }
        if !status.is_success() {
            let retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err(ApiError::Http {
                status: status.as_u16(),
                message: error_message(&text),
                code: error_code(&text),
                retry_after,
            });
        }
        Ok((status, headers, text))
    }

    /// `POST /v2/video/generations`. `request_id` goes in `X-Client-Request-Id` so a submit can
    /// be traced on the service side.
    pub async fn submit(&self, _paced: Paced, body: &Value, request_id: &str) -> Result<Submission, ApiError> {
        let request = self
            .http
            .post(self.endpoint.clone())
            .timeout(self.limits.submit)
            .header("X-Client-Request-Id", request_id)
            .json(body);
        let (_, headers, text) = self.send(request).await?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|_| ApiError::BadAnswer(format!("not JSON: {}", truncate(&text, 200))))?;
        let id = json
            .get("id")
            .or_else(|| json.get("generation_id"))
            .and_then(Value::as_str)
            .or_else(|| headers.get("x-inference-id").and_then(|v| v.to_str().ok()))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ApiError::BadAnswer(format!("no generation id in {}", truncate(&text, 200))))?;
        Ok(Submission {
            generation_id: id.to_string(),
            credits: credits(&json, &headers),
        })
    }

    /// `GET /v2/video/generations?generation_id=…` (the id is URL-encoded: it may hold `:` and `/`).
    pub async fn poll(&self, turn: Turn, generation_id: &str) -> Result<GenerationStatus, ApiError> {
        let request = self
            .http
            .get(self.endpoint.clone())
            .timeout(self.limits.poll)
            .query(&[("generation_id", generation_id)]);
        self.rate.pace(turn, Lane::Poll).await;
        // The poll's share first, then a connection: a poll never waits holding one.
        let _share = acquire(&self.poll_connections).await;
        let _connection = self.connection().await;
        let (_, headers, text) = self.send(request).await?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|_| ApiError::BadAnswer(format!("not JSON: {}", truncate(&text, 200))))?;
        Ok(read_status(&json, &headers))
    }
}

/// A permit of `pool`, waited for when none is free.
async fn acquire(pool: &Arc<tokio::sync::Semaphore>) -> tokio::sync::OwnedSemaphorePermit {
    pool.clone()
        .acquire_owned()
        .await
        .expect("the connection semaphores are never closed")
}

/// The shared HTTP settings of the API client and the downloader. TLS is rustls with the ring
/// provider (installed once here), so building needs nothing but cargo.
pub fn http_client() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("vidbatch/", env!("CARGO_PKG_VERSION")))
}

/// The key goes out in a header: over plain http, anyone on the way reads it. Plain http is
/// allowed for loopback only (the simulator, a local proxy).
pub fn check_base_url(base: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(base)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| format!("`AIMLAPI_BASE_URL` must be an http(s) URL, not `{base}`"))?;
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(format!(
            "refusing to send `AIMLAPI_KEY` in clear text to `{}`: `AIMLAPI_BASE_URL` must use https:// \
             (plain http is only for 127.0.0.1, ::1 and localhost)",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Reads an answer's body, refusing one over [`MAX_ANSWER_BYTES`] as soon as it says or shows so.
async fn read_answer(mut response: reqwest::Response) -> Result<String, ApiError> {
    let too_large = || {
        ApiError::BadAnswer(format!(
            "the answer is larger than {} KiB, which no answer of this API is; refused unread",
            MAX_ANSWER_BYTES >> 10
        ))
    };
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => return Err(too_large()),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no whole answer in time ({})", error_chain(&e))
                } else {
                    error_chain(&e)
                };
                return Err(ApiError::NoAnswer(format!("the answer was cut off: {why}")));
            }
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
