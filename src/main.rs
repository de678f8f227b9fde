//! The `vidbatch` command line.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use vidbatch::api::{ApiClient, ApiKey, DEFAULT_BASE_URL, error_chain};
use vidbatch::coordinator::polling::PollPolicy;
use vidbatch::coordinator::{CancelLevel, Coordinator, Polling, RunConfig, Shutdown, StopReason};
use vidbatch::download::Downloader;
use vidbatch::exit_code;
use vidbatch::plan::{self, Plan};
use vidbatch::retry::RetryPolicy;
use vidbatch::shard::Shard;
use vidbatch::sim::{self, SimConfig};
use vidbatch::sinks::logs::LogFormat;
use vidbatch::sinks::{self, Finished, RunEvent, Sinks};
use vidbatch::state::{RunState, StateError};
use vidbatch::{catalog, manifest, results};

const EXAMPLES: &str = "\
Examples:
  vidbatch run manifests/demo.yaml --simulate      try a manifest on the built-in simulator
  vidbatch validate campaign.csv --out out/campaign what is done, what is new, what it will cost
  AIMLAPI_KEY=... vidbatch run campaign.csv --max-credits 50000000
  vidbatch status out/campaign                     look at a run, also while it goes on
  vidbatch run nightly.csv --log-format json 2>>nightly.log   for cron

Exit codes: 0 all jobs completed; 1 some jobs failed, unknown or pending; 2 invalid manifest,
arguments or state (nothing sent); 3 the run was stopped (interrupted, key refused, disk full);
4 another run holds the output folder.";

const RUN_EXAMPLES: &str = "\
Examples:
  vidbatch run manifests/demo.yaml --simulate
  vidbatch run campaign.csv --out out/spring --concurrency 20 --rate 10
  vidbatch run campaign.csv --limit 3                 try the first three jobs first
  vidbatch run campaign.csv --max-credits 50000000    never commit more than this in --out
  vidbatch run campaign.csv --shard 2/3 --out out/shard-2
  vidbatch run campaign.csv --log-format json 2>>run.log

The same command resumes a run that was stopped: nothing already paid for is paid again.";

#[derive(Parser)]
#[command(
    name = "vidbatch",
    version,
    about = "Batch runner for the AI/ML API's video-generation models",
    after_help = EXAMPLES
)]
struct Cli {
    /// More output (-v: every poll; -vv: HTTP details).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to use colour: `auto` (a terminal, unless `NO_COLOR` is set), `always`, `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// How logs and run events are written to stderr: `text`, or `json` (one object per line:
    /// run started, each job submitted, retried, completed, failed, unknown, run finished).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Run a manifest: validate, submit, poll, download, write results.csv.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Check a manifest and show its jobs and what they should cost; nothing is sent. With
    /// `--out`, also what that folder already holds and what is new.
    Validate {
        manifest: PathBuf,
        /// An output folder of earlier runs: says which jobs are done there, which are new, and
        /// prices from what they were charged.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only the jobs of shard K of N (as `run --shard`).
        #[arg(long, value_parser = Shard::parse)]
        shard: Option<Shard>,
    },
    /// What output folders hold: counts by status, credits, generations still running, failures.
    /// Reads only the state (no network), also while a run is going.
    #[command(after_help = "Examples:\n  vidbatch status out/campaign\n  vidbatch status out/shard-*")]
    Status {
        #[arg(required = true)]
        out: Vec<PathBuf>,
    },
    /// Print a completion script: `vidbatch completions bash > /etc/bash_completion.d/vidbatch`.
    Completions { shell: clap_complete::Shell },
    /// List the template names of a model (or of every model that has templates).
    Templates { model: Option<String> },
    /// Serve the API simulator on its own (for trying vidbatch or other clients).
    Sim(SimArgs),
    /// Write `OUT/report.html` again from `OUT/results.csv`: the videos side by side.
    Report { out: PathBuf },
}

