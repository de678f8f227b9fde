//! `vidbatch verify OUT…`: every completed video of an output folder read again and compared
//! with the size and SHA-256 recorded when it was saved. The records come from the folder's
//! `state.db` (the run's memory) and its `results.csv` (which also lists the copies made for an
//! input's other names); no manifest, no network, no lock: it works beside a run and on a folder
//! copied elsewhere with its `results.csv`.
//!
//! Big folders (thousands of videos of tens of MB) are read by a few threads at once, each video
//! streamed through the hash, never held in memory; a size that differs is found without reading.

use std::collections::HashSet;
use std::io::{Read as _, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::results::{ReadError, Status};
use crate::sinks::thousands;
use crate::state::{Phase, StateError, StateReader};
use crate::wording::count;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("`{}` holds no record of a run (no `state.db`, no `results.csv`)", folder.display())]
    NothingRecorded { folder: PathBuf },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Results(#[from] ReadError),
}

/// A video as it was recorded when it was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub job_id: String,
    /// Relative to the output folder (`videos/…`).
    pub file: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

/// What was found of one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The size and SHA-256 are the ones recorded.
    Ok,
    Missing,
    /// Another size, or the same size and another SHA-256.
    Changed,
    /// It is there but cannot be read (permissions, an I/O error), or its recorded path leaves
    /// the folder.
    Unreadable,
    /// It is there with the recorded size, but no SHA-256 was recorded to compare with (a
    /// `results.csv` whose `sha256` cells were emptied).
    Unhashed,
}

impl Finding {
    /// Whether the video is not as it was saved: `verify` then exits 1.
    pub fn is_problem(self) -> bool {
        matches!(self, Finding::Missing | Finding::Changed | Finding::Unreadable)
    }

    fn as_str(self) -> &'static str {
        match self {
            Finding::Ok => "ok",
            Finding::Missing => "missing",
            Finding::Changed => "changed",
            Finding::Unreadable => "unreadable",
            Finding::Unhashed => "unhashed",
        }
    }
}

/// One video checked. Serialized as a row of `files` in `verify --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub job_id: String,
    pub file: String,
    pub status: Finding,
    pub recorded_bytes: Option<u64>,
    pub found_bytes: Option<u64>,
    pub recorded_sha256: Option<String>,
    /// Only when the file was read whole (its size matched).
    pub found_sha256: Option<String>,
    /// What went wrong, in words; `null` for `ok`.
    pub error: Option<String>,
}

/// Where the records of a folder came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "state.db")]
    State,
    #[serde(rename = "results.csv")]
    Results,
    #[serde(rename = "state.db+results.csv")]
    Both,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::State => "state.db",
            Source::Results => "results.csv",
            Source::Both => "state.db and results.csv",
        }
    }
}

/// One folder's videos, checked. Serialized as an entry of `folders` in `verify --json`.
#[derive(Debug, Clone, Serialize)]
pub struct FolderReport {
    /// Said by the document that holds the report.
    #[serde(skip)]
    pub folder: PathBuf,
    pub source: Source,
    pub videos: usize,
    pub ok: usize,
    pub missing: usize,
    pub changed: usize,
    pub unreadable: usize,
    pub unhashed: usize,
    /// Bytes read to hash them.
    pub bytes_read: u64,
    pub seconds: f64,
    /// Every video, in file order.
    pub files: Vec<Checked>,
}

impl FolderReport {
    pub fn problems(&self) -> usize {
        self.missing + self.changed + self.unreadable
    }
}

