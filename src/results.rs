//! The results of a run, read from the run state so that they say the same thing after a clean
//! run, a resumed one or an aborted one: `<out>/results.csv` (in the manifest's dialect),
//! `<out>/results.jsonl` for programs, `<out>/results.xlsx` for a workbook manifest, and the
//! counts the summary gives. Each row carries what joins it back to the manifest: its label, its
//! prompt, the manifest's own `#` columns and its key (`custom_id`).
//!
//! - `row`: the one schema of a row, shared by the writer, `--adopt` and the report.
//! - `files`: the three files, each written whole and renamed into place.
//! - [`jsonl`], `xlsx`: a row as a JSON line, as a worksheet row.

use std::borrow::Cow;
use std::path::Path;

use crate::plan::{Alias, Job, Plan};
use crate::state::{Failure, JobRecord, Phase, Records, StateError};

mod files;
pub mod jsonl;
mod row;
mod xlsx;

pub use files::{BOM, CSV, JSONL, WriteError, XLSX};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot read the results from the run state")]
    State(#[from] StateError),
}
pub use row::{COLUMNS, ReadError, ResultRow, Status, parse as parse_rows, read as read_rows};

impl Status {
    /// Where a job stands by its record.
    pub fn of(record: Option<&JobRecord>) -> Status {
        match record.map(|r| (r.phase, r.failure)) {
            Some((Phase::Completed, _)) => Status::Completed,
            // Given up on for this run, but the generation may still finish: a rerun polls it.
            Some((Phase::Failed, Some(Failure::Unfinished))) => Status::Pending,
            // Paid for and done remotely; only the video is missing: a rerun fetches it.
            Some((Phase::Failed, Some(Failure::Download)) | (Phase::Downloading, _)) => Status::AwaitingDownload,
            Some((Phase::Failed, _)) => Status::Failed,
            Some((Phase::Submitting, _)) => Status::Unknown,
            _ => Status::Pending,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub completed: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Paid for, video not saved yet: a rerun fetches it for free.
    pub awaiting_download: usize,
    pub pending: usize,
    pub credits: f64,
    /// Other names of an input whose copy of the shared video failed: (job id, input, why).
    pub alias_failures: Vec<(String, String, String)>,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.completed + self.failed + self.unknown + self.awaiting_download + self.pending
    }
}

/// Writes the results atomically (each file through a temporary one, then renamed) and returns
/// the counts: `results.csv`, `results.jsonl` and, for a workbook manifest, `results.xlsx`; one
/// row per job, then one per alias of it (another name of the same content). An alias's copy of
/// its job's video is made here, as soon as the job is completed: this runs during the run, at
/// its end and on every rerun, so a copy that went missing is made again. Each job's record is
/// looked up as its row is written: the state's rows are never all held at once.
pub fn write(out: &Path, plan: &Plan, records: &impl Records) -> Result<Summary, ResultsError> {
    write_as(out, plan, records, plan.dialect.workbook, None, |_, _, _| {})
}

/// [`write`] at the end of a run: the rows in the manifest's order when the run took its jobs in
/// another (`run_order[p]` is the manifest's place of `plan.jobs[p]`), and each job handed to
/// `each` with its manifest place and record as its row is written, so that the run's summary
/// does not read every record again.
pub fn write_each(
    out: &Path,
    plan: &Plan,
    records: &impl Records,
    run_order: Option<&[usize]>,
    each: impl FnMut(usize, &Job, Option<&JobRecord>),
) -> Result<Summary, ResultsError> {
    write_as(out, plan, records, plan.dialect.workbook, run_order, each)
}

/// [`write`] while the run goes on: the workbook is left for the end, as it is rebuilt whole in
/// memory (a quarter of a second at 10,000 rows, time the run's loop would wait) and people
/// open it after the run.
pub fn refresh(out: &Path, plan: &Plan, records: &impl Records) -> Result<Summary, ResultsError> {
    write_as(out, plan, records, false, None, |_, _, _| {})
}

fn write_as(
    out: &Path,
    plan: &Plan,
    records: &impl Records,
    workbook: bool,
    run_order: Option<&[usize]>,
    mut each: impl FnMut(usize, &Job, Option<&JobRecord>),
) -> Result<Summary, ResultsError> {
    let mut files = files::Files::create(out, plan, workbook)?;
    let mut summary = Summary::default();
    // Where the manifest's m-th job is in the plan.
    let at: Option<Vec<usize>> = run_order.map(|order| {
        let mut at = vec![0; order.len()];
        for (p, &m) in order.iter().enumerate() {
            at[m] = p;
        }
        at
    });
    for m in 0..plan.jobs.len() {
        let job = &plan.jobs[at.as_ref().map_or(m, |at| at[m])];
        let record = records.record(&job.key)?;
        let record = record.as_deref();
        each(m, job, record);
        let row = job_row(job, record, &plan.columns);
        let status_of_job = row.status;
        // Paid once: the credits are on the job's row only, so that summing the column is right.
        summary.credits += row.credits.unwrap_or(0.0);
        let aliases: Vec<ResultRow> = job
            .aliases
            .iter()
            .map(|alias| {
                let copied = match (row.status, record) {
                    (Status::Completed, Some(r)) => {
                        Some(copy_for_alias(out, &r.file, r.sha256.as_deref(), &alias.file))
                    }
                    _ => None,
                };
                alias_row(&row, alias, copied, &plan.columns)
            })
            .collect();
        for (i, row) in std::iter::once(row).chain(aliases).enumerate() {
            if i > 0 && row.status == Status::Failed && status_of_job != Status::Failed {
                summary
                    .alias_failures
                    .push((row.job_id.clone(), row.input.clone(), row.error.clone()));
            }
            // Counted by name: whoever wrote two names expects two results.
            match row.status {
                Status::Completed => summary.completed += 1,
                Status::Failed => summary.failed += 1,
                Status::Unknown => summary.unknown += 1,
                Status::AwaitingDownload => summary.awaiting_download += 1,
                Status::Pending => summary.pending += 1,
            }
            files.push(&row)?;
        }
    }
    files.finish()?;
    Ok(summary)
}

/// Makes `<out>/<alias_file>` a copy of `<out>/<video>` (whose SHA-256 is `sha256`): a hard
/// link (no space taken), else a copy through a temporary file. A file already there is the copy
/// an earlier write made when it is the same file (a link), or of the same size and newer than
/// the video, or of the same content; anything else is not ours to overwrite.
fn copy_for_alias(out: &Path, video: &str, sha256: Option<&str>, alias_file: &str) -> Result<(), String> {
    let (from, to) = (out.join(video), out.join(alias_file));
    let source = std::fs::metadata(&from)
        .map_err(|e| format!("the shared video `{video}` cannot be read ({e}): a rerun fetches it and copies it"))?;
    if let Ok(there) = std::fs::metadata(&to) {
        // A copy made after the video was written is ours: results are written every few seconds,
        // and hashing each copy each time would read every video again and again.
        let newer = matches!((there.modified(), source.modified()), (Ok(a), Ok(b)) if a >= b);
        let same_size = there.len() == source.len();
        if same_file(&source, &there)
            || (same_size && newer)
            || (same_size && crate::download::hash_file(&to).is_ok_and(|d| Some(d.sha256.as_str()) == sha256))
        {
            return Ok(());
        }
        return Err(format!(
            "`{alias_file}` already holds another file; it was not overwritten (move it away and rerun)"
        ));
    }
    let cannot = |e: std::io::Error| format!("cannot copy `{video}` to `{alias_file}`: {e}");
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(cannot)?;
    }
    if std::fs::hard_link(&from, &to).is_ok() {
        return Ok(());
    }
    // Another file system, or one without links: a whole copy, renamed into place.
    let part = to.with_extension("part");
    std::fs::copy(&from, &part).map_err(cannot)?;
    std::fs::rename(&part, &to).map_err(cannot)
}