#[derive(Args)]
struct RunArgs {
    /// The manifest (`.yaml`/`.yml`, or `.csv`).
    manifest: PathBuf,
    /// Output folder [default: out/<manifest name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Most generations in flight at once (submitted, not yet seen finished).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Most API requests per second, submits and polls together.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Run against a built-in simulator of the API (no key, no network).
    #[arg(long)]
    simulate: bool,
    /// Resubmissions allowed per job after a generation ends in `error`. Each one is paid again.
    #[arg(long, default_value_t = 0)]
    paid_retries: u32,
    /// Submit again the jobs whose earlier submit has an unknown outcome. A generation may already
    /// exist for them, so this can pay twice: check the service's history first.
    #[arg(long)]
    resubmit_unknown: bool,
    /// Poll every generation at this fixed interval. By default polls are timed from how long
    /// renders of the same kind took in this run and earlier ones into the same `--out`.
    #[arg(long, value_parser = humantime::parse_duration)]
    poll_interval: Option<Duration>,
    /// Give up waiting for one generation after this long (a rerun picks it up again).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// How often a status line is logged (when stderr is not a terminal) and `results.csv`
    /// refreshed during the run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
    /// Never let the credits committed in `--out` pass N: every run into the folder counts, and
    /// so do generations in flight (at their expected price until charged). The jobs left over
    /// stay `pending` with the reason "budget reached".
    #[arg(long, value_name = "N", value_parser = parse_credits)]
    max_credits: Option<f64>,
    /// Run only shard K of N (1-based, e.g. `2/3`): a split of the jobs by job id, for running one
    /// manifest on several machines, each with its own `--out`. Taken from Kubernetes'
    /// `JOB_COMPLETION_INDEX`/`JOB_COMPLETION_COUNT` when those are set.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Only the first N jobs of the manifest (after `--shard`): to try a manifest on a few jobs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Most downloads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    downloads: u32,
    /// The most bytes one video may weigh (`500MB`, `2GiB`, …): a larger one is refused, and the
    /// job can be fetched again (free) by a rerun with a higher limit.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    max_download_size: u64,
    /// When the run state of `--out` was lost: keep the videos its `results.csv` lists (checked
    /// by SHA-256), and submit only the rest.
    #[arg(long, conflicts_with = "start_over")]
    adopt: bool,
    /// When the run state of `--out` was lost: forget the earlier run and submit (and pay for)
    /// every job again; its videos replace the files of the same name.
    #[arg(long)]
    start_over: bool,
    /// What a render is assumed to take before any is learned [default: 2m; 1.2s with
    /// --simulate]. For trying vidbatch against a simulator of other timings.
    #[arg(long, value_parser = humantime::parse_duration, hide = true)]
    poll_prior: Option<Duration>,
    /// First delay between retries of a failing request (doubles each time, with jitter).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration, hide = true)]
    retry_base: Duration,
}

#[derive(Args)]
struct SimArgs {
    #[arg(long, default_value_t = 8090)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Time each generation stays `queued`.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    queued: Duration,
    /// Time each generation then stays `generating`.
    #[arg(long, default_value = "900ms", value_parser = humantime::parse_duration)]
    generating: Duration,
    /// Lifetime of download URLs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    url_ttl: Duration,
    /// The first N generations of each distinct request end in `error`.
    #[arg(long, default_value_t = 0)]
    fail_first: u32,
    /// The first N download URLs of each generation are already expired.
    #[arg(long, default_value_t = 0)]
    expire_first_urls: u32,
    /// Accept only this API key (default: any non-empty key).
    #[arg(long)]
    key: Option<String>,
    /// Answer the first N submits 429 with a Retry-After of `--retry-after`.
    #[arg(long, default_value_t = 0)]
    throttle_first_submits: u32,
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    retry_after: Duration,
    /// Answer the first N polls 503.
    #[arg(long, default_value_t = 0)]
    unavailable_first_polls: u32,
    /// Answer the first N submits 403, as for an account out of credits.
    #[arg(long, default_value_t = 0)]
    out_of_credits_first_submits: u32,
    /// Every kind of fault (throttling, 5xx, resets, lost creates, web pages, redirects, slow
    /// answers, failed generations, odd statuses, expired and truncated downloads) at this
    /// probability per request, e.g. `0.05`.
    #[arg(long, value_parser = parse_probability)]
    chaos: Option<f64>,
    /// The seed of `--chaos`: the same seed, the same faults for the same requests.
    #[arg(long, default_value_t = 1)]
    chaos_seed: u64,
    /// Draw each generation's `generating` time uniformly from MIN..MAX (e.g. `2s..4s`) instead
    /// of the fixed `--generating`.
    #[arg(long, value_parser = parse_duration_range)]
    render: Option<(Duration, Duration)>,
    /// An account's request limit: API requests per second beyond it are answered 429
    /// (`rate_limit_exceeded`).
    #[arg(long)]
    rate_limit: Option<f64>,
    /// An account's limit of generations queued or generating at once; a submit beyond it is
    /// answered 429 (`concurrency_limit_exceeded`).
    #[arg(long)]
    max_active: Option<usize>,
    /// Pad every video to this size (`16MiB`, `1GiB`), streamed.
    #[arg(long, value_parser = parse_size)]
    video_size: Option<u64>,
}

