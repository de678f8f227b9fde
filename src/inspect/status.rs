//! `vidbatch status OUT…`: each folder's jobs by status, its credits, the generations still
//! running remotely and the failures, from its state alone; and the exit code a run into it
//! ended with, so that a script can check a folder as it checks a run.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Credits, Problem, SCHEMA_VERSION};
use crate::exit_code::{self, RunOutcome};
use crate::results::Status;
use crate::sinks::thousands;
use crate::state::{JobRecord, Phase, StateError, StateReader};

/// Where a job stands for `status`: the statuses of `results.csv`, with `pending` split into
/// still running remotely and waiting for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Completed,
    Failed,
    Unknown,
    Running,
    Pending,
    AwaitingDownload,
}

impl JobStatus {
    pub fn of(record: &JobRecord) -> JobStatus {
        match Status::of(Some(record)) {
            Status::Completed => JobStatus::Completed,
            Status::Failed => JobStatus::Failed,
            Status::Unknown => JobStatus::Unknown,
            Status::Pending if record.phase == Phase::Generating => JobStatus::Running,
            Status::Pending => JobStatus::Pending,
            Status::AwaitingDownload => JobStatus::AwaitingDownload,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Unknown => "unknown",
            JobStatus::Running => "running",
            JobStatus::Pending => "pending",
            JobStatus::AwaitingDownload => "awaiting_download",
        }
    }
}

/// Jobs by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub running: usize,
    pub pending: usize,
    pub awaiting_download: usize,
}

impl Counts {
    fn add(&mut self, status: JobStatus) {
        self.jobs += 1;
        *match status {
            JobStatus::Completed => &mut self.completed,
            JobStatus::Failed => &mut self.failed,
            JobStatus::Unknown => &mut self.unknown,
            JobStatus::Running => &mut self.running,
            JobStatus::Pending => &mut self.pending,
            JobStatus::AwaitingDownload => &mut self.awaiting_download,
        } += 1;
    }

    fn plus(self, other: Counts) -> Counts {
        Counts {
            jobs: self.jobs + other.jobs,
            completed: self.completed + other.completed,
            failed: self.failed + other.failed,
            unknown: self.unknown + other.unknown,
            running: self.running + other.running,
            pending: self.pending + other.pending,
            awaiting_download: self.awaiting_download + other.awaiting_download,
        }
    }

    /// `3 completed, 1 failed, …`; videos paid for and not saved yet are said only when there
    /// are some.
    fn text(&self) -> String {
        let mut text = format!(
            "{} completed, {} failed, {} unknown, {} running, {} pending",
            self.completed, self.failed, self.unknown, self.running, self.pending
        );
        if self.awaiting_download > 0 {
            text.push_str(&format!(
                ", {} paid and awaiting download (a rerun fetches {} free)",
                self.awaiting_download,
                if self.awaiting_download == 1 { "it" } else { "them" }
            ));
        }
        text
    }
}

/// One job of a folder, as `status --jobs` lists it (a row of `jobs` in `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job_id: String,
    pub status: JobStatus,
    pub model: String,
    pub template: Option<String>,
    pub input: String,
    pub file: String,
    pub generation_id: Option<String>,
    pub attempts: u32,
    pub credits: Option<Credits>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub submitted_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// What one folder holds.
#[derive(Debug, Clone)]
pub struct FolderStatus {
    pub folder: PathBuf,
    /// A run holds the folder now.
    pub run_going: bool,
    pub counts: Counts,
    pub credits: f64,
    /// Every job recorded, in file order.
    pub jobs: Vec<JobRow>,
}

impl FolderStatus {
    pub fn read(dir: &Path) -> Result<FolderStatus, StateError> {
        let records = StateReader::open(dir)?.records()?;
        let mut counts = Counts::default();
        let mut credits = 0.0;
        let mut jobs: Vec<JobRow> = records
            .into_values()
            .map(|r| {
                let status = JobStatus::of(&r);
                counts.add(status);
                credits += r.credits.unwrap_or(0.0);
                JobRow {
                    job_id: r.key.short().to_string(),
                    status,
                    model: r.model,
                    template: r.template,
                    input: r.input,
                    file: r.file,
                    generation_id: r.generation_id,
                    attempts: r.attempts,
                    credits: r.credits.map(Credits),
                    bytes: r.bytes,
                    sha256: r.sha256,
                    submitted_at: r.submitted_at,
                    finished_at: r.finished_at,
                    error: r.error,
                }
            })
            .collect();
        jobs.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(FolderStatus {
            folder: dir.to_path_buf(),
            run_going: crate::inspect::folder_in_use(dir),
            counts,
            credits,
            jobs,
        })
    }

