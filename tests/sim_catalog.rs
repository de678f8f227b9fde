//! The simulator knows the whole catalog: every model takes a minimal body built from its spec
//! and refuses a value outside any of its enums; `/v1/models` lists them with prices and ETags;
//! each generation is charged what the listing quotes. Plain HTTP, read from the files in
//! `catalog/`, not through the simulator's own parsing of them.

mod common;

use std::time::Duration;

use common::{Harness, fast_config};
use serde_json::{Map, Value, json};
use vidbatch::sim::{self, SimClock, SimConfig};

const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const GENERATIONS: &str = "/v2/video/generations";

fn read_json(path: &str) -> Value {
    let path = common::repo().join(path);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn models() -> Vec<Value> {
    read_json("catalog/models.json")["models"].as_array().unwrap().clone()
}

/// The request schema of a model's spec file.
fn spec(model: &Value) -> Value {
    read_json(&format!("catalog/vendor/specs/{}", model["spec"].as_str().unwrap()))["schema"].clone()
}

/// A value the schema allows: an enum's first value, a range's minimum, a media link for a URI.
fn minimal(name: &str, schema: &Value) -> Value {
    if let Some(first) = schema.pointer("/enum/0") {
        return first.clone();
    }
    if let Some(branch) = schema.pointer("/anyOf/0").or_else(|| schema.pointer("/oneOf/0")) {
        return minimal(name, branch);
    }
    match schema["type"].as_str().unwrap_or("string") {
        "integer" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "number" => schema.get("minimum").cloned().unwrap_or(json!(1.0)),
        "boolean" => json!(false),
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(1).max(1);
            Value::Array((0..n).map(|_| minimal(name, &schema["items"])).collect())
        }
        "object" => required_of(schema),
        _ => match schema["format"].as_str() {
            Some("uuid") => json!("6f1c2a4e-0b7d-4c3e-9a51-2d8e7f604b13"),
            Some("uri") if name.contains("video") => json!("https://example.com/clip.mp4"),
            Some("uri") if name.contains("audio") => json!("https://example.com/voice.mp3"),
            Some("uri") if name == "image_url" => json!(PNG),
            Some("uri") => json!("https://example.com/frame.png"),
            _ => {
                let len = schema["minLength"].as_u64().unwrap_or(1).max(8) as usize;
                json!(
                    "a red fox running through snow"
                        .chars()
                        .cycle()
                        .take(len)
                        .collect::<String>()
                )
            }
        },
    }
}

/// An object holding the schema's required properties only.
fn required_of(schema: &Value) -> Value {
    let mut body = Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        if let Some(property) = schema["properties"].get(name) {
            body.insert(name.to_string(), minimal(name, property));
        }
    }
    Value::Object(body)
}

fn minimal_body(model: &Value, name: &str) -> Value {
    let mut body = required_of(&spec(model));
    body["model"] = json!(name);
    body
}

struct Api {
    http: reqwest::blocking::Client,
    base: String,
}

impl Api {
    fn new(h: &Harness) -> Api {
        Api {
            http: common::blocking_client(),
            base: h.sim.base_url.clone(),
        }
    }

    /// (status, body, `x-aimlapi-credits-used`)
    fn submit(&self, body: &Value) -> (u16, Value, Option<u64>) {
        let res = self
            .http
            .post(format!("{}{GENERATIONS}", self.base))
            .bearer_auth(common::KEY)
            .json(body)
            .send()
            .unwrap();
        answer(res)
    }

    fn poll(&self, id: &str) -> (u16, Value, Option<u64>) {
        let res = self
            .http
            .get(format!("{}{GENERATIONS}", self.base))
            .query(&[("generation_id", id)])
            .bearer_auth(common::KEY)
            .send()
            .unwrap();
        answer(res)
    }

    fn listing(&self, query: &str, etag: Option<&str>) -> reqwest::blocking::Response {
        let mut req = self.http.get(format!("{}{}{query}", self.base, sim::MODELS_PATH));
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        req.send().unwrap()
    }
}

fn answer(res: reqwest::blocking::Response) -> (u16, Value, Option<u64>) {
    let status = res.status().as_u16();
    let credits = res
        .headers()
        .get("x-aimlapi-credits-used")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, res.json().unwrap(), credits)
}