/// `2s..4s`: a range of durations.
fn parse_duration_range(text: &str) -> Result<(Duration, Duration), String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range such as 2s..4s"))?;
    let parse = |t: &str| humantime::parse_duration(t.trim()).map_err(|e| format!("`{t}`: {e}"));
    let (min, max) = (parse(min)?, parse(max)?);
    if min > max {
        return Err(format!("`{text}`: the first duration is longer than the second"));
    }
    Ok((min, max))
}

fn parse_credits(text: &str) -> Result<f64, String> {
    let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    match digits.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("`{text}` is not a number of credits such as 50000000")),
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability from 0 to 1")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    COLOR.store(color, std::sync::atomic::Ordering::Relaxed);
    JSON.store(cli.log_format == LogFormat::Json, std::sync::atomic::Ordering::Relaxed);
    init_logging(cli.verbose, cli.quiet, cli.log_format, color);
    let view = View {
        format: cli.log_format,
        color,
        quiet: cli.quiet,
    };
    // A run is one coordinator loop and its I/O: on one thread, a worker's answer reaches the
    // loop without waking another thread (at thousands of requests a second, those wake-ups
    // were a large share of the client's CPU). `vidbatch sim` serves on every core (the
    // simulator of `run --simulate` shares the run's thread: it serves one client).
    let runtime = match &cli.command {
        Command::Sim(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async {
            match cli.command {
                Command::Run(args) => run(args, view).await,
                Command::Validate { manifest, out, shard } => validate(&manifest, out.as_deref(), shard),
                Command::Status { out } => status(&out),
                Command::Completions { shell } => completions(shell),
                Command::Templates { model } => templates(model.as_deref()),
                Command::Sim(args) => serve_sim(args).await,
                Command::Report { out } => report(&out),
            }
        }),
        Err(e) => Err(CliError::Aborted {
            message: format!("cannot start the async runtime: {e}"),
            help: None,
        }),
    };
    // The one place that prints an error and decides the exit code.
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

