//! Reading the state: the queries the writer and the reader share, and `StateReader`, the
//! read-only view that works beside a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _};

use super::schema::SCHEMA_VERSION;
use super::{Failure, JobRecord, Phase, StateError};
use crate::plan::JobKey;

/// The records of every job (`key`: `None`), or of the job `?1`, for a state of schema
/// `version`: a reader may look at a folder an older vidbatch wrote (it never migrates), where
/// the columns added since read as their defaults. Every job's charges are summed in one pass;
/// one job's by a search of `generations_by_job`.
fn select_records(version: i64, one: bool) -> String {
    let unknown_submits = if version >= 5 { "j.unknown_submits" } else { "0" };
    let (charges, from) = if one {
        (
            "(SELECT SUM(g.credits) FROM generations g WHERE g.job_key = j.key),
             (SELECT COALESCE(SUM(g.credits IS NULL), 0) FROM generations g WHERE g.job_key = j.key)",
            "FROM jobs j WHERE j.key = ?1",
        )
    } else {
        (
            "g.credits, COALESCE(g.uncharged, 0)",
            "FROM jobs j
             LEFT JOIN (SELECT job_key, SUM(credits) AS credits, SUM(credits IS NULL) AS uncharged
                        FROM generations GROUP BY job_key) g
                    ON g.job_key = j.key",
        )
    };
    format!(
        "SELECT j.key, j.phase, j.generation_id, j.attempts, j.file, j.bytes, j.sha256, j.error, j.failure,
                j.submitted_at, j.finished_at, {charges}, j.model, j.template, j.input,
                (SELECT c.credits IS NOT NULL FROM generations c WHERE c.generation_id = j.generation_id),
                {unknown_submits}
         {from}"
    )
}

fn schema_version(conn: &Connection) -> Result<i64, StateError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// A row of [`select_records`].
fn record_of(row: &rusqlite::Row<'_>, path: &Path) -> Result<JobRecord, StateError> {
    let phase: String = row.get(1)?;
    let failure: Option<String> = row.get(8)?;
    let key = JobKey(row.get(0)?);
    let corrupt = |what: String| StateError::Corrupt {
        path: path.to_path_buf(),
        key: key.0.clone(),
        what,
    };
    let phase = Phase::parse(&phase).ok_or_else(|| corrupt(format!("unknown phase `{phase}`")))?;
    let failure = match failure {
        None => None,
        Some(f) => Some(Failure::parse(&f).ok_or_else(|| corrupt(format!("unknown failure `{f}`")))?),
    };
    Ok(JobRecord {
        key,
        phase,
        generation_id: row.get(2)?,
        attempts: row.get(3)?,
        file: row.get(4)?,
        bytes: row.get::<_, Option<i64>>(5)?.map(|b| b as u64),
        sha256: row.get(6)?,
        error: row.get(7)?,
        failure,
        submitted_at: row.get(9)?,
        finished_at: row.get(10)?,
        credits: row.get(11)?,
        uncharged: row.get(12)?,
        model: row.get(13)?,
        template: row.get(14)?,
        input: row.get(15)?,
        current_charged: row.get::<_, Option<bool>>(16)?.unwrap_or(false),
        unknown_submits: row.get(17)?,
    })
}

pub(super) fn records(conn: &Connection, path: &Path) -> Result<HashMap<JobKey, JobRecord>, StateError> {
    let mut stmt = conn.prepare(&select_records(schema_version(conn)?, false))?;
    let mut rows = stmt.query([])?;
    let mut out = HashMap::new();
    while let Some(row) = rows.next()? {
        let record = record_of(row, path)?;
        out.insert(record.key.clone(), record);
    }
    Ok(out)
}

/// The query of one job's record in a state of the current schema (the writer migrates it).
pub(super) static SELECT_RECORD: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| select_records(SCHEMA_VERSION, true));

/// One job's record (`None`: never recorded), by `select` (`select_records(_, true)`). The statement is
/// kept by the connection, so a lookup per job costs an index search, not a parse.
pub(super) fn record(
    conn: &Connection,
    path: &Path,
    select: &str,
    key: &JobKey,
) -> Result<Option<JobRecord>, StateError> {
    let mut stmt = conn.prepare_cached(select)?;
    let mut rows = stmt.query([&key.0])?;
    match rows.next()? {
        Some(row) => Ok(Some(record_of(row, path)?)),
        None => Ok(None),
    }
}

pub(super) fn charges_by_model(conn: &Connection) -> Result<HashMap<String, f64>, StateError> {
    let mut stmt = conn.prepare(
        "SELECT j.model, MAX(g.credits) FROM generations g JOIN jobs j ON j.key = g.job_key
         WHERE g.credits IS NOT NULL GROUP BY j.model",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A read-only view of a folder's state, for `status`, `validate --out` and the results refresh:
/// it takes no lock and writes nothing, so it works beside a run.
pub struct StateReader {
    conn: Connection,
    path: PathBuf,
    /// The query of one job's record in this state's schema.
    select_record: String,
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
        Ok(StateReader {
            conn,
            path,
            select_record: select_records(version, true),
        })
    }

    pub fn records(&self) -> Result<HashMap<JobKey, JobRecord>, StateError> {
        records(&self.conn, &self.path)
    }

    /// Runs `read` on one snapshot of the state: commits the run makes meanwhile are not seen,
    /// so records read one job at a time still agree with each other (a read transaction; WAL
    /// lets the writer go on).
    pub fn on_one_snapshot<T>(&self, read: impl FnOnce(&StateReader) -> T) -> Result<T, StateError> {
        self.conn.execute_batch("BEGIN")?;
        let out = read(self);
        self.conn.execute_batch("COMMIT")?;
        Ok(out)
    }

    /// One job's record, read when it is needed: [`crate::results`] writes 10,000 rows without
    /// holding 10,000 records.
    pub fn record(&self, key: &JobKey) -> Result<Option<JobRecord>, StateError> {
        record(&self.conn, &self.path, &self.select_record, key)
    }

    pub fn charges_by_model(&self) -> Result<HashMap<String, f64>, StateError> {
        charges_by_model(&self.conn)
    }

    /// The campaign's name as the last run recorded it; `None` from a state written before
    /// vidbatch kept it.
    pub fn campaign(&self) -> Result<Option<String>, StateError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'campaign'", [], |r| r.get(0))
            .optional()?)
    }
}
