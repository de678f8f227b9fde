//! `report.html` in a real browser: a manifest run by the real binary against the simulator, then
//! the page opened from disk in headless Chromium, driven over the DevTools protocol (on a pipe:
//! no port, no websocket). Checks what a person would see: the grid matches `results.csv`, the
//! videos on screen play (and those off screen wait), nothing is fetched from the network, the
//! lightbox opens and Esc closes it, the filters filter. Leaves a screenshot behind.
//!
//! Needs `chromium` (Debian: `apt-get install chromium`); `VIDBATCH_SKIP_BROWSER=1` skips it.

#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Harness, KillOnDrop, read_results, stderr};
use serde_json::{Value, json};
use vidbatch::exit_code;

const MANIFEST: &str = r#"name: gallery
jobs:
  - model: magic/image-to-video
    inputs: [assets/shoe.jpg, assets/bag.png]
    templates: [Tokyo Billboard, Rotating Cards, Phone Social]
  - model: magic/text-to-video
    prompts: ["SALE -30%", "<script>alert('x')</script> & \"friends\""]
  - model: pixverse/v5/image-to-video
    input: assets/presenter.jpg
    prompt: A presenter waves
    params: {resolution: 540p}
  - model: pixverse/v5/image-to-video
    input: assets/presenter.jpg
    prompt: A presenter waves
    params: {resolution: 720p}
  - model: acme/video-9000
    prompt: a cat that the service refuses
"#;