/// Everything that ends a command before its work is done, each with its exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Every problem of the manifest; nothing was sent.
    #[error("{0}")]
    Manifest(manifest::Diagnostics),
    /// Arguments or environment that cannot work; nothing was sent.
    #[error("{message}")]
    Usage { message: String, help: Option<String> },
    #[error(transparent)]
    State(#[from] StateError),
    /// The run stopped and left its work to the same command.
    #[error("{message}")]
    Aborted { message: String, help: Option<String> },
    /// stdout was closed (`vidbatch validate m.csv | head -1`) or cannot be written.
    #[error("cannot write to stdout")]
    Stdout(#[from] std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Manifest(_) | CliError::Usage { .. } => exit_code::INVALID,
            CliError::State(e) => match e {
                StateError::Locked { .. } => exit_code::BUSY,
                StateError::OtherEndpoint { .. }
                | StateError::Missing { .. }
                | StateError::NewerSchema { .. }
                | StateError::NotAState { .. }
                | StateError::Lost { .. }
                | StateError::Corrupt { .. } => exit_code::INVALID,
                StateError::CreateDir { .. }
                | StateError::Lock { .. }
                | StateError::Open { .. }
                | StateError::Sql(_) => exit_code::ABORTED,
            },
            CliError::Aborted { .. } => exit_code::ABORTED,
            // A reader that went away wants no more: that is not a failure.
            CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_code::OK,
            CliError::Stdout(_) => exit_code::ABORTED,
        }
    }

    fn help(&self) -> Option<String> {
        match self {
            CliError::Usage { help, .. } | CliError::Aborted { help, .. } => help.clone(),
            CliError::State(StateError::Lost { .. }) => Some(
                "if you still have the old `state.db`, put it back; or run again with `--adopt` to keep the \
                 videos that `results.csv` lists (checked by SHA-256) and submit only the rest; or with \
                 `--start-over` to submit and pay for everything again"
                    .into(),
            ),
            CliError::State(StateError::NotAState { .. } | StateError::Corrupt { .. }) => Some(
                "restore the file from a backup, or use another `--out`; vidbatch does not guess what was paid for"
                    .into(),
            ),
            _ => None,
        }
    }

    fn report(&self) {
        match self {
            CliError::Manifest(diagnostics) if stderr_is_json() => {
                for d in &diagnostics.0 {
                    eprint!("{}", diagnostic_line(d));
                }
            }
            CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other if stderr_is_json() => {
                let mut causes = Vec::new();
                let mut source = std::error::Error::source(other);
                while let Some(cause) = source {
                    causes.push(cause.to_string());
                    source = cause.source();
                }
                eprint!(
                    "{}",
                    sinks::json::line(
                        "log",
                        serde_json::json!({
                            "level": "error",
                            "message": other.to_string(),
                            "causes": causes,
                            "help": other.help(),
                            "exit_code": other.exit_code(),
                        }),
                    )
                );
            }
            CliError::Manifest(diagnostics) => {
                eprintln!("{}", diagnostics.render(stderr_in_color()));
                eprintln!("nothing was submitted: fix the manifest and run again");
            }
            other => {
                report_error(other);
                if let Some(help) = other.help() {
                    eprintln!("  help: {help}");
                }
            }
        }
    }
}

/// Whether stderr is drawn in colour (`--color`, `NO_COLOR`), decided once at the start.
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// `--log-format json`: everything on stderr is a JSON line, errors and manifest warnings too.
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stderr_is_json() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// A manifest's problem as one JSON line: where (file, sheet, line, column), what, what to do.
fn diagnostic_line(d: &manifest::Diagnostic) -> String {
    let severity = match d.severity {
        manifest::Severity::Error => "error",
        manifest::Severity::Warning => "warn",
    };
    sinks::json::line(
        "manifest_problem",
        serde_json::json!({
            "level": severity,
            "file": d.file.display().to_string(),
            "sheet": d.sheet.as_deref(),
            "line": d.at.map(|p| p.line),
            "column": d.at.map(|p| p.column),
            "message": d.message,
            "help": d.help,
        }),
    )
}

fn stderr_in_color() -> bool {
    COLOR.load(std::sync::atomic::Ordering::Relaxed)
}

fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}

/// How a run shows itself: the log format, colour, and whether to keep quiet.
#[derive(Clone, Copy)]
struct View {
    format: LogFormat,
    color: bool,
    quiet: bool,
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage {
        message: message.into(),
        help: None,
    }
}

fn aborted(message: impl Into<String>) -> CliError {
    CliError::Aborted {
        message: message.into(),
        help: None,
    }
}

fn init_logging(verbose: u8, quiet: bool, format: LogFormat, color: bool) {
    // Debug output is ours alone unless asked twice: the HTTP stack's is long.
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "info,vidbatch=debug",
        (false, _) => "info,vidbatch=debug,reqwest=debug,hyper_util=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    sinks::logs::init(filter, format, color);
}

