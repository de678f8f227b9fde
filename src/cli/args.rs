//! The command line's arguments: the clap definitions of the commands, their help texts and
//! the parsers of their values.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use vidbatch::selection::WithinCap;
use vidbatch::shard::Shard;
use vidbatch::sinks::logs::LogFormat;

const EXAMPLES: &str = "\
Examples:
  vidbatch run manifests/demo.yaml --simulate      try a manifest on the built-in simulator
  vidbatch validate campaign.csv --out out/campaign what is done, what is new, what it will cost
  AIMLAPI_KEY=... vidbatch run campaign.csv --max-credits 50000000
  vidbatch status out/campaign                     look at a run, also while it goes on
  vidbatch verify out/campaign                     every saved video against its SHA-256
  vidbatch run nightly.csv --log-format json 2>>nightly.log   for cron

Exit codes: 0 all jobs completed; 1 some jobs failed, unknown or pending; 2 invalid manifest,
arguments or state (nothing sent); 3 the run was stopped (interrupted, key refused, disk full);
4 another run holds the output folder.";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  vidbatch validate campaign.csv                          the jobs, their files, what they should cost
  vidbatch validate campaign.csv --out out/spring         ...and what that folder already holds
  vidbatch validate campaign.csv --sample 6               the 6 jobs `run --sample 6` would send
  vidbatch validate campaign.csv --max-credits 10000000 --within-cap spread
                                                          which jobs fit under the cap

`validate` takes the options of `run` that change what is sent, and shows exactly what `run` would
send with them. It exits 2 where `run` would refuse to start (jobs over `--max-credits`).";

const RUN_EXAMPLES: &str = "\
Examples:
  vidbatch run manifests/demo.yaml --simulate
  vidbatch run campaign.csv --out out/spring --concurrency 20 --rate 10
  vidbatch run campaign.csv --sample 6                try 6 jobs covering every model and template
  vidbatch run campaign.csv --max-credits 50000000    never commit more than this in --out
  vidbatch run campaign.csv --max-credits 50000000 --within-cap spread
                                                      over the cap: spend up to it, evenly over the grid
  vidbatch run campaign.csv --shard 2/3 --out out/shard-2
  vidbatch run campaign.csv --log-format json 2>>run.log

The same command resumes a run that was stopped: nothing already paid for is paid again.";

const STATUS_EXAMPLES: &str = "\
Examples:
  vidbatch status out/campaign
  vidbatch status out/shard-*                 several folders and their totals
  vidbatch status out/campaign --json --jobs | jq '.folders[].jobs[] | select(.status == \"failed\")'";

const VERIFY_EXAMPLES: &str = "\
Examples:
  vidbatch verify out/campaign
  vidbatch verify out/shard-* --json | jq '.totals'";

