//! Headless Chromium for the report's tests: found (or the test skipped, saying why) and driven
//! over the DevTools protocol on a pipe.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{KillOnDrop, skip::skip};

/// The browser, or `None` when the test `test` is to be skipped here (said on stderr; a failure
/// with `VIDBATCH_REQUIRE_ALL_TESTS=1`).
pub fn chromium(test: &str) -> Option<PathBuf> {
    if std::env::var("VIDBATCH_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        skip(test, "VIDBATCH_SKIP_BROWSER=1 is set", "unset VIDBATCH_SKIP_BROWSER");
        return None;
    }
    if let Some(path) = std::env::var_os("VIDBATCH_CHROMIUM").map(PathBuf::from) {
        // Asked for by name: a wrong path is a mistake to fix, not a reason to skip.
        assert!(
            path.is_file(),
            "VIDBATCH_CHROMIUM={} is not a file: point it at Chromium's binary",
            path.display()
        );
        return Some(path);
    }
    let names = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = names
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skip(
            test,
            "no Chromium found (VIDBATCH_CHROMIUM is not set; no chromium, chromium-browser or google-chrome on the PATH)",
            "install it (Debian: `apt-get install -y --no-install-recommends chromium`) or set VIDBATCH_CHROMIUM=/path/to/chromium",
        );
    }
    found
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// it reads NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4).
pub struct Browser {
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
    pub fn open(chromium: &Path, dir: &Path) -> Browser {
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
    pub fn call(&mut self, method: &str, params: Value) -> Value {
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

    pub fn navigate(&mut self, page: &Path) {
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
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    pub fn text(&mut self, selector: &str) -> String {
        let value = self.eval(&format!("document.querySelector({selector:?}).textContent"));
        value.as_str().unwrap_or_default().trim().to_string()
    }

    pub fn wait_until(&mut self, what: &str, condition: &str) {
        let start = Instant::now();
        while self.eval(condition) != true {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn key(&mut self, key: &str) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": 27}),
            );
        }
    }

    /// Every request the page made was for a file on disk (or inline data).
    pub fn assert_nothing_from_the_network(&mut self) {
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
    pub fn screenshot(&mut self, suffix: &str, whole: bool) {
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
