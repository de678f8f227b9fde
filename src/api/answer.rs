//! Reading the service's answers tolerantly: it says `completed` or `succeeded`, `credits_used`
//! or `tokens_used`, and gives a failed generation's error in several shapes.

use serde_json::Value;

use super::truncate;

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

pub(super) fn credits(json: &Value, headers: &reqwest::header::HeaderMap) -> Option<f64> {
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