#[derive(Parser)]
#[command(
    name = "vidbatch",
    version,
    about = "Batch runner for the AI/ML API's video-generation models",
    after_help = EXAMPLES
)]
pub(crate) struct Cli {
    /// More output (-v: every poll; -vv: HTTP details).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// When to use colour: `auto` (a terminal, unless `NO_COLOR` is set), `always`, `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
    /// How logs and run events are written to stderr: `text`, or `json` (one object per line:
    /// run started, each job submitted, retried, completed, failed, unknown, run finished).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run a manifest: validate, submit, poll, download, write results.csv.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Check a manifest and show its jobs and what they should cost; nothing is sent. With
    /// `--out`, also what that folder already holds and what is new.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate {
        manifest: PathBuf,
        /// An output folder of earlier runs: says which jobs are done there, which are new, and
        /// prices from what they were charged.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Price as `run --simulate` does: from the built-in simulator's price list (no network).
        #[arg(long)]
        simulate: bool,
        #[command(flatten)]
        send: SendArgs,
        /// One JSON document on stdout instead of the table: the plan with what would be sent,
        /// the estimate, whether `run` would refuse, and every error with its file and line
        /// (`--log-format json` does the same).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        key: KeyArg,
    },
    /// What output folders hold: counts by status, credits, generations still running, failures.
    /// Reads only the state (no network), also while a run is going. Exits as the folder's run
    /// did: 0 all completed, 1 some not, 4 a run is going.
    #[command(after_help = STATUS_EXAMPLES)]
    Status {
        #[arg(required = true)]
        out: Vec<PathBuf>,
        /// One JSON document on stdout instead of text (`--log-format json` does the same).
        #[arg(long)]
        json: bool,
        /// List every job (id, status, file, error); with `--json`, each folder's `jobs`.
        #[arg(long)]
        jobs: bool,
    },
    /// Check every completed video of output folders against the size and SHA-256 recorded
    /// when it was saved: ok, missing or changed. Reads `state.db` and `results.csv` (no
    /// manifest, no network). Exits 1 when a video is missing or changed.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify {
        #[arg(required = true)]
        out: Vec<PathBuf>,
        /// One JSON document on stdout instead of text (`--log-format json` does the same).
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script: `vidbatch completions bash > /etc/bash_completion.d/vidbatch`.
    Completions { shell: clap_complete::Shell },
    /// List the template names of a model (or of every model that has templates).
    Templates { model: Option<String> },
    /// List the catalogued video models (those whose id or task contains FILTER), or show one
    /// (`vidbatch models klingai/v2.1-master-image-to-video`) with its parameters and an example job.
    Models { filter: Option<String> },
    /// Serve the API simulator on its own (for trying vidbatch or other clients).
    Sim(SimArgs),
    /// Write `OUT/report.html` again from `OUT/results.csv`: the videos side by side.
    Report { out: PathBuf },
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The manifest (`.yaml`/`.yml`, or `.csv`).
    pub(super) manifest: PathBuf,
    /// Output folder [default: out/<manifest name>].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Most generations in flight at once (submitted, not yet seen finished).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) concurrency: u32,
    /// Most API requests per second, submits and polls together.
    #[arg(long, default_value_t = 5.0)]
    pub(super) rate: f64,
    /// Run against a built-in simulator of the API (no key, no network).
    #[arg(long)]
    pub(super) simulate: bool,
    #[command(flatten)]
    pub(super) send: SendArgs,
    /// Stop submitting a kind of job (a model and template, or a model and resolution) once N of
    /// its generations failed with none completed: each failure is paid. Its other jobs stay
    /// pending for a rerun; 0 never stops.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(super) halt_kind: u32,
    /// Stop submitting anything once PCT % of the run's finished generations failed (judged after
    /// 10 of them); 0 never stops. The generations in flight are still followed.
    #[arg(long, default_value_t = 50.0, value_name = "PCT", value_parser = percent)]
    pub(super) halt_run: f64,
    /// Poll every generation at this fixed interval. By default polls are timed from how long
    /// renders of the same kind took in this run and earlier ones into the same `--out`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) poll_interval: Option<Duration>,
    /// Give up waiting for one generation after this long (a rerun picks it up again).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub(super) timeout: Duration,
    /// How often a status line is logged (when stderr is not a terminal) and `results.csv`
    /// refreshed during the run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(super) progress_every: Duration,
    /// Most downloads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(super) downloads: u32,
    /// The most bytes one video may weigh (`500MB`, `2GiB`, …): a larger one is refused, and the
    /// job can be fetched again (free) by a rerun with a higher limit.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub(super) max_download_size: u64,
    /// Free space the output disk must have before each paid submit (`200MB`, `1GiB`, …); with
    /// less, nothing more is submitted, the generations in flight are still fetched, and the
    /// run stops with exit code 3. Default: twice the largest video seen, at least 64 MiB.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(super) min_free: Option<u64>,
    /// When the run state of `--out` was lost: keep the videos its `results.csv` lists (checked
    /// by SHA-256), and submit only the rest.
    #[arg(long, conflicts_with = "start_over")]
    pub(super) adopt: bool,
    /// When the run state of `--out` was lost: forget the earlier run and submit (and pay for)
    /// every job again; its videos replace the files of the same name.
    #[arg(long)]
    pub(super) start_over: bool,
    /// What a render is assumed to take before any is learned [default: 2m; 1.2s with
    /// --simulate]. For trying vidbatch against a simulator of other timings.
    #[arg(long, value_parser = humantime::parse_duration, hide = true)]
    pub(super) poll_prior: Option<Duration>,
    /// First delay between retries of a failing request (doubles each time, with jitter).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration, hide = true)]
    pub(super) retry_base: Duration,
    #[command(flatten)]
    pub(super) results: ResultsArgs,
}

// How results are keyed and written: `run` takes both, `validate` the key (it checks it).

/// `--key`: what keys the results' rows (`custom_id`).
#[derive(Args, Default)]
pub(crate) struct KeyArg {
    /// Key the results' rows (their `custom_id`) by `label` or by a column of yours (`#SKU`):
    /// every job must have one of its own. Overrides the manifest's `key:` [default: the label
    /// where one tells the rows apart, else the job id].
    #[arg(long, value_name = "COLUMN")]
    pub(crate) key: Option<String>,
}