/// Whether two paths are one file (a hard link): checked without reading the video again.
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// The user's own columns of a row: every column of the manifest's, in its order, empty where
/// the row's entry left it empty, so that every row has every column.
fn own_cells(columns: &[String], own: &[(String, String)]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|name| {
            let value = own.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            (name.clone(), value.unwrap_or_default())
        })
        .collect()
}

/// A job's own row, from its record.
fn job_row(job: &Job, record: Option<&JobRecord>, columns: &[String]) -> ResultRow {
    let status = Status::of(record);
    let get = |f: fn(&JobRecord) -> Option<String>| record.and_then(f).unwrap_or_default();
    let completed = status == Status::Completed;
    let error = match status {
        Status::Unknown => {
            "the submit's answer was lost: a generation may exist (rerun with --resubmit-unknown to submit again)"
                .into()
        }
        Status::AwaitingDownload => {
            let why = get(|r| r.error.clone());
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            };
            format!("generated and paid for; the video is not saved yet{why}: a rerun fetches it at no cost")
        }
        _ => get(|r| r.error.clone()),
    };
    ResultRow {
        job_id: job.key.short().to_string(),
        model: job.model.clone(),
        template: job.template.clone().unwrap_or_default(),
        input: job.input_label.clone(),
        status,
        generation_id: get(|r| r.generation_id.clone()),
        file: if completed {
            get(|r| Some(r.file.clone()))
        } else {
            String::new()
        },
        bytes: record.and_then(|r| r.bytes).filter(|_| completed),
        sha256: if completed {
            get(|r| r.sha256.clone())
        } else {
            String::new()
        },
        credits: record.and_then(|r| r.credits),
        attempts: Some(record.map_or(0, |r| r.attempts)),
        submitted_at: get(|r| r.submitted_at.clone()),
        finished_at: get(|r| r.finished_at.clone()),
        error,
        label: job.user_label.clone().unwrap_or_default(),
        params: variant_params(job),
        prompt: job.prompt().unwrap_or_default().to_string(),
        custom_id: job.custom_id.clone(),
        columns: own_cells(columns, &job.own),
    }
}