#[test]
fn every_catalogued_model_takes_a_minimal_body_and_refuses_values_outside_its_enums() {
    let h = Harness::new(fast_config());
    let api = Api::new(&h);
    let (mut accepted, mut aliases, mut refusals) = (0, 0, 0);
    for model in models() {
        let id = model["id"].as_str().unwrap();
        let names = std::iter::once(id).chain(model["aliases"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()));
        for name in names {
            let body = minimal_body(&model, name);
            let (status, answer, header) = api.submit(&body);
            assert_eq!(status, 200, "{body} was refused: {answer}");
            let charged = answer["meta"]["usage"]["credits_used"].as_u64();
            assert_eq!(charged, sim::pricing::charge(name, &body), "{name}");
            assert_eq!(header, charged, "{name}");
            if name == id {
                accepted += 1;
            } else {
                aliases += 1;
            }
        }
        let schema = spec(&model);
        for (param, property) in schema["properties"].as_object().unwrap() {
            let Some(allowed) = property["enum"].as_array().filter(|_| param != "model") else {
                continue;
            };
            let outside = if allowed[0].is_string() {
                json!("not-a-choice")
            } else {
                json!(987_654)
            };
            let mut body = minimal_body(&model, id);
            body[param] = outside;
            let (status, answer, _) = api.submit(&body);
            assert_eq!(status, 400, "{body} was accepted");
            assert_eq!(answer["message"], "Body validation error!");
            assert!(
                answer["errors"].to_string().contains(param.as_str()),
                "{body}: {answer}"
            );
            refusals += 1;
        }
    }
    eprintln!("accepted: {accepted} models, {aliases} aliases; refused: {refusals} values outside an enum");
    assert!(accepted >= 142, "{accepted}");
    assert!(aliases >= 13, "{aliases}");
    assert!(refusals >= 300, "{refusals}");
}

#[test]
fn a_model_the_catalog_lacks_is_refused_with_the_nearest_names() {
    let h = Harness::new(fast_config());
    let api = Api::new(&h);
    let (status, answer, _) = api.submit(&json!({"model": "google/veo-3.0-i2v-fats", "prompt": "x"}));
    assert_eq!(status, 400);
    assert!(
        answer["errors"].to_string().contains("google/veo-3.0-i2v-fast"),
        "{answer}"
    );
}