/// The completed videos a folder's records name, each file once: the state's records first (the
/// run's own memory), then the rows of `results.csv` for files the state does not name (the
/// copies of an input's other names, or a folder whose `state.db` was not kept).
pub fn recorded(folder: &Path) -> Result<(Vec<Recorded>, Source), VerifyError> {
    let mut videos = Vec::new();
    let from_state = match StateReader::open(folder) {
        Ok(reader) => {
            for r in reader.records()?.into_values().filter(|r| r.phase == Phase::Completed) {
                videos.push(Recorded {
                    job_id: r.key.short().to_string(),
                    file: r.file,
                    bytes: r.bytes,
                    sha256: r.sha256,
                });
            }
            true
        }
        Err(StateError::Missing { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    let rows = crate::results::read_rows(folder)?;
    let from_results = rows.is_some();
    let named: HashSet<String> = videos.iter().map(|v| v.file.clone()).collect();
    for row in rows.into_iter().flatten() {
        if row.status == Status::Completed && !row.file.is_empty() && !named.contains(&row.file) {
            videos.push(Recorded {
                job_id: row.job_id,
                file: row.file,
                bytes: row.bytes,
                sha256: Some(row.sha256).filter(|s| !s.is_empty()),
            });
        }
    }
    let source = match (from_state, from_results) {
        (true, true) => Source::Both,
        (true, false) => Source::State,
        (false, true) => Source::Results,
        (false, false) => {
            return Err(VerifyError::NothingRecorded {
                folder: folder.to_path_buf(),
            });
        }
    };
    videos.sort_by(|a, b| a.file.cmp(&b.file));
    videos.dedup_by(|a, b| a.file == b.file);
    Ok((videos, source))
}

/// Checks `videos` of `folder` with `threads` readers at once; `read` is told of every chunk
/// read (for a progress bar). The findings come back in the order of `videos`.
pub fn check(folder: &Path, videos: &[Recorded], threads: usize, read: &(dyn Fn(u64) + Sync)) -> Vec<Checked> {
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<Option<Checked>>> = Mutex::new(vec![None; videos.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, videos.len().max(1)) {
            scope.spawn(|| {
                // One buffer per reader: large reads keep a disk streaming.
                let mut buffer = vec![0u8; 1 << 20];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(video) = videos.get(i) else { break };
                    let checked = check_one(folder, video, &mut buffer, read);
                    found.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(checked);
                }
            });
        }
    });
    found
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|c| c.expect("every video is checked by one reader"))
        .collect()
}

impl VerifyError {
    /// 2 for a folder that holds no record (or records that cannot be read as such); a state
    /// that cannot be opened ends as `run` would end on it.
    pub fn exit_code(&self) -> i32 {
        match self {
            VerifyError::State(e) => crate::exit_code::of_state_error(e),
            VerifyError::NothingRecorded { .. } | VerifyError::Results(_) => crate::exit_code::INVALID,
        }
    }
}

/// `recorded` then `check`, with the counts.
pub fn folder(folder: &Path, threads: usize, read: &(dyn Fn(u64) + Sync)) -> Result<FolderReport, VerifyError> {
    let (videos, source) = recorded(folder)?;
    let started = Instant::now();
    let files = check(folder, &videos, threads, read);
    Ok(FolderReport::new(folder, source, files, started.elapsed()))
}

impl FolderReport {
    /// The counts of `files`, checked in `elapsed`.
    pub fn new(folder: &Path, source: Source, files: Vec<Checked>, elapsed: Duration) -> FolderReport {
        report(folder, source, files, elapsed)
    }

    /// 0 when every video is as saved, 1 when one is missing, changed or unreadable.
    pub fn exit_code(&self) -> i32 {
        match self.problems() {
            0 => crate::exit_code::OK,
            _ => crate::exit_code::JOBS_INCOMPLETE,
        }
    }
}

fn report(folder: &Path, source: Source, files: Vec<Checked>, elapsed: Duration) -> FolderReport {
    let tally = |f: Finding| files.iter().filter(|c| c.status == f).count();
    FolderReport {
        folder: folder.to_path_buf(),
        source,
        videos: files.len(),
        ok: tally(Finding::Ok),
        missing: tally(Finding::Missing),
        changed: tally(Finding::Changed),
        unreadable: tally(Finding::Unreadable),
        unhashed: tally(Finding::Unhashed),
        bytes_read: files
            .iter()
            .filter(|c| c.found_sha256.is_some())
            .filter_map(|c| c.found_bytes)
            .sum(),
        seconds: elapsed.as_secs_f64(),
        files,
    }
}

