//! What the simulator saw ([`SimLog`]): the generations created, every submit attempt, every
//! file request, the requests that followed a redirect, the faults injected.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::chaos::Fault;

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
    /// The client request id of each POST to a submit path, on arrival (before any answer).
    pub received_ids: Vec<Option<String>>,
    /// API requests that followed a redirect to the other host.
    pub redirected: Vec<RedirectedRequest>,
    /// Faults injected, per kind.
    pub faults: BTreeMap<Fault, u64>,
    /// Requests for `/v1/models`, and how many of them were answered 304 (`If-None-Match`).
    pub model_listings: u64,
    pub model_listings_not_modified: u64,
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