/// The row of an alias: its job's generation under the alias's name and file. `copied` is how
/// making its copy went, once the job has a video: a copy that failed fails the row. Credits and
/// attempts stay blank: they were paid and made once, on the job's row.
fn alias_row(job_row: &ResultRow, alias: &Alias, copied: Option<Result<(), String>>, columns: &[String]) -> ResultRow {
    let mut row = ResultRow {
        input: alias.input_label.clone(),
        label: alias.user_label.clone().unwrap_or_default(),
        custom_id: alias.custom_id.clone(),
        columns: own_cells(columns, &alias.own),
        credits: None,
        attempts: None,
        ..job_row.clone()
    };
    match copied {
        Some(Ok(())) => row.file = alias.file.clone(),
        Some(Err(why)) => {
            row.status = Status::Failed;
            row.file = String::new();
            row.bytes = None;
            row.sha256 = String::new();
            row.error = why;
        }
        None => {}
    }
    row
}

/// The parameters a job sends besides its model, input and template, as a JSON object (empty when
/// none); the prompt is left out when it is the job's input (text-to-video).
fn variant_params(job: &Job) -> String {
    let mut params = job.params().clone();
    params.remove("template");
    if params.get("prompt").and_then(|p| p.as_str()) == Some(job.input_label.as_str()) {
        params.remove("prompt");
    }
    if params.is_empty() {
        return String::new();
    }
    serde_json::Value::Object(params).to_string()
}