    /// The code a run into the folder ended with, as its rows tell it: 0 when every job is
    /// completed, 1 when some are not; 4 while a run holds the folder (its outcome is not
    /// decided yet). The rows cannot tell a stopped run (3) from an incomplete one: both are 1.
    pub fn exit_code(&self) -> i32 {
        match self.run_going {
            true => exit_code::BUSY,
            false => RunOutcome::of(None, self.counts.completed, self.counts.jobs).exit_code(),
        }
    }
}

/// The code of a folder whose state cannot be read, as `run` would end on it.
pub fn unreadable_code(e: &StateError) -> i32 {
    exit_code::of_state_error(e)
}

/// `status`'s exit code over several folders: the highest of theirs (codes grow with trouble:
/// 0 all completed, 1 some not, 2 not a run's folder, 3 unreadable, 4 a run going).
pub fn exit_code(folders: &[(PathBuf, Result<FolderStatus, StateError>)]) -> i32 {
    folders
        .iter()
        .map(|(_, f)| match f {
            Ok(f) => f.exit_code(),
            Err(e) => unreadable_code(e),
        })
        .max()
        .unwrap_or(exit_code::OK)
}

/// The counts and credits of every folder that could be read, together.
fn totals(folders: &[(PathBuf, Result<FolderStatus, StateError>)]) -> (Counts, f64) {
    folders
        .iter()
        .filter_map(|(_, folder)| folder.as_ref().ok())
        .fold((Counts::default(), 0.0), |(counts, credits), f| {
            (counts.plus(f.counts), credits + f.credits)
        })
}

/// How many failures and running generations are listed per folder without `--jobs`.
const LISTED: usize = 20;

/// The text of `vidbatch status`; `all_jobs` lists every job. A folder that cannot be read is
/// said among the others.
pub fn write_text(
    out: &mut impl Write,
    folders: &[(PathBuf, Result<FolderStatus, StateError>)],
    all_jobs: bool,
) -> std::io::Result<()> {
    for (dir, folder) in folders {
        let f = match folder {
            Ok(f) => f,
            Err(e) => {
                writeln!(out, "{}: {}", dir.display(), crate::api::error_chain(e))?;
                continue;
            }
        };
        let busy = if f.run_going {
            "a run is going"
        } else {
            "no run is going"
        };
        writeln!(out, "{} ({busy}):", dir.display())?;
        writeln!(out, "  {}; {} credits recorded", f.counts.text(), thousands(f.credits))?;
        if all_jobs {
            for j in &f.jobs {
                let error = j.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                writeln!(out, "    {:<13} {:<17} {}{error}", j.job_id, j.status.as_str(), j.file)?;
            }
        } else {
            let generation = |j: &JobRow| format!(" generation {}", j.generation_id.as_deref().unwrap_or("-"));
            let reason = |j: &JobRow| format!(": {}", j.error.as_deref().unwrap_or("no reason recorded"));
            listed(
                out,
                &f.jobs,
                JobStatus::Running,
                "still running remotely",
                generation,
                false,
            )?;
            listed(out, &f.jobs, JobStatus::Failed, "failed", reason, true)?;
        }
    }
    if folders.len() > 1 {
        let (totals, credits) = totals(folders);
        writeln!(
            out,
            "all {} folders: {}; {} credits recorded",
            folders.len(),
            totals.text(),
            thousands(credits)
        )?;
    }
    out.flush()
}

