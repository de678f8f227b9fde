//! The poll endpoint: a generation's status, from its id and the clock.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::chaos::{self, Fault};
use super::files::signed_url;
use super::ids::GenerationId;
use super::media::Video;
use super::submit::{CREDITS_HEADER, api_error, charged, check_key, gateway_fault};
use super::{GenerationStats, Inner};

#[derive(Deserialize)]
pub(super) struct PollQuery {
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

pub(super) async fn poll(
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
    let now = inner.config.clock.now();
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
            let credits = id
                .credits
                .unwrap_or_else(|| charged(id.model(), &serde_json::Value::Null));
            answer["meta"] = json!({"usage": {usage_key: credits}});
            let header = [(CREDITS_HEADER, credits.to_string())];
            return (header, axum::Json(answer)).into_response();
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
