//! Test harness: a simulator on 127.0.0.1 in this process, the real `vidbatch` binary pointed at
//! it, and readers for what the run left behind.

#![allow(dead_code)]

pub mod catalog_jobs;
pub mod skip;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vidbatch::sim::{self, RunningSim, SimConfig, SimLog};

pub const KEY: &str = "test-key";

pub struct Harness {
    pub dir: tempfile::TempDir,
    /// The price lists the runs keep (the user's cache folder, not the test's working folder).
    pub cache: tempfile::TempDir,
    pub sim: RunningSim,
    // Keeps the simulator's threads alive for the test's lifetime.
    _runtime: tokio::runtime::Runtime,
}

impl Harness {
    pub fn new(config: SimConfig) -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = runtime
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), config))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let assets = repo().join("manifests/assets");
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        for entry in std::fs::read_dir(assets).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join("assets").join(entry.file_name())).unwrap();
        }
        Harness {
            dir,
            cache: tempfile::tempdir().unwrap(),
            sim,
            _runtime: runtime,
        }
    }

    /// A fast simulator (generations finish in a fraction of a second).
    pub fn fast() -> Harness {
        Harness::new(fast_config())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// `vidbatch <args>` against the simulator.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_as(KEY, args)
    }

    /// `vidbatch run <manifest> --out out` with fast polling and retries, plus `extra`.
    pub fn run_command(&self, manifest: &Path, extra: &[&str]) -> Command {
        self.run_in("out", manifest, extra)
    }

    /// Runs it to the end.
    pub fn run(&self, manifest: &Path, extra: &[&str]) -> Output {
        let output = self.run_command(manifest, extra).output().unwrap();
        eprintln!(
            "--- vidbatch run {extra:?} exited {:?}\n{}",
            output.status.code(),
            stderr(&output)
        );
        output
    }

    pub fn spawn_run(&self, manifest: &Path, extra: &[&str]) -> Child {
        self.run_command(manifest, extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    pub fn log(&self) -> SimLog {
        self.sim.log()
    }

    /// Waits (at most 30 s) until the simulator's log satisfies `done`.
    pub fn wait_for(&self, what: &str, done: impl Fn(&SimLog) -> bool) {
        let start = Instant::now();
        while !done(&self.log()) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn results(&self) -> Vec<HashMap<String, String>> {
        read_results(&self.out().join("results.csv"))
    }
}

pub fn fast_config() -> SimConfig {
    SimConfig {
        queued: Duration::from_millis(50),
        generating: Duration::from_millis(150),
        ..SimConfig::default()
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the run said `text` on stderr, showing all it said if not.
pub fn assert_said(output: &Output, text: &str) {
    let said = stderr(output);
    assert!(said.contains(text), "expected `{text}` in:\n{said}");
}

/// Reads a results file by its header, in the separator it was written with (the manifest's).
pub fn read_results(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read(path).unwrap();
    let header = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&text);
    let sep = [b';', b'\t']
        .into_iter()
        .find(|&sep| header.starts_with(&[b"job_id" as &[u8], &[sep]].concat()))
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new().delimiter(sep).from_reader(text.as_slice());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Every file under `dir`, relative, with `/` separators.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Checks each completed row: the file exists, is whole, matches its recorded size and hash, and
/// is exactly the simulator's video for the recorded generation.
pub fn assert_files_match_results(out: &Path, rows: &[HashMap<String, String>]) {
    for row in rows.iter().filter(|r| r["status"] == "completed") {
        let bytes = std::fs::read(out.join(&row["file"])).unwrap_or_else(|e| panic!("{}: {e}", row["file"]));
        assert_eq!(bytes.len().to_string(), row["bytes"], "{}", row["file"]);
        assert_eq!(sha256_hex(&bytes), row["sha256"], "{}", row["file"]);
        // A simulator padding its videos (`video_size`) sends them at that size.
        let natural = sim::media::video(&row["generation_id"]);
        let expected = if bytes.len() > natural.len() {
            sim::media::padded_video(&row["generation_id"], bytes.len() as u64)
        } else {
            natural
        };
        assert!(bytes == expected, "{} is not the simulator's video", row["file"]);
    }
}

/// A plain HTTP client for talking to the simulator directly (TLS is rustls with ring, which a
/// process must choose once).
pub fn blocking_client() -> reqwest::blocking::Client {
    tls();
    reqwest::blocking::Client::new()
}

// Helpers of the chaos, kill-loop and secrets tests.

/// Installs the TLS crypto provider, which reqwest clients built by the tests themselves need.
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Harness {
    /// `vidbatch <args>` against the simulator, with the key `key`.
    pub fn command_as(&self, key: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidbatch"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("AIMLAPI_BASE_URL", &self.sim.base_url)
            .env("AIMLAPI_KEY", key)
            // Price lists kept by this test only.
            .env("VIDBATCH_CACHE_DIR", self.cache.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// `vidbatch run <manifest> --out <out>` with fast polling and retries, plus `extra`.
    pub fn run_in(&self, out: &str, manifest: &Path, extra: &[&str]) -> Command {
        let mut args = vec!["run", manifest.to_str().unwrap(), "--out", out];
        // Fast defaults, unless the test gives its own.
        for (flag, value) in [
            ("--rate", "1000"),
            ("--poll-interval", "50ms"),
            ("--retry-base", "10ms"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        self.command_as(KEY, &args)
    }

    /// Runs `command` to the end, echoing what it said on stderr.
    pub fn finish(&self, mut command: Command) -> Output {
        let output = command.output().unwrap();
        eprintln!("--- vidbatch exited {:?}\n{}", output.status.code(), stderr(&output));
        output
    }

    /// Waits at most `limit` until the simulator's log satisfies `done`; says whether it did.
    pub fn wait_at_most(&self, limit: Duration, done: impl Fn(&SimLog) -> bool) -> bool {
        let start = Instant::now();
        while !done(&self.log()) {
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

/// The request id the client sends with every submit of a job (`job_id` in results.csv).
pub fn request_id(job_id: &str) -> String {
    format!("vidbatch-{job_id}")
}

/// A child process killed when the test ends, passed or not: a server left running would outlive
/// the test run.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
