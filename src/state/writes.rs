//! The writer: `RunState` holds the folder's lock and makes every write of a run (and the reads
//! the run makes through the same connection).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::read::{charges_by_model, records};
use super::{Failure, JobRecord, Paid, Phase, StateError, exec, now};
use crate::plan::{Job, JobKey};

pub struct RunState {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Holds the folder's lock for as long as the state is open.
    _lock: std::fs::File,
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
        // FULL makes each recorded id survive a power cut. 4 MB of pages: at 10,000 jobs a
        // 16 MB cache filled to hold the whole state (10 MB of the run's peak memory) for no
        // CPU measured (BENCHMARKS.md, session 7).
        let setup = conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA cache_size = -4000;
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

    pub(super) fn meta(&self, k: &str) -> Result<Option<String>, StateError> {
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

    /// Records the campaign's name (the manifest's `name`), so that `vidbatch report OUT` can
    /// title the page from the folder alone. The last run into the folder names it.
    pub fn set_campaign(&self, name: &str) -> Result<(), StateError> {
        self.set_meta("campaign", name)
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

    /// Moves the records an earlier vidbatch kept under a job's old key (a catalogued model it
    /// sent unchecked) to its key now, generations and all: the job is then resumed, not paid
    /// for again. A job that already has a record under its key keeps it.
    pub fn rekey(&mut self, jobs: &[Job]) -> Result<usize, StateError> {
        let tx = self.conn.transaction()?;
        let mut moved = 0;
        for job in jobs {
            let Some(old) = job.legacy_key() else { continue };
            let n = exec(
                &tx,
                "UPDATE jobs SET key = ?2 WHERE key = ?1 AND NOT EXISTS (SELECT 1 FROM jobs WHERE key = ?2)",
                params![old.0, job.key.0],
            )?;
            if n > 0 {
                exec(
                    &tx,
                    "UPDATE generations SET job_key = ?2 WHERE job_key = ?1",
                    params![old.0, job.key.0],
                )?;
                moved += n;
            }
        }
        tx.commit()?;
        Ok(moved)
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

    /// One job's record, read when it is needed (see [`super::StateReader::record`]).
    pub fn record(&self, key: &JobKey) -> Result<Option<JobRecord>, StateError> {
        super::read::record(&self.conn, &self.path, &super::read::SELECT_RECORD, key)
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
    /// A job still `submitting` from an earlier run (sent again under `--resubmit-unknown`) keeps
    /// that earlier submit in `unknown_submits`: it may have created a paid generation.
    pub fn mark_submitting(&self, key: &JobKey) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET unknown_submits = unknown_submits + (phase = 'submitting'), phase = 'submitting',
                    submitting_since = ?2, error = NULL, failure = NULL
             WHERE key = ?1",
            params![key.0, now()],
        )?;
        Ok(())
    }

    /// Undoes a `submitting` record whose POST never went out: the job is `queued` again, or,
    /// when it was an unknown earlier submit sent again, `unknown` again as it was.
    pub fn unsend(&self, key: &JobKey, was_unknown: bool) -> Result<(), StateError> {
        if !was_unknown {
            return self.mark_queued(key);
        }
        exec(
            &self.conn,
            "UPDATE jobs SET unknown_submits = MAX(unknown_submits - 1, 0) WHERE key = ?1 AND phase = 'submitting'",
            params![key.0],
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
        paid: Paid,
    ) -> Result<(), StateError> {
        let at = now();
        let tx = self.conn.transaction()?;
        exec(
            &tx,
            "UPDATE jobs SET phase = 'completed', generation_id = ?2, attempts = MAX(attempts, ?7), file = ?3,
                    bytes = ?4, sha256 = ?5, error = NULL, failure = NULL, finished_at = ?6
             WHERE key = ?1",
            params![key.0, generation_id, file, bytes as i64, sha256, at, paid.attempts],
        )?;
        if let Some(id) = generation_id {
            exec(
                &tx,
                "INSERT OR IGNORE INTO generations (generation_id, job_key, attempt, submitted_at, credits, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'completed')",
                params![id, key.0, paid.attempts, at, paid.credits],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Follows a generation an earlier run's `results.csv` names (`--adopt`): polled again
    /// (`generating`), or its video fetched again (`downloading`); never submitted again.
    /// `submitted_at` is its submit time as the row gives it: without one its age is unknown
    /// (the adoption's time would make it look young, and teach the polls a render too short).
    pub fn adopt_generation(
        &mut self,
        key: &JobKey,
        generation_id: &str,
        phase: Phase,
        paid: Paid,
        submitted_at: Option<&str>,
    ) -> Result<(), StateError> {
        let at = now();
        let outcome = (phase == Phase::Downloading).then_some("completed");
        let tx = self.conn.transaction()?;
        exec(
            &tx,
            "UPDATE jobs SET phase = ?2, generation_id = ?3, attempts = MAX(attempts, ?4), submitted_at = ?5,
                    error = NULL, failure = NULL
             WHERE key = ?1",
            params![key.0, phase.as_str(), generation_id, paid.attempts, submitted_at],
        )?;
        exec(
            &tx,
            "INSERT OR IGNORE INTO generations (generation_id, job_key, attempt, submitted_at, credits, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                generation_id,
                key.0,
                paid.attempts,
                submitted_at.unwrap_or(&at),
                paid.credits,
                outcome
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// An earlier run's `unknown` job stays `unknown` (`--adopt`): a generation may exist.
    pub fn adopt_unknown(&mut self, key: &JobKey) -> Result<(), StateError> {
        exec(
            &self.conn,
            "UPDATE jobs SET phase = 'submitting', submitting_since = ?2 WHERE key = ?1",
            params![key.0, now()],
        )?;
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
