//! The AI/ML API's two video endpoints: submit a generation, poll it. Every request waits on the
//! run's one rate limiter first. Answers are read tolerantly (the service says `completed` or
//! `succeeded`, `credits_used` or `tokens_used`); errors are classified once, here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::retry::parse_retry_after;

mod rate;
pub use rate::Turn;

/// Proof that a submit's turn came and the pacer let it go ([`ApiClient::pace_submit`]).
pub struct Paced(());
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

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Nothing reached the service: safe to send again.
    #[error("cannot reach the API: {0}")]
    Connect(String),
    /// The request may have reached the service but no answer came back.
    #[error("no answer from the API: {0}")]
    NoAnswer(String),
    #[error("HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        /// The service's own error code, when its body has one (`code`, `error.code`): it tells
        /// apart answers that share a status, such as the two kinds of 429.
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// A web page instead of the API's JSON (a CDN challenge, a proxy's error page): the request
    /// never reached the service, so nothing was created.
    #[error("a web page answered instead of the API (HTTP {status}): {title}")]
    NotTheApi { status: u16, title: String },
    /// The API answered with a redirect. It is not followed: the key would go along to wherever
    /// it points. Nothing was created by it.
    #[error("the API answered with a redirect (HTTP {status}) to `{location}`, which is not followed")]
    Redirected { status: u16, location: String },
    /// A success status with a body we cannot use.
    #[error("unexpected answer from the API: {0}")]
    BadAnswer(String),
    /// The request could not even be built (a malformed URL or header): nothing was sent.
    #[error("cannot build the request: {0}")]
    Unsendable(String),
}

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Worth another try, not before `after` if the server said so.
    Retry { after: Option<Duration> },
    /// This job cannot succeed as sent; others can.
    FailJob,
    /// Nothing can succeed (the key was refused): stop the run.
    Abort,
    /// A submit whose outcome we cannot know: a generation may exist and be paid for.
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Submit,
    Poll,
}

/// Error codes of a 429 that mean "the account has too many generations running", as opposed
/// to "too many requests": the answer is fewer generations in flight, not slower requests.
const TOO_MANY_ACTIVE_CODES: &[&str] = &[
    "concurrency_limit_exceeded",
    "too_many_active_generations",
    "max_concurrent_generations",
    "concurrent_requests_limit",
];

impl ApiError {
    /// A 429 that says the account has too many active generations (by its error code).
    pub fn is_too_many_active(&self) -> bool {
        matches!(self, ApiError::Http { status: 429, code: Some(code), .. }
            if TOO_MANY_ACTIVE_CODES.contains(&code.to_ascii_lowercase().as_str()))
    }

    /// What the service asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn disposition(&self, op: Op) -> Disposition {
        match self {
            ApiError::Connect(_) | ApiError::NotTheApi { .. } | ApiError::Redirected { .. } => {
                Disposition::Retry { after: None }
            }
            ApiError::Unsendable(_) => Disposition::FailJob,
            ApiError::NoAnswer(_) | ApiError::BadAnswer(_) => match op {
                Op::Submit => Disposition::Ambiguous,
                Op::Poll => Disposition::Retry { after: None },
            },
            ApiError::Http {
                status, retry_after, ..
            } => match status {
                401 | 403 => Disposition::Abort,
                // A gateway that timed out waiting for the service may have let the POST through;
                // so may a CDN's 520 (the origin's answer was unusable) and 524 (it answered too
                // late). Its other 52x say the origin was never reached.
                504 | 520 | 524 if op == Op::Submit => Disposition::Ambiguous,
                408 | 425 | 429 | 500 | 502 | 503 | 504 | 520..=530 => Disposition::Retry { after: *retry_after },
                _ => Disposition::FailJob,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub generation_id: String,
    pub credits: Option<f64>,
}

/// A status that means "not finished yet".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A word the service is known to use while it works (`queued`, `generating`, …).
    Known(String),
    /// `completed` without a video URL: seen as a passing state, the URL comes with a later poll.
    CompletedWithoutUrl,
    /// A word vidbatch does not know: taken as pending (a new status must not crash a run), and
    /// worth reporting once.
    Unknown(String),
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Known(word) | Pending::Unknown(word) => f.write_str(word),
            Pending::CompletedWithoutUrl => f.write_str("completed (no video URL yet)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum GenerationStatus {
    Pending(Pending),
    Completed {
        url: String,
        credits: Option<f64>,
        file_size: Option<u64>,
    },
    Failed {
        message: String,
    },
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
        }))
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
        Paced(())
    }

    /// Sends a request that has been paced.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), ApiError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
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
        let (_, headers, text) = self.send(request).await?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|_| ApiError::BadAnswer(format!("not JSON: {}", truncate(&text, 200))))?;
        Ok(read_status(&json, &headers))
    }
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

