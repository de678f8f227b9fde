//! A simulator of the AI/ML API's video endpoints: a real HTTP server (axum) that validates
//! requests with the vendor's OpenAPI schemas, moves generations through `queued` →
//! `generating` → `completed`/`succeeded`/`error` on a clock, and serves real MP4 files from
//! presigned-style URLs that expire.
//!
//! Generation ids carry their creation time and fate, so any simulator instance can answer for
//! an id another one issued: a `run --simulate` that was killed resumes against a new one just
//! as a real run resumes against the service.

mod ids;
pub mod media;
pub mod schema;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::GENERATIONS_PATH;
use ids::GenerationId;
use schema::{Schemas, Verdict};

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
        }
    }
}

/// One accepted submit, as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitRecord {
    pub generation_id: String,
    /// When it arrived.
    pub at: SystemTime,
    pub path: String,
    pub body: Value,
    /// SHA-256 of the canonical body: equal bodies, equal hashes.
    pub body_sha256: String,
}

/// One file request.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadRecord {
    pub generation_id: String,
    pub status: u16,
    /// Whether the request carried an `Authorization` header (it never should).
    pub had_authorization: bool,
}

/// Everything the simulator saw, for tests and for `GET /_sim/log`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimLog {
    pub submits: Vec<SubmitRecord>,
    /// Refused requests: (HTTP status, message, when).
    pub refused: Vec<(u16, String, SystemTime)>,
    pub polls: u64,
    pub downloads: Vec<DownloadRecord>,
}

struct Inner {
    config: SimConfig,
    schemas: Schemas,
    /// Signs download URLs; random per process, so URLs from another instance are refused.
    secret: String,
    base_url: String,
    log: Mutex<SimLog>,
    counters: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Generations per body hash (for `fail_first`).
    per_body: HashMap<String, u32>,
    /// URLs given per generation (for `expire_first_urls`).
    urls_per_id: HashMap<String, u32>,
    submits_throttled: u32,
    submits_unpaid: u32,
    polls_failed: u32,
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
}

