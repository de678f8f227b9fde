//! The run's durable state: `<out>/state.db`, written only by the coordinator, synchronously,
//! before and after every side effect that costs money. It is what lets a killed run resume
//! without paying twice: a job is marked `submitting` before its POST, and its generation id is
//! stored the moment it comes back, before any poll.

use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::Connection;

use crate::plan::JobKey;

mod read;
mod schema;
mod writes;

pub use read::StateReader;
pub use writes::RunState;

/// Where a job's record is found: the state itself, one job at a time (so that the results of
/// 10,000 jobs are written without holding 10,000 records), or records already read.
pub trait Records {
    fn record(&self, key: &JobKey) -> Result<Option<std::borrow::Cow<'_, JobRecord>>, StateError>;
}

impl Records for std::collections::HashMap<JobKey, JobRecord> {
    fn record(&self, key: &JobKey) -> Result<Option<std::borrow::Cow<'_, JobRecord>>, StateError> {
        Ok(self.get(key).map(std::borrow::Cow::Borrowed))
    }
}

impl Records for StateReader {
    fn record(&self, key: &JobKey) -> Result<Option<std::borrow::Cow<'_, JobRecord>>, StateError> {
        Ok(StateReader::record(self, key)?.map(std::borrow::Cow::Owned))
    }
}

impl Records for RunState {
    fn record(&self, key: &JobKey) -> Result<Option<std::borrow::Cow<'_, JobRecord>>, StateError> {
        Ok(RunState::record(self, key)?.map(std::borrow::Cow::Owned))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the output folder `{path}`")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the run state `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("another vidbatch run is using `{path}`; wait for it to finish or choose another `--out`")]
    Locked { path: PathBuf },
    #[error("cannot lock `{path}` (does this file system support file locks?); choose a local `--out`")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{path}` belongs to a run against `{recorded}`, not `{current}`: its generation ids mean nothing there; use another `--out`"
    )]
    OtherEndpoint {
        path: PathBuf,
        recorded: String,
        current: String,
    },
    #[error("the run state `{path}` was written by a newer vidbatch (schema {found}, this one knows {known})")]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    #[error("`{path}` is not a vidbatch run state (it cannot be read as one)")]
    NotAState {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The folder shows an earlier run (videos, `results.csv`) but its state is missing or empty:
    /// starting over would pay for every video again.
    #[error(
        "`{out}` holds {found} from an earlier run, but its run state `state.db` is missing or empty: \
         going on would pay for every video again"
    )]
    Lost { out: PathBuf, found: String },
    #[error("the run state `{path}` has a row vidbatch cannot read (job `{key}`: {what})")]
    Corrupt { path: PathBuf, key: String, what: String },
    #[error("`{path}` does not exist: no run has used this folder")]
    Missing { path: PathBuf },
    #[error("writing the run state failed")]
    Sql(#[from] rusqlite::Error),
}

/// Where a job is in its life. Stored as text so the database reads well in `sqlite3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not submitted yet.
    Queued,
    /// A POST may be under way; if the run dies here, whether a generation exists is unknown.
    Submitting,
    /// A generation id was received; the remote side is working on it.
    Generating,
    /// The generation completed; the video is being fetched.
    Downloading,
    Completed,
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Submitting => "submitting",
            Phase::Generating => "generating",
            Phase::Downloading => "downloading",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
        }
    }

    /// An unreadable phase is an error, never "queued": that would pay for the job again.
    fn parse(s: &str) -> Option<Phase> {
        Some(match s {
            "queued" => Phase::Queued,
            "submitting" => Phase::Submitting,
            "generating" => Phase::Generating,
            "downloading" => Phase::Downloading,
            "completed" => Phase::Completed,
            "failed" => Phase::Failed,
            _ => return None,
        })
    }
}

/// Why a job failed: it decides what a rerun does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service refused the request (400): nothing was paid; a rerun tries again.
    Rejected,
    /// The generation ended in `error`: it was paid for, so only `--paid-retries` resubmits it.
    Generation,
    /// The video could not be fetched: the generation exists, a rerun fetches it again for free.
    Download,
    /// We stopped waiting, or could not learn the outcome; the generation may still finish and a
    /// rerun polls it again.
    Unfinished,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Rejected => "rejected",
            Failure::Generation => "generation",
            Failure::Download => "download",
            Failure::Unfinished => "unfinished",
        }
    }

    fn parse(s: &str) -> Option<Failure> {
        Some(match s {
            "rejected" => Failure::Rejected,
            "generation" => Failure::Generation,
            "download" => Failure::Download,
            "unfinished" => Failure::Unfinished,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub key: JobKey,
    pub phase: Phase,
    pub generation_id: Option<String>,
    /// Generations created for this job (each one paid).
    pub attempts: u32,
    pub credits: Option<f64>,
    pub file: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
    pub failure: Option<Failure>,
    pub submitted_at: Option<String>,
    pub finished_at: Option<String>,
    /// Generations of this job whose charge the service has not reported (yet).
    pub uncharged: u32,
    pub model: String,
    pub template: Option<String>,
    /// The input as the manifest wrote it.
    pub input: String,
    /// The service reported the charge of the job's current generation (`generation_id`).
    pub current_charged: bool,
    /// Earlier submits whose outcome stayed unknown before `--resubmit-unknown` sent the job
    /// again: each may have created a paid generation ([`crate::cost::Prices::committed`]).
    pub unknown_submits: u32,
}

#[cfg(test)]
impl JobRecord {
    /// A record of `key` at `phase` with nothing else known: for tests, which set what they need.
    pub(crate) fn blank(key: JobKey, phase: Phase) -> JobRecord {
        JobRecord {
            key,
            phase,
            generation_id: None,
            attempts: 0,
            credits: None,
            file: String::new(),
            bytes: None,
            sha256: None,
            error: None,
            failure: None,
            submitted_at: None,
            finished_at: None,
            uncharged: 0,
            model: "magic/text-to-video".into(),
            template: None,
            input: String::new(),
            current_charged: false,
            unknown_submits: 0,
        }
    }
}

/// What an earlier run's `results.csv` says a job paid, carried over by `--adopt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paid {
    /// The job's credits cell: all its generations' charges together.
    pub credits: Option<f64>,
    /// Generations created for it (at least one: a row names its generation).
    pub attempts: u32,
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Runs one statement, prepared once per connection: the run writes a few statements per job,
/// thousands of times, and parsing SQL each time was about 6 % of the client's CPU at 10,000 jobs.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

#[cfg(test)]
mod tests;