/// A cell a spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`, or a leading tab or
/// carriage return, OWASP's list) gets a leading `'`: shown as text, never run. A cell that already
/// starts with `'` gets one more, so [`original`] always gives the value back.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The value written as `cell` by [`neutralise`].
pub fn original(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::plan::JobKey;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised_and_can_be_read_back() {
        for (given, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(1)", "'@SUM(1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "''quoted"),
            ("SALE -30%", "SALE -30%"),
            ("", ""),
            ("1.5", "1.5"),
        ] {
            assert_eq!(neutralise(given), written, "{given:?}");
            assert_eq!(original(&neutralise(given)), given, "{given:?}");
        }
    }

    #[test]
    fn rows_are_read_past_the_mark_with_their_cells_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{BOM}{}\n\
             0123456789ab,m,,a.jpg,completed,g1,videos/a.mp4,10,ff,2,1,,,,Café 🎉\n\
             0123456789ab,m,,b.jpg,completed,g1,videos/b.mp4,10,ff,,,,,,\n\
             '-23456789abc,m,,c.jpg,completed,,videos/c.mp4,11,ee,,,,,,\n\
             3456789abcde,m,,d.jpg,failed,,,,,,,,,x,\n",
            COLUMNS.join(",")
        );
        std::fs::write(dir.path().join("results.csv"), text).unwrap();
        let rows = read_rows(dir.path()).unwrap().unwrap();
        let got: Vec<(&str, &str, Status)> = rows
            .iter()
            .map(|r| (r.job_id.as_str(), r.file.as_str(), r.status))
            .collect();
        assert_eq!(
            got,
            [
                ("0123456789ab", "videos/a.mp4", Status::Completed),
                ("0123456789ab", "videos/b.mp4", Status::Completed),
                ("-23456789abc", "videos/c.mp4", Status::Completed),
                ("3456789abcde", "", Status::Failed),
            ]
        );
        assert_eq!(rows[0].label, "Café 🎉");
        assert_eq!(rows[0].credits, Some(2.0));
        assert!(read_rows(&dir.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn a_results_file_that_cannot_be_put_in_place_leaves_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file goes: the rename fails after the whole file was written.
        std::fs::create_dir(dir.path().join("results.csv")).unwrap();
        let plan = Plan {
            dialect: crate::manifest::Dialect {
                workbook: true,
                ..Default::default()
            },
            ..Plan::default()
        };
        assert!(write(dir.path(), &plan, &HashMap::<JobKey, JobRecord>::new()).is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["results.csv"], "no temporary file stays");
    }

    #[test]
    fn rows_taken_in_another_order_are_written_in_the_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            "jobs:\n  - model: magic/text-to-video\n    prompts: [one, two, three]\n",
        )
        .unwrap();
        let mut plan = crate::plan::plan(&crate::manifest::load(&path).unwrap()).unwrap();
        let in_manifest: Vec<String> = plan.jobs.iter().map(|j| j.key.short().to_string()).collect();
        // The run took the third first: plan.jobs[p] is the manifest's order[p]-th.
        let order = [2, 0, 1];
        crate::selection::reorder(&mut plan.jobs, &order);
        let mut seen = Vec::new();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        write_each(
            &out,
            &plan,
            &HashMap::<JobKey, JobRecord>::new(),
            Some(&order),
            |m, job, _| seen.push((m, job.key.short().to_string())),
        )
        .unwrap();
        let expected: Vec<(usize, String)> = in_manifest.iter().cloned().enumerate().collect();
        assert_eq!(seen, expected);
        let written: Vec<String> = read_rows(&out)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|r| r.job_id)
            .collect();
        assert_eq!(written, in_manifest);
    }

    #[test]
    fn ids_never_read_as_numbers() {
        for (key, short) in [
            ("325635679e10aaaa", "325635679e10a"),
            ("3256356790109999f", "3256356790109999f"),
            ("000123456789e", "000123456789e"),
            ("0123456789abcdef", "0123456789ab"),
            ("e12345678901", "e12345678901"),
            ("12345678901e", "12345678901e"),
        ] {
            assert_eq!(JobKey(key.into()).short(), short, "{key}");
        }
    }

    #[test]
    fn an_aliases_copy_is_made_once_and_never_over_someone_elses_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir_all(out.join("videos")).unwrap();
        std::fs::write(out.join("videos/a.mp4"), b"video").unwrap();
        let sha = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(b"video"));
        let copy = |to: &str| copy_for_alias(out, "videos/a.mp4", Some(&sha), to);

        assert_eq!(copy("videos/sub/b.mp4"), Ok(()));
        assert_eq!(std::fs::read(out.join("videos/sub/b.mp4")).unwrap(), b"video");
        assert_eq!(copy("videos/sub/b.mp4"), Ok(()), "made again, it is already there");

        std::fs::write(out.join("videos/c.mp4"), b"someone else's").unwrap();
        let refused = copy("videos/c.mp4").unwrap_err();
        assert!(refused.contains("already holds another file"), "{refused}");
        assert_eq!(std::fs::read(out.join("videos/c.mp4")).unwrap(), b"someone else's");

        let missing = copy_for_alias(out, "videos/gone.mp4", None, "videos/d.mp4").unwrap_err();
        assert!(missing.contains("a rerun fetches it"), "{missing}");
        assert!(!out.join("videos/d.mp4").exists());
    }
}