/// One browser at a time: two, each decoding dozens of videos, would starve each other on a
/// small machine and make the timing checks flaky.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_report_shows_the_results_plays_the_videos_and_fetches_nothing() {
    let Some(chromium) = chromium() else { return };
    let _turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let h = Harness::fast();
    let manifest = h.write("gallery.yaml", MANIFEST);
    // The output folder elsewhere than the manifest: the inputs still show.
    let output = h.finish(h.run_in("runs/gallery", &manifest, &[]));
    assert_eq!(
        output.status.code(),
        Some(exit_code::JOBS_INCOMPLETE),
        "{}",
        stderr(&output)
    );
    let out = h.path("runs/gallery");
    let page = out.join("report.html");
    assert!(page.is_file(), "the run wrote no report: {}", stderr(&output));
    let rows = read_results(&out.join("results.csv"));
    assert_eq!(rows.len(), 11);

    let mut browser = Browser::open(&chromium, h.dir.path());
    browser.navigate(&page);
    let entries = browser.entries();
    assert_grid_matches(&entries, &rows);
    assert_eq!(browser.text("#total-jobs"), "11");
    assert_eq!(browser.text("#total-completed"), "10");
    assert_eq!(browser.text("#total-failed"), "1");
    let credits: f64 = rows.iter().filter_map(|r| r["credits"].parse::<f64>().ok()).sum();
    assert_eq!(browser.text("#total-credits").replace(',', ""), credits.to_string());
    let prompts = browser.eval("[...document.querySelectorAll('tbody th .prompt')].map(p => p.textContent)");
    assert!(
        prompts
            .as_array()
            .unwrap()
            .contains(&json!("<script>alert('x')</script> & \"friends\"")),
        "the prompt is shown as text: {prompts}"
    );
    assert_eq!(browser.eval("document.scripts.length"), 1, "a prompt became a script");

    // The inputs beside their rows: copies under the output folder, decoded by the browser.
    let images = browser.eval(
        "[...document.querySelectorAll('tbody th img')].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])",
    );
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 3, "{images:?}");
    for image in images {
        assert!(image[0].as_str().unwrap().starts_with("report-inputs/"), "{image}");
        assert_eq!(image[1], true, "input image not shown: {image}");
    }

    // What is on screen plays; what is below waits for its turn.
    let on_screen = browser.wait_for_playing();
    assert!(on_screen >= 2, "only {on_screen} video(s) playing");
    let waiting =
        browser.eval("[...document.querySelectorAll('video.cell-video')].filter(v => !v.getAttribute('src')).length");
    assert!(
        waiting.as_u64().unwrap() >= 1,
        "every video loaded at once: lazy loading is off"
    );

    // Scrolled to the end: the last videos load and play, the first ones pause.
    browser.eval("window.scrollTo(0, document.body.scrollHeight)");
    browser.wait_until("the last videos play", "(() => { const v = [...document.querySelectorAll('video.cell-video')].pop(); return v.getAttribute('src') && !v.paused && v.currentTime > 0 && v.readyState >= 2; })()");
    browser.wait_until(
        "the first video pauses",
        "document.querySelector('video.cell-video').paused",
    );
    let loaded = browser.eval(
        "[...document.querySelectorAll('video.cell-video')].every(v => v.getAttribute('src') ? v.readyState >= 2 && !v.error : true)",
    );
    assert_eq!(loaded, true, "a video failed to load");
    // Back at the top, every video has been seen: the whole page makes the picture.
    browser.eval("window.scrollTo(0, 0)");
    browser.wait_for_playing();
    browser.screenshot("", true);

    // A click enlarges a video; Esc closes it.
    browser.eval("document.querySelector('video.cell-video').click()");
    browser.wait_until("the lightbox plays", "(() => { const d = document.getElementById('lightbox'); const v = d.querySelector('video'); return d.open && !v.paused && v.currentTime > 0; })()");
    browser.key("Escape");
    browser.wait_until("Esc closes the lightbox", "!document.getElementById('lightbox').open");

    // The status filter leaves the failed job alone.
    browser.eval("(() => { const s = document.getElementById('filter-status'); s.value = 'failed'; s.dispatchEvent(new Event('change')); })()");
    let visible =
        browser.eval("[...document.querySelectorAll('.entry')].filter(e => e.offsetParent).map(e => e.dataset.job)");
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["job_id"].as_str())
        .collect();
    assert_eq!(visible, json!(failed));

    browser.assert_nothing_from_the_network();
    drop(browser);

    // A `label` column (read by name, wherever it is) and a BOM: `vidbatch report` shows them.
    let labelled = with_labels(&out.join("results.csv"));
    std::fs::write(out.join("results.csv"), labelled).unwrap();
    let again = h.finish(h.command(&["report", out.to_str().unwrap()]));
    assert_eq!(again.status.code(), Some(exit_code::OK));
    let mut browser = Browser::open(&chromium, h.dir.path());
    browser.navigate(&page);
    let entries = browser.entries();
    assert_grid_matches(&entries, &rows);
    for e in &entries {
        let expected = if e["status"] == "completed" { "winner?" } else { "" };
        assert_eq!(e["label"], expected, "{e}");
    }
    browser.eval("(() => { const s = document.getElementById('filter-label'); s.value = 'winner?'; s.dispatchEvent(new Event('change')); })()");
    let visible = browser.eval("document.querySelectorAll('.entry:not([hidden])').length");
    assert_eq!(visible, 10);
    assert_eq!(browser.text("#shown"), "showing 10 of 11");
    browser.assert_nothing_from_the_network();

    // No results, no page: said plainly.
    let none = h.finish(h.command(&["report", "nowhere"]));
    assert_eq!(none.status.code(), Some(exit_code::INVALID));
    assert!(stderr(&none).contains("no results.csv in `nowhere`: run a manifest into it first"));
}

