//! Reading the state: the queries the writer and the reader share, and `StateReader`, the
//! read-only view that works beside a run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _};

use super::schema::SCHEMA_VERSION;
use super::{Failure, JobRecord, Phase, StateError};
use crate::plan::JobKey;

pub(super) fn records(conn: &Connection, path: &Path) -> Result<HashMap<JobKey, JobRecord>, StateError> {
    // A reader may look at a folder an older vidbatch wrote (it never migrates): the columns
    // added since are read as their defaults there.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let unknown_submits = if version >= 5 { "j.unknown_submits" } else { "0" };
    let mut stmt = conn.prepare(&format!(
        "SELECT j.key, j.phase, j.generation_id, j.attempts, j.file, j.bytes, j.sha256, j.error, j.failure,
                j.submitted_at, j.finished_at, g.credits, COALESCE(g.uncharged, 0), j.model, j.template, j.input,
                (SELECT c.credits IS NOT NULL FROM generations c WHERE c.generation_id = j.generation_id),
                {unknown_submits}
         FROM jobs j
         LEFT JOIN (SELECT job_key, SUM(credits) AS credits, SUM(credits IS NULL) AS uncharged
                    FROM generations GROUP BY job_key) g
                ON g.job_key = j.key"
    ))?;
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
                unknown_submits: r.get(17)?,
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

    /// The campaign's name as the last run recorded it; `None` from a state written before
    /// vidbatch kept it.
    pub fn campaign(&self) -> Result<Option<String>, StateError> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'campaign'", [], |r| r.get(0))
            .optional()?)
    }
}
