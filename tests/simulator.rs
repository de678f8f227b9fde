//! The simulator behaves like the service (as its documentation and OpenAPI JSON describe it),
//! checked with plain HTTP requests, not with vidbatch's client.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Harness, fast_config};
use serde_json::{Value, json};
use vidbatch::sim::{LEGACY_PIXVERSE_PATH, SimClock, SimConfig};

const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn new(h: &Harness) -> Client {
        Client {
            http: common::blocking_client(),
            base: h.sim.base_url.clone(),
        }
    }

    fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().unwrap();
        (res.status().as_u16(), res.json().unwrap())
    }

    fn get(&self, path: &str, id: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .query(&[("generation_id", id)])
            .bearer_auth(common::KEY)
            .send()
            .unwrap();
        (res.status().as_u16(), res.json().unwrap())
    }
}

/// The vendor's response schema for a poll (from the image-to-video page's GET document),
/// with `nullable` fields made acceptable to JSON Schema.
fn poll_response_validator() -> jsonschema::Validator {
    let doc: Value = serde_json::from_str(include_str!("../src/sim/openapi/magic-image-to-video.get.json")).unwrap();
    let mut schema = doc
        .pointer("/paths/~1v2~1video~1generations/get/responses/200/content/application~1json/schema")
        .unwrap()
        .clone();
    fn allow_null(v: &mut Value) {
        if let Value::Object(map) = v {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                *v = json!({"anyOf": [{"type": "null"}, v.clone()]});
                if let Some(inner) = v.pointer_mut("/anyOf/1") {
                    allow_null(inner);
                }
                return;
            }
            for child in map.values_mut() {
                allow_null(child);
            }
        }
    }
    allow_null(&mut schema);
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn generations_move_through_the_documented_statuses_and_answers_match_the_schema() {
    // Minutes in each status, passed by moving the simulator's clock: no race with the machine.
    let clock = SimClock::default();
    let h = Harness::new(SimConfig {
        queued: Duration::from_secs(600),
        generating: Duration::from_secs(600),
        clock: clock.clone(),
        ..SimConfig::default()
    });
    let c = Client::new(&h);
    let (status, submitted) = c.post(
        "/v2/video/generations",
        Some(common::KEY),
        &json!({"model": "magic/image-to-video", "image_url": PNG, "template": "Tokyo Billboard"}),
    );
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["status"], "queued");
    assert!(submitted["meta"]["usage"]["credits_used"].as_u64().unwrap() > 0);
    let id = submitted["id"].as_str().unwrap().to_string();
    let validator = poll_response_validator();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, answer) = c.get("/v2/video/generations", &id);
        assert_eq!(status, 200);
        assert!(validator.is_valid(&answer), "{answer}");
        let s = answer["status"].as_str().unwrap().to_string();
        if s == "completed" {
            assert!(answer["video"]["url"].as_str().unwrap().contains("X-Amz-Expires="));
        }
        seen.push(s);
        clock.advance(Duration::from_secs(600));
    }
    assert_eq!(seen, ["queued", "generating", "completed"]);
}

#[test]
fn the_legacy_pixverse_path_works_and_ids_with_colons_and_slashes_poll() {
    let clock = SimClock::default();
    let h = Harness::new(SimConfig {
        clock: clock.clone(),
        ..fast_config()
    });
    let c = Client::new(&h);
    let body = json!({"model": "pixverse/v5/image-to-video", "image_url": PNG, "prompt": "waves", "duration": 5});
    let (status, submitted) = c.post(LEGACY_PIXVERSE_PATH, Some(common::KEY), &body);
    assert_eq!(status, 200, "{submitted}");
    let id = submitted["id"].as_str().unwrap().to_string();
    assert!(id.ends_with(":pixverse/v5/image-to-video"));
    let (status, first) = c.get(LEGACY_PIXVERSE_PATH, &id);
    assert_eq!(status, 200);
    assert_eq!(
        first["status"], "waiting",
        "pixverse reports `waiting` before `generating`"
    );
    clock.advance(Duration::from_secs(60));
    let (_, done) = c.get("/v2/video/generations", &id);
    assert_eq!(done["status"], "succeeded", "pixverse ends with `succeeded`");
    assert!(done["meta"]["usage"]["tokens_used"].is_number());
    // Magic models are not served on the pixverse path.
    let (status, _) = c.post(
        LEGACY_PIXVERSE_PATH,
        Some(common::KEY),
        &json!({"model": "magic/text-to-video", "prompt": "x"}),
    );
    assert_eq!(status, 400);
}