/// Prints an error and its causes, one per line.
fn report_error(e: &dyn std::error::Error) {
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

fn load_plan(path: &Path) -> Result<Plan, CliError> {
    let manifest = manifest::load(path).map_err(CliError::Manifest)?;
    let plan = plan::plan(&manifest).map_err(CliError::Manifest)?;
    // Drawn like errors (the line, the place, the help): a warning about a manifest is read
    // with the manifest open. `-q` leaves them out.
    if tracing::enabled!(tracing::Level::WARN) {
        for w in &plan.warnings {
            if stderr_is_json() {
                eprint!("{}", diagnostic_line(w));
            } else {
                eprintln!("{}", w.render(stderr_in_color()));
            }
        }
    }
    Ok(plan)
}

fn validate(path: &Path, out: Option<&Path>, shard: Option<Shard>) -> Result<i32, CliError> {
    let mut plan = load_plan(path)?;
    if let Some(shard) = shard {
        plan.jobs.retain(|j| shard.keeps(&j.key));
    }
    // What a folder already holds: `--out`, else the folder `run` would use, if a run used it.
    let default_out = Path::new("out").join(plan::slug(&plan.name, 80));
    let folder = out
        .map(Path::to_path_buf)
        .or_else(|| default_out.join("state.db").is_file().then_some(default_out));
    // One write per block, not per line: a table of 100,000 jobs is 100,000 lines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let printed = vidbatch::inspect::validate(&mut out, path, &plan, folder.as_deref())
        .and_then(|()| Ok(std::io::Write::flush(&mut out)?));
    // The process ends here: freeing 100,000 jobs one by one is time spent for nothing.
    std::mem::forget(plan);
    match printed {
        Ok(()) => Ok(exit_code::OK),
        Err(vidbatch::inspect::InspectError::State(e)) => Err(e.into()),
        Err(vidbatch::inspect::InspectError::Output(e)) => Err(e.into()),
    }
}

fn templates(model: Option<&str>) -> Result<i32, CliError> {
    let models: Vec<&catalog::ModelSpec> = match model {
        Some(id) => match catalog::model(id) {
            Some(m) => vec![m],
            None => {
                let help = match catalog::near_miss_model(id) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => format!(
                        "models with templates: {}",
                        catalog::MODELS
                            .iter()
                            .filter(|m| !m.templates.is_empty())
                            .map(|m| m.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(CliError::Usage {
                    message: format!("unknown model `{id}`"),
                    help: Some(help),
                });
            }
        },
        None => catalog::MODELS.iter().filter(|m| !m.templates.is_empty()).collect(),
    };
    let mut out = std::io::stdout().lock();
    for m in models {
        if m.templates.is_empty() {
            writeln!(out, "{} takes no template", m.id)?;
            continue;
        }
        writeln!(
            out,
            "{} ({} templates, default `{}`):",
            m.id,
            m.templates.len(),
            m.default_template.unwrap_or("-")
        )?;
        for t in m.templates {
            writeln!(out, "  {t}")?;
        }
    }
    out.flush()?;
    Ok(exit_code::OK)
}

/// `vidbatch report OUT`: the page again, from `OUT/results.csv` alone.
fn report(out: &Path) -> Result<i32, CliError> {
    match vidbatch::gallery::write(out) {
        Ok(page) => {
            writeln!(std::io::stdout(), "{}", page.display())?;
            Ok(exit_code::OK)
        }
        // A folder without results, or a results.csv that is not one: nothing to do, exit 2.
        Err(
            e @ (vidbatch::gallery::ReportError::NoResults { .. }
            | vidbatch::gallery::ReportError::MissingColumn { .. }
            | vidbatch::gallery::ReportError::Read { .. }),
        ) => Err(usage(error_chain(&e))),
        Err(e) => Err(aborted(error_chain(&e))),
    }
}

/// `vidbatch status OUT…`.
fn status(folders: &[PathBuf]) -> Result<i32, CliError> {
    let mut out = std::io::stdout().lock();
    match vidbatch::inspect::status(&mut out, folders) {
        Ok(()) => Ok(exit_code::OK),
        Err(vidbatch::inspect::InspectError::State(e)) => Err(e.into()),
        Err(vidbatch::inspect::InspectError::Output(e)) => Err(e.into()),
    }
}

fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    use clap::CommandFactory as _;
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "vidbatch", &mut out);
    out.flush()?;
    Ok(exit_code::OK)
}

async fn serve_sim(args: SimArgs) -> Result<i32, CliError> {
    let config = SimConfig {
        queued: args.queued,
        generating: args.generating,
        url_ttl: args.url_ttl,
        fail_first: args.fail_first,
        expire_first_urls: args.expire_first_urls,
        key: args.key,
        throttle_first_submits: args.throttle_first_submits,
        retry_after: args.retry_after,
        unavailable_first_polls: args.unavailable_first_polls,
        out_of_credits_first_submits: args.out_of_credits_first_submits,
        chaos: args.chaos.map(|rate| sim::chaos::Chaos::uniform(args.chaos_seed, rate)),
        render: args.render,
        rate_limit: args.rate_limit.filter(|r| r.is_finite() && *r > 0.0),
        max_active: args.max_active,
        video_size: args.video_size,
        ..SimConfig::default()
    };
    let sim = sim::start(SocketAddr::new(args.host, args.port), config)
        .await
        .map_err(|e| usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    // A closed stdout (`vidbatch sim | head -1`) must not stop the server.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "simulator listening on {}", sim.base_url);
    let _ = writeln!(
        stdout,
        "try: AIMLAPI_BASE_URL={} AIMLAPI_KEY=any vidbatch run manifests/demo.yaml",
        sim.base_url
    );
    let _ = tokio::signal::ctrl_c().await;
    sim.stop();
    Ok(exit_code::OK)
}

/// `1048576`, `500MB`, `1.5GiB`: decimal (kB, MB, GB) and binary (KiB, MiB, GiB) units.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 500MB or 2GiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, kB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    let bytes = number * factor as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a usable size"));
    }
    Ok(bytes as u64)
}

