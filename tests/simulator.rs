//! The simulator behaves like the service (as its documentation and OpenAPI JSON describe it),
//! checked with plain HTTP requests, not with vidbatch's client.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Harness, fast_config};
use serde_json::{Value, json};
use vidbatch::sim::{LEGACY_PIXVERSE_PATH, SimConfig};

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
    let h = Harness::new(SimConfig {
        queued: Duration::from_millis(200),
        generating: Duration::from_millis(300),
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
    for _ in 0..100 {
        let (status, answer) = c.get("/v2/video/generations", &id);
        assert_eq!(status, 200);
        assert!(validator.is_valid(&answer), "{answer}");
        let s = answer["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "completed" {
            assert!(answer["video"]["url"].as_str().unwrap().contains("X-Amz-Expires="));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen, ["queued", "generating", "completed"]);
}

#[test]
fn the_legacy_pixverse_path_works_and_ids_with_colons_and_slashes_poll() {
    let h = Harness::fast();
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
    std::thread::sleep(Duration::from_millis(400));
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
    let h = Harness::new(SimConfig {
        url_ttl: Duration::from_secs(1),
        ..fast_config()
    });
    let c = Client::new(&h);
    let (_, submitted) = c.post(
        "/v2/video/generations",
        Some(common::KEY),
        &json!({"model": "magic/text-to-video", "prompt": "X"}),
    );
    let id = submitted["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let (_, done) = c.get("/v2/video/generations", &id);
    let url = done["video"]["url"].as_str().unwrap().to_string();
    let video = reqwest::blocking::get(&url).unwrap();
    assert_eq!(video.status().as_u16(), 200);
    assert_eq!(&video.bytes().unwrap()[4..8], b"ftyp");
    let forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(reqwest::blocking::get(&forged).unwrap().status().as_u16(), 403);
    std::thread::sleep(Duration::from_millis(2100));
    let expired = reqwest::blocking::get(&url).unwrap();
    assert_eq!(expired.status().as_u16(), 403);
    assert!(expired.text().unwrap().contains("AccessDenied"));
}

#[test]
fn vidbatch_sim_serves_on_its_own() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidbatch"))
        .args(["sim", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
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
    child.kill().unwrap();
    child.wait().unwrap();
}
