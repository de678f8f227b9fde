//! What can go wrong with an API request, classified once: which errors are worth retrying, which
//! mean the account has too many generations running, which stop the run; and the words an
//! error body or an HTML page gives for it.

use std::time::Duration;

use serde_json::Value;

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

/// The `<title>` (or the start) of an HTML answer; `None` when the answer is not a web page.
pub(super) fn web_page_title(headers: &reqwest::header::HeaderMap, text: &str) -> Option<String> {
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

pub(super) fn classify_transport(e: &reqwest::Error) -> ApiError {
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
pub(super) fn error_code(body: &str) -> Option<String> {
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
