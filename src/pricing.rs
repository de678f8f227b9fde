//! The vendor's live price list (`GET /v1/models?include=pricing`, no key needed): fetched once a
//! run, kept on disk with its `ETag` (a cron run revalidates it for a 304; an offline machine uses
//! the last copy and says how old it is), and read per job: its own duration and resolution, the
//! model's documented defaults where the job leaves them out.
//!
//! The shape read (`data[]` of models, each with a `pricing` block), in USD, `price` per `per`
//! units; $1 = 2,000,000 credits:
//! - `{"kind":"fixed","price":0.525,"per":1,"unit":"generation"|"second"}`: one rate;
//! - `{"kind":"variants","unit":…,"variants":[{"when":{"resolution":"720p"},"price":…,"per":1}]}`:
//!   a rate per parameter combination;
//! - `{"kind":"variable"}`: not quotable (counted conservatively against `--max-credits`).
//!
//! A price list that is down, slow or garbage never blocks a run: the last good copy is used, or
//! jobs are priced as before (charges seen in the folder, the highest for `--max-credits`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{DefaultValue, ModelSpec, ParamKind};

/// Credits per US dollar, as the vendor states it.
pub const CREDITS_PER_USD: f64 = 2_000_000.0;
/// Where the list is, below the API's base URL.
pub const PRICING_PATH: &str = "/v1/models?include=pricing";
/// How long the list may take to come: it must never hold a run up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How one model is priced.
#[derive(Debug, Clone, PartialEq)]
pub enum Pricing {
    Fixed { usd: f64, per: f64, unit: Unit },
    Variants { unit: Unit, variants: Vec<Variant> },
    Variable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Generation,
    Second,
}

/// A rate that applies when the job's parameters are `when`.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub when: Map<String, Value>,
    pub usd: f64,
    pub per: f64,
}

/// What a job is expected to cost by the list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quote {
    /// Exactly this many credits.
    Exact(f64),
    /// The model's price varies with what the service does: not quotable.
    Variable,
    /// The list does not price this model (or this combination of its parameters).
    Unlisted,
}

/// Where the prices in use came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// Fetched (or revalidated with a 304) now.
    Live,
    /// A copy fetched this long ago: the list could not be read now, for the reason given.
    Cached { age: Duration, why: String },
}

#[derive(Debug, Clone)]
pub struct PriceList {
    models: HashMap<String, Pricing>,
    pub freshness: Freshness,
}