/// The jobs of `status` under `title`, at most [`LISTED`] of them, each as its id and its file
/// followed by `detail`; with `more`, how many were left out.
fn listed(
    out: &mut impl Write,
    jobs: &[JobRow],
    status: JobStatus,
    title: &str,
    detail: impl Fn(&JobRow) -> String,
    more: bool,
) -> std::io::Result<()> {
    let rows: Vec<&JobRow> = jobs.iter().filter(|j| j.status == status).collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "  {title} ({}):", rows.len())?;
    for j in rows.iter().take(LISTED) {
        writeln!(
            out,
            "    {} {}{}",
            j.job_id,
            crate::plan::file_label(&j.file),
            detail(j)
        )?;
    }
    if more && rows.len() > LISTED {
        writeln!(out, "    … and {} more (`--jobs` lists every job)", rows.len() - LISTED)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    command: &'static str,
    exit_code: i32,
    totals: Counts,
    credits: Credits,
    folders: Vec<FolderDocument<'a>>,
}

#[derive(Serialize)]
struct FolderDocument<'a> {
    folder: String,
    exit_code: i32,
    /// Why the folder could not be read; `null` for one that was.
    error: Option<Problem>,
    run_going: Option<bool>,
    counts: Option<Counts>,
    credits: Option<Credits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<&'a [JobRow]>,
}

/// The JSON document of `vidbatch status --json`; `all_jobs` adds each folder's `jobs`.
pub fn write_json(
    out: &mut impl Write,
    folders: &[(PathBuf, Result<FolderStatus, StateError>)],
    all_jobs: bool,
) -> std::io::Result<()> {
    let (totals, credits) = totals(folders);
    let entries = folders
        .iter()
        .map(|(dir, folder)| match folder {
            Ok(f) => FolderDocument {
                folder: dir.display().to_string(),
                exit_code: f.exit_code(),
                error: None,
                run_going: Some(f.run_going),
                counts: Some(f.counts),
                credits: Some(Credits(f.credits)),
                jobs: all_jobs.then_some(f.jobs.as_slice()),
            },
            Err(e) => FolderDocument {
                folder: dir.display().to_string(),
                exit_code: unreadable_code(e),
                error: Some(Problem::of_message(crate::api::error_chain(e), None)),
                run_going: None,
                counts: None,
                credits: None,
                jobs: None,
            },
        })
        .collect();
    let document = Document {
        schema_version: SCHEMA_VERSION,
        command: "status",
        exit_code: exit_code(folders),
        totals,
        credits: Credits(credits),
        folders: entries,
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(counts: Counts, run_going: bool) -> FolderStatus {
        FolderStatus {
            folder: "out".into(),
            run_going,
            counts,
            credits: 2_100_000.0,
            jobs: Vec::new(),
        }
    }

    #[test]
    fn a_folder_ends_with_the_code_of_its_run() {
        let done = Counts {
            jobs: 2,
            completed: 2,
            ..Counts::default()
        };
        let failed = Counts {
            jobs: 2,
            completed: 1,
            failed: 1,
            ..Counts::default()
        };
        assert_eq!(folder(done, false).exit_code(), exit_code::OK);
        assert_eq!(folder(failed, false).exit_code(), exit_code::JOBS_INCOMPLETE);
        assert_eq!(folder(done, true).exit_code(), exit_code::BUSY);
        let missing = StateError::Missing { path: "gone".into() };
        let several = [
            (PathBuf::from("a"), Ok(folder(done, false))),
            (PathBuf::from("b"), Ok(folder(failed, false))),
        ];
        assert_eq!(exit_code(&several), exit_code::JOBS_INCOMPLETE);
        let with_missing = [
            (PathBuf::from("a"), Ok(folder(failed, false))),
            (PathBuf::from("gone"), Err(missing)),
        ];
        assert_eq!(exit_code(&with_missing), exit_code::INVALID);
    }

    #[test]
    fn the_json_document_has_whole_credits_and_codes() {
        let failed = Counts {
            jobs: 2,
            completed: 1,
            failed: 1,
            ..Counts::default()
        };
        let folders = [(PathBuf::from("out"), Ok(folder(failed, false)))];
        let mut text = Vec::new();
        write_json(&mut text, &folders, false).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["credits"], serde_json::json!(2_100_000));
        assert_eq!(doc["totals"]["failed"], 1);
        assert_eq!(doc["folders"][0]["counts"]["completed"], 1);
        assert!(doc["folders"][0].get("jobs").is_none(), "jobs only when asked");
    }
}