fn check_one(folder: &Path, video: &Recorded, buffer: &mut [u8], read: &(dyn Fn(u64) + Sync)) -> Checked {
    let mut checked = Checked {
        job_id: video.job_id.clone(),
        file: video.file.clone(),
        status: Finding::Ok,
        recorded_bytes: video.bytes,
        found_bytes: None,
        recorded_sha256: video.sha256.clone(),
        found_sha256: None,
        error: None,
    };
    let fail = |mut checked: Checked, status: Finding, error: String| {
        checked.status = status;
        checked.error = Some(error);
        checked
    };
    // A record edited by hand must not send the check out of the folder.
    let relative = Path::new(&video.file);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return fail(
            checked,
            Finding::Unreadable,
            "its recorded path leaves the output folder: not read".into(),
        );
    }
    let path = folder.join(relative);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(checked, Finding::Missing, "not in the folder".into());
        }
        Err(e) => return fail(checked, Finding::Unreadable, format!("cannot be opened: {e}")),
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return fail(checked, Finding::Unreadable, "not a file".into()),
        Err(e) => return fail(checked, Finding::Unreadable, format!("cannot be read: {e}")),
    };
    checked.found_bytes = Some(size);
    if let Some(recorded) = video.bytes.filter(|b| *b != size) {
        return fail(
            checked,
            Finding::Changed,
            format!(
                "{} bytes, {} recorded",
                thousands(size as f64),
                thousands(recorded as f64)
            ),
        );
    }
    let Some(expected) = &video.sha256 else {
        checked.status = Finding::Unhashed;
        checked.error = Some("no SHA-256 recorded to compare with; its size is the one recorded".into());
        return checked;
    };
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
                read(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return fail(checked, Finding::Unreadable, format!("cannot be read: {e}")),
        }
    }
    let sha256 = format!("{:x}", hasher.finalize());
    checked.found_bytes = Some(total);
    checked.found_sha256 = Some(sha256.clone());
    if !sha256.eq_ignore_ascii_case(expected.trim()) {
        return fail(checked, Finding::Changed, "its SHA-256 is not the one recorded".into());
    }
    checked
}

/// How many videos are listed one by one in the text report; `--json` lists all.
const LISTED: usize = 50;

/// What `verify` found in each folder it was given, or why it could not look.
pub type Findings = [(PathBuf, Result<FolderReport, VerifyError>)];

/// `verify`'s exit code over several folders: the highest of theirs.
pub fn exit_code(folders: &Findings) -> i32 {
    folders
        .iter()
        .map(|(_, r)| match r {
            Ok(r) => r.exit_code(),
            Err(e) => e.exit_code(),
        })
        .max()
        .unwrap_or(crate::exit_code::OK)
}

/// The text report of `vidbatch verify`: one line per folder, then each video that is not as
/// recorded, then what to do.
pub fn render_text(out: &mut impl Write, folders: &Findings) -> std::io::Result<()> {
    let mut problems = 0;
    for (dir, r) in folders {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "{}: {}", dir.display(), crate::api::error_chain(e))?;
                continue;
            }
        };
        problems += r.problems();
        let mut counts = vec![format!("{} ok", r.ok)];
        for (n, word) in [
            (r.missing, "missing"),
            (r.changed, "changed"),
            (r.unreadable, "unreadable"),
            (r.unhashed, "without a recorded SHA-256"),
        ] {
            if n > 0 {
                counts.push(format!("{n} {word}"));
            }
        }
        writeln!(
            out,
            "{}: {} checked ({} read in {}, from {}): {}",
            r.folder.display(),
            count(r.videos, "video"),
            crate::wording::bytes(r.bytes_read),
            crate::wording::timing(Duration::from_secs_f64(r.seconds)),
            r.source.describe(),
            counts.join(", ")
        )?;
        let odd: Vec<&Checked> = r.files.iter().filter(|c| c.status != Finding::Ok).collect();
        for c in odd.iter().take(LISTED) {
            writeln!(
                out,
                "  {:<10} {} {}: {}",
                c.status.as_str(),
                c.job_id,
                c.file,
                c.error.as_deref().unwrap_or("")
            )?;
        }
        if odd.len() > LISTED {
            writeln!(out, "  … and {} more (`--json` lists every one)", odd.len() - LISTED)?;
        }
    }
    if problems > 0 {
        writeln!(
            out,
            "{} not as saved: the same `vidbatch run` command fetches missing and changed videos again, \
             at no cost (their generations are paid for)",
            count(problems, "video")
        )?;
    }
    out.flush()
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    command: &'static str,
    exit_code: i32,
    totals: Totals,
    folders: Vec<FolderDocument<'a>>,
}

#[derive(Serialize, Default)]
struct Totals {
    videos: usize,
    ok: usize,
    missing: usize,
    changed: usize,
    unreadable: usize,
    unhashed: usize,
    bytes_read: u64,
}

#[derive(Serialize)]
struct FolderDocument<'a> {
    folder: String,
    exit_code: i32,
    /// Why the folder could not be checked; `null` for one that was.
    error: Option<crate::inspect::Problem>,
    #[serde(flatten)]
    report: Option<&'a FolderReport>,
}