/// 500 cells (25 inputs × 20 templates): the page opens at once, loads only the videos near the
/// screen, plays at most a few dozen, and keeps that bound while the grid is scrolled about.
#[test]
fn five_hundred_cells_load_and_play_only_what_is_on_screen() {
    let Some(chromium) = chromium() else { return };
    let _turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut csv = String::from(
        "job_id,model,template,input,status,generation_id,file,bytes,sha256,credits,attempts,submitted_at,finished_at,error\n",
    );
    let video = vidbatch::sim::media::video("g");
    for t in 0..20 {
        std::fs::create_dir_all(out.join(format!("videos/t{t}"))).unwrap();
        for i in 0..25 {
            let file = format!("videos/t{t}/input-{i}.mp4");
            std::fs::write(out.join(&file), &video).unwrap();
            let id = format!("{t:02}{i:02}00000000");
            csv.push_str(&format!(
                "{id},magic/image-to-video,Template {t},assets/input-{i}.jpg,completed,g{id},{file},{},x,1,1,,,\n",
                video.len()
            ));
        }
    }
    std::fs::write(out.join("results.csv"), csv).unwrap();
    let report = Command::new(env!("CARGO_BIN_EXE_vidbatch"))
        .args(["report", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(exit_code::OK), "{}", stderr(&report));

    let mut browser = Browser::open(&chromium, dir.path());
    let start = Instant::now();
    browser.navigate(&out.join("report.html"));
    assert_eq!(
        browser.eval("document.querySelectorAll('video.cell-video').length"),
        500
    );
    let bounds = "(() => { const vs = [...document.querySelectorAll('video.cell-video')]; return [vs.filter(v => v.getAttribute('src')).length, vs.filter(v => !v.paused).length]; })()";
    let check = |browser: &mut Browser, when: &str| {
        let playing = browser.wait_for_playing();
        let counts = browser.eval(bounds);
        let (loaded, running) = (counts[0].as_u64().unwrap(), counts[1].as_u64().unwrap());
        eprintln!("{when}: {playing} in view, {loaded} loaded, {running} playing");
        assert!(playing >= 4, "{when}: {playing} in view");
        assert!(loaded <= 48, "{when}: {loaded} videos loaded");
        assert!(running <= 40, "{when}: {running} videos playing");
    };
    check(&mut browser, "opened");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the page took {:?}",
        start.elapsed()
    );
    for (x, y) in [(2400, 0), (4800, 2000), (0, 4000), (1200, 1200)] {
        browser.eval(&format!("document.querySelector('.grid').scrollTo({x}, {y})"));
        std::thread::sleep(Duration::from_millis(100));
        check(&mut browser, &format!("scrolled to {x},{y}"));
    }
    browser.screenshot("-500", false);
    browser.assert_nothing_from_the_network();
}

/// Every row of `results.csv` is one entry of the page, in the grid of its model, on the row of
/// its input and in the column of its template (or its parameters), with its status and error.
fn assert_grid_matches(entries: &[Value], rows: &[HashMap<String, String>]) {
    assert_eq!(entries.len(), rows.len(), "{entries:#?}");
    for row in rows {
        let e = entries
            .iter()
            .find(|e| e["job"] == row["job_id"].as_str())
            .unwrap_or_else(|| panic!("job {} not on the page", row["job_id"]));
        let strip = |v: &str| v.strip_prefix('\'').unwrap_or(v).to_string();
        assert_eq!(e["section"], row["model"].as_str(), "{e}");
        assert_eq!(e["row"], strip(&row["input"]), "{e}");
        assert_eq!(e["status"], row["status"].as_str(), "{e}");
        let column = e["column"].as_str().unwrap();
        if row["template"].is_empty() {
            let params: Value = serde_json::from_str(&row["params"]).unwrap_or(Value::Null);
            match params["resolution"].as_str() {
                Some(res) => assert_eq!(column, format!("resolution={res}"), "{e}"),
                None => assert_eq!(column, "video", "{e}"),
            }
        } else {
            assert_eq!(column, row["template"], "{e}");
        }
        if row["status"] == "completed" {
            assert_eq!(e["src"], row["file"].as_str(), "{e}");
        } else {
            assert_eq!(e["src"], Value::Null, "{e}");
            assert_eq!(e["error"], row["error"].as_str(), "{e}");
        }
    }
}

