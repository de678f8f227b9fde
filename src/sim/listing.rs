//! `GET /v1/models`: the catalog as the service lists it, no key needed.
//!
//! ```json
//! {"object": "list",
//!  "data": [{"id": "google/veo3", "type": "video", "aliases": ["..."]}, ...]}
//! ```
//!
//! One entry per catalogued model, sorted by id; `aliases` are the other names the service takes
//! for it (often empty). With `?include=pricing` each entry also has `"pricing": {...}` (shapes
//! in [`super::pricing`]). Every 200 carries an `ETag`; a request whose `If-None-Match` names it
//! (or `*`; weak tags compare alike) gets a 304 with no body.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Inner;
use super::chaos;
use super::models::catalog;
use super::pricing::pricing;
use super::submit::api_error;

/// The path of the model listing.
pub const MODELS_PATH: &str = "/v1/models";

/// A broken price list, as a client may meet one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFault {
    /// 503 with the service's error body.
    Unavailable,
    /// A 200 that is not JSON (a proxy's page).
    Garbage,
    /// The listing, after this long.
    Slow(Duration),
}

#[derive(Deserialize)]
pub(super) struct ListingQuery {
    include: Option<String>,
}

/// A listing's body and its tag.
struct Listing {
    body: String,
    etag: String,
}

/// The two listings (without and with prices), built once: the catalog and the price table are
/// part of the binary.
static LISTINGS: LazyLock<[Listing; 2]> = LazyLock::new(|| [listing(false), listing(true)]);

fn listing(with_pricing: bool) -> Listing {
    let data: Vec<_> = catalog()
        .models()
        .iter()
        .map(|m| {
            let mut entry = json!({"id": m.id, "type": "video", "aliases": m.aliases});
            if with_pricing {
                entry["pricing"] = pricing(&m.id).map_or(json!({"kind": "variable"}), |p| p.to_json());
            }
            entry
        })
        .collect();
    let body = json!({"object": "list", "data": data}).to_string();
    let digest = format!("{:x}", Sha256::digest(body.as_bytes()));
    let etag = format!("\"{}\"", &digest[..16]);
    Listing { body, etag }
}

pub(super) async fn models(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(query): Query<ListingQuery>,
) -> Response {
    let with_pricing = query
        .include
        .as_deref()
        .is_some_and(|i| i.split(',').any(|part| part.trim() == "pricing"));
    let listing = &LISTINGS[usize::from(with_pricing)];
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == listing.etag);
    {
        let mut log = inner.log.lock().unwrap();
        log.model_listings += 1;
        log.model_listings_not_modified += u64::from(fresh);
    }
    let fault = *inner.listing_fault.lock().unwrap();
    match fault {
        Some(ListingFault::Unavailable) => {
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                MODELS_PATH,
                None,
            );
        }
        Some(ListingFault::Garbage) => {
            return (
                [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
                chaos::CHALLENGE_PAGE,
            )
                .into_response();
        }
        Some(ListingFault::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, listing.etag.as_str())]).into_response();
    }
    (
        [
            (header::ETAG, listing.etag.as_str()),
            (header::CONTENT_TYPE, "application/json"),
        ],
        listing.body.clone(),
    )
        .into_response()
}