impl PriceList {
    /// Reads the list's JSON: every model with a pricing block this client understands (a block it
    /// does not is left out: the model is then unlisted, never mispriced).
    pub fn parse(body: &str) -> Result<HashMap<String, Pricing>, String> {
        let json: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
        let data = json
            .get("data")
            .and_then(Value::as_array)
            .ok_or("no `data` list of models")?;
        let mut models = HashMap::new();
        for entry in data {
            let (Some(id), Some(pricing)) = (entry.get("id").and_then(Value::as_str), entry.get("pricing")) else {
                continue;
            };
            let Some(pricing) = read_pricing(pricing) else { continue };
            for alias in entry.get("aliases").and_then(Value::as_array).into_iter().flatten() {
                if let Some(alias) = alias.as_str() {
                    models.entry(alias.to_string()).or_insert_with(|| pricing.clone());
                }
            }
            models.insert(id.to_string(), pricing);
        }
        Ok(models)
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// What a job of `model` with these parameters (as sent) costs by the list.
    pub fn quote(&self, model: &str, spec: Option<&ModelSpec>, params: &Map<String, Value>) -> Quote {
        let Some(pricing) = self.models.get(model) else {
            return Quote::Unlisted;
        };
        // A parameter the job leaves out counts as the service applies it: the documented
        // default, else the first value of its enum, else its least.
        let value = |name: &str| -> Option<Value> { params.get(name).cloned().or_else(|| assumed(spec?, name)) };
        let units = |unit: Unit| match unit {
            Unit::Generation => Some(1.0),
            Unit::Second => value("duration").and_then(|d| d.as_f64().or_else(|| d.as_str()?.trim().parse().ok())),
        };
        let credits =
            |usd: f64, per: f64, units: f64| (usd * CREDITS_PER_USD * units / per.max(f64::MIN_POSITIVE)).round();
        match pricing {
            Pricing::Variable => Quote::Variable,
            Pricing::Fixed { usd, per, unit } => {
                units(*unit).map_or(Quote::Unlisted, |u| Quote::Exact(credits(*usd, *per, u)))
            }
            Pricing::Variants { unit, variants } => {
                let fits = |v: &&Variant| {
                    v.when
                        .iter()
                        .all(|(k, want)| value(k).is_some_and(|got| same(&got, want)))
                };
                match (variants.iter().find(fits), units(*unit)) {
                    (Some(v), Some(u)) => Quote::Exact(credits(v.usd, v.per, u)),
                    _ => Quote::Unlisted,
                }
            }
        }
    }
}

impl PriceList {
    /// A model's price in words: `1,050,000 credits a generation`, `100,000 credits a second`,
    /// per variant, or `variable`; `None` when the list does not price it. `short` for a table.
    pub fn describe(&self, model: &str, short: bool) -> Option<String> {
        let credits = |usd: f64, per: f64| crate::sinks::thousands((usd * CREDITS_PER_USD / per).round());
        let unit = |u: Unit| match (u, short) {
            (Unit::Generation, true) => "/gen",
            (Unit::Second, true) => "/s",
            (Unit::Generation, false) => " credits a generation",
            (Unit::Second, false) => " credits a second",
        };
        Some(match self.models.get(model)? {
            Pricing::Variable => "variable".into(),
            Pricing::Fixed { usd, per, unit: u } => format!("{}{}", credits(*usd, *per), unit(*u)),
            Pricing::Variants { .. } if short => "by variant".into(),
            Pricing::Variants { unit: u, variants } => {
                let each: Vec<String> = variants
                    .iter()
                    .map(|v| {
                        let when: Vec<String> = v
                            .when
                            .iter()
                            .map(|(k, val)| {
                                format!("{k} {}", val.as_str().map_or_else(|| val.to_string(), String::from))
                            })
                            .collect();
                        format!("{}: {}{}", when.join(", "), credits(v.usd, v.per), unit(*u))
                    })
                    .collect();
                each.join("; ")
            }
        })
    }
}

impl PriceList {
    /// The most one job of `model` can cost by the list, whatever its parameters: its dearest
    /// variant at its longest documented duration. What is counted against `--max-credits` for a
    /// submit known only by its model (a record of an earlier run), so that it is never counted
    /// below what any job of the model reserved.
    pub fn most(&self, model: &str, spec: Option<&ModelSpec>) -> Quote {
        let Some(pricing) = self.models.get(model) else {
            return Quote::Unlisted;
        };
        let longest = || -> Option<f64> {
            match spec?.param("duration")?.kind {
                ParamKind::IntChoice(options) => options.iter().max().map(|&d| d as f64),
                ParamKind::IntRange(_, hi) if hi < i64::MAX => Some(hi as f64),
                ParamKind::Number { max, .. } => max,
                _ => None,
            }
        };
        let units = |unit: Unit| match unit {
            Unit::Generation => Some(1.0),
            Unit::Second => longest(),
        };
        let dearest = match pricing {
            Pricing::Variable => return Quote::Variable,
            Pricing::Fixed { usd, per, unit } => units(*unit).map(|u| usd * u / per),
            Pricing::Variants { unit, variants } => {
                units(*unit).and_then(|u| variants.iter().map(|v| v.usd * u / v.per).reduce(f64::max))
            }
        };
        dearest.map_or(Quote::Variable, |usd| Quote::Exact((usd * CREDITS_PER_USD).round()))
    }
}

/// Values equal as the service would take them: `720p` and `720P`, `5` and `"5"`.
fn same(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => other.to_string(),
    };
    a == b || text(a) == text(b)
}

/// What the service applies for a parameter the job leaves out.
fn assumed(spec: &ModelSpec, name: &str) -> Option<Value> {
    let p = spec.param(name)?;
    if let Some(d) = p.default {
        return Some(d.to_json());
    }
    match p.kind {
        ParamKind::Choice(options) => options.first().map(|o| Value::from(*o)),
        ParamKind::IntChoice(options) => options.first().map(|o| Value::from(*o)),
        ParamKind::IntRange(lo, _) if lo > i64::MIN => Some(lo.into()),
        ParamKind::Number { min: Some(lo), .. } => Some(DefaultValue::Num(lo).to_json()),
        _ => None,
    }
}