/// The `<title>` (or the start) of an HTML answer; `None` when the answer is not a web page.
fn web_page_title(headers: &reqwest::header::HeaderMap, text: &str) -> Option<String> {
    let html_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
    let head = text
        .trim_start()
        .get(..64)
        .unwrap_or(text.trim_start())
        .to_ascii_lowercase();
    if !(html_type || head.starts_with("<!doctype html") || head.starts_with("<html")) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .and_then(|start| {
            let start = start + "<title>".len();
            lower[start..]
                .find("</title>")
                .map(|len| text[start..start + len].trim())
        })
        .filter(|t| !t.is_empty())
        .unwrap_or("(an HTML page)");
    Some(truncate(title, 100))
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

fn classify_transport(e: &reqwest::Error) -> ApiError {
    let text = error_chain(e);
    if e.is_connect() {
        ApiError::Connect(text)
    } else if e.is_builder() {
        ApiError::Unsendable(text)
    } else {
        ApiError::NoAnswer(text)
    }
}

/// reqwest's message plus its causes ("error sending request: connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let msg = cause.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        source = cause.source();
    }
    text
}

/// Reads a poll answer. Unknown status words count as pending (the service has used several).
pub fn read_status(json: &Value, headers: &reqwest::header::HeaderMap) -> GenerationStatus {
    let status = json
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match status.as_str() {
        "completed" | "succeeded" | "success" | "done" => match video_url(json) {
            Some(url) => GenerationStatus::Completed {
                url,
                credits: credits(json, headers),
                file_size: json
                    .pointer("/video/file_size")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))),
            },
            None => GenerationStatus::Pending(Pending::CompletedWithoutUrl),
        },
        "error" | "failed" | "failure" | "cancelled" | "canceled" => GenerationStatus::Failed {
            message: failure_text(json),
        },
        // The pending words the service is known to use.
        "queued" | "generating" | "waiting" | "active" | "processing" | "pending" => {
            GenerationStatus::Pending(Pending::Known(status))
        }
        "" => GenerationStatus::Pending(Pending::Unknown("(no status)".into())),
        _ => GenerationStatus::Pending(Pending::Unknown(truncate(&status, 40))),
    }
}

fn video_url(json: &Value) -> Option<String> {
    let video = json.get("video")?;
    let url = match video {
        Value::String(s) => Some(s.as_str()),
        Value::Array(items) => items.iter().find_map(|v| v.get("url").and_then(Value::as_str)),
        other => other.get("url").and_then(Value::as_str),
    }?;
    (!url.is_empty()).then(|| url.to_string())
}

fn credits(json: &Value, headers: &reqwest::header::HeaderMap) -> Option<f64> {
    [
        "/meta/usage/credits_used",
        "/meta/usage/tokens_used",
        "/usage/credits_used",
    ]
    .iter()
    .find_map(|p| json.pointer(p).and_then(Value::as_f64))
    .or_else(|| {
        headers
            .get("x-aimlapi-credits-used")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
    })
}

/// The text of a failed generation, whatever shape the model gives its `error`.
fn failure_text(json: &Value) -> String {
    let Some(error) = json.get("error").filter(|e| !e.is_null()) else {
        return "the generation ended in `error` without a message".into();
    };
    if let Some(s) = error.as_str() {
        return s.to_string();
    }
    if let Some(msg) = error.get("message").and_then(Value::as_str) {
        return match error.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => format!("{name}: {msg}"),
            _ => msg.to_string(),
        };
    }
    if let Some(details) = error.get("detail").and_then(Value::as_array) {
        let msgs: Vec<String> = details
            .iter()
            .map(|d| {
                let msg = d.get("msg").and_then(Value::as_str).unwrap_or("?");
                match d.get("loc").and_then(Value::as_array) {
                    Some(loc) => {
                        let loc: Vec<String> = loc
                            .iter()
                            .map(|l| l.as_str().map_or(l.to_string(), String::from))
                            .collect();
                        format!("{}: {msg}", loc.join("."))
                    }
                    None => msg.to_string(),
                }
            })
            .collect();
        return msgs.join("; ");
    }
    truncate(&error.to_string(), 500)
}