/// Turns Ctrl-C and SIGTERM into shutdown levels: the first Ctrl-C drains, a second aborts;
/// SIGTERM (cron, systemd) aborts at once, as everything is already recorded.
fn watch_signals(shutdown: Shutdown) {
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let next = if on_ctrl_c.level() == CancelLevel::Running {
                CancelLevel::Drain
            } else {
                CancelLevel::Abort
            };
            on_ctrl_c.escalate(next);
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            tracing::warn!("SIGTERM: leaving now; the run is saved and the same command resumes it");
            shutdown.escalate(CancelLevel::Abort);
        }
    });
}

async fn run(args: RunArgs, view: View) -> Result<i32, CliError> {
    let mut plan = load_plan(&args.manifest)?;
    let shard = match args.shard {
        Some(shard) => Some(shard),
        None => Shard::from_kubernetes(
            std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
            std::env::var("JOB_COMPLETION_COUNT").ok().as_deref(),
        )
        .map_err(usage)?,
    };
    // File names were decided over the whole plan: a shard's files are named as in a run of all.
    if let Some(shard) = shard {
        let before = plan.jobs.len();
        plan.jobs.retain(|j| shard.keeps(&j.key));
        tracing::info!("shard {shard}: {} of the manifest's {before} job(s)", plan.jobs.len());
    }
    if let Some(limit) = args.limit {
        plan.jobs.truncate(limit);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(plan::slug(&plan.name, 80)));

    // The endpoint: the built-in simulator, or the real service with a key.
    let mut simulator = None;
    let (base_url, key, endpoint) = if args.simulate {
        let s = sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
            .await
            .map_err(|e| aborted(format!("cannot start the simulator: {e}")))?;
        tracing::info!("simulating the API at {} (no key, no network)", s.base_url);
        let url = s.base_url.clone();
        simulator = Some(s);
        (url, ApiKey::new("simulator"), "simulator".to_string())
    } else {
        let key = match std::env::var("AIMLAPI_KEY") {
            Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
            _ => {
                return Err(CliError::Usage {
                    message: "`AIMLAPI_KEY` is not set".into(),
                    help: Some(
                        "export AIMLAPI_KEY=<your key>, or add --simulate to try the manifest on the built-in simulator"
                            .into(),
                    ),
                });
            }
        };
        let base = std::env::var("AIMLAPI_BASE_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let base = base.trim().trim_end_matches('/').to_string();
        (base.clone(), ApiKey::new(key), base)
    };

    let api = ApiClient::new(&base_url, key, args.rate).map_err(usage)?;
    let downloader = std::sync::Arc::new(Downloader::new(args.max_download_size).map_err(aborted)?);
    let mut state = RunState::open(&out, &endpoint)?;
    if !state.knows_jobs()?
        && let Some(found) = vidbatch::coordinator::earlier_run(&out)
    {
        if args.adopt {
            let adoption = vidbatch::coordinator::adopt(&out, &mut plan.jobs, &mut state)?;
            tracing::warn!(
                "adopted {} finished video(s) of an earlier run (checked against `results.csv`); \
                 {} listed there no longer match and will be fetched again",
                adoption.adopted,
                adoption.mismatched
            );
            for (old, new) in &adoption.kept_aside {
                tracing::warn!("`{old}` is kept (no record says which job it belongs to); its job writes `{new}`");
            }
        } else if args.start_over {
            tracing::warn!(
                "starting over in `{}` ({found} there): every job is submitted and paid again",
                out.display()
            );
        } else {
            return Err(StateError::Lost { out, found }.into());
        }
    }
    for (old, new) in plan::keep_clear_of(&mut plan.jobs, &state.finished_files()?) {
        tracing::warn!(
            "`{old}` already holds the finished video of another job; \
             the job now named there writes `{new}` instead"
        );
    }
    let polling = match (args.poll_interval, args.poll_prior) {
        (Some(every), _) => Polling::Fixed(every),
        (None, Some(prior)) => Polling::Adaptive(PollPolicy::scaled(prior)),
        // The built-in simulator renders in about 1.2 s; the service, in minutes.
        (None, None) if args.simulate => Polling::Adaptive(PollPolicy::scaled(Duration::from_millis(1200))),
        (None, None) => Polling::Adaptive(PollPolicy::service()),
    };
    let progress_every = args.progress_every.max(Duration::from_millis(10));
    let live = view.format == LogFormat::Text && !view.quiet && stderr_is_terminal();
    let mut sinks = Sinks::default();
    match view.format {
        LogFormat::Json => sinks.push(sinks::json::JsonLines::new(Box::new(std::io::stderr()), progress_every)),
        LogFormat::Text if live => {
            sinks.push(sinks::live::Live::new(view.color));
            sinks.push(sinks::lines::Lines::new(None, false));
        }
        LogFormat::Text => sinks.push(sinks::lines::Lines::new(Some(progress_every), true)),
    }
    sinks.push(sinks::results_file::ResultsFile::new(
        out.clone(),
        &plan.jobs,
        progress_every,
    ));
    let config = RunConfig {
        concurrency: args.concurrency as usize,
        downloads: args.downloads as usize,
        polling,
        paid_retries: args.paid_retries,
        resubmit_unknown: args.resubmit_unknown,
        generation_timeout: args.timeout,
        retry: RetryPolicy {
            base: args.retry_base,
            ..RetryPolicy::default()
        },
        // The live view redraws a few times a second; plain lines and JSON keep their own pace.
        progress_every: if live {
            Duration::from_millis(200)
        } else {
            progress_every.min(Duration::from_secs(1))
        },
        max_credits: args.max_credits,
    };
    let started = std::time::Instant::now();
    let shutdown = Shutdown::default();
    watch_signals(shutdown.clone());
    let coordinator = Coordinator::new(&plan, &out, state, api, downloader, config, &shutdown, sinks)?;
    let (state, report, mut sinks) = coordinator.run().await;
    drop(simulator);

    let records = state.records()?;
    let totals = results::write(&out, &plan.jobs, &records).map_err(|e| aborted(error_chain(&e)))?;

    let (outcome, stopped) = match &report.stopped {
        Some(StopReason::Refused(message) | StopReason::Fatal(message)) => {
            (Err(aborted(message.clone())), Some(message.clone()))
        }
        Some(StopReason::Unreachable(message)) => (
            Err(CliError::Aborted {
                message: message.clone(),
                help: Some("check the network and `AIMLAPI_BASE_URL`".into()),
            }),
            Some(message.clone()),
        ),
        Some(StopReason::Interrupted) => (
            Ok(exit_code::ABORTED),
            Some("interrupted: the same command resumes the run".to_string()),
        ),
        None if totals.completed == totals.total() => (Ok(exit_code::OK), None),
        None => (Ok(exit_code::JOBS_INCOMPLETE), None),
    };
    let finished = Finished {
        completed: totals.completed,
        failed: totals.failed,
        unknown: totals.unknown,
        pending: totals.pending,
        credits: totals.credits,
        api_requests: report.api_requests,
        elapsed: started.elapsed(),
        stopped: stopped.clone(),
        exit_code: match &outcome {
            Ok(code) => *code,
            Err(e) => e.exit_code(),
        },
    };
    sinks.emit(RunEvent::Finished(&finished));
    drop(sinks);

    let summary = (view.format == LogFormat::Text && !view.quiet).then(|| {
        let failed_before: std::collections::HashSet<usize> = report.failed_before.iter().copied().collect();
        sinks::summary::Summary {
            jobs: plan
                .jobs
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let record = records.get(&job.key);
                    sinks::summary::JobLine {
                        job_id: job.key.short().to_string(),
                        model: job.model.clone(),
                        name: job.label().to_string(),
                        status: results::Status::of(record),
                        error: record.and_then(|r| r.error.clone()),
                        earlier: failed_before.contains(&i),
                        paid_failure: record.and_then(|r| r.failure) == Some(vidbatch::state::Failure::Generation),
                        attempts: record.map_or(0, |r| r.attempts),
                    }
                })
                // An input's other name whose copy failed fails its own row: said like a job.
                .chain(totals.alias_failures.iter().map(|(id, input, why)| {
                    sinks::summary::JobLine {
                        job_id: id.clone(),
                        model: plan
                            .jobs
                            .iter()
                            .find(|j| j.key.short() == id)
                            .map_or_else(String::new, |j| j.model.clone()),
                        name: input.clone(),
                        status: results::Status::Failed,
                        error: Some(why.clone()),
                        earlier: false,
                        paid_failure: false,
                        attempts: 0,
                    }
                }))
                .collect(),
            credits_now: report.credits_now,
            estimate: Some(report.estimate),
            credits_total: totals.credits,
            over_budget: report.over_budget,
            max_credits: args.max_credits,
            elapsed: finished.elapsed,
            api_requests: report.api_requests,
            out: out.clone(),
            rows: totals.total(),
            report: None,
            command: std::env::args().collect(),
            stopped,
        }
    });
    drop(records);
    // The page is for people to look at: failing to write it does not fail the run.
    let page = match vidbatch::gallery::write_after_run(&out, &plan.jobs) {
        Ok(page) => Some(page),
        Err(e) => {
            tracing::warn!("no report: {}", error_chain(&e));
            None
        }
    };
    if let Some(summary) = summary {
        let summary = sinks::summary::Summary {
            report: page,
            ..summary
        };
        eprint!("{}", sinks::summary::render(&summary));
    }
    if let Some((limit, refusals)) = report.concurrency_found {
        tracing::warn!(
            "the service refused {refusals} submit(s) for too many active generations: this account runs about \
             {limit} at once (`--concurrency {limit}` avoids the refusals)"
        );
    }
    outcome
}
