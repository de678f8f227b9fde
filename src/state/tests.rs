//! The state store's tests: an older schema is migrated, a newer one or an unreadable file refused.

use super::schema::SCHEMA_VERSION;
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

#[test]
fn the_campaign_name_is_kept_for_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let state = RunState::open(dir.path(), "e").unwrap();
    assert_eq!(StateReader::open(dir.path()).unwrap().campaign().unwrap(), None);
    state.set_campaign("spring launch").unwrap();
    state.set_campaign("summer launch").unwrap();
    assert_eq!(
        StateReader::open(dir.path()).unwrap().campaign().unwrap().as_deref(),
        Some("summer launch"),
        "the last run's name"
    );
}

#[test]
fn one_job_read_alone_is_the_job_read_with_all_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let charged = "
        INSERT INTO jobs (key, model, input, file, phase, generation_id, attempts)
            VALUES ('fedcba9876543210', 'm', 'j', 'videos/b.mp4', 'completed', 'gen-3', 2);
        INSERT INTO generations VALUES ('gen-2', 'fedcba9876543210', 1, 't', 7.5, 'failed');
        INSERT INTO generations VALUES ('gen-3', 'fedcba9876543210', 2, 't', NULL, NULL);";
    Connection::open(dir.path().join("state.db"))
        .unwrap()
        .execute_batch(&format!("{FIRST_SCHEMA}{charged}"))
        .unwrap();
    let same = |all: &std::collections::HashMap<JobKey, JobRecord>, one: &dyn Fn(&JobKey) -> Option<JobRecord>| {
        assert_eq!(all.len(), 2);
        for (key, record) in all {
            assert_eq!(one(key).as_ref(), Some(record), "{key:?}");
        }
        assert_eq!(one(&JobKey("0000000000000000".into())), None);
    };
    // A folder an older vidbatch wrote, read without migrating it, then the same migrated.
    let reader = StateReader::open(dir.path()).unwrap();
    same(&reader.records().unwrap(), &|k| reader.record(k).unwrap());
    let state = RunState::open(dir.path(), "e").unwrap();
    let all = state.records().unwrap();
    same(&all, &|k| state.record(k).unwrap());
    let two = &all[&JobKey("fedcba9876543210".into())];
    assert_eq!((two.credits, two.uncharged, two.current_charged), (Some(7.5), 1, false));
}
