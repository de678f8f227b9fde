//! Error reporting and terminal output: `CliError` and how it is printed (text or JSON lines),
//! the colour and format of stderr, and the set-up of logging.

/// Writes to stderr, whatever became of it: `eprint!` panics on a closed stderr (`vidbatch run …
/// 2>&1 | head -1`), which would replace the run's exit code with a crash's. Nobody is left to
/// read an error about stderr, so it is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

use vidbatch::exit_code;
use vidbatch::manifest;
use vidbatch::sinks;
use vidbatch::sinks::logs::LogFormat;
use vidbatch::state::StateError;

/// Everything that ends a command before its work is done, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
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
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Manifest(_) | CliError::Usage { .. } => exit_code::INVALID,
            CliError::State(e) => exit_code::of_state_error(e),
            CliError::Aborted { .. } => exit_code::ABORTED,
            // A reader that went away wants no more: that is not a failure.
            CliError::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit_code::OK,
            CliError::Stdout(_) => exit_code::ABORTED,
        }
    }

    pub(crate) fn help(&self) -> Option<String> {
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

    pub(crate) fn report(&self) {
        match self {
            CliError::Manifest(diagnostics) if stderr_is_json() => {
                for d in &diagnostics.0 {
                    say!("{}", diagnostic_line(d));
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
                say!(
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
                say!("{}\n", diagnostics.render(stderr_in_color()));
                say!("nothing was submitted: fix the manifest and run again\n");
            }
            other => {
                report_error(other);
                if let Some(help) = other.help() {
                    say!("  help: {help}\n");
                }
            }
        }
    }
}

/// Whether stderr is drawn in colour (`--color`, `NO_COLOR`), decided once at the start.
pub(crate) static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// `--log-format json`: everything on stderr is a JSON line, errors and manifest warnings too.
pub(crate) static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(super) fn stderr_is_json() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// A manifest's problem as one JSON line: where (file, sheet, line, column), what, what to do.
pub(super) fn diagnostic_line(d: &manifest::Diagnostic) -> String {
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

pub(super) fn stderr_in_color() -> bool {
    COLOR.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}

/// How a run shows itself: the log format, colour, and whether to keep quiet.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub(crate) format: LogFormat,
    pub(crate) color: bool,
    pub(crate) quiet: bool,
}

pub(super) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage {
        message: message.into(),
        help: None,
    }
}

pub(super) fn aborted(message: impl Into<String>) -> CliError {
    CliError::Aborted {
        message: message.into(),
        help: None,
    }
}

pub(crate) fn init_logging(verbose: u8, quiet: bool, format: LogFormat, color: bool) {
    // Debug output is ours alone unless asked twice: the HTTP stack's is long.
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "info,vidbatch=debug",
        (false, _) => "info,vidbatch=debug,reqwest=debug,hyper_util=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    sinks::logs::init(filter, format, color, stderr_is_terminal());
}

/// Prints an error and its causes, one per line.
fn report_error(e: &dyn std::error::Error) {
    say!("error: {e}\n");
    let mut source = e.source();
    while let Some(cause) = source {
        say!("  caused by: {cause}\n");
        source = cause.source();
    }
}