#[derive(Args)]
pub(crate) struct ResultsArgs {
    #[command(flatten)]
    pub(crate) key: KeyArg,
    /// The separator of results.csv [default: the CSV manifest's own, else `,`].
    #[arg(long, value_enum, value_name = "SEP")]
    pub(crate) results_delimiter: Option<ResultsDelimiter>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ResultsDelimiter {
    /// `,` (English locales).
    #[value(name = ",", alias = "comma")]
    Comma,
    /// `;` (where `,` is the decimal point: a French or German Excel).
    #[value(name = ";", alias = "semicolon")]
    Semicolon,
    /// A tab.
    #[value(name = "tab")]
    Tab,
}

impl ResultsDelimiter {
    pub(crate) fn byte(self) -> u8 {
        match self {
            ResultsDelimiter::Comma => b',',
            ResultsDelimiter::Semicolon => b';',
            ResultsDelimiter::Tab => b'\t',
        }
    }
}

/// The options that change which jobs a run sends: `run` and `validate` take the same, so that
/// `validate` shows exactly what `run` would send and what it should cost.
#[derive(Args, Clone)]
pub(crate) struct SendArgs {
    /// Never let the credits committed in `--out` pass N: every run into the folder counts, and
    /// so do generations in flight (at their expected price until charged). A run whose jobs to
    /// send are expected to pass it refuses to start, unless `--within-cap` says which go.
    #[arg(long, value_name = "N", value_parser = parse_credits)]
    pub(super) max_credits: Option<f64>,
    /// When the jobs to send would pass `--max-credits`: send those that fit, in the manifest's
    /// order (`order`), or spread evenly over models, templates and inputs (`spread`). The rest
    /// stay `pending` for a later run with a higher cap.
    #[arg(long, value_name = "HOW", value_enum, requires = "max_credits")]
    pub(super) within_cap: Option<WithinCap>,
    /// Run only shard K of N (1-based, e.g. `2/3`): a split of the jobs by job id, for running one
    /// manifest on several machines, each with its own `--out`. Taken from Kubernetes'
    /// `JOB_COMPLETION_INDEX`/`JOB_COMPLETION_COUNT` when those are set.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub(super) shard: Option<Shard>,
    /// Only the first N jobs of the manifest (after `--shard`).
    #[arg(long, value_name = "N", conflicts_with = "sample")]
    pub(super) limit: Option<usize>,
    /// Only N jobs that stand for the whole manifest (after `--shard`): every model, then every
    /// template, at least once when N allows, the inputs and prompts varied. The same N jobs on
    /// every run: a trial before paying for all.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub(super) sample: Option<usize>,
    /// Resubmissions allowed per job after a generation ends in `error`. Each one is paid again.
    #[arg(long, default_value_t = 0)]
    pub(super) paid_retries: u32,
    /// Submit again the jobs whose earlier submit has an unknown outcome. A generation may already
    /// exist for them, so this can pay twice: check the service's history first.
    #[arg(long)]
    pub(super) resubmit_unknown: bool,
}

#[derive(Args)]
pub(crate) struct SimArgs {
    #[arg(long, default_value_t = 8090)]
    pub(super) port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub(super) host: IpAddr,
    /// Time each generation stays `queued`.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    pub(super) queued: Duration,
    /// Time each generation then stays `generating`.
    #[arg(long, default_value = "900ms", value_parser = humantime::parse_duration)]
    pub(super) generating: Duration,
    /// Lifetime of download URLs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub(super) url_ttl: Duration,
    /// The first N generations of each distinct request end in `error`.
    #[arg(long, default_value_t = 0)]
    pub(super) fail_first: u32,
    /// The first N download URLs of each generation are already expired.
    #[arg(long, default_value_t = 0)]
    pub(super) expire_first_urls: u32,
    /// Accept only this API key (default: any non-empty key).
    #[arg(long)]
    pub(super) key: Option<String>,
    /// Answer the first N submits 429 with a Retry-After of `--retry-after`.
    #[arg(long, default_value_t = 0)]
    pub(super) throttle_first_submits: u32,
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub(super) retry_after: Duration,
    /// Answer the first N polls 503.
    #[arg(long, default_value_t = 0)]
    pub(super) unavailable_first_polls: u32,
    /// Answer the first N submits 403, as for an account out of credits.
    #[arg(long, default_value_t = 0)]
    pub(super) out_of_credits_first_submits: u32,
    /// Every kind of fault (throttling, 5xx, resets, lost creates, web pages, redirects, slow
    /// answers, failed generations, odd statuses, expired and truncated downloads) at this
    /// probability per request, e.g. `0.05`.
    #[arg(long, value_parser = parse_probability)]
    pub(super) chaos: Option<f64>,
    /// The seed of `--chaos`: the same seed, the same faults for the same requests.
    #[arg(long, default_value_t = 1)]
    pub(super) chaos_seed: u64,
    /// Draw each generation's `generating` time uniformly from MIN..MAX (e.g. `2s..4s`) instead
    /// of the fixed `--generating`.
    #[arg(long, value_parser = parse_duration_range)]
    pub(super) render: Option<(Duration, Duration)>,
    /// An account's request limit: API requests per second beyond it are answered 429
    /// (`rate_limit_exceeded`).
    #[arg(long)]
    pub(super) rate_limit: Option<f64>,
    /// An account's limit of generations queued or generating at once; a submit beyond it is
    /// answered 429 (`concurrency_limit_exceeded`).
    #[arg(long)]
    pub(super) max_active: Option<usize>,
    /// Pad every video to this size (`16MiB`, `1GiB`), streamed.
    #[arg(long, value_parser = parse_size)]
    pub(super) video_size: Option<u64>,
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

/// A number of jobs, at least one.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}` is not a number of jobs (1 or more)")),
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a probability from 0 to 1")),
    }
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

/// A share in percent, 0 to 100.
fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage (0 to 100)"))?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{text}` is not between 0 and 100"))
    }
}