/// `results.csv` with a BOM and a `label` column third: `winner?` on completed jobs.
fn with_labels(path: &Path) -> String {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let status = headers.iter().position(|h| h == "status").unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut names: Vec<&str> = headers.iter().collect();
    names.insert(2, "label");
    writer.write_record(&names).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let mut cells: Vec<&str> = record.iter().collect();
        cells.insert(2, if cells[status] == "completed" { "winner?" } else { "" });
        writer.write_record(&cells).unwrap();
    }
    format!("\u{feff}{}", String::from_utf8(writer.into_inner().unwrap()).unwrap())
}

/// The browser, or `None` when the test is to be skipped; a missing browser fails the test.
fn chromium() -> Option<PathBuf> {
    if std::env::var("VIDBATCH_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("VIDBATCH_SKIP_BROWSER=1: the report's browser test is skipped");
        return None;
    }
    let candidates = [std::env::var_os("VIDBATCH_CHROMIUM").map(PathBuf::from)]
        .into_iter()
        .flatten()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    for path in candidates {
        if path.is_file() {
            return Some(path);
        }
    }
    panic!(
        "the report's browser test needs Chromium at /usr/bin/chromium (or VIDBATCH_CHROMIUM=path): \
         `apt-get install -y --no-install-recommends chromium` on Debian; \
         VIDBATCH_SKIP_BROWSER=1 skips this test"
    );
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// it reads NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4).
struct Browser {
    _process: KillOnDrop,
    _profile: tempfile::TempDir,
    commands: std::io::PipeWriter,
    messages: Receiver<Value>,
    /// Events received while waiting for answers.
    events: Vec<Value>,
    session: String,
    next_id: u64,
}

impl Browser {
    fn open(chromium: &Path, dir: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (chrome_reads, commands) = std::io::pipe().unwrap();
        let (replies, chrome_writes) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (chrome_reads.as_raw_fd(), chrome_writes.as_raw_fd());
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
                "--hide-scrollbars",
                "--autoplay-policy=no-user-gesture-required",
                // Any host name fails to resolve: a fetch from the network could not succeed.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--window-size=1280,720",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe ends
        // are first moved above 3 and 4 so that neither overwrites the other.
        unsafe {
            command.pre_exec(move || {
                let read = libc::fcntl(read_fd, libc::F_DUPFD, 10);
                let write = libc::fcntl(write_fd, libc::F_DUPFD, 10);
                if read < 0 || write < 0 || libc::dup2(read, 3) < 0 || libc::dup2(write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let process = KillOnDrop(command.spawn().expect("cannot start chromium"));
        drop((chrome_reads, chrome_writes));
        let (send, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && send.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            _process: process,
            _profile: profile,
            commands,
            messages,
            events: Vec::new(),
            session: String::new(),
            next_id: 0,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Network.enable", json!({}));
        // Anything the page's Content-Security-Policy blocked was an attempt to fetch: noted.
        browser.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.blocked = []; document.addEventListener('securitypolicyviolation', e => window.blocked.push(e.blockedURI + ' (' + e.violatedDirective + ')'));"}),
        );
        browser
    }

    /// Sends a command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no answer from chromium to {method}: {e}"));
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
            self.events.push(reply);
        }
    }

    fn navigate(&mut self, page: &Path) {
        let url = format!("file://{}", page.display());
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.events.iter().any(|e| e["method"] == "Page.loadEventFired") {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.messages.recv_timeout(left).expect("the page did not load");
            self.events.push(event);
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    fn text(&mut self, selector: &str) -> String {
        let value = self.eval(&format!("document.querySelector({selector:?}).textContent"));
        value.as_str().unwrap_or_default().trim().to_string()
    }

    fn wait_until(&mut self, what: &str, condition: &str) {
        let start = Instant::now();
        while self.eval(condition) != true {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every video in view has data and plays (its time moves); returns how many.
    fn wait_for_playing(&mut self) -> u64 {
        // On screen: inside the window and inside its grid's scrolled box.
        let in_view = "[...document.querySelectorAll('video.cell-video')].filter(v => { \
            const r = v.getBoundingClientRect(), g = v.closest('.grid').getBoundingClientRect(); \
            return r.bottom > Math.max(0, g.top) && r.top < Math.min(innerHeight, g.bottom) \
                && r.right > Math.max(0, g.left) && r.left < Math.min(innerWidth, g.right); })";
        self.wait_until(
            "the videos in view play",
            &format!("(() => {{ const vs = {in_view}; return vs.length > 0 && vs.every(v => !v.paused && v.readyState >= 2 && v.currentTime > 0); }})()"),
        );
        // Playing, not stuck on a first frame: the time of each moves on.
        let count = self.eval(&format!(
            "(() => {{ const vs = {in_view}; window.started = new Map(vs.map(v => [v, v.currentTime])); return vs.length; }})()"
        ));
        self.wait_until(
            "the time of every video in view moves on",
            &format!("{in_view}.every(v => window.started.has(v) && v.currentTime !== window.started.get(v))"),
        );
        count.as_u64().unwrap()
    }

    /// Each job's entry: where it is in the grid and what it shows.
    fn entries(&mut self) -> Vec<Value> {
        let value = self.eval(
            r#"[...document.querySelectorAll('.entry')].map(e => {
                const td = e.closest('td'), table = e.closest('table');
                const video = e.querySelector('video');
                return {
                    job: e.dataset.job, status: e.dataset.status, label: e.dataset.label,
                    section: e.closest('section').querySelector('h2').textContent,
                    row: td.parentElement.querySelector('th').title,
                    column: table.querySelectorAll('thead th')[td.cellIndex].textContent,
                    src: video ? video.dataset.src : null,
                    error: video ? null : (e.querySelector('.error') || {textContent: ''}).textContent,
                };
            })"#,
        );
        value.as_array().unwrap().clone()
    }

    fn key(&mut self, key: &str) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": 27}),
            );
        }
    }

    /// Every request the page made was for a file on disk (or inline data).
    fn assert_nothing_from_the_network(&mut self) {
        let requested: Vec<String> = self
            .events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .map(|e| e["params"]["request"]["url"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(!requested.is_empty(), "no request seen: is the Network domain on?");
        let remote: Vec<&String> = requested
            .iter()
            .filter(|u| !(u.starts_with("file://") || u.starts_with("data:")))
            .collect();
        assert!(remote.is_empty(), "the page fetched {remote:?}");
        assert_eq!(self.eval("window.blocked"), json!([]), "the page tried to fetch these");
        let resources = self.eval("performance.getEntriesByType('resource').map(r => r.name)");
        for name in resources.as_array().unwrap() {
            assert!(name.as_str().unwrap().starts_with("file://"), "the page fetched {name}");
        }
    }

    /// Keeps a picture of the page for people to look at, whole or as on screen:
    /// `report-screenshot<suffix>.png` in the target folder, or `VIDBATCH_REPORT_SCREENSHOT`
    /// (a path, with the suffix put before its extension).
    fn screenshot(&mut self, suffix: &str, whole: bool) {
        let mut params = json!({"format": "png"});
        if whole {
            let size = self.call("Page.getLayoutMetrics", json!({}))["cssContentSize"].clone();
            params["clip"] = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
            params["captureBeyondViewport"] = true.into();
        }
        let shot = self.call("Page.captureScreenshot", params);
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = match std::env::var_os("VIDBATCH_REPORT_SCREENSHOT").map(PathBuf::from) {
            Some(p) => p.with_file_name(format!(
                "{}{suffix}.png",
                p.file_stem().unwrap_or_default().to_string_lossy()
            )),
            None => Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("../report-screenshot{suffix}.png")),
        };
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}
