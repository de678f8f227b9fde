//! The answers and errors of the API, read from the shapes the service has used.

use super::errors::error_code;
use super::*;
use serde_json::json;

fn status(v: Value) -> GenerationStatus {
    read_status(&v, &reqwest::header::HeaderMap::new())
}

#[test]
fn success_words_and_credit_names_are_read_tolerantly() {
    assert_eq!(
        status(
            json!({"id": "a", "status": "succeeded", "video": {"url": "https://x/v.mp4"}, "meta": {"usage": {"tokens_used": 7}}})
        ),
        GenerationStatus::Completed {
            url: "https://x/v.mp4".into(),
            credits: Some(7.0),
            file_size: None
        }
    );
    assert!(matches!(
        status(json!({"status": "completed", "video": {"url": "u", "file_size": "12"}})),
        GenerationStatus::Completed {
            file_size: Some(12),
            ..
        }
    ));
    assert_eq!(
        status(json!({"status": "completed"})),
        GenerationStatus::Pending(Pending::CompletedWithoutUrl)
    );
    // Every pending word the service is seen to use is known; a new one is pending, reported.
    for word in ["queued", "generating", "waiting", "active", "processing", "pending"] {
        assert_eq!(
            status(json!({"status": word})),
            GenerationStatus::Pending(Pending::Known(word.into()))
        );
    }
    assert_eq!(
        status(json!({"status": "Rendering"})),
        GenerationStatus::Pending(Pending::Unknown("rendering".into()))
    );
}

#[test]
fn error_shapes_keep_the_service_text() {
    assert_eq!(
        status(json!({"status": "error", "error": {"name": "RenderError", "message": "face not found"}})),
        GenerationStatus::Failed {
            message: "RenderError: face not found".into()
        }
    );
    assert_eq!(
        status(
            json!({"status": "error", "error": {"detail": [{"loc": ["body", "image_url"], "msg": "bad image", "type": "x"}]}})
        ),
        GenerationStatus::Failed {
            message: "body.image_url: bad image".into()
        }
    );
}

#[test]
fn configuration_that_could_never_be_sent_is_refused_up_front() {
    let ok = |url: &str, key: &str, rate: f64| ApiClient::new(url, ApiKey::new(key), rate).map(drop);
    assert!(ok("https://api.example.com/", "k", 5.0).is_ok());
    assert!(ok("http://127.0.0.1:8090", "k", 0.5).is_ok());
    // Plain http carries the key in clear text: loopback only.
    for local in [
        "http://127.0.0.1:8090",
        "http://127.8.0.1",
        "http://[::1]:80/",
        "http://LocalHost:9",
    ] {
        assert!(ok(local, "k", 5.0).is_ok(), "{local}");
    }
    for url in [
        "http://example.com",
        "http://10.0.0.1:8090",
        "http://[::2]",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
    ] {
        let err = ok(url, "k", 5.0).unwrap_err();
        assert!(
            err.contains("refusing to send `AIMLAPI_KEY` in clear text"),
            "{url}: {err}"
        );
    }
    for (url, key, rate) in [
        ("http://host:99999", "k", 5.0),
        ("ftp://host", "k", 5.0),
        ("https://ho st", "k", 5.0),
        ("https://host", "line\nbreak", 5.0),
        ("https://host", "k", 0.0),
        ("https://host", "k", 1e-30),
        ("https://host", "k", f64::NAN),
    ] {
        assert!(ok(url, key, rate).is_err(), "{url} {key:?} {rate}");
    }
}

#[test]
fn http_errors_are_classified() {
    let http = |status| ApiError::Http {
        status,
        message: String::new(),
        code: None,
        retry_after: None,
    };
    assert_eq!(http(401).disposition(Op::Poll), Disposition::Abort);
    assert_eq!(http(403).disposition(Op::Submit), Disposition::Abort);
    assert_eq!(http(400).disposition(Op::Submit), Disposition::FailJob);
    assert_eq!(http(503).disposition(Op::Submit), Disposition::Retry { after: None });
    // A gateway timeout may have let the POST through: never retried blindly.
    assert_eq!(http(504).disposition(Op::Submit), Disposition::Ambiguous);
    assert_eq!(http(504).disposition(Op::Poll), Disposition::Retry { after: None });
    assert_eq!(
        ApiError::Unsendable(String::new()).disposition(Op::Submit),
        Disposition::FailJob
    );
    assert_eq!(
        ApiError::NoAnswer(String::new()).disposition(Op::Submit),
        Disposition::Ambiguous
    );
    assert_eq!(
        ApiError::NoAnswer(String::new()).disposition(Op::Poll),
        Disposition::Retry { after: None }
    );
    assert_eq!(
        ApiError::Connect(String::new()).disposition(Op::Submit),
        Disposition::Retry { after: None }
    );
}

