//! The schema of `state.db`: its migrations, one per version, and bringing an older file up to date.

use std::path::Path;

use super::{RunState, StateError, exec};

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
    // 5: earlier submits of a job whose outcome stayed unknown when `--resubmit-unknown` sent it
    // again: each may have created a paid generation, so each keeps counting against
    // `--max-credits` after the job's own phase has moved on.
    "ALTER TABLE jobs ADD COLUMN unknown_submits INTEGER NOT NULL DEFAULT 0;",
];

pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl RunState {
    /// Brings the schema up to date, one step per transaction.
    pub(super) fn migrate(&mut self) -> Result<(), StateError> {
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
}
