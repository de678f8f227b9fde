//! `<out>/results.csv` and the end-of-run summary, both read from the run state so that they say
//! the same thing after a clean run, a resumed one or an aborted one.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::plan::{Job, JobKey};
use crate::state::{Failure, JobRecord, Phase};

/// The contract's column order; tools read these by name and position.
pub const COLUMNS: &[&str] = &[
    "job_id",
    "model",
    "template",
    "input",
    "status",
    "generation_id",
    "file",
    "bytes",
    "sha256",
    "credits",
    "attempts",
    "submitted_at",
    "finished_at",
    "error",
    // What tells a job's variant apart besides model, template and input (the report's columns).
    "params",
];

/// A job's status as results report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Completed,
    Failed,
    /// Submitted but the answer was lost: a generation may or may not exist remotely.
    Unknown,
    /// Not finished when the run stopped.
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Pending => "pending",
        }
    }

    pub fn of(record: Option<&JobRecord>) -> Status {
        match record.map(|r| r.phase) {
            Some(Phase::Completed) => Status::Completed,
            // Given up on for this run, but the generation may still finish: a rerun polls it.
            Some(Phase::Failed) if record.and_then(|r| r.failure) == Some(Failure::Unfinished) => Status::Pending,
            Some(Phase::Failed) => Status::Failed,
            Some(Phase::Submitting) => Status::Unknown,
            _ => Status::Pending,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub completed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub pending: usize,
    pub credits: f64,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.completed + self.failed + self.unknown + self.pending
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes the results file atomically (temporary file, then rename) and returns the counts.
pub fn write(out: &Path, jobs: &[Job], records: &HashMap<JobKey, JobRecord>) -> Result<Summary, WriteError> {
    let path = out.join("results.csv");
    let tmp = out.join(".results.csv.tmp");
    let err = |source| WriteError {
        path: path.clone(),
        source,
    };
    let mut summary = Summary::default();
    let mut writer = csv::Writer::from_path(&tmp).map_err(|e| err(e.into()))?;
    writer.write_record(COLUMNS).map_err(|e| err(e.into()))?;
    for job in jobs {
        let record = records.get(&job.key);
        let status = Status::of(record);
        match status {
            Status::Completed => summary.completed += 1,
            Status::Failed => summary.failed += 1,
            Status::Unknown => summary.unknown += 1,
            Status::Pending => summary.pending += 1,
        }
        let credits = record.and_then(|r| r.credits);
        summary.credits += credits.unwrap_or(0.0);
        let get = |f: fn(&JobRecord) -> Option<String>| record.and_then(f).unwrap_or_default();
        let completed = status == Status::Completed;
        let error = match status {
            Status::Unknown => {
                "the submit's answer was lost: a generation may exist (rerun with --resubmit-unknown to submit again)"
                    .into()
            }
            _ => get(|r| r.error.clone()),
        };
        let row = [
            job.key.short().to_string(),
            job.model.clone(),
            job.template.clone().unwrap_or_default(),
            job.input_label.clone(),
            status.as_str().to_string(),
            get(|r| r.generation_id.clone()),
            if completed {
                get(|r| Some(r.file.clone()))
            } else {
                String::new()
            },
            if completed {
                get(|r| r.bytes.map(|b| b.to_string()))
            } else {
                String::new()
            },
            if completed {
                get(|r| r.sha256.clone())
            } else {
                String::new()
            },
            credits.map(format_credits).unwrap_or_default(),
            record.map_or(0, |r| r.attempts).to_string(),
            get(|r| r.submitted_at.clone()),
            get(|r| r.finished_at.clone()),
            error,
            variant_params(job),
        ];
        writer
            .write_record(row.iter().map(|c| neutralise(c).into_owned()))
            .map_err(|e| err(e.into()))?;
    }
    let mut file = writer.into_inner().map_err(|e| err(e.into_error()))?;
    file.flush().map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(summary)
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
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// The value written as `cell` by [`neutralise`].
pub fn original(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// A completed row of an earlier `results.csv`, as far as adopting its video needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRow {
    pub job_id: String,
    pub generation_id: Option<String>,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The completed rows of `<out>/results.csv` (none when it is missing). Rows that cannot be read
/// are skipped: adoption then checks every file against its hash anyway.
pub fn read_finished(out: &Path) -> std::io::Result<Vec<FinishedRow>> {
    let path = out.join("results.csv");
    let mut reader = match csv::Reader::from_path(&path) {
        Ok(r) => r,
        Err(e) => match e.into_kind() {
            csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            csv::ErrorKind::Io(io) => return Err(io),
            other => return Err(std::io::Error::other(format!("{other:?}"))),
        },
    };
    let headers = reader.headers().map_err(std::io::Error::other)?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(id), Some(status), Some(generation), Some(file), Some(bytes), Some(sha)) = (
        column("job_id"),
        column("status"),
        column("generation_id"),
        column("file"),
        column("bytes"),
        column("sha256"),
    ) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for record in reader.records().flatten() {
        let get = |i: usize| original(record.get(i).unwrap_or_default()).to_string();
        if get(status) != "completed" {
            continue;
        }
        let Ok(size) = get(bytes).parse() else { continue };
        rows.push(FinishedRow {
            job_id: get(id),
            generation_id: Some(get(generation)).filter(|g| !g.is_empty()),
            file: get(file),
            bytes: size,
            sha256: get(sha),
        });
    }
    Ok(rows)
}

fn format_credits(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
