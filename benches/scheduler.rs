//! The scheduler benchmark of issue 7: the real `vidbatch` binary against the in-process
//! simulator enforcing an account's limits, measured against a lower bound computed from the
//! simulator's own render times. Run with
//!
//! ```sh
//! cargo bench --bench scheduler                          # every section (about half an hour)
//! cargo bench --bench scheduler -- regimes --jobs 200 --scale 0.5   # a quick look
//! cargo bench --bench scheduler -- validate | inflight | downloads | slot-bound | rate-bound | mixed | cold-start
//! ```
//!
//! Options: `--jobs N` (jobs per regime run, default 1000; the mixed regime has its own
//! `--mixed-jobs N`, default 300, and `--mixed-rate R`, default 40, the client's and the server's
//! request rate; the cold-start cases `--cold-jobs N`, default 60), `--scale F` (every simulated time
//! multiplied by F), `--inflight-jobs N` (default 10000), `--rows 10000,100000` (validate),
//! `--sizes 1MiB,1GiB` (downloads), `--variants vidbatch,fixed10,fixed15`, `--client-arg ARG`
//! (repeatable: passed to the adaptive vidbatch runs), `--timeout-secs S` (per child, default
//! 1800), `--fs-control` (inflight: first create as many empty files beside the client's folder,
//! and say what that cost). `VIDBATCH_BENCH_DUMP=FILE` writes each generation of every run
//! measured to FILE (the last run's stay) as CSV.
//!
//! The client is a child process, so its CPU time and peak RSS are its own (`wait4`). Simulated
//! renders model the service's at a scale: the mean render `M` stands for the service's 150 s,
//! so the fixed baselines poll every `10/150 M` (the vendor SDK's 10 s) and `15/150 M` (the
//! docs' 15 s). Nothing here passes or fails: it prints markdown tables.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use vidbatch::sim::{self, RunningSim, SimConfig, SimStats};

const BIN: &str = env!("CARGO_BIN_EXE_vidbatch");
const KEY: &str = "bench-key";
/// What a render of the real service takes, which the simulated mean render stands for.
const SERVICE_RENDER: f64 = 150.0;
/// The client's poll prior on the real service (`PollPolicy::service`).
const SERVICE_PRIOR: f64 = 120.0;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(LAUNCH) {
        launch(&argv[2..]);
        return;
    }
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("{}", machine());
    let bench = Bench {
        rt,
        args,
        prior_flag: accepts_flag("--poll-prior"),
    };
    let all = bench.args.sections.is_empty();
    let wants = |s: &str| all || bench.args.sections.iter().any(|x| x == s);
    if wants("regimes") || wants("slot-bound") {
        bench.regime(Regime::slot_bound(&bench.args));
    }
    if wants("regimes") || wants("rate-bound") {
        bench.regime(Regime::rate_bound(&bench.args));
    }
    if wants("regimes") || wants("mixed") {
        bench.regime(Regime::mixed(&bench.args));
    }
    if wants("cold-start") {
        bench.cold_start();
    }
    if wants("validate") {
        bench.validate();
    }
    if wants("inflight") {
        bench.inflight();
    }
    if wants("downloads") {
        bench.downloads();
    }
}

struct Args {
    sections: Vec<String>,
    jobs: usize,
    mixed_jobs: usize,
    mixed_rate: f64,
    cold_jobs: usize,
    scale: f64,
    inflight_jobs: usize,
    rows: Vec<usize>,
    sizes: Vec<u64>,
    variants: Vec<String>,
    client_args: Vec<String>,
    timeout: Duration,
    /// `--fs-control`: before the in-flight run, create as many empty files beside its folder
    /// and report what that cost the kernel (see [`Bench::inflight`]).
    fs_control: bool,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            sections: Vec::new(),
            jobs: 1000,
            mixed_jobs: 300,
            mixed_rate: 40.0,
            cold_jobs: 60,
            scale: 1.0,
            inflight_jobs: 10_000,
            rows: vec![10_000, 20_000, 50_000, 100_000],
            sizes: vec![1 << 20, 16 << 20, 256 << 20, 1 << 30],
            variants: vec!["vidbatch".into(), "fixed10".into(), "fixed15".into()],
            client_args: Vec::new(),
            timeout: Duration::from_secs(1800),
            fs_control: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                // `cargo bench` passes this to every bench.
                "--bench" => {}
                "--jobs" => args.jobs = value().parse().unwrap(),
                "--mixed-jobs" => args.mixed_jobs = value().parse().unwrap(),
                "--mixed-rate" => args.mixed_rate = value().parse().unwrap(),
                "--cold-jobs" => args.cold_jobs = value().parse().unwrap(),
                "--scale" => args.scale = value().parse().unwrap(),
                "--inflight-jobs" => args.inflight_jobs = value().parse().unwrap(),
                "--rows" => args.rows = value().split(',').map(|r| r.parse().unwrap()).collect(),
                "--sizes" => args.sizes = value().split(',').map(parse_size).collect(),
                "--variants" => args.variants = value().split(',').map(String::from).collect(),
                "--client-arg" => args.client_args.push(value()),
                "--timeout-secs" => args.timeout = Duration::from_secs(value().parse().unwrap()),
                "--fs-control" => args.fs_control = true,
                s if !s.starts_with('-') => args.sections.push(s.to_string()),
                other => panic!("unknown option {other}"),
            }
        }
        args
    }
}

