//! Presigned-style download URLs, the files they serve (on this host and on the other one,
//! after a redirect), and what reaches the other host that is not a file.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::chaos::Fault;
use super::media::Video;
use super::{DownloadRecord, DownloadStats, Inner, RedirectedRequest};

fn now_secs(inner: &Inner) -> u64 {
    inner
        .config
        .clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn signature(inner: &Inner, id: &str, date: u64, expires: u64) -> String {
    let digest = Sha256::digest(format!("{}|{id}|{date}|{expires}", inner.secret).as_bytes());
    format!("{digest:x}")[..32].to_string()
}

pub(super) fn signed_url(inner: &Inner, id: &str, expired: bool) -> String {
    let expires = inner.config.url_ttl.as_secs().max(1);
    let now = now_secs(inner);
    let date = if expired { now - expires - 1 } else { now };
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
pub(super) struct FileQuery {
    #[serde(rename = "X-Amz-Date")]
    date: Option<u64>,
    #[serde(rename = "X-Amz-Expires")]
    expires: Option<u64>,
    #[serde(rename = "X-Amz-Signature")]
    signature: Option<String>,
}

/// A file, served by the file host, or (`REDIRECTED`) by the other host to clients that
/// followed a redirect.
pub(super) async fn file<const REDIRECTED: bool>(
    State(inner): State<Arc<Inner>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<FileQuery>,
) -> Response {
    serve_file(&inner, &name, &headers, &uri, &q, REDIRECTED).await
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
            } else if now_secs(inner) > date + expires {
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
pub(super) async fn redirected(
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
