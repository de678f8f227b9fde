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
        writer
            .write_record([
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
            ])
            .map_err(|e| err(e.into()))?;
    }
    let mut file = writer.into_inner().map_err(|e| err(e.into_error()))?;
    file.flush().map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(summary)
}

fn format_credits(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{c:.0}")
    } else {
        c.to_string()
    }
}