fn parse_size(s: &str) -> u64 {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: u64 = num.parse().unwrap();
    n * match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => panic!("unknown size unit {other}"),
    }
}

/// The machine, the date and the commit, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .is_some_and(|o| !o.stdout.is_empty());
    format!(
        "machine: {cores} cores ({cpu}); date: {}; commit: {commit}{}; command: {}\n",
        humantime::format_rfc3339_seconds(SystemTime::now()),
        if dirty { " (with uncommitted changes)" } else { "" },
        std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Whether the client takes this (hidden) option.
fn accepts_flag(flag: &str) -> bool {
    // The client measured: `VIDBATCH_BENCH_BIN` when another build is compared.
    let bin = std::env::var_os("VIDBATCH_BENCH_BIN").unwrap_or_else(|| BIN.into());
    let out = Command::new(bin)
        .args(["run", "/nonexistent/manifest.yaml", flag, "1s"])
        .env("AIMLAPI_KEY", KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stderr).contains("unexpected argument")
}

/// What a child process cost.
struct ChildRun {
    wall: Duration,
    /// When it exited.
    ended: SystemTime,
    cpu: Duration,
    /// Of `cpu`, the time spent in the kernel (system calls: files, sockets).
    sys: Duration,
    max_rss_kb: u64,
    /// The exit code (or 128 + the signal).
    code: i32,
}

/// The argument that makes this program a launcher: `<LAUNCH> <result file> <timeout s>
/// <program> <args…>` runs the program and writes what it cost to the result file.
const LAUNCH: &str = "--launch-child";

/// Runs `cmd` to its end (killed after `timeout`), through a launcher: a fresh small process
/// that spawns it and reads its resource usage with `wait4`. Spawned from this process
/// directly, the child's peak RSS would start at this process's own (Linux counts the
/// address space a child leaves at `exec`), which grows with the simulator's records.
fn run_child(cmd: Command, timeout: Duration) -> ChildRun {
    let result = tempfile::NamedTempFile::new().unwrap();
    let mut launcher = Command::new(std::env::current_exe().unwrap());
    launcher
        .arg(LAUNCH)
        .arg(result.path())
        .arg(timeout.as_secs().to_string())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        launcher.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    // `cmd`'s own standard streams cannot be read back from it: the child gets no stdin, no
    // stdout, and the `stderr.log` of its folder if there is one.
    let status = launcher
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(child_stderr(&cmd))
        .status()
        .unwrap();
    assert!(status.success(), "the launcher failed: {status}");
    let text = std::fs::read_to_string(result.path()).unwrap();
    let f: Vec<u128> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    ChildRun {
        wall: Duration::from_micros(f[0] as u64),
        ended: SystemTime::UNIX_EPOCH + Duration::from_micros(f[1] as u64),
        cpu: Duration::from_micros(f[2] as u64),
        max_rss_kb: f[3] as u64,
        code: f[4] as i32,
        sys: Duration::from_micros(f[5] as u64),
    }
}

/// Where the child's stderr should go: the file `stderr.log` of its folder when it has one.
fn child_stderr(cmd: &Command) -> Stdio {
    match cmd.get_current_dir().map(|d| d.join("stderr.log")) {
        Some(path) if path.exists() => std::fs::OpenOptions::new().append(true).open(path).unwrap().into(),
        _ => Stdio::null(),
    }
}

/// The launcher: runs the program, kills it after the timeout, writes `wall_µs ended_µs
/// cpu_µs max_rss_kb code sys_µs` to the result file.
fn launch(argv: &[String]) {
    let (result, timeout, program, args) = (&argv[0], &argv[1], &argv[2], &argv[3..]);
    let timeout = Duration::from_secs(timeout.parse().unwrap());
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + timeout;
            while !done.load(Ordering::Relaxed) {
                if Instant::now() > until {
                    eprintln!("  (killed after {timeout:?})");
                    // SAFETY: `pid` is our child, not yet reaped (`done` is set after `wait4`).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut status = 0;
    // SAFETY: plain C structs, written by `wait4`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child, with valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    let (wall, ended) = (start.elapsed(), SystemTime::now());
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    // Reaped by `wait4`: the `Child` must not wait again.
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let ended = ended.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros();
    let line = format!(
        "{} {ended} {} {} {code} {}\n",
        wall.as_micros(),
        micros(usage.ru_utime) + micros(usage.ru_stime),
        usage.ru_maxrss,
        micros(usage.ru_stime)
    );
    std::fs::write(result, line).unwrap();
}

struct Bench {
    rt: tokio::runtime::Runtime,
    args: Args,
    /// Whether the client can be told its poll prior (`--poll-prior`), to scale it like the renders.
    prior_flag: bool,
}

/// One regime of issue 7.
struct Regime {
    name: &'static str,
    jobs: usize,
    concurrency: usize,
    rate: f64,
    server_rate: Option<f64>,
    max_active: Option<usize>,
    queued: Duration,
    render: (Duration, Duration),
}

impl Regime {
    fn slot_bound(a: &Args) -> Regime {
        Regime {
            name: "slot-bound",
            jobs: a.jobs,
            concurrency: 100,
            rate: 200.0,
            server_rate: Some(200.0),
            max_active: Some(100),
            queued: Duration::from_secs_f64(0.5 * a.scale),
            render: (
                Duration::from_secs_f64(2.0 * a.scale),
                Duration::from_secs_f64(4.0 * a.scale),
            ),
        }
    }

    fn rate_bound(a: &Args) -> Regime {
        Regime {
            name: "rate-bound",
            jobs: a.jobs,
            concurrency: a.jobs,
            rate: 20.0,
            server_rate: Some(20.0),
            max_active: None,
            queued: Duration::from_secs_f64(0.5 * a.scale),
            render: (
                Duration::from_secs_f64(2.0 * a.scale),
                Duration::from_secs_f64(4.0 * a.scale),
            ),
        }
    }

    /// Issue 18's mixed regime: requests are scarce but not the only bound. Submits (about 14 a
    /// second on 50 slots) and polls want more than the 40 a second together.
    fn mixed(a: &Args) -> Regime {
        Regime {
            name: "mixed",
            jobs: a.mixed_jobs,
            concurrency: 50,
            rate: a.mixed_rate,
            server_rate: Some(a.mixed_rate),
            max_active: Some(50),
            queued: Duration::from_secs_f64(0.5 * a.scale),
            render: (
                Duration::from_secs_f64(2.0 * a.scale),
                Duration::from_secs_f64(4.0 * a.scale),
            ),
        }
    }

    fn mean_render(&self) -> Duration {
        (self.render.0 + self.render.1) / 2
    }

    /// The service's seconds to this regime's: the mean render stands for the service's 150 s.
    fn scaled(&self, service_secs: f64) -> Duration {
        self.mean_render().mul_f64(service_secs / SERVICE_RENDER)
    }
}

/// What one client run measured.
struct Outcome {
    label: String,
    run: ChildRun,
    jobs: usize,
    lb: Duration,
    lb_slots: Duration,
    lb_rate: Duration,
    /// A tighter bound: the greedy schedule when no two submits are closer than 1/R (an oracle
    /// still sends each job's POST through the rate limit), or 2N/R.
    lb_paced: Duration,
    stats: SimStats,
    completed: usize,
}

impl Outcome {
    fn row(&self, mean_render: Duration) -> String {
        let created = self.stats.created();
        let mut latencies: Vec<f64> = created
            .iter()
            .filter_map(|(_, g)| g.detection_latency())
            .map(|d| d.as_secs_f64())
            .collect();
        latencies.sort_by(f64::total_cmp);
        let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
        let p95 = percentile(&latencies, 0.95);
        let render = mean_render.as_secs_f64();
        let throttled = if self.stats.throttled.is_empty() {
            "0".to_string()
        } else {
            self.stats
                .throttled
                .iter()
                .map(|(code, n)| format!("{n} {code}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let n = self.jobs as f64;
        format!(
            "| {} | {:.1} | {:.1} ({}) | **{:.2}** | {:.1} | {:.2} | {:.2} | {:.3} ({:.1} %) | {:.3} ({:.1} %) | {} | {:.3} | {:.1} | {}/{} (exit {}) |",
            self.label,
            self.run.wall.as_secs_f64(),
            self.lb.as_secs_f64(),
            if self.lb_slots >= self.lb_rate { "slots" } else { "2N/R" },
            self.run.wall.as_secs_f64() / self.lb.as_secs_f64(),
            self.lb_paced.as_secs_f64(),
            self.run.wall.as_secs_f64() / self.lb_paced.as_secs_f64(),
            self.stats.requests as f64 / n,
            mean,
            100.0 * mean / render,
            p95,
            100.0 * p95 / render,
            throttled,
            self.run.cpu.as_secs_f64() * 1000.0 / n,
            self.run.max_rss_kb as f64 / 1024.0,
            self.completed,
            self.jobs,
            self.run.code,
        )
    }
}

const OUTCOME_HEADER: &str = "| client | makespan s | LB s (bound by) | makespan / LB | LB′ s (submits ≥ 1/R apart) | makespan / LB′ | requests / job | detection latency mean s (% of mean render) | p95 s (%) | 429s received | client CPU ms / job | peak RSS MB | completed |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One row of the cold-start table. `skip`: the finishes noticed first left out (5 by default).
fn cold_row(name: &str, o: &Outcome, makespan: Duration, skip: Option<usize>) -> String {
    let mut seen: Vec<(SystemTime, f64)> = o
        .stats
        .created()
        .iter()
        .filter_map(|(_, g)| {
            let at = g.first_finished_poll?;
            let own = (g.queued + g.render).as_secs_f64();
            Some((at, at.duration_since(g.created_at).ok()?.as_secs_f64() / own))
        })
        .collect();
    seen.sort_by_key(|s| s.0);
    let skip = skip.unwrap_or(5).min(seen.len());
    let first: Vec<String> = seen[..skip].iter().map(|(_, x)| format!("{x:.1}")).collect();
    let mut ratios: Vec<f64> = seen[skip..].iter().map(|(_, x)| *x).collect();
    ratios.sort_by(f64::total_cmp);
    let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    let late = ratios.iter().filter(|&&x| x > 3.0).count();
    format!(
        "| {name} | {:.1} | {:.2} | {:.2} | {mean:.2} | {:.2} | {:.2} | {late} of {} | {} | {}/{} (exit {}) |",
        makespan.as_secs_f64(),
        makespan.as_secs_f64() / o.lb.as_secs_f64(),
        o.stats.requests as f64 / o.jobs as f64,
        percentile(&ratios, 0.95),
        ratios.last().copied().unwrap_or(f64::NAN),
        ratios.len(),
        if first.is_empty() {
            "-".to_string()
        } else {
            first.join(", ")
        },
        o.completed,
        o.jobs,
        o.run.code,
    )
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The greedy schedule of `durations` (in submit order) on `slots` slots: each starts when a
/// slot frees, at once, and no sooner than `spacing` after the one before it; its makespan.
fn greedy(durations: &[Duration], slots: usize, spacing: Duration) -> Duration {
    let mut free: BinaryHeap<Reverse<Duration>> = (0..slots.max(1)).map(|_| Reverse(Duration::ZERO)).collect();
    let mut end = Duration::ZERO;
    for (i, &d) in durations.iter().enumerate() {
        let Reverse(free_at) = free.pop().unwrap();
        let start = free_at.max(spacing * i as u32);
        end = end.max(start + d);
        free.push(Reverse(start + d));
    }
    end
}

/// `vidbatch run MANIFEST --out out --concurrency C --rate R`, the arguments every measured run
/// starts from.
fn run_args(manifest: &Path, concurrency: usize, rate: f64) -> Vec<String> {
    let manifest = manifest.to_str().unwrap();
    [
        "run",
        manifest,
        "--out",
        "out",
        "--concurrency",
        &concurrency.to_string(),
        "--rate",
        &rate.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A YAML manifest of `n` text-to-video jobs, one prompt each.
fn manifest(dir: &Path, n: usize) -> PathBuf {
    let mut yaml = String::from("name: bench\njobs:\n");
    for i in 0..n {
        writeln!(yaml, "  - model: magic/text-to-video\n    prompt: \"BENCH {i:05}\"").unwrap();
    }
    let path = dir.join("bench.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// What polling could do at best on the renders of a run: an oracle that knows their
/// distribution exactly (the plan made from the very durations it is scored on) and polls each
/// generation on one schedule. At the issue's 2.5 requests per job (1.5 polls), and at the polls
/// the measured client spent.
fn frontier_note(o: &Outcome) {
    let created = o.stats.created();
    let durations: Vec<Duration> = created.iter().map(|(_, g)| g.queued + g.render).collect();
    if durations.is_empty() {
        return;
    }
    let mean_render = created.iter().map(|(_, g)| g.render.as_secs_f64()).sum::<f64>() / durations.len() as f64;
    let spent = o.stats.requests as f64 / o.jobs as f64 - 1.0;
    let mut line = String::from("Best any poll schedule does on these renders (an oracle knowing their distribution):");
    for polls in [1.5, spent] {
        let (p, latency) = frontier(&durations, polls);
        write!(
            line,
            " {p:.2} polls per generation ({:.2} requests per job): mean detection latency {latency:.3} s \
             ({:.1} % of the mean render);",
            p + 1.0,
            100.0 * latency / mean_render
        )
        .unwrap();
    }
    println!("{}\n", line.trim_end_matches(';'));
}

/// (polls per generation, mean detection latency in seconds) of the best plan for `durations`
/// that spends at most `polls` per generation: the price of a poll bisected until the plan fits.
fn frontier(durations: &[Duration], polls: f64) -> (f64, f64) {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let score = |price: f64| {
        let plan = vidbatch::coordinator::polling::plan(&sorted, Duration::from_secs_f64(price));
        let (mut n, mut late) = (0usize, 0f64);
        for d in &sorted {
            let k = plan.partition_point(|at| at < d);
            n += k + 1;
            late += (plan[k] - *d).as_secs_f64();
        }
        (n as f64 / sorted.len() as f64, late / sorted.len() as f64)
    };
    // More expensive polls, fewer of them: find the cheapest price whose plan fits.
    let (mut cheap, mut dear) = (1e-6, sorted[sorted.len() - 1].as_secs_f64() * 10.0);
    for _ in 0..50 {
        let mid = (cheap * dear).sqrt();
        if score(mid).0 > polls {
            cheap = mid;
        } else {
            dear = mid;
        }
    }
    score(dear)
}

/// Each generation as a CSV row (`VIDBATCH_BENCH_DUMP=FILE`), for a closer look than the table:
/// when it was created (seconds from the first), its queue and render, its polls and how late
/// its finish was seen.
fn dump_generations(path: &Path, stats: &SimStats) {
    let created = stats.created();
    let Some(first) = created.first().map(|(_, g)| g.created_at) else {
        return;
    };
    let mut csv = String::from("created_s,queued_s,render_s,polls,detection_s\n");
    for (_, g) in &created {
        let at = g.created_at.duration_since(first).unwrap_or_default().as_secs_f64();
        let seen = g
            .detection_latency()
            .map_or(String::new(), |d| format!("{:.4}", d.as_secs_f64()));
        writeln!(
            csv,
            "{at:.4},{:.4},{:.4},{},{seen}",
            g.queued.as_secs_f64(),
            g.render.as_secs_f64(),
            g.polls
        )
        .unwrap();
    }
    std::fs::write(path, csv).unwrap();
}

/// A `timeval` (CPU time from `wait4` or `getrusage`) in microseconds.
fn micros(t: libc::timeval) -> u128 {
    t.tv_sec as u128 * 1_000_000 + t.tv_usec as u128
}

/// Creates `n` empty files in a new folder of the temporary directory, timed by this thread's
/// own CPU (the simulator's threads run beside it): the folder, kept until dropped, and the time.
fn create_files(n: usize) -> (tempfile::TempDir, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let thread_cpu = || {
        // SAFETY: a plain C struct, written by `getrusage`.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer; RUSAGE_THREAD is Linux's, as is this bench.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        Duration::from_micros((micros(usage.ru_utime) + micros(usage.ru_stime)) as u64)
    };
    let before = thread_cpu();
    for i in 0..n {
        std::fs::File::create(dir.path().join(format!("{i:05}.part"))).unwrap();
    }
    let took = thread_cpu() - before;
    (dir, took)
}

fn completed_rows(out: &Path) -> usize {
    let Ok(mut reader) = csv::Reader::from_path(out.join("results.csv")) else {
        return 0;
    };
    let headers = reader.headers().unwrap().clone();
    let status = headers.iter().position(|h| h == "status").unwrap();
    reader
        .records()
        .filter(|r| r.as_ref().is_ok_and(|r| &r[status] == "completed"))
        .count()
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3}s").trim_end_matches('0').to_string()
    } else {
        format!("{}ms", (s * 1000.0).round() as u64)
    }
}

impl Bench {
    fn start_sim(&self, config: SimConfig) -> RunningSim {
        self.rt
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), config))
            .unwrap()
    }

    fn vidbatch(&self, sim: &RunningSim, dir: &Path, args: &[String]) -> Command {
        // `VIDBATCH_BENCH_BIN`: another build of the client, to compare two side by side.
        let bin = std::env::var_os("VIDBATCH_BENCH_BIN").unwrap_or_else(|| BIN.into());
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(dir)
            .env("AIMLAPI_BASE_URL", &sim.base_url)
            .env("AIMLAPI_KEY", KEY)
            .env_remove("RUST_LOG");
        // Where `run_child` sends its stderr.
        std::fs::File::create(dir.join("stderr.log")).unwrap();
        cmd
    }

    /// The client's own adaptive polling, with its prior scaled like the renders when it can be.
    fn adaptive_args(&self, prior: Duration) -> (String, Vec<String>) {
        let mut args = Vec::new();
        let label = if self.prior_flag {
            args.extend(["--poll-prior".to_string(), secs(prior)]);
            format!("vidbatch adaptive (prior {})", secs(prior))
        } else {
            "vidbatch adaptive (its service prior, 120 s: unscaled)".to_string()
        };
        args.extend(self.args.client_args.iter().cloned());
        let label = if self.args.client_args.is_empty() {
            label
        } else {
            format!("{label} {}", self.args.client_args.join(" "))
        };
        (label, args)
    }

    /// One client run against a fresh simulator.
    fn measure(
        &self,
        config: SimConfig,
        jobs: usize,
        concurrency: usize,
        rate: f64,
        label: String,
        extra: &[String],
    ) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), jobs);
        let sim = self.start_sim(config);
        let mut args = run_args(&manifest, concurrency, rate);
        args.extend_from_slice(extra);
        eprintln!("  {label}: vidbatch {}", args[2..].join(" "));
        let run = run_child(self.vidbatch(&sim, dir.path(), &args), self.args.timeout);
        let stats = sim.stats();
        drop(sim);
        let durations: Vec<Duration> = stats.created().iter().map(|(_, g)| g.queued + g.render).collect();
        let lb_slots = greedy(&durations, concurrency, Duration::ZERO);
        let lb_rate = Duration::from_secs_f64(2.0 * jobs as f64 / rate);
        let lb_paced = greedy(&durations, concurrency, Duration::from_secs_f64(1.0 / rate)).max(lb_rate);
        let completed = completed_rows(&dir.path().join("out"));
        if run.code != 0 {
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("  exit {}; the end of its stderr:", run.code);
            for line in tail.iter().rev() {
                eprintln!("    {line}");
            }
        }
        if let Some(path) = std::env::var_os("VIDBATCH_BENCH_DUMP") {
            dump_generations(Path::new(&path), &stats);
        }
        let outcome = Outcome {
            label,
            run,
            jobs,
            lb: lb_slots.max(lb_rate),
            lb_slots,
            lb_rate,
            lb_paced,
            stats,
            completed,
        };
        eprintln!(
            "  {}",
            outcome
                .row(Duration::from_secs(1))
                .split(" | ")
                .take(4)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        outcome
    }

    fn regime(&self, r: Regime) {
        let config = SimConfig {
            queued: r.queued,
            render: Some(r.render),
            rate_limit: r.server_rate,
            max_active: r.max_active,
            // The account's "come back later" scaled like everything else (1 s of the service).
            retry_after: r.scaled(1.0).max(Duration::from_millis(10)),
            ..SimConfig::default()
        };
        eprintln!("== {} ({} jobs)", r.name, r.jobs);
        let mut rows = Vec::new();
        for variant in &self.args.variants {
            let (label, extra) = match variant.as_str() {
                "vidbatch" => self.adaptive_args(r.scaled(SERVICE_PRIOR)),
                "fixed10" => {
                    let every = r.scaled(10.0);
                    (
                        format!("fixed {} (the SDK's 10 s)", secs(every)),
                        vec!["--poll-interval".into(), secs(every)],
                    )
                }
                "fixed15" => {
                    let every = r.scaled(15.0);
                    (
                        format!("fixed {} (the docs' 15 s)", secs(every)),
                        vec!["--poll-interval".into(), secs(every)],
                    )
                }
                other => panic!("unknown variant {other}"),
            };
            rows.push(self.measure(config.clone(), r.jobs, r.concurrency, r.rate, label, &extra));
        }
        let limits = format!(
            "server limits: {} req/s, {} active",
            r.server_rate.map_or("no limit".into(), |x| x.to_string()),
            r.max_active.map_or("no limit".into(), |x| x.to_string()),
        );
        println!(
            "### {}: N={}, --concurrency {}, --rate {}; {limits}; queue {} then renders uniform {}–{}\n",
            r.name,
            r.jobs,
            r.concurrency,
            r.rate,
            secs(r.queued),
            secs(r.render.0),
            secs(r.render.1)
        );
        println!("{OUTCOME_HEADER}");
        for o in &rows {
            let renders: Vec<f64> = o.stats.created().iter().map(|(_, g)| g.render.as_secs_f64()).collect();
            let mean = renders.iter().sum::<f64>() / renders.len().max(1) as f64;
            println!("{}", o.row(Duration::from_secs_f64(mean.max(1e-9))));
        }
        println!(
            "\nLB = max(greedy schedule of the simulator's queue + render times on C slots in submit order, 2N/R). \
             Requests counted by the simulator (refused ones included); detection latency = first poll that \
             reported the finish − the server-side finish.\n"
        );
        // Where the rate is the bound, polls wait for turns: no schedule changes what they see.
        if let Some(o) = rows.first().filter(|o| o.lb_slots >= o.lb_rate) {
            frontier_note(o);
        }
    }

    /// Issue 18's cold start: a prior far from the renders (30 times too long, 30 times too
    /// short), generations that fail fast, and generations resumed after a kill. For each, when
    /// each finish was noticed, in multiples of its own time from its submit, leaving out the
    /// first five noticed (they are what the rest learn from).
    fn cold_start(&self) {
        let scale = self.args.scale;
        let n = self.args.cold_jobs;
        let (queued, render) = (0.5 * scale, (2.0 * scale, 4.0 * scale));
        let mean = Duration::from_secs_f64(queued + (render.0 + render.1) / 2.0);
        let base = SimConfig {
            queued: Duration::from_secs_f64(queued),
            render: Some((Duration::from_secs_f64(render.0), Duration::from_secs_f64(render.1))),
            ..SimConfig::default()
        };
        eprintln!("== cold start ({n} jobs)");
        println!(
            "### Cold start: N={n}, --concurrency 20 --rate 40, no server limits; queue {} then renders uniform {}–{} \
             (failures: queue {} then 0.8–1.2 s)\n",
            secs(Duration::from_secs_f64(queued)),
            secs(Duration::from_secs_f64(render.0)),
            secs(Duration::from_secs_f64(render.1)),
            secs(Duration::from_secs_f64(0.2 * scale)),
        );
        println!(
            "| case | makespan s | makespan / LB | requests / job | finishes noticed at × their own time: mean | p95 | max | later than 3× | first five noticed at (×) | completed |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        let prior = |x: f64| vec!["--poll-prior".to_string(), secs(mean.mul_f64(x))];
        let fast_failures = SimConfig {
            queued: Duration::from_secs_f64(0.2 * scale),
            render: Some((
                Duration::from_secs_f64(0.8 * scale),
                Duration::from_secs_f64(1.2 * scale),
            )),
            fail_first: 1,
            ..SimConfig::default()
        };
        let cases = [
            ("prior right", base.clone(), prior(120.0 / 150.0)),
            ("prior 30× too long", base.clone(), prior(30.0)),
            ("prior 30× too short", base.clone(), prior(1.0 / 30.0)),
            ("fast failures (prior 2× the failures)", fast_failures, {
                // Measured to their end: a client that fails fast (`--halt-kind`) stops them.
                let mut args = prior(2.0 * 1.2 / 1.0);
                if accepts_flag("--halt-kind") {
                    args.extend(["--halt-kind", "0", "--halt-run", "0"].map(String::from));
                }
                args
            }),
        ];
        // `VIDBATCH_BENCH_CASE=30×`: only the cases whose name holds it.
        let only = std::env::var("VIDBATCH_BENCH_CASE").unwrap_or_default();
        for (name, config, extra) in cases.into_iter().filter(|c| c.0.contains(&only)) {
            let o = self.measure(config, n, 20, 40.0, name.to_string(), &extra);
            println!("{}", cold_row(name, &o, o.run.wall, None));
        }
        if "resumed".contains(&only) {
            self.resumed(base, n.min(20), prior(120.0 / 150.0));
        }
        println!(
            "\nLB as in the regimes above. \"Noticed at × its own time\": (first poll that reported the finish − its \
             submit) ÷ (its queue + render), over every generation but the first five noticed.\n"
        );
    }

    /// Generations submitted by a run killed (SIGKILL) before any finished, then followed by a
    /// second run into the same folder: how soon the second notices them.
    fn resumed(&self, config: SimConfig, n: usize, extra: Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), n);
        let sim = self.start_sim(config);
        let mut args = run_args(&manifest, n, 40.0);
        args.extend(extra);
        let mut first = self.vidbatch(&sim, dir.path(), &args);
        let mut child = first
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed once every job is submitted, well before the first render ends.
        let started = Instant::now();
        while sim.stats().created().len() < n && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The last answer still has to reach the client and be recorded: killed in between, that
        // job is left `unknown` (as designed: it is never paid again) and the case would measure
        // 19 resumed generations and a job that never finishes. A moment's grace, well under the
        // first render.
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        child.wait().unwrap();
        let killed_at = SystemTime::now();
        let run = run_child(self.vidbatch(&sim, dir.path(), &args), self.args.timeout);
        let stats = sim.stats();
        drop(sim);
        let durations: Vec<Duration> = stats.created().iter().map(|(_, g)| g.queued + g.render).collect();
        let lb = greedy(&durations, n, Duration::ZERO);
        let o = Outcome {
            label: "resumed".into(),
            completed: completed_rows(&dir.path().join("out")),
            run,
            jobs: n,
            lb,
            lb_slots: lb,
            lb_rate: Duration::ZERO,
            lb_paced: lb,
            stats,
        };
        // The makespan of both runs together: from the first submit to the second run's end.
        let first_submit = o
            .stats
            .created()
            .first()
            .map(|(_, g)| g.created_at)
            .unwrap_or(killed_at);
        let makespan = o.run.ended.duration_since(first_submit).unwrap_or_default();
        let name = format!("resumed after kill -9 ({n} jobs, all in flight)");
        println!("{}", cold_row(&name, &o, makespan, Some(0)));
    }

    fn validate(&self) {
        eprintln!("== validate");
        println!("### vidbatch validate on a CSV of N text-to-video rows\n");
        println!("| rows | wall s | µs / row | peak RSS MB | exit |\n|---|---|---|---|---|");
        let mut last: Option<(usize, f64)> = None;
        for &rows in &self.args.rows {
            // Skip a size a quadratic growth would make take more than 10 minutes.
            if let Some((n, t)) = last {
                let predicted = t * (rows as f64 / n as f64).powi(2);
                if predicted > 600.0 {
                    println!("| {rows} | skipped: about {predicted:.0} s if quadratic | | | |");
                    continue;
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let mut csv = String::from("model,prompt\n");
            for i in 0..rows {
                writeln!(csv, "magic/text-to-video,ROW {i:06}").unwrap();
            }
            let path = dir.path().join("rows.csv");
            std::fs::write(&path, csv).unwrap();
            let mut cmd = Command::new(BIN);
            cmd.args(["validate", path.to_str().unwrap()])
                .current_dir(dir.path())
                .env_remove("RUST_LOG");
            let run = run_child(cmd, self.args.timeout);
            let wall = run.wall.as_secs_f64();
            eprintln!("  {rows} rows: {wall:.2} s");
            println!(
                "| {rows} | {wall:.2} | {:.1} | {:.1} | {} |",
                wall * 1e6 / rows as f64,
                run.max_rss_kb as f64 / 1024.0,
                run.code
            );
            last = Some((rows, wall));
        }
        println!();
    }

    fn inflight(&self) {
        let n = self.args.inflight_jobs;
        let scale = self.args.scale;
        let r = Regime {
            name: "in flight",
            jobs: n,
            concurrency: n,
            rate: 2000.0,
            server_rate: None,
            max_active: None,
            queued: Duration::from_secs_f64(1.0 * scale),
            render: (
                Duration::from_secs_f64(38.0 * scale),
                Duration::from_secs_f64(42.0 * scale),
            ),
        };
        eprintln!("== {n} in flight");
        let config = SimConfig {
            queued: r.queued,
            render: Some(r.render),
            ..SimConfig::default()
        };
        let (label, extra) = self.adaptive_args(r.scaled(SERVICE_PRIOR));
        // The kernel's cost of creating a file moves tenfold with the file system's state (on an
        // ext4 without a journal, inodes freed in the last minutes are passed over one by one:
        // a bench run deleting 10,000 files makes the next one's first files dear). The control
        // creates as many empty files just before the client, beside its folder, and says what
        // that cost: the client's kernel time is read beside it.
        let control = self.args.fs_control.then(|| create_files(n));
        let o = self.measure(config, n, n, r.rate, label, &extra);
        println!(
            "### {n} generations in flight: --concurrency {n} --rate 2000; queue {} then renders uniform {}–{}; no server limits\n",
            secs(r.queued),
            secs(r.render.0),
            secs(r.render.1)
        );
        println!("{OUTCOME_HEADER}");
        println!("{}", o.row(r.mean_render()));
        println!();
        println!(
            "Client CPU per job: {:.3} ms in the client, {:.3} ms in the kernel on its behalf.",
            o.run.cpu.saturating_sub(o.run.sys).as_secs_f64() * 1000.0 / n as f64,
            o.run.sys.as_secs_f64() * 1000.0 / n as f64
        );
        if let Some((_dir, cost)) = control {
            println!(
                "Control: creating {n} empty files beside the client's folder just before it took {:.3} ms of CPU a file.",
                cost.as_secs_f64() * 1000.0 / n as f64
            );
        }
        println!();
    }

    fn downloads(&self) {
        eprintln!("== downloads");
        println!("### Downloads: one video of each size from the simulator, vidbatch beside curl\n");
        println!(
            "| size | vidbatch s | vidbatch MB/s | vidbatch peak RSS MB | curl s | curl MB/s | curl peak RSS MB | vidbatch / curl throughput | curl + fsync s | vidbatch / (curl + fsync) |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        let http = reqwest::blocking::Client::new();
        for &size in &self.args.sizes {
            let config = SimConfig {
                queued: Duration::from_millis(5),
                generating: Duration::from_millis(5),
                video_size: Some(size),
                ..SimConfig::default()
            };
            let reps = if size <= 16 << 20 { 3 } else { 1 };
            let mut ours: Vec<(Duration, u64)> = Vec::new();
            let mut theirs: Vec<(Duration, u64, Duration)> = Vec::new();
            for _ in 0..reps {
                // vidbatch: one job; its download is timed from the file request to the exit.
                let dir = tempfile::tempdir().unwrap();
                let manifest = manifest(dir.path(), 1);
                let sim = self.start_sim(config.clone());
                let args: Vec<String> = [
                    "run",
                    manifest.to_str().unwrap(),
                    "--out",
                    "out",
                    "--poll-interval",
                    "20ms",
                    "--max-download-size",
                    "2GiB",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let run = run_child(self.vidbatch(&sim, dir.path(), &args), self.args.timeout);
                let stats = sim.stats();
                let started = stats.downloads.iter().map(|d| d.started_at).min().expect("a download");
                let took = run.ended.duration_since(started).unwrap_or_default();
                assert_eq!(run.code, 0, "vidbatch failed to download {size} bytes");
                ours.push((took, run.max_rss_kb));
                drop(dir);

                // curl: the same kind of URL, from a poll of our own.
                let dir = tempfile::tempdir().unwrap();
                let api = format!("{}/v2/video/generations", sim.base_url);
                let submitted: serde_json::Value = http
                    .post(&api)
                    .bearer_auth(KEY)
                    .json(&serde_json::json!({"model": "magic/text-to-video", "prompt": "CURL"}))
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                let id = submitted["id"].as_str().unwrap().to_string();
                let url = loop {
                    let polled: serde_json::Value = http
                        .get(&api)
                        .query(&[("generation_id", &id)])
                        .bearer_auth(KEY)
                        .send()
                        .unwrap()
                        .json()
                        .unwrap();
                    if polled["status"] == "completed" {
                        break polled["video"]["url"].as_str().unwrap().to_string();
                    }
                    std::thread::sleep(Duration::from_millis(10));
                };
                let file = dir.path().join("curl.mp4");
                let mut cmd = Command::new("curl");
                cmd.args(["-sS", "-o", file.to_str().unwrap(), &url]);
                let before = sim.stats().downloads.len();
                let run = run_child(cmd, self.args.timeout);
                assert_eq!(run.code, 0, "curl failed");
                assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
                let started = sim.stats().downloads[before].started_at;
                // vidbatch syncs what it keeps; curl does not: the time curl's file then takes
                // to reach the disk, for a like-for-like figure.
                let sync = Instant::now();
                std::fs::File::open(&file).unwrap().sync_all().unwrap();
                let sync = sync.elapsed();
                theirs.push((
                    run.ended.duration_since(started).unwrap_or_default(),
                    run.max_rss_kb,
                    sync,
                ));
            }
            ours.sort();
            theirs.sort();
            let (ours, theirs) = (ours[ours.len() / 2], theirs[theirs.len() / 2]);
            let durable = theirs.0 + theirs.2;
            let mbs = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
            let label = if size >= 1 << 30 {
                format!("{} GiB", size >> 30)
            } else {
                format!("{} MiB", size >> 20)
            };
            eprintln!(
                "  {label}: vidbatch {:.1} MB/s, curl {:.1} MB/s",
                mbs(ours.0),
                mbs(theirs.0)
            );
            println!(
                "| {label} | {:.3} | {:.0} | {:.1} | {:.3} | {:.0} | {:.1} | **{:.2}** | {:.3} | {:.2} |",
                ours.0.as_secs_f64(),
                mbs(ours.0),
                ours.1 as f64 / 1024.0,
                theirs.0.as_secs_f64(),
                mbs(theirs.0),
                theirs.1 as f64 / 1024.0,
                mbs(ours.0) / mbs(theirs.0),
                durable.as_secs_f64(),
                mbs(ours.0) / mbs(durable),
            );
        }
        println!(
            "\nTimes from the simulator's receipt of the file request to the process's exit (vidbatch's includes \
             hashing, its fsync, the rename, the state record and results.csv; the median of 3 runs up to 16 \
             MiB). curl does not sync: `curl + fsync` adds the time its file then takes to sync. MB = MiB.\n"
        );
    }
}