/// The JSON document of `vidbatch verify --json`: totals, then each folder with every video.
pub fn write_json(out: &mut impl Write, folders: &Findings) -> std::io::Result<()> {
    let mut totals = Totals::default();
    let entries = folders
        .iter()
        .map(|(dir, r)| match r {
            Ok(r) => {
                totals.videos += r.videos;
                totals.ok += r.ok;
                totals.missing += r.missing;
                totals.changed += r.changed;
                totals.unreadable += r.unreadable;
                totals.unhashed += r.unhashed;
                totals.bytes_read += r.bytes_read;
                FolderDocument {
                    folder: dir.display().to_string(),
                    exit_code: r.exit_code(),
                    error: None,
                    report: Some(r),
                }
            }
            Err(e) => FolderDocument {
                folder: dir.display().to_string(),
                exit_code: e.exit_code(),
                error: Some(crate::inspect::Problem::of_message(crate::api::error_chain(e), None)),
                report: None,
            },
        })
        .collect();
    let document = Document {
        schema_version: crate::inspect::SCHEMA_VERSION,
        command: "verify",
        exit_code: exit_code(folders),
        totals,
        folders: entries,
    };
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }

    #[test]
    fn each_video_is_found_ok_missing_changed_or_unhashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("videos")).unwrap();
        let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join("videos").join(name), bytes).unwrap();
        write("same.mp4", b"video one");
        write("resized.mp4", b"video two, longer now");
        write("edited.mp4", b"video thr3e");
        write("unhashed.mp4", b"video four");
        let video = |name: &str, content: &[u8], hashed: bool| Recorded {
            job_id: name.into(),
            file: format!("videos/{name}"),
            bytes: Some(content.len() as u64),
            sha256: hashed.then(|| sha(content)),
        };
        let videos = [
            video("same.mp4", b"video one", true),
            video("resized.mp4", b"video two", true),
            video("edited.mp4", b"video three", true),
            video("gone.mp4", b"video five", true),
            video("unhashed.mp4", b"video four", false),
            Recorded {
                file: "../outside.mp4".into(),
                ..video("outside", b"x", true)
            },
        ];
        let read = AtomicUsize::new(0);
        let found = check(dir.path(), &videos, 3, &|n| {
            read.fetch_add(n as usize, Ordering::Relaxed);
        });
        let statuses: Vec<Finding> = found.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                Finding::Ok,
                Finding::Changed,
                Finding::Changed,
                Finding::Missing,
                Finding::Unhashed,
                Finding::Unreadable
            ]
        );
        assert_eq!(
            found[1].error.as_deref(),
            Some("21 bytes, 9 recorded"),
            "found by size, unread"
        );
        assert_eq!(found[2].error.as_deref(), Some("its SHA-256 is not the one recorded"));
        // Only the videos of the recorded size are read.
        assert_eq!(read.load(Ordering::Relaxed), "video one".len() + "video thr3e".len());
        let r = report(dir.path(), Source::State, found, Duration::from_millis(5));
        assert_eq!((r.ok, r.changed, r.missing, r.unreadable, r.unhashed), (1, 2, 1, 1, 1));
        assert_eq!(r.problems(), 4);
        assert_eq!(r.exit_code(), crate::exit_code::JOBS_INCOMPLETE);
        let findings = [(dir.path().to_path_buf(), Ok(r))];
        let mut text = Vec::new();
        render_text(&mut text, &findings).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("6 videos checked (20 B read in 0.0s, from state.db): 1 ok, 1 missing, 2 changed, 1 unreadable, 1 without a recorded SHA-256"), "{text}");
        assert!(
            text.contains("  missing    gone.mp4 videos/gone.mp4: not in the folder"),
            "{text}"
        );
        assert!(text.contains("4 videos not as saved"), "{text}");
        let mut json = Vec::new();
        write_json(&mut json, &findings).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            (doc["exit_code"].as_i64(), doc["totals"]["changed"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(doc["folders"][0]["source"], "state.db");
        assert_eq!(doc["folders"][0]["files"][3]["status"], "missing");
        assert_eq!(doc["folders"][0]["error"], serde_json::Value::Null);
    }

    #[test]
    fn a_folder_without_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(recorded(dir.path()), Err(VerifyError::NothingRecorded { .. })));
    }
}