/// The human part of an HTTP error body (`{"message": …}` and friends), or the body itself.
pub fn error_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        let body = body.trim();
        return if body.is_empty() {
            "(empty answer)".into()
        } else {
            truncate(body, 300)
        };
    };
    let mut message = json
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| json.pointer("/error/message").and_then(Value::as_str))
        .map(String::from)
        .unwrap_or_else(|| truncate(&json.to_string(), 300));
    // Validation errors carry the details that say what to fix.
    for key in ["errors", "details", "detail"] {
        if let Some(details) = json.get(key).filter(|d| !d.is_null()) {
            message.push_str(": ");
            message.push_str(&truncate(&details.to_string(), 400));
            break;
        }
    }
    message
}

/// The service's error code in an error body, when it gives one.
fn error_code(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).ok()?;
    ["/code", "/error/code", "/errorCode", "/error/type"]
        .iter()
        .find_map(|p| match json.pointer(p)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(v: Value) -> GenerationStatus {
        read_status(&v, &reqwest::header::HeaderMap::new())
    }

    #[test]
    fn success_words_and_credit_names_are_read_tolerantly() {
        assert_eq!(
            status(
                json!({"id": "a", "status": "succeeded", "video": {"url": "https://x/v.mp4"}, "meta": {"usage": {"tokens_used": 7}}})
            ),
            GenerationStatus::Completed {
                url: "https://x/v.mp4".into(),
                credits: Some(7.0),
                file_size: None
            }
        );
        assert!(matches!(
            status(json!({"status": "completed", "video": {"url": "u", "file_size": "12"}})),
            GenerationStatus::Completed {
                file_size: Some(12),
                ..
            }
        ));
        assert_eq!(
            status(json!({"status": "completed"})),
            GenerationStatus::Pending(Pending::CompletedWithoutUrl)
        );
        // Every pending word the service is seen to use is known; a new one is pending, reported.
        for word in ["queued", "generating", "waiting", "active", "processing", "pending"] {
            assert_eq!(
                status(json!({"status": word})),
                GenerationStatus::Pending(Pending::Known(word.into()))
            );
        }
        assert_eq!(
            status(json!({"status": "Rendering"})),
            GenerationStatus::Pending(Pending::Unknown("rendering".into()))
        );
    }

    #[test]
    fn error_shapes_keep_the_service_text() {
        assert_eq!(
            status(json!({"status": "error", "error": {"name": "RenderError", "message": "face not found"}})),
            GenerationStatus::Failed {
                message: "RenderError: face not found".into()
            }
        );
        assert_eq!(
            status(
                json!({"status": "error", "error": {"detail": [{"loc": ["body", "image_url"], "msg": "bad image", "type": "x"}]}})
            ),
            GenerationStatus::Failed {
                message: "body.image_url: bad image".into()
            }
        );
    }

    #[test]
    fn configuration_that_could_never_be_sent_is_refused_up_front() {
        let ok = |url: &str, key: &str, rate: f64| ApiClient::new(url, ApiKey::new(key), rate).map(drop);
        assert!(ok("https://api.example.com/", "k", 5.0).is_ok());
        assert!(ok("http://127.0.0.1:8090", "k", 0.5).is_ok());
        // Plain http carries the key in clear text: loopback only.
        for local in [
            "http://127.0.0.1:8090",
            "http://127.8.0.1",
            "http://[::1]:80/",
            "http://LocalHost:9",
        ] {
            assert!(ok(local, "k", 5.0).is_ok(), "{local}");
        }
        for url in [
            "http://example.com",
            "http://10.0.0.1:8090",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let err = ok(url, "k", 5.0).unwrap_err();
            assert!(
                err.contains("refusing to send `AIMLAPI_KEY` in clear text"),
                "{url}: {err}"
            );
        }
        for (url, key, rate) in [
            ("http://host:99999", "k", 5.0),
            ("ftp://host", "k", 5.0),
            ("https://ho st", "k", 5.0),
            ("https://host", "line\nbreak", 5.0),
            ("https://host", "k", 0.0),
            ("https://host", "k", 1e-30),
            ("https://host", "k", f64::NAN),
        ] {
            assert!(ok(url, key, rate).is_err(), "{url} {key:?} {rate}");
        }
    }

    #[test]
    fn http_errors_are_classified() {
        let http = |status| ApiError::Http {
            status,
            message: String::new(),
            code: None,
            retry_after: None,
        };
        assert_eq!(http(401).disposition(Op::Poll), Disposition::Abort);
        assert_eq!(http(403).disposition(Op::Submit), Disposition::Abort);
        assert_eq!(http(400).disposition(Op::Submit), Disposition::FailJob);
        assert_eq!(http(503).disposition(Op::Submit), Disposition::Retry { after: None });
        // A gateway timeout may have let the POST through: never retried blindly.
        assert_eq!(http(504).disposition(Op::Submit), Disposition::Ambiguous);
        assert_eq!(http(504).disposition(Op::Poll), Disposition::Retry { after: None });
        assert_eq!(
            ApiError::Unsendable(String::new()).disposition(Op::Submit),
            Disposition::FailJob
        );
        assert_eq!(
            ApiError::NoAnswer(String::new()).disposition(Op::Submit),
            Disposition::Ambiguous
        );
        assert_eq!(
            ApiError::NoAnswer(String::new()).disposition(Op::Poll),
            Disposition::Retry { after: None }
        );
        assert_eq!(
            ApiError::Connect(String::new()).disposition(Op::Submit),
            Disposition::Retry { after: None }
        );
    }

    #[test]
    fn web_pages_and_redirects_created_nothing_and_are_retried_for_free() {
        let page = ApiError::NotTheApi {
            status: 200,
            title: "Just a moment...".into(),
        };
        assert_eq!(page.disposition(Op::Submit), Disposition::Retry { after: None });
        let redirect = ApiError::Redirected {
            status: 302,
            location: "https://elsewhere.example/".into(),
        };
        assert_eq!(redirect.disposition(Op::Submit), Disposition::Retry { after: None });
        let mut html = reqwest::header::HeaderMap::new();
        html.insert(
            reqwest::header::CONTENT_TYPE,
            "text/html; charset=UTF-8".parse().unwrap(),
        );
        let cloudflare = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>";
        assert_eq!(web_page_title(&html, cloudflare).as_deref(), Some("Just a moment..."));
        let none = reqwest::header::HeaderMap::new();
        assert_eq!(
            web_page_title(&none, "  <html><body>x</body></html>").as_deref(),
            Some("(an HTML page)")
        );
        assert_eq!(web_page_title(&none, r#"{"id": "x"}"#), None);
        assert_eq!(web_page_title(&none, "not json, not html"), None);
    }

    #[test]
    fn too_many_active_is_told_from_too_many_requests_by_its_code() {
        let too_many = |code: Option<&str>| ApiError::Http {
            status: 429,
            message: "Too many requests".into(),
            code: code.map(String::from),
            retry_after: None,
        };
        assert!(too_many(Some("concurrency_limit_exceeded")).is_too_many_active());
        assert!(too_many(Some("Too_Many_Active_Generations")).is_too_many_active());
        assert!(!too_many(Some("rate_limit_exceeded")).is_too_many_active());
        assert!(!too_many(None).is_too_many_active());
    }

    #[test]
    fn error_codes_are_kept() {
        assert_eq!(
            error_code(r#"{"code":"too_many_active","message":"x"}"#).as_deref(),
            Some("too_many_active")
        );
        assert_eq!(
            error_code(r#"{"error":{"code":429,"message":"x"}}"#).as_deref(),
            Some("429")
        );
        assert_eq!(error_code("plain"), None);
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"message":"Body validation error!","errors":[{"path":"template"}],"statusCode":"400"}"#),
            r#"Body validation error!: [{"path":"template"}]"#
        );
        assert_eq!(error_message("upstream down"), "upstream down");
    }
}