#[test]
fn web_pages_and_redirects_created_nothing_and_are_retried_for_free() {
    let page = ApiError::NotTheApi {
        status: 200,
        title: "Just a moment...".into(),
    };
    assert_eq!(page.disposition(Op::Submit), Disposition::Retry { after: None });
    let redirect = ApiError::Redirected {
        status: 302,
        location: "https://elsewhere.example/".into(),
    };
    assert_eq!(redirect.disposition(Op::Submit), Disposition::Retry { after: None });
    let mut html = reqwest::header::HeaderMap::new();
    html.insert(
        reqwest::header::CONTENT_TYPE,
        "text/html; charset=UTF-8".parse().unwrap(),
    );
    let cloudflare = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body></body></html>";
    assert_eq!(web_page_title(&html, cloudflare).as_deref(), Some("Just a moment..."));
    let none = reqwest::header::HeaderMap::new();
    assert_eq!(
        web_page_title(&none, "  <html><body>x</body></html>").as_deref(),
        Some("(an HTML page)")
    );
    assert_eq!(web_page_title(&none, r#"{"id": "x"}"#), None);
    assert_eq!(web_page_title(&none, "not json, not html"), None);
}

#[test]
fn too_many_active_is_told_from_too_many_requests_by_its_code() {
    let too_many = |code: Option<&str>| ApiError::Http {
        status: 429,
        message: "Too many requests".into(),
        code: code.map(String::from),
        retry_after: None,
    };
    assert!(too_many(Some("concurrency_limit_exceeded")).is_too_many_active());
    assert!(too_many(Some("Too_Many_Active_Generations")).is_too_many_active());
    assert!(!too_many(Some("rate_limit_exceeded")).is_too_many_active());
    assert!(!too_many(None).is_too_many_active());
}

#[test]
fn error_codes_are_kept() {
    assert_eq!(
        error_code(r#"{"code":"too_many_active","message":"x"}"#).as_deref(),
        Some("too_many_active")
    );
    assert_eq!(
        error_code(r#"{"error":{"code":429,"message":"x"}}"#).as_deref(),
        Some("429")
    );
    assert_eq!(error_code("plain"), None);
}

#[test]
fn error_bodies_give_their_message() {
    assert_eq!(
        error_message(r#"{"message":"Body validation error!","errors":[{"path":"template"}],"statusCode":"400"}"#),
        r#"Body validation error!: [{"path":"template"}]"#
    );
    assert_eq!(error_message("upstream down"), "upstream down");
}

#[test]
fn the_throughput_is_the_rate_until_the_connections_cannot_carry_it() {
    let api = ApiClient::new("http://127.0.0.1:9", ApiKey::new("k"), 200.0).unwrap();
    assert_eq!(api.throughput(), 200.0, "nothing measured yet");
    // 64 connections held 50 ms each carry 1,280 requests a second: the rate binds.
    api.took(Duration::from_millis(50));
    assert_eq!(api.throughput(), 200.0);
    // Held 1 s each, they carry 64.
    for _ in 0..64 {
        api.took(Duration::from_secs(1));
    }
    assert!((api.throughput() - 64.0).abs() < 1.0, "{}", api.throughput());
    // One slow answer among quick ones moves it an eighth of the way, then quick ones bring it back.
    for _ in 0..64 {
        api.took(Duration::from_millis(50));
    }
    api.took(Duration::from_secs(8));
    assert!(api.throughput() < 200.0, "{}", api.throughput());
    for _ in 0..32 {
        api.took(Duration::from_millis(50));
    }
    assert_eq!(api.throughput(), 200.0);
}