/// A running simulator.
pub struct RunningSim {
    pub base_url: String,
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// What the simulator has seen so far.
    pub fn log(&self) -> SimLog {
        self.inner.log.lock().unwrap().clone()
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Binds `addr` (port 0 picks a free one) and serves in the background.
pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let inner = Arc::new(Inner {
        config,
        schemas: Schemas::load(),
        secret: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        base_url: base_url.clone(),
        log: Mutex::default(),
        counters: Mutex::default(),
    });
    let app = Router::new()
        .route(GENERATIONS_PATH, get(poll).post(submit_universal))
        .route(LEGACY_PIXVERSE_PATH, get(poll).post(submit_legacy))
        .route("/files/{name}", get(file))
        .route("/_sim/log", get(log))
        .fallback(not_found)
        .with_state(inner.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(RunningSim {
        base_url,
        addr,
        inner,
        server,
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

async fn submit_universal(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    submit(&inner, GENERATIONS_PATH, &headers, &body)
}

async fn submit_legacy(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    submit(&inner, LEGACY_PIXVERSE_PATH, &headers, &body)
}

fn submit(inner: &Inner, path: &str, headers: &HeaderMap, body: &str) -> Response {
    if let Err(r) = check_key(inner, headers, path) {
        return *r;
    }
    let refuse =
        |details: Vec<String>| inner.refuse(StatusCode::BAD_REQUEST, "Body validation error!", path, Some(details));
    if inner.take_fault(|c| &mut c.submits_unpaid, inner.config.out_of_credits_first_submits) {
        let message = "Insufficient credits: top up your balance to continue";
        return inner.refuse(StatusCode::FORBIDDEN, message, path, None);
    }
    if inner.take_fault(|c| &mut c.submits_throttled, inner.config.throttle_first_submits) {
        let message = "Too many requests, please slow down";
        let mut response = inner.refuse(StatusCode::TOO_MANY_REQUESTS, message, path, None);
        let secs = inner.config.retry_after.as_secs().max(1).to_string();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.parse().unwrap());
        return response;
    }
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return refuse(vec!["body: not valid JSON".into()]);
    };
    if let Verdict::Invalid(details) = inner.schemas.validate(path, &body) {
        return refuse(details);
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let body_sha256 = format!("{:x}", Sha256::digest(body.to_string().as_bytes()));
    let fails = {
        let mut counters = inner.counters.lock().unwrap();
        let n = counters.per_body.entry(body_sha256.clone()).or_default();
        *n += 1;
        *n <= inner.config.fail_first
    };
    let id = GenerationId::new(&model, fails).encode();
    inner.log.lock().unwrap().submits.push(SubmitRecord {
        generation_id: id.clone(),
        at: SystemTime::now(),
        path: path.into(),
        body,
        body_sha256,
    });
    let credits = credits_of(&model);
    (
        StatusCode::OK,
        [("x-inference-id", id.as_str())],
        axum::Json(json!({"id": id, "status": "queued", "meta": {"usage": {"credits_used": credits}}})),
    )
        .into_response()
}

fn credits_of(model: &str) -> u64 {
    match model {
        "magic/text-to-video" => 2_000_000,
        m if m.starts_with("magic/") => 1_050_000,
        m if m.starts_with("pixverse/") => 1_260_000,
        _ => 1_000_000,
    }
}

#[derive(Deserialize)]
struct PollQuery {
    generation_id: Option<String>,
}

async fn poll(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(query): Query<PollQuery>,
) -> Response {
    let path = uri.path().to_string();
    if let Err(r) = check_key(&inner, &headers, &path) {
        return *r;
    }
    inner.log.lock().unwrap().polls += 1;
    if inner.take_fault(|c| &mut c.polls_failed, inner.config.unavailable_first_polls) {
        return inner.refuse(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", &path, None);
    }
    let Some(raw) = query.generation_id.filter(|s| !s.is_empty()) else {
        return api_error(StatusCode::BAD_REQUEST, "generation_id is required", &path, None);
    };
    let Some(id) = GenerationId::decode(&raw) else {
        return api_error(StatusCode::NOT_FOUND, "Generation not found", &path, None);
    };
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(Duration::from_millis(id.created_ms));
    let config = &inner.config;
    let pixverse = id.model_code == 'p';
    let status = if elapsed < config.queued {
        if pixverse { "waiting" } else { "queued" }
    } else if elapsed < config.queued + config.generating {
        "generating"
    } else if id.fails {
        "error"
    } else if pixverse {
        "succeeded"
    } else {
        "completed"
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
                    "file_size": media::video(&raw).len(),
                })
            };
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
    Query(q): Query<FileQuery>,
) -> Response {
    let id = name.strip_suffix(".mp4").unwrap_or(&name).to_string();
    let had_authorization = headers.contains_key(header::AUTHORIZATION);
    let valid = match (q.date, q.expires, &q.signature) {
        (Some(date), Some(expires), Some(sig)) => {
            if *sig != signature(&inner, &id, date, expires) {
                Err("SignatureDoesNotMatch")
            } else if now_secs() > date + expires {
                Err("Request has expired")
            } else {
                Ok(())
            }
        }
        _ => Err("Query-string authentication requires the Signature, Expires and Date parameters"),
    };
    let status = if valid.is_ok() { 200 } else { 403 };
    inner.log.lock().unwrap().downloads.push(DownloadRecord {
        generation_id: id.clone(),
        status,
        had_authorization,
    });
    if let Err(message) = valid {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        );
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml")], xml).into_response();
    }
    let bytes = media::video(&id);
    let len = bytes.len();
    let pause = inner.config.download_pause;
    let body = if pause.is_zero() {
        Body::from(bytes)
    } else {
        // Half now, the rest after a pause: a kill in between leaves a partial download.
        let second = bytes[len / 2..].to_vec();
        let first = bytes[..len / 2].to_vec();
        let stream =
            futures::stream::iter([(first, Duration::ZERO), (second, pause)]).then(|(chunk, wait)| async move {
                tokio::time::sleep(wait).await;
                Ok::<_, std::io::Error>(chunk)
            });
        Body::from_stream(stream)
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
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