#[test]
fn the_simulator_refuses_what_the_service_refuses() {
    let h = Harness::new(SimConfig {
        key: Some("right".into()),
        ..fast_config()
    });
    let c = Client::new(&h);
    let ok = json!({"model": "magic/text-to-video", "prompt": "HI"});
    let (status, body) = c.post("/v2/video/generations", None, &ok);
    assert_eq!((status, body["statusCode"].as_str()), (401, Some("401")));
    let (status, _) = c.post("/v2/video/generations", Some("wrong"), &ok);
    assert_eq!(status, 401);
    for (bad, detail) in [
        (json!({"model": "magic/text-to-video"}), "prompt"),
        (
            json!({"model": "magic/image-to-video", "image_url": PNG, "template": "Rotating Сards"}),
            "template",
        ),
        (
            json!({"model": "magic/video-to-video", "video_url": PNG, "template": "New York Times Square (66)"}),
            "template",
        ),
        (
            json!({"model": "pixverse/v5/image-to-video", "image_url": PNG, "prompt": "p", "resolution": "1080p", "duration": 8}),
            "not",
        ),
        (
            json!({"model": "pixverse/v5/image-to-video", "image_url": PNG, "prompt": "p", "duration": "5"}),
            "duration",
        ),
        (json!({"model": "magic/image-to-vidoe", "image_url": PNG}), "model"),
    ] {
        let (status, body) = c.post("/v2/video/generations", Some("right"), &bad);
        assert_eq!(status, 400, "{bad} was accepted");
        assert_eq!(body["message"], "Body validation error!");
        assert!(body["errors"].to_string().contains(detail), "{bad}: {body}");
    }
    let (status, _) = c.post("/v2/video/generations", Some("right"), &ok);
    assert_eq!(status, 200);
    let res = common::blocking_client()
        .get(format!("{}/v2/video/generations?generation_id=nope", h.sim.base_url))
        .bearer_auth("right")
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

#[test]
fn download_urls_expire_and_are_signed() {
    let clock = SimClock::default();
    let h = Harness::new(SimConfig {
        url_ttl: Duration::from_secs(600),
        clock: clock.clone(),
        ..fast_config()
    });
    let c = Client::new(&h);
    let (_, submitted) = c.post(
        "/v2/video/generations",
        Some(common::KEY),
        &json!({"model": "magic/text-to-video", "prompt": "X"}),
    );
    let id = submitted["id"].as_str().unwrap().to_string();
    clock.advance(Duration::from_secs(60));
    let (_, done) = c.get("/v2/video/generations", &id);
    let url = done["video"]["url"].as_str().unwrap().to_string();
    let video = reqwest::blocking::get(&url).unwrap();
    assert_eq!(video.status().as_u16(), 200);
    assert_eq!(&video.bytes().unwrap()[4..8], b"ftyp");
    let forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(reqwest::blocking::get(&forged).unwrap().status().as_u16(), 403);
    clock.advance(Duration::from_secs(601));
    let expired = reqwest::blocking::get(&url).unwrap();
    assert_eq!(expired.status().as_u16(), 403);
    assert!(expired.text().unwrap().contains("AccessDenied"));
}

#[test]
fn vidbatch_sim_serves_on_its_own() {
    let mut child = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_vidbatch"))
            .args(["sim", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().strip_prefix("simulator listening on ").unwrap().to_string();
    let res = common::blocking_client()
        .post(format!("{base}/v2/video/generations"))
        .bearer_auth("k")
        .json(&json!({"model": "magic/text-to-video", "prompt": "ALONE"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

// The account limits, render times and counters that benchmarks use (all off by default).

fn text_to_video(prompt: &str) -> Value {
    json!({"model": "magic/text-to-video", "prompt": prompt})
}

/// A POST or GET with the test key: status, `Retry-After`, body.
fn send(req: reqwest::blocking::RequestBuilder) -> (u16, Option<String>, Value) {
    let res = req.bearer_auth(common::KEY).send().unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, res.json().unwrap_or(Value::Null))
}

fn submit(h: &Harness, prompt: &str) -> (u16, Option<String>, Value) {
    let url = format!("{}/v2/video/generations", h.sim.base_url);
    send(common::blocking_client().post(url).json(&text_to_video(prompt)))
}

fn poll(h: &Harness, id: &str) -> (u16, Option<String>, Value) {
    let url = format!("{}/v2/video/generations", h.sim.base_url);
    send(common::blocking_client().get(url).query(&[("generation_id", id)]))
}

#[test]
fn over_the_request_rate_submits_and_polls_are_refused_with_its_code_and_nothing_is_created() {
    // A bucket that never refills within the test: one request, then only refusals.
    let h = Harness::new(SimConfig {
        rate_limit: Some(0.001),
        ..fast_config()
    });
    let (status, _, first) = submit(&h, "ONE");
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    for (status, retry_after, body) in [submit(&h, "TWO"), poll(&h, &id), submit(&h, "THREE")] {
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], "rate_limit_exceeded", "{body}");
        assert_eq!(body["statusCode"], "429");
        assert!(body["message"].as_str().unwrap().contains("Too many requests"));
        let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!(seconds >= 1);
    }
    let log = h.log();
    assert_eq!(log.submits.len(), 1, "refused submits create nothing");
    let stats = h.sim.stats();
    assert_eq!((stats.requests, stats.submits, stats.polls), (4, 3, 1));
    assert_eq!(stats.throttled("rate_limit_exceeded"), 3);
    assert_eq!(stats.throttled("concurrency_limit_exceeded"), 0);
    assert_eq!(stats.created().len(), 1);
    assert_eq!(stats.generations[&id].polls, 0, "a refused poll reports nothing");
}

#[test]
fn beyond_the_active_generations_a_submit_is_refused_with_its_code_and_nothing_is_created() {
    let h = Harness::new(SimConfig {
        queued: Duration::from_secs(60),
        max_active: Some(2),
        ..fast_config()
    });
    assert_eq!(submit(&h, "A").0, 200);
    assert_eq!(submit(&h, "B").0, 200);
    let (status, retry_after, body) = submit(&h, "C");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "concurrency_limit_exceeded", "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Polls are not limited by it.
    let a = h.log().submits[0].generation_id.clone();
    assert_eq!(poll(&h, &a).2["status"], "queued");
    let log = h.log();
    assert_eq!(log.submits.len(), 2);
    assert_eq!(log.submit_attempts.iter().filter(|a| a.status == Some(429)).count(), 1);
    let stats = h.sim.stats();
    assert_eq!(stats.throttled("concurrency_limit_exceeded"), 1);
    assert_eq!(stats.created().len(), 2);

    // A generation that has finished frees its place: with nothing to wait for, every submit
    // finds room.
    let h = Harness::new(SimConfig {
        queued: Duration::ZERO,
        generating: Duration::ZERO,
        max_active: Some(1),
        ..fast_config()
    });
    for prompt in ["A", "B", "C"] {
        assert_eq!(submit(&h, prompt).0, 200);
    }
    assert_eq!(h.sim.stats().throttled.values().sum::<u64>(), 0);
}

#[test]
fn render_times_follow_the_seeded_range_and_every_instance_gives_the_same() {
    let config = SimConfig {
        queued: Duration::from_millis(500),
        render: Some((Duration::from_secs(1), Duration::from_secs(3))),
        ..SimConfig::default()
    };
    let a = Harness::new(config.clone());
    for i in 0..200 {
        assert_eq!(submit(&a, &format!("P{i}")).0, 200);
    }
    let stats = a.sim.stats();
    let created = stats.created();
    assert_eq!(created.len(), 200);
    let renders: Vec<f64> = created.iter().map(|(_, g)| g.render.as_secs_f64()).collect();
    assert!(renders.iter().all(|r| (1.0..=3.0).contains(r)), "{renders:?}");
    assert!(created.iter().all(|(_, g)| g.queued == Duration::from_millis(500)));
    let (min, max) = renders
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    assert!(min < 1.2 && max > 2.8, "spread over the range: {min}..{max}");
    let mean = renders.iter().sum::<f64>() / renders.len() as f64;
    assert!((1.8..2.2).contains(&mean), "{mean}");

    // Another instance with the same configuration answers for these ids with the same times.
    let b = Harness::new(config);
    for (id, _) in created.iter().take(20) {
        assert_eq!(poll(&b, id).0, 200);
    }
    let seen = b.sim.stats();
    for (id, g) in created.iter().take(20) {
        let other = &seen.generations[*id];
        assert!(!other.created_here);
        assert_eq!(
            (other.created_at, other.render, other.finished_at()),
            (g.created_at, g.render, g.finished_at())
        );
    }
    assert_eq!(a.log().submits.len(), 200);
}

#[test]
fn the_counters_count_requests_polls_and_the_poll_that_saw_each_finish() {
    let h = Harness::fast();
    let (_, _, submitted) = submit(&h, "COUNTED");
    let id = submitted["id"].as_str().unwrap().to_string();
    let mut polls = 0;
    loop {
        let (status, _, answer) = poll(&h, &id);
        assert_eq!(status, 200);
        polls += 1;
        if answer["status"] == "completed" {
            break;
        }
        assert!(polls < 500, "never completed");
        std::thread::sleep(Duration::from_millis(20));
    }
    poll(&h, &id);
    let stats = h.sim.stats();
    assert_eq!((stats.requests, stats.submits, stats.polls), (polls + 2, 1, polls + 1));
    let g = &stats.generations[&id];
    assert_eq!(g.polls as u64, polls + 1);
    assert!(g.created_here && !g.fails);
    let seen = g.first_finished_poll.expect("the completed poll is recorded");
    assert!(seen >= g.finished_at());
    assert_eq!(
        g.detection_latency(),
        Some(seen.duration_since(g.finished_at()).unwrap())
    );
    assert!(stats.throttled.is_empty());
}

#[test]
fn videos_can_be_padded_to_any_size_and_are_streamed_whole() {
    let size = 3 * 1024 * 1024 + 7;
    let h = Harness::new(SimConfig {
        video_size: Some(size),
        ..fast_config()
    });
    let (_, _, submitted) = submit(&h, "BIG");
    let id = submitted["id"].as_str().unwrap().to_string();
    let done = loop {
        let (_, _, answer) = poll(&h, &id);
        if answer["status"] == "completed" {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(done["video"]["file_size"], size);
    let res = reqwest::blocking::get(done["video"]["url"].as_str().unwrap()).unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.content_length(), Some(size));
    let bytes = res.bytes().unwrap();
    assert_eq!(bytes.len() as u64, size);
    let natural = vidbatch::sim::media::video(&id);
    // The video, its last box grown to the size: the same sample, a `free` box to the end.
    let sample = natural.len() - 8 - format!("vidbatch simulator generation {id}").len();
    assert_eq!(&bytes[..sample], &natural[..sample]);
    assert_eq!(
        u32::from_be_bytes(bytes[sample..sample + 4].try_into().unwrap()) as usize,
        bytes.len() - sample
    );
    assert_eq!(&bytes[sample + 4..sample + 8], b"free");
    let stats = h.sim.stats();
    assert_eq!(stats.downloads.len(), 1);
    assert_eq!(stats.downloads[0].bytes, size);
    assert!(stats.downloads[0].finished_at.is_some());
}
