//! The submit endpoints, and the answers they share with polls: the service's error body, the
//! key check, 429s, faults in front of the service, a reset connection, the credits charged.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::chaos::{self, Fault};
use super::ids::GenerationId;
use super::schema::Verdict;
use super::{
    Answer, CONCURRENCY_LIMIT_EXCEEDED, GenerationStats, Inner, LEGACY_PIXVERSE_PATH, SubmitAttempt, SubmitRecord,
};
use crate::api::GENERATIONS_PATH;

/// The service's error body shape.
pub(super) fn api_error(status: StatusCode, message: &str, path: &str, details: Option<Value>) -> Response {
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

pub(super) fn check_key(inner: &Inner, headers: &HeaderMap, path: &str) -> Result<(), Box<Response>> {
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

pub(super) async fn submit_universal(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
    submit(&inner, GENERATIONS_PATH, &headers, body).await
}

pub(super) async fn submit_legacy(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Body) -> Response {
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
    {
        let mut log = inner.log.lock().unwrap();
        log.submits_received += 1;
        log.received_ids.push(request_id.clone());
    }
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
    let data_uri = |v: &Value| v.as_str().is_some_and(|s| s.starts_with("data:"));
    if let Some(field) = inner.config.urls_only.iter().find(|f| {
        body.get(f.as_str())
            .is_some_and(|v| data_uri(v) || v.as_array().is_some_and(|a| a.iter().any(data_uri)))
    }) {
        return refuse(vec![format!("/{field}: must be a URL; base64 data is not supported")]);
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let body_sha256 = format!("{:x}", Sha256::digest(body.to_string().as_bytes()));
    // The id first: its time and random bits say when it would finish, which the limit on
    // generations running at once needs to know.
    let credits = charged(&model, &body);
    let mut id = GenerationId::new(&model, false, inner.config.clock.now());
    if id.model_code == 'x' {
        id.credits = Some(credits);
    }
    let created_at = UNIX_EPOCH + Duration::from_millis(id.created_ms);
    let (queued, render) = inner.config.timeline(&id);
    if let Some(max) = inner.config.max_active {
        let admitted = inner
            .active
            .lock()
            .unwrap()
            .admit(inner.config.clock.now(), created_at + queued + render, max);
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
    (
        StatusCode::OK,
        [
            ("x-inference-id", id.as_str()),
            (CREDITS_HEADER, credits.to_string().as_str()),
        ],
        axum::Json(json!({"id": id, "status": "queued", "meta": {"usage": {"credits_used": credits}}})),
    )
        .into_response()
}

/// A 429 asking the client to come back after `after`; `code` says which limit was hit (the
/// injected faults have none).
pub(super) fn throttled(inner: &Inner, path: &str, after: Duration, code: Option<&str>) -> Response {
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
pub(super) fn gateway_fault(
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

/// The header that repeats the credits a submit or a finished poll reports.
pub(super) const CREDITS_HEADER: &str = "x-aimlapi-credits-used";

/// What a generation is charged: by the simulator's pricing ([`super::pricing`]), or as before
/// the catalog for an id issued by an older simulator.
pub(super) fn charged(model: &str, body: &Value) -> u64 {
    super::pricing::charge(model, body).unwrap_or(1_000_000)
}