fn read_pricing(block: &Value) -> Option<Pricing> {
    let unit = |b: &Value| match b.get("unit").and_then(Value::as_str) {
        Some("second") => Some(Unit::Second),
        Some("generation") | None => Some(Unit::Generation),
        Some(_) => None,
    };
    let price = |b: &Value| -> Option<(f64, f64)> {
        let usd = b.get("price")?.as_f64().filter(|p| p.is_finite() && *p >= 0.0)?;
        let per = b.get("per").and_then(Value::as_f64).unwrap_or(1.0);
        (per.is_finite() && per > 0.0).then_some((usd, per))
    };
    match block.get("kind")?.as_str()? {
        "fixed" => {
            let (usd, per) = price(block)?;
            Some(Pricing::Fixed {
                usd,
                per,
                unit: unit(block)?,
            })
        }
        "variants" => {
            let variants = block
                .get("variants")?
                .as_array()?
                .iter()
                .map(|v| {
                    let (usd, per) = price(v)?;
                    Some(Variant {
                        when: v.get("when").and_then(Value::as_object).cloned().unwrap_or_default(),
                        usd,
                        per,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Pricing::Variants {
                unit: unit(block)?,
                variants,
            })
        }
        "variable" => Some(Pricing::Variable),
        _ => None,
    }
}

/// The copy kept on disk.
#[derive(Serialize, Deserialize)]
struct Cached {
    base_url: String,
    etag: Option<String>,
    fetched_at: SystemTime,
    body: String,
}

/// Where copies of price lists are kept: `VIDBATCH_CACHE_DIR`, else the user's cache folder.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("VIDBATCH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("vidbatch")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/vidbatch")))
        .or_else(|| env("LOCALAPPDATA").map(|d| d.join("vidbatch")))
}

fn cache_file(dir: &Path, base_url: &str) -> PathBuf {
    use sha2::Digest as _;
    let hash = format!("{:x}", sha2::Sha256::digest(base_url.as_bytes()));
    dir.join(format!("pricing-{}.json", &hash[..16]))
}

/// The price list of the API at `base_url`: fetched (or revalidated), else the last good copy,
/// else `None`; and what to tell the user about it, if anything.
pub async fn load(base_url: &str) -> (Option<PriceList>, Option<String>) {
    let dir = cache_dir();
    let file = dir.as_deref().map(|d| cache_file(d, base_url));
    let cached: Option<Cached> = file
        .as_deref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|c: &Cached| c.base_url == base_url);
    let fetched = fetch(base_url, cached.as_ref().and_then(|c| c.etag.as_deref())).await;
    let fresh = match fetched {
        Ok(Fetched::NotModified) => cached
            .as_ref()
            .map(|c| (c.body.clone(), c.etag.clone()))
            .ok_or_else(|| "the price list answered 304 for a copy this machine does not have".to_string()),
        Ok(Fetched::Body { body, etag }) => Ok((body, etag)),
        Err(e) => Err(e),
    };
    let fresh = fresh.and_then(|(body, etag)| PriceList::parse(&body).map(|models| (models, body, etag)));
    match fresh {
        Ok((models, body, etag)) => {
            if let (Some(dir), Some(file)) = (&dir, &file) {
                let copy = Cached {
                    base_url: base_url.to_string(),
                    etag,
                    fetched_at: SystemTime::now(),
                    body,
                };
                // A copy that cannot be kept costs a full fetch next time, nothing more.
                let _ = std::fs::create_dir_all(dir).and_then(|()| {
                    let tmp = file.with_extension("tmp");
                    std::fs::write(&tmp, serde_json::to_vec(&copy).unwrap_or_default())?;
                    std::fs::rename(tmp, file)
                });
            }
            (
                Some(PriceList {
                    models,
                    freshness: Freshness::Live,
                }),
                None,
            )
        }
        Err(why) => match cached.and_then(|c| Some((PriceList::parse(&c.body).ok()?, c.fetched_at))) {
            Some((models, at)) => {
                let age = SystemTime::now().duration_since(at).unwrap_or_default();
                let note = format!(
                    "the price list could not be read ({why}): prices are from a copy {} old",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                );
                (
                    Some(PriceList {
                        models,
                        freshness: Freshness::Cached { age, why },
                    }),
                    Some(note),
                )
            }
            None => (
                None,
                Some(format!(
                    "the price list could not be read ({why}) and no copy is kept: jobs are priced from the charges \
                     seen in this folder, and counted at the highest for --max-credits"
                )),
            ),
        },
    }
}

enum Fetched {
    NotModified,
    Body { body: String, etag: Option<String> },
}

async fn fetch(base_url: &str, etag: Option<&str>) -> Result<Fetched, String> {
    let client = crate::api::http_client()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.get(format!("{}{PRICING_PATH}", base_url.trim_end_matches('/')));
    if let Some(tag) = etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let response = request.send().await.map_err(|e| crate::api::error_chain(&e))?;
    match response.status().as_u16() {
        304 => return Ok(Fetched::NotModified),
        200 => {}
        status => return Err(format!("HTTP {status}")),
    }
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // The list of a few hundred models is some tens of KB: a larger answer is not it.
    if response.content_length().is_some_and(|n| n > 16 << 20) {
        return Err("an answer over 16 MiB".into());
    }
    let body = response.text().await.map_err(|e| crate::api::error_chain(&e))?;
    Ok(Fetched::Body { body, etag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(body: &str) -> PriceList {
        PriceList {
            models: PriceList::parse(body).unwrap(),
            freshness: Freshness::Live,
        }
    }

    #[test]
    fn fixed_variant_and_variable_prices_are_read_per_job() {
        let prices = list(
            r#"{"data":[
              {"id":"a/fixed","pricing":{"kind":"fixed","price":0.525,"per":1,"unit":"generation"}},
              {"id":"b/seconds","aliases":["b/secs"],"pricing":{"kind":"fixed","price":0.1,"per":1,"unit":"second"}},
              {"id":"c/variants","pricing":{"kind":"variants","unit":"second","variants":[
                 {"when":{"resolution":"720p"},"price":0.05,"per":1},
                 {"when":{"resolution":"1080p"},"price":0.1,"per":1}]}},
              {"id":"d/variable","pricing":{"kind":"variable"}},
              {"id":"e/odd","pricing":{"kind":"per-token","price":1}}
            ]}"#,
        );
        let params = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(prices.quote("a/fixed", None, &Map::new()), Quote::Exact(1_050_000.0));
        assert_eq!(
            prices.quote("b/secs", None, &params(serde_json::json!({"duration": 5}))),
            Quote::Exact(1_000_000.0)
        );
        // Without a duration, and no spec to say its default: not quotable.
        assert_eq!(prices.quote("b/seconds", None, &Map::new()), Quote::Unlisted);
        assert_eq!(
            prices.quote(
                "c/variants",
                None,
                &params(serde_json::json!({"resolution": "1080P", "duration": "10"}))
            ),
            Quote::Exact(2_000_000.0)
        );
        assert_eq!(prices.quote("d/variable", None, &Map::new()), Quote::Variable);
        assert_eq!(
            prices.quote("e/odd", None, &Map::new()),
            Quote::Unlisted,
            "a kind not understood"
        );
        assert!(PriceList::parse("<html>").is_err());
    }

    #[test]
    fn an_omitted_parameter_is_priced_at_the_models_default() {
        let prices = list(
            r#"{"data":[{"id":"google/veo-3.0-i2v","pricing":{"kind":"variants","unit":"second","variants":[
                 {"when":{"resolution":"720P"},"price":0.2,"per":1},
                 {"when":{"resolution":"1080P"},"price":0.3,"per":1}]}}]}"#,
        );
        let spec = crate::catalog::model("google/veo-3.0-i2v");
        // Documented defaults: 720P and 8 seconds.
        assert_eq!(
            prices.quote("google/veo-3.0-i2v", spec, &Map::new()),
            Quote::Exact(8.0 * 400_000.0)
        );
    }
}
