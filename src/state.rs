//! The run's durable state: `<out>/state.db`, written only by the coordinator, synchronously,
//! before and after every side effect that costs money. It is what lets a killed run resume
//! without paying twice: a job is marked `submitting` before its POST, and its generation id is
//! stored the moment it comes back, before any poll.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use crate::plan::{Job, JobKey};

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

    fn parse(s: &str) -> Phase {
        match s {
            "submitting" => Phase::Submitting,
            "generating" => Phase::Generating,
            "downloading" => Phase::Downloading,
            "completed" => Phase::Completed,
            "failed" => Phase::Failed,
            _ => Phase::Queued,
        }
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
}

const SCHEMA_VERSION: i64 = 1;

pub struct RunState {
    conn: Connection,
    path: PathBuf,
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl RunState {
    /// Opens (or creates) `<out>/state.db` and takes the folder for this process alone.
    /// `endpoint` names the API the generation ids belong to.
    pub fn open(out: &Path, endpoint: &str) -> Result<RunState, StateError> {
        std::fs::create_dir_all(out).map_err(|source| StateError::CreateDir {
            path: out.to_path_buf(),
            source,
        })?;
        let path = out.join("state.db");
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        // A busy database means another run holds it: say so now rather than wait.
        conn.busy_timeout(std::time::Duration::ZERO).map_err(open_err)?;
        // EXCLUSIVE keeps the file locked for as long as this connection lives, so two runs can
        // never share one output folder; FULL makes each recorded id survive a power cut.
        let setup = conn.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             BEGIN EXCLUSIVE; COMMIT;",
        );
        if let Err(e) = setup {
            return Err(match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    StateError::Locked { path }
                }
                _ => open_err(e),
            });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs (
                 key TEXT PRIMARY KEY,
                 model TEXT NOT NULL,
                 template TEXT,
                 input TEXT NOT NULL,
                 file TEXT NOT NULL,
                 phase TEXT NOT NULL DEFAULT 'queued',
                 generation_id TEXT,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 bytes INTEGER,
                 sha256 TEXT,
                 error TEXT,
                 failure TEXT,
                 submitting_since TEXT,
                 submitted_at TEXT,
                 finished_at TEXT
             );
             -- Every generation ever created, so no paid id is forgotten even after a resubmit.
             CREATE TABLE IF NOT EXISTS generations (
                 generation_id TEXT PRIMARY KEY,
                 job_key TEXT NOT NULL,
                 attempt INTEGER NOT NULL,
                 submitted_at TEXT NOT NULL,
                 credits REAL,
                 outcome TEXT
             );",
        )?;
        let state = RunState { conn, path };
        match state.meta("schema")? {
            Some(v) => {
                let found: i64 = v.parse().unwrap_or(i64::MAX);
                if found > SCHEMA_VERSION {
                    return Err(StateError::NewerSchema {
                        path: state.path,
                        found,
                        known: SCHEMA_VERSION,
                    });
                }
            }
            None => state.set_meta("schema", &SCHEMA_VERSION.to_string())?,
        }
        match state.meta("endpoint")? {
            Some(recorded) if recorded != endpoint => {
                return Err(StateError::OtherEndpoint {
                    path: state.path,
                    recorded,
                    current: endpoint.to_string(),
                });
            }
            Some(_) => {}
            None => state.set_meta("endpoint", endpoint)?,
        }
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, k: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, k: &str, v: &str) -> Result<(), StateError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)", [k, v])?;
        Ok(())
    }

    /// Adds the plan's jobs (known ones keep their history). A job not yet finished takes the
    /// file name the current manifest gives it; a completed one keeps the file it has.
    pub fn register(&mut self, jobs: &[Job]) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO jobs (key, model, template, input, file) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(key) DO UPDATE SET file = excluded.file WHERE phase != 'completed'",
            )?;
            for job in jobs {
                insert.execute(params![job.key.0, job.model, job.template, job.input_label, job.file])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The files holding finished videos (names lowercased, as some file systems ignore case),
    /// with the job each belongs to.
    pub fn finished_files(&self) -> Result<HashMap<String, JobKey>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT file, key FROM jobs WHERE phase = 'completed'")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?.to_lowercase(), JobKey(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn records(&self) -> Result<HashMap<JobKey, JobRecord>, StateError> {
        let mut stmt = self.conn.prepare(
            "SELECT j.key, j.phase, j.generation_id, j.attempts, j.file, j.bytes, j.sha256, j.error, j.failure,
                    j.submitted_at, j.finished_at,
                    (SELECT SUM(g.credits) FROM generations g WHERE g.job_key = j.key)
             FROM jobs j",
        )?;
        let rows = stmt.query_map([], |r| {
            let phase: String = r.get(1)?;
            let failure: Option<String> = r.get(8)?;
            Ok(JobRecord {
                key: JobKey(r.get(0)?),
                phase: Phase::parse(&phase),
                generation_id: r.get(2)?,
                attempts: r.get(3)?,
                file: r.get(4)?,
                bytes: r.get::<_, Option<i64>>(5)?.map(|b| b as u64),
                sha256: r.get(6)?,
                error: r.get(7)?,
                failure: failure.as_deref().and_then(Failure::parse),
                submitted_at: r.get(9)?,
                finished_at: r.get(10)?,
                credits: r.get(11)?,
            })
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let row = row?;
            out.insert(row.key.clone(), row);
        }
        Ok(out)
    }

    /// Generations created so far for this job.
    pub fn attempts(&self, key: &JobKey) -> Result<u32, StateError> {
        Ok(self
            .conn
            .query_row("SELECT attempts FROM jobs WHERE key = ?1", [&key.0], |r| r.get(0))?)
    }

    fn set_phase(&self, key: &JobKey, phase: Phase) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET phase = ?2 WHERE key = ?1",
            params![key.0, phase.as_str()],
        )?;
        Ok(())
    }

    /// Back to the queue: nothing is pending remotely for this job (e.g. the submit was refused
    /// before anything was created, or a paid retry was granted).
    pub fn mark_queued(&self, key: &JobKey) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET phase = 'queued', generation_id = NULL, submitting_since = NULL WHERE key = ?1",
            params![key.0],
        )?;
        Ok(())
    }

    /// Written before the POST: if the process dies before the answer, this job is `unknown`.
    pub fn mark_submitting(&self, key: &JobKey) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET phase = 'submitting', submitting_since = ?2, error = NULL, failure = NULL WHERE key = ?1",
            params![key.0, now()],
        )?;
        Ok(())
    }

    /// Written the moment the id comes back, before any poll.
    pub fn record_generation(
        &mut self,
        key: &JobKey,
        generation_id: &str,
        credits: Option<f64>,
    ) -> Result<u32, StateError> {
        let at = now();
        let tx = self.conn.transaction()?;
        let attempts: u32 = tx.query_row(
            "UPDATE jobs SET phase = 'generating', generation_id = ?2, attempts = attempts + 1,
                    submitted_at = ?3, submitting_since = NULL, finished_at = NULL
             WHERE key = ?1 RETURNING attempts",
            params![key.0, generation_id, at],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO generations (generation_id, job_key, attempt, submitted_at, credits)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![generation_id, key.0, attempts, at, credits],
        )?;
        tx.commit()?;
        Ok(attempts)
    }

    /// Polls back in play for a job that has a generation id (a resumed download, say).
    pub fn mark_generating(&self, key: &JobKey) -> Result<(), StateError> {
        self.set_phase(key, Phase::Generating)
    }

    pub fn mark_downloading(&self, key: &JobKey, generation_id: &str, credits: Option<f64>) -> Result<(), StateError> {
        self.set_phase(key, Phase::Downloading)?;
        self.conn.execute(
            "UPDATE generations SET outcome = 'completed', credits = COALESCE(?2, credits) WHERE generation_id = ?1",
            params![generation_id, credits],
        )?;
        Ok(())
    }

    pub fn mark_completed(&self, key: &JobKey, file: &str, bytes: u64, sha256: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET phase = 'completed', file = ?2, bytes = ?3, sha256 = ?4, error = NULL,
                    failure = NULL, finished_at = ?5
             WHERE key = ?1",
            params![key.0, file, bytes as i64, sha256, now()],
        )?;
        Ok(())
    }

    pub fn mark_failed(&self, key: &JobKey, failure: Failure, error: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE jobs SET phase = 'failed', failure = ?2, error = ?3, finished_at = ?4 WHERE key = ?1",
            params![key.0, failure.as_str(), error, now()],
        )?;
        if failure == Failure::Generation {
            self.conn.execute(
                "UPDATE generations SET outcome = 'error'
                 WHERE generation_id = (SELECT generation_id FROM jobs WHERE key = ?1)",
                params![key.0],
            )?;
        }
        Ok(())
    }

    /// Every generation id ever received, per job: what a test or an audit checks against the
    /// service's records.
    pub fn generations(&self) -> Result<Vec<(JobKey, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT job_key, generation_id FROM generations ORDER BY job_key, attempt")?;
        let rows = stmt.query_map([], |r| Ok((JobKey(r.get(0)?), r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
