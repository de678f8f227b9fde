//! A server that answers the API and the file host in hostile ways (an answer of hundreds of
//! megabytes, a byte now and then): the client refuses an answer too large without reading it
//! whole, and no request or download is held longer than its time limits, whatever the server
//! does. The time limits are the client's own, shortened here so that the tests run quickly.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vidbatch::api::{ApiClient, ApiError, ApiKey, TimeLimits};
use vidbatch::download::{DownloadError, Downloader, Pace};

/// What the server does with a request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// A 200 whose JSON body goes on for `total` bytes (no length announced: it ends when the
    /// connection does).
    Huge { total: u64 },
    /// A 200 announcing `length` bytes, then one byte every `every`.
    Trickle { length: u64, every: Duration },
    /// A 200 with this JSON body.
    Json(&'static str),
}

/// A server on 127.0.0.1 that answers every request as `choose` says (given the request line),
/// and counts the body bytes it managed to write.
struct Hostile {
    base: String,
    written: Arc<AtomicU64>,
}

fn serve(choose: fn(&str) -> Behaviour) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || answer(stream, choose, &counter));
        }
    });
    Hostile { base, written }
}

fn answer(mut stream: TcpStream, choose: fn(&str) -> Behaviour, written: &AtomicU64) {
    // The request: headers, then the body its length announces.
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        request.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = stream.read_exact(&mut body);
    let line = head.lines().next().unwrap_or_default().to_string();
    match choose(&line) {
        Behaviour::Json(text) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
        Behaviour::Huge { total } => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{{\"id\":\""
            );
            let chunk = vec![b'a'; 64 << 10];
            let mut sent = 0;
            while sent < total {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
                sent += chunk.len() as u64;
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Behaviour::Trickle { length, every } => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
            );
            for _ in 0..length {
                if stream.write_all(b" ").and_then(|()| stream.flush()).is_err() {
                    return;
                }
                written.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(every);
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    common::tls();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const SHORT: TimeLimits = TimeLimits {
    read_idle: Duration::from_secs(2),
    submit: Duration::from_millis(1500),
    poll: Duration::from_millis(1500),
};

async fn submit(api: &ApiClient) -> Result<vidbatch::api::Submission, ApiError> {
    let paced = api.pace_submit(api.turn().await).await;
    api.submit(
        paced,
        &serde_json::json!({"model": "magic/text-to-video", "prompt": "x"}),
        "r1",
    )
    .await
}

#[test]
fn an_answer_of_hundreds_of_megabytes_is_refused_unread() {
    // 512 MB to a submit and to a poll (the issue saw 1 GB answers take 3 GB of memory, read
    // again at every poll).
    let server = serve(|_| Behaviour::Huge { total: 512 << 20 });
    let api = ApiClient::with_limits(&server.base, ApiKey::new("k"), 100.0, TimeLimits::default()).unwrap();
    runtime().block_on(async {
        let err = submit(&api).await.unwrap_err();
        assert!(
            matches!(&err, ApiError::BadAnswer(m) if m.contains("larger than 1024 KiB")),
            "{err}"
        );
        let err = api.poll(api.turn().await, "g1").await.unwrap_err();
        assert!(
            matches!(&err, ApiError::BadAnswer(m) if m.contains("larger than 1024 KiB")),
            "{err}"
        );
    });
    // What the server got out before the client hung up: the cap plus what the sockets buffer.
    let sent = server.written.load(Ordering::Relaxed);
    assert!(sent < 64 << 20, "{sent} bytes were read to refuse two answers");
}

#[test]
fn a_server_that_trickles_cannot_hold_a_submit_or_a_poll() {
    // Headers, then a byte every 100 ms: never idle long enough for the read timeout.
    let server = serve(|_| Behaviour::Trickle {
        length: 100_000,
        every: Duration::from_millis(100),
    });
    let api = ApiClient::with_limits(&server.base, ApiKey::new("k"), 100.0, SHORT).unwrap();
    runtime().block_on(async {
        let err = submit(&api).await.unwrap_err();
        assert!(matches!(&err, ApiError::NoAnswer(m) if m.contains("in time")), "{err}");
        // A submit cut off by its deadline reached the service: its outcome is unknown.
        assert_eq!(
            err.disposition(vidbatch::api::Op::Submit),
            vidbatch::api::Disposition::Ambiguous
        );
        let err = api.poll(api.turn().await, "g1").await.unwrap_err();
        assert!(matches!(&err, ApiError::NoAnswer(m) if m.contains("in time")), "{err}");
    });
    // Each deadline cut its request off after about 15 bytes, not 100,000.
    assert!(server.written.load(Ordering::Relaxed) < 200);
}

#[test]
fn a_file_host_that_trickles_is_given_up_on_for_a_fresh_url() {
    let server = serve(|line| match line.contains("/videos/") {
        true => Behaviour::Trickle {
            length: 1_000_000,
            every: Duration::from_millis(50),
        },
        false => Behaviour::Json("{}"),
    });
    let pace = Pace {
        read_idle: Duration::from_secs(2),
        window: Duration::from_millis(500),
        min_bytes: 1024,
    };
    let downloader = Downloader::with_pace(1 << 30, pace).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.mp4");
    let result = runtime().block_on(downloader.fetch(&format!("{}/videos/a.mp4", server.base), &dest, None));
    assert!(
        matches!(&result, Err(DownloadError::Transient(m)) if m.contains("too slow")),
        "{result:?}"
    );
    assert!(!dest.exists());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no `.part` left"
    );
}
