//! The run's durable state: `<out>/state.db`, written only by the coordinator, synchronously,
//! before and after every side effect that costs money. It is what lets a killed run resume
//! without paying twice: a job is marked `submitting` before its POST, and its generation id is
//! stored the moment it comes back, before any poll.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
}

/// The schema, one step per version: `PRAGMA user_version` says how many have been applied. A
/// step is only ever appended, never edited, so any older state file is brought up to date.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, every generation ever created, and facts about the run.
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
    // 2: when each generation was seen finished.
    "ALTER TABLE generations ADD COLUMN finished_at TEXT;",
    // 3: how long each render took, and what kind of render it was: adaptive polling learns
    // from earlier runs into the same folder.
    "ALTER TABLE generations ADD COLUMN kind TEXT;
     ALTER TABLE generations ADD COLUMN render_ms INTEGER;",
    // 4: a job's generations found without reading them all (results of 10,000 jobs were
    // quadratic without it).
    "CREATE INDEX IF NOT EXISTS generations_by_job ON generations (job_key);",
];

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub struct RunState {
    conn: Connection,
    path: PathBuf,
    /// Holds the folder's lock for as long as the state is open.
    _lock: std::fs::File,
}

/// A read-only view of a folder's state, for `status`, `validate --out` and the results refresh:
/// it takes no lock and writes nothing, so it works beside a run.
pub struct StateReader {
    conn: Connection,
    path: PathBuf,
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Runs one statement, prepared once per connection: the run writes a few statements per job,
/// thousands of times, and parsing SQL each time was about 6 % of the client's CPU at 10,000 jobs.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
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
        // One run per folder: a lock on a file beside the state, held while this process lives
        // (the kernel drops it when the process dies, however it dies). Readers (`status`, the
        // results refresh) do not take it, so they can look while a run goes on.
        let lock_path = out.join("state.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StateError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        // `vidbatch status` looks at the lock for an instant (a shared lock, let go at once): a
        // run starting at that instant waits a moment rather than take it for another run.
        let mut tries = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(StateError::Locked { path }),
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(StateError::Lock {
                        path: lock_path,
                        source,
                    });
                }
            }
        }
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        // Readers hold the database only for the moment of a query (WAL lets them read beside
        // the writer); a short wait covers a checkpoint.
        conn.busy_timeout(std::time::Duration::from_secs(2)).map_err(open_err)?;
        // FULL makes each recorded id survive a power cut.
        let setup = conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA cache_size = -16000;
             BEGIN IMMEDIATE; COMMIT;",
        );
        if let Err(e) = setup {
            return Err(match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    StateError::Locked { path }
                }
                Some(rusqlite::ErrorCode::NotADatabase) => StateError::NotAState { path, source: e },
                _ => open_err(e),
            });
        }
        // Room for every statement of the run's loop.
        conn.set_prepared_statement_cache_capacity(64);
        let mut state = RunState {
            conn,
            path,
            _lock: lock,
        };
        state.migrate()?;
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

    /// Brings the schema up to date, one step per transaction.
    fn migrate(&mut self) -> Result<(), StateError> {
        let not_a_state = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::NotAState { path, source }
        };
        let mut version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(not_a_state(&self.path))?;
        if version == 0 {
            // The first vidbatch kept its version in `meta` only.
            let has_meta: bool = self
                .conn
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                    [],
                    |r| r.get(0),
                )
                .map_err(not_a_state(&self.path))?;
            if has_meta && self.meta("schema")?.is_some() {
                version = self.meta("schema")?.and_then(|v| v.parse().ok()).unwrap_or(i64::MAX);
            }
        }
        if version > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let to = step as i64 + 1;
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            // `meta.schema` too, so that the first vidbatch refuses a newer file.
            exec(
                &tx,
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('schema', ?1)",
                [to.to_string()],
            )?;
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Opens a batch, if none is open: the writes up to [`RunState::commit`] reach the disk
    /// together, with one sync instead of one each. The coordinator batches each turn of its
    /// loop, and sends no request that depends on a write before that write is committed.
    pub fn begin(&mut self) -> Result<(), StateError> {
        if self.conn.is_autocommit() {
            exec(&self.conn, "BEGIN IMMEDIATE", [])?;
        }
        Ok(())
    }

    /// Makes the open batch durable (`synchronous = FULL`: synced before this returns). On
    /// failure the batch is rolled back: none of its writes happened.
    pub fn commit(&mut self) -> Result<(), StateError> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        exec(&self.conn, "COMMIT", []).map(drop).map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            StateError::Sql(e)
        })
    }

    /// Whether this state knows any job: a state that knows none, in a folder that holds an
    /// earlier run's files, was lost (deleted, emptied) and must not be taken for a new run.
    pub fn knows_jobs(&self) -> Result<bool, StateError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM jobs)", [], |r| r.get(0))?)
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
        records(&self.conn, &self.path)
    }

    /// The highest charge seen per model in this folder: what a job of that model is expected to
    /// cost when no price is known (and at least what it is counted at against `--max-credits`).
    pub fn charges_by_model(&self) -> Result<HashMap<String, f64>, StateError> {
        charges_by_model(&self.conn)
    }

    /// Says why jobs still `queued` were left (a refused key, `--max-credits`), in their `error`
    /// cell; the next submit clears it.
    pub fn note_left(&self, key: &JobKey, why: &str) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET error = ?2 WHERE key = ?1 AND phase = 'queued'",
            params![key.0, why],
        )?;
        Ok(())
    }

    /// Generations created so far for this job.
    pub fn attempts(&self, key: &JobKey) -> Result<u32, StateError> {
        Ok(self
            .conn
            .query_row("SELECT attempts FROM jobs WHERE key = ?1", [&key.0], |r| r.get(0))?)
    }

    fn set_phase(&self, key: &JobKey, phase: Phase) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET phase = ?2 WHERE key = ?1",
            params![key.0, phase.as_str()],
        )?;
        Ok(())
    }

    /// Back to the queue: nothing is pending remotely for this job (e.g. the submit was refused
    /// before anything was created, or a paid retry was granted).
    pub fn mark_queued(&self, key: &JobKey) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET phase = 'queued', generation_id = NULL, submitting_since = NULL WHERE key = ?1",
            params![key.0],
        )?;
        Ok(())
    }

    /// Written before the POST: if the process dies before the answer, this job is `unknown`.
    pub fn mark_submitting(&self, key: &JobKey) -> Result<(), StateError> {
        exec(
            &self.conn,
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
        // A savepoint, not a transaction: it nests inside the coordinator's batch.
        let tx = self.conn.savepoint()?;
        let attempts: u32 = tx
            .prepare_cached(
                "UPDATE jobs SET phase = 'generating', generation_id = ?2, attempts = attempts + 1,
                        submitted_at = ?3, submitting_since = NULL, finished_at = NULL
                 WHERE key = ?1 RETURNING attempts",
            )?
            .query_row(params![key.0, generation_id, at], |r| r.get(0))?;
        exec(
            &tx,
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
        exec(
            &self.conn,
            "UPDATE generations SET outcome = 'completed', credits = COALESCE(?2, credits),
                    finished_at = COALESCE(finished_at, ?3)
             WHERE generation_id = ?1",
            params![generation_id, credits, now()],
        )?;
        Ok(())
    }

    pub fn mark_completed(&self, key: &JobKey, file: &str, bytes: u64, sha256: &str) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET phase = 'completed', file = ?2, bytes = ?3, sha256 = ?4, error = NULL,
                    failure = NULL, finished_at = ?5
             WHERE key = ?1",
            params![key.0, file, bytes as i64, sha256, now()],
        )?;
        Ok(())
    }

    pub fn mark_failed(&self, key: &JobKey, failure: Failure, error: &str) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET phase = 'failed', failure = ?2, error = ?3, finished_at = ?4 WHERE key = ?1",
            params![key.0, failure.as_str(), error, now()],
        )?;
        if failure == Failure::Generation {
            exec(
                &self.conn,
                "UPDATE generations SET outcome = 'error', finished_at = COALESCE(finished_at, ?2)
                 WHERE generation_id = (SELECT generation_id FROM jobs WHERE key = ?1)",
                params![key.0, now()],
            )?;
        }
        Ok(())
    }

    /// Takes an earlier run's finished video as this job's result (`--adopt`, after the state was
    /// lost): its file was checked against the plan and its recorded hash.
    pub fn adopt_completed(
        &mut self,
        key: &JobKey,
        generation_id: Option<&str>,
        file: &str,
        bytes: u64,
        sha256: &str,
    ) -> Result<(), StateError> {
        let at = now();
        let tx = self.conn.transaction()?;
        exec(
            &tx,
            "UPDATE jobs SET phase = 'completed', generation_id = ?2, attempts = MAX(attempts, 1), file = ?3,
                    bytes = ?4, sha256 = ?5, error = NULL, failure = NULL, finished_at = ?6
             WHERE key = ?1",
            params![key.0, generation_id, file, bytes as i64, sha256, at],
        )?;
        if let Some(id) = generation_id {
            exec(
                &tx,
                "INSERT OR IGNORE INTO generations (generation_id, job_key, attempt, submitted_at, outcome)
                 VALUES (?1, ?2, 1, ?3, 'completed')",
                params![id, key.0, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How long a generation took to render (submit to completion), for adaptive polling.
    pub fn record_render(&self, generation_id: &str, kind: &str, render: Duration) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE generations SET kind = ?2, render_ms = ?3 WHERE generation_id = ?1",
            params![generation_id, kind, render.as_millis().min(i64::MAX as u128) as i64],
        )?;
        Ok(())
    }

    /// The render times recorded by this and earlier runs, oldest first (the most recent few
    /// thousand: enough to learn from).
    pub fn render_times(&self) -> Result<Vec<(String, Duration)>, StateError> {
        let mut stmt = self.conn.prepare(
            "SELECT kind, render_ms FROM (
                 SELECT rowid, kind, render_ms FROM generations
                 WHERE kind IS NOT NULL AND render_ms IS NOT NULL ORDER BY rowid DESC LIMIT 5000
             ) ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Duration::from_millis(r.get::<_, i64>(1)?.max(0) as u64),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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

fn records(conn: &Connection, path: &Path) -> Result<HashMap<JobKey, JobRecord>, StateError> {
    let mut stmt = conn.prepare(
        "SELECT j.key, j.phase, j.generation_id, j.attempts, j.file, j.bytes, j.sha256, j.error, j.failure,
                j.submitted_at, j.finished_at, g.credits, COALESCE(g.uncharged, 0), j.model, j.template, j.input,
                (SELECT c.credits IS NOT NULL FROM generations c WHERE c.generation_id = j.generation_id)
         FROM jobs j
         LEFT JOIN (SELECT job_key, SUM(credits) AS credits, SUM(credits IS NULL) AS uncharged
                    FROM generations GROUP BY job_key) g
                ON g.job_key = j.key",
    )?;
    let rows = stmt.query_map([], |r| {
        let phase: String = r.get(1)?;
        let failure: Option<String> = r.get(8)?;
        Ok((
            phase,
            failure,
            JobRecord {
                key: JobKey(r.get(0)?),
                phase: Phase::Queued,
                generation_id: r.get(2)?,
                attempts: r.get(3)?,
                file: r.get(4)?,
                bytes: r.get::<_, Option<i64>>(5)?.map(|b| b as u64),
                sha256: r.get(6)?,
                error: r.get(7)?,
                failure: None,
                submitted_at: r.get(9)?,
                finished_at: r.get(10)?,
                credits: r.get(11)?,
                uncharged: r.get(12)?,
                model: r.get(13)?,
                template: r.get(14)?,
                input: r.get(15)?,
                current_charged: r.get::<_, Option<bool>>(16)?.unwrap_or(false),
            },
        ))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (phase, failure, mut record) = row?;
        let corrupt = |what: String| StateError::Corrupt {
            path: path.to_path_buf(),
            key: record.key.0.clone(),
            what,
        };
        record.phase = Phase::parse(&phase).ok_or_else(|| corrupt(format!("unknown phase `{phase}`")))?;
        record.failure = match failure {
            None => None,
            Some(f) => Some(Failure::parse(&f).ok_or_else(|| corrupt(format!("unknown failure `{f}`")))?),
        };
        out.insert(record.key.clone(), record);
    }
    Ok(out)
}

fn charges_by_model(conn: &Connection) -> Result<HashMap<String, f64>, StateError> {
    let mut stmt = conn.prepare(
        "SELECT j.model, MAX(g.credits) FROM generations g JOIN jobs j ON j.key = g.job_key
         WHERE g.credits IS NOT NULL GROUP BY j.model",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl StateReader {
    /// Opens `<out>/state.db` to read, whether or not a run holds the folder. A folder without a
    /// state is an error that says so.
    pub fn open(out: &Path) -> Result<StateReader, StateError> {
        let path = out.join("state.db");
        if !path.is_file() {
            return Err(StateError::Missing { path });
        }
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| StateError::NotAState {
                path: path.clone(),
                source,
            })?;
        if version > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        Ok(StateReader { conn, path })
    }

    pub fn records(&self) -> Result<HashMap<JobKey, JobRecord>, StateError> {
        records(&self.conn, &self.path)
    }

    pub fn charges_by_model(&self) -> Result<HashMap<String, f64>, StateError> {
        charges_by_model(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema the first vidbatch wrote (version 1 in `meta`, no `user_version`).
    const FIRST_SCHEMA: &str = "
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE jobs (key TEXT PRIMARY KEY, model TEXT NOT NULL, template TEXT, input TEXT NOT NULL,
            file TEXT NOT NULL, phase TEXT NOT NULL DEFAULT 'queued', generation_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, bytes INTEGER, sha256 TEXT, error TEXT, failure TEXT,
            submitting_since TEXT, submitted_at TEXT, finished_at TEXT);
        CREATE TABLE generations (generation_id TEXT PRIMARY KEY, job_key TEXT NOT NULL,
            attempt INTEGER NOT NULL, submitted_at TEXT NOT NULL, credits REAL, outcome TEXT);
        INSERT INTO meta VALUES ('schema', '1'), ('endpoint', 'e');
        INSERT INTO jobs (key, model, input, file, phase, generation_id, attempts)
            VALUES ('0123456789abcdef', 'm', 'i', 'videos/a.mp4', 'generating', 'gen-1', 1);
        INSERT INTO generations VALUES ('gen-1', '0123456789abcdef', 1, 't', NULL, NULL);";

    #[test]
    fn a_state_of_the_first_schema_is_migrated_and_keeps_its_generations() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("state.db"))
            .unwrap()
            .execute_batch(FIRST_SCHEMA)
            .unwrap();
        let state = RunState::open(dir.path(), "e").unwrap();
        let version: i64 = state.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            state.meta("schema").unwrap().as_deref(),
            Some(SCHEMA_VERSION.to_string().as_str())
        );
        let records = state.records().unwrap();
        let record = &records[&JobKey("0123456789abcdef".into())];
        assert_eq!(record.phase, Phase::Generating);
        assert_eq!(record.generation_id.as_deref(), Some("gen-1"));
        state.mark_downloading(&record.key, "gen-1", Some(5.0)).unwrap();
        let finished: Option<String> = state
            .conn
            .query_row("SELECT finished_at FROM generations", [], |r| r.get(0))
            .unwrap();
        assert!(finished.is_some());
        drop(state);
        // Opening again changes nothing.
        assert!(RunState::open(dir.path(), "e").unwrap().knows_jobs().unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(RunState::open(dir.path(), "e").unwrap());
        Connection::open(dir.path().join("state.db"))
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            RunState::open(dir.path(), "e"),
            Err(StateError::NewerSchema { .. })
        ));
    }

    #[test]
    fn a_row_whose_phase_cannot_be_read_is_an_error_never_a_job_to_submit() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("state.db"))
            .unwrap()
            .execute_batch(&FIRST_SCHEMA.replace("'generating'", "'generatin'"))
            .unwrap();
        let state = RunState::open(dir.path(), "e").unwrap();
        let err = state.records().unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("unknown phase `generatin`"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.db"), vec![b'x'; 8192]).unwrap();
        assert!(matches!(
            RunState::open(dir.path(), "e"),
            Err(StateError::NotAState { .. })
        ));
    }
}