#[test]
fn the_listing_names_every_model_needs_no_key_and_answers_304_to_its_etag() {
    let h = Harness::new(SimConfig {
        key: Some("only-this".into()),
        ..fast_config()
    });
    let api = Api::new(&h);
    let res = api.listing("", None);
    assert_eq!(res.status().as_u16(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let plain: Value = res.json().unwrap();
    let data = plain["data"].as_array().unwrap();
    assert!(data.len() >= 142, "{}", data.len());
    for model in models() {
        let entry = data.iter().find(|e| e["id"] == model["id"]).unwrap();
        assert_eq!(entry["aliases"], model["aliases"]);
        assert!(entry.get("pricing").is_none());
    }

    let res = api.listing("", Some(&etag));
    assert_eq!(res.status().as_u16(), 304);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
    assert!(res.bytes().unwrap().is_empty());
    let weak = format!("\"stale\", W/{etag}");
    assert_eq!(api.listing("", Some(&weak)).status().as_u16(), 304);
    assert_eq!(api.listing("", Some("\"stale\"")).status().as_u16(), 200);

    // The priced listing is another document, with its own tag.
    let res = api.listing("?include=pricing", Some(&etag));
    assert_eq!(res.status().as_u16(), 200);
    let priced_tag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(priced_tag, etag);
    assert_eq!(
        api.listing("?include=pricing", Some(&priced_tag)).status().as_u16(),
        304
    );
    let log = h.sim.log();
    assert_eq!((log.model_listings, log.model_listings_not_modified), (6, 3));
}

/// What a client makes of a listing's `pricing` block for a request: credits, or `None` for a
/// variable price. Omitted parameters count as the catalog's default, else the enum's first
/// value, else the minimum (as the pricing module documents).
fn quote(pricing: &Value, model: &Value, body: &Value) -> Option<u64> {
    let assumed = |name: &str| -> Option<Value> {
        if let Some(v) = body.get(name) {
            return Some(v.clone());
        }
        let p = model["params"].as_array()?.iter().find(|p| p["name"] == name)?;
        p.get("default")
            .or_else(|| p.pointer("/enum/0"))
            .or_else(|| p.get("min"))
            .cloned()
    };
    let (rate, per, unit) = match pricing["kind"].as_str().unwrap() {
        "fixed" => (&pricing["price"], &pricing["per"], &pricing["unit"]),
        "variants" => {
            let resolution = assumed("resolution").unwrap();
            let v = pricing["variants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["when"]["resolution"] == resolution)
                .unwrap();
            (&v["price"], &v["per"], &pricing["unit"])
        }
        "variable" => return None,
        other => panic!("unknown kind {other}"),
    };
    let units = match unit.as_str().unwrap() {
        "generation" => 1.0,
        "second" => assumed("duration").unwrap().as_f64().unwrap(),
        other => panic!("unknown unit {other}"),
    };
    let credits = rate.as_f64().unwrap() * 2_000_000.0 * units / per.as_f64().unwrap();
    Some(credits.round() as u64)
}

#[test]
fn every_generation_is_charged_what_the_listing_quotes() {
    let clock = SimClock::default();
    let h = Harness::new(SimConfig {
        clock: clock.clone(),
        ..fast_config()
    });
    let api = Api::new(&h);
    let listing: Value = api.listing("?include=pricing", None).json().unwrap();
    let mut kinds = std::collections::BTreeMap::<String, u32>::new();
    let mut ids = Vec::new();
    for model in models() {
        let id = model["id"].as_str().unwrap();
        let entry = listing["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap();
        let pricing = &entry["pricing"];
        *kinds.entry(pricing["kind"].as_str().unwrap().to_string()).or_default() += 1;
        let body = minimal_body(&model, id);
        let (status, answer, header) = api.submit(&body);
        assert_eq!(status, 200, "{answer}");
        if let Some(quoted) = quote(pricing, &model, &body) {
            assert_eq!(header, Some(quoted), "{id}: {pricing}");
        }
        ids.push((answer["id"].as_str().unwrap().to_string(), header));
    }
    eprintln!("pricing kinds: {kinds:?}");
    assert!(kinds["variants"] >= 50 && kinds["fixed"] >= 20, "{kinds:?}");
    assert!((1..=15).contains(&kinds["variable"]), "{kinds:?}");
    // A finished poll reports the same charge, in the body and the header.
    clock.advance(Duration::from_secs(60));
    for (id, charged) in ids {
        let (status, answer, header) = api.poll(&id);
        assert_eq!(status, 200);
        let usage = &answer["meta"]["usage"];
        let reported = usage["credits_used"].as_u64().or(usage["tokens_used"].as_u64());
        assert_eq!((reported, header), (charged, charged), "{answer}");
    }
}

#[test]
fn variant_prices_follow_the_requests_resolution_and_duration() {
    let h = Harness::new(fast_config());
    let api = Api::new(&h);
    let png = json!(PNG);
    for (body, credits) in [
        // 315,000 a second at 1080p, as the docs' example shows; 10 s by default.
        (json!({"model": "alibaba/wan-2-6-t2v", "prompt": "p"}), 3_150_000),
        (
            json!({"model": "alibaba/wan-2-6-t2v", "prompt": "p", "resolution": "720p", "duration": 5}),
            1_050_000,
        ),
        (
            json!({"model": "alibaba/wan-2-6-i2v", "prompt": "p", "image_url": png, "duration": 15}),
            4_725_000,
        ),
        // 117,600 a second at 768P; 1080P is half as much again.
        (json!({"model": "minimax/hailuo-2.3", "prompt": "p"}), 705_600),
        (
            json!({"model": "minimax/hailuo-2.3", "prompt": "p", "resolution": "1080P", "duration": 6}),
            1_058_400,
        ),
        // 84,000 a second at 1080p, twice as much at 2160p.
        (
            json!({"model": "ltxv/ltxv-2-fast", "prompt": "p", "resolution": "2160p", "duration": 6}),
            1_008_000,
        ),
        // The seed models keep their fixed charges.
        (json!({"model": "magic/text-to-video", "prompt": "p"}), 1_050_000),
    ] {
        let (status, answer, header) = api.submit(&body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["meta"]["usage"]["credits_used"], credits, "{body}");
        assert_eq!(header, Some(credits), "{body}");
        assert_eq!(
            sim::pricing::charge(body["model"].as_str().unwrap(), &body),
            Some(credits)
        );
    }
}

#[test]
fn a_broken_price_list_can_be_simulated() {
    for (fault, status) in [(sim::ListingFault::Unavailable, 503), (sim::ListingFault::Garbage, 200)] {
        let h = Harness::new(SimConfig {
            listing_fault: Some(fault),
            ..fast_config()
        });
        let res = Api::new(&h).listing("?include=pricing", None);
        assert_eq!(res.status().as_u16(), status);
        assert!(res.headers().get("etag").is_none());
        assert!(serde_json::from_slice::<Value>(&res.bytes().unwrap()).map_or(true, |v| v.get("data").is_none()));
    }
}
