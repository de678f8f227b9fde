//! Picking a run up where an earlier one stopped: what the state says of each job decides
//! whether it is done, followed, fetched again, submitted, or left `unknown`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, Fetch, Next, Outcome, Remote, Stage, Track};
use crate::cost::Charge;
use crate::download::hash_file;
use crate::plan::{Job, JobKey};
use crate::results::{ResultRow, Status};
use crate::sinks::RunEvent;
use crate::sinks::notice::Notice;
use crate::state::{Failure, JobRecord, Paid, Phase, RunState, StateError};

impl Coordinator<'_> {
    /// Decides what this run does with a job, given what earlier runs recorded.
    pub(super) fn place(&mut self, job: &Job, record: Option<&JobRecord>) -> Result<Track, StateError> {
        let Some(record) = record else {
            return Ok(Track::Queued);
        };
        let now = Instant::now();
        // Follows a generation that already exists: poll it now. `in_flight` when it may still
        // be running remotely (it then takes a concurrency slot).
        let kind: std::sync::Arc<str> = super::polling::kind_of(&job.model, job.params()).into();
        let slots = self.slots.clone();
        // The generation followed is counted by the ledger from the records already: at its
        // charge, or at its expected price until the service reports one.
        let charge = if record.current_charged {
            Charge::Counted
        } else {
            Charge::Expected(self.prices.estimate(&job.model).credits)
        };
        // Its age, from the submit time its record keeps (to the second: the middle of it).
        let submitted = record
            .submitted_at
            .as_deref()
            .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
            .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
            .and_then(|age| now.checked_sub(age.saturating_sub(Duration::from_millis(500))));
        let follow = |id: &String, in_flight: bool| {
            Track::Remote(Remote {
                generation_id: id.as_str().into(),
                kind: kind.clone(),
                since: now,
                submitted,
                last_pending: None,
                resumed: true,
                // Numbered below: only the generations followed take places among the probes.
                phase: 0.0,
                // Polled at once: an in-flight one holds its slot meanwhile.
                stage: match in_flight {
                    true => Stage::Rendering {
                        slot: Some(slots.take()),
                        queued: false,
                        next: Next::PollAt {
                            at: now,
                            planned: false,
                        },
                    },
                    false => Stage::Fetching(Fetch::Relink(Next::PollAt {
                        at: now,
                        planned: false,
                    })),
                },
                charge,
                poll_errors: 0,
                download_tries: 0,
                // A generation seen completed by an earlier run: its video is what is awaited.
                fetching_since: (!in_flight).then_some(now),
            })
        };
        let mut track = match (record.phase, &record.generation_id) {
            (Phase::Queued, _) => Track::Queued,
            // Queued in this run only: the state keeps it `unknown` until the new submit is
            // recorded (and counts the earlier one against the cap for good from then on), so a
            // run that never sends it (the cap, a stop) forgets nothing.
            (Phase::Submitting, _) if self.config.resubmit_unknown => {
                self.sinks.emit(RunEvent::Notice(&Notice::ResubmittingUnknown { job }));
                Track::Queued
            }
            (Phase::Submitting, _) => {
                self.sinks.emit(RunEvent::Notice(&Notice::UnknownLeft { job }));
                Track::Settled(Outcome::Unknown)
            }
            (Phase::Generating, Some(id)) => {
                self.sinks
                    .emit(RunEvent::Notice(&Notice::Resuming { job, generation_id: id }));
                follow(id, true)
            }
            (Phase::Downloading, Some(id)) => follow(id, false),
            (Phase::Completed, id) => {
                let path = self.out.join(&record.file);
                match hash_file(&path) {
                    Ok(d) if Some(d.bytes) == record.bytes && Some(&d.sha256) == record.sha256.as_ref() => {
                        self.resumed_done += 1;
                        Track::Settled(Outcome::Done)
                    }
                    found => match id {
                        Some(id) => {
                            self.sinks.emit(RunEvent::Notice(&Notice::VideoGone {
                                job,
                                file: &record.file,
                                changed: found.is_ok(),
                            }));
                            self.state.mark_downloading(&job.key, id, None)?;
                            follow(id, false)
                        }
                        None => Track::Queued,
                    },
                }
            }
            (Phase::Failed, id) => match (record.failure, id) {
                (Some(Failure::Generation), _) if record.attempts > self.config.paid_retries => {
                    Track::Settled(Outcome::Failed)
                }
                (Some(Failure::Generation), _) => Track::Queued,
                (Some(Failure::Download), Some(id)) => {
                    self.state.mark_downloading(&job.key, id, None)?;
                    follow(id, false)
                }
                (Some(Failure::Unfinished), Some(id)) => {
                    self.state.mark_generating(&job.key)?;
                    follow(id, true)
                }
                _ => Track::Queued,
            },
            (Phase::Generating | Phase::Downloading, None) => Track::Queued,
        };
        if let Track::Remote(r) = &mut track {
            // It scouts (probes at ages doubling from a small share of the prior): what it takes
            // to finish may be nothing like the prior, and resumed generations are few.
            r.phase = self.next_phase(&kind) * super::polling::SCOUTS;
        }
        // To be submitted in this run: `queued` in the state too, so that the rows, the counts
        // and a budget or refused-key note see it as this run's, not as an old failure.
        if matches!(track, Track::Queued) && !matches!(record.phase, Phase::Queued | Phase::Submitting) {
            self.state.mark_queued(&job.key)?;
        }
        Ok(track)
    }
}

/// What an output folder shows of an earlier run (`results.csv`, videos), said in words; `None`
/// for a folder no run has written to.
pub fn earlier_run(out: &Path) -> Option<String> {
    fn count_files(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => count_files(&e.path()),
                // Hidden files (`.DS_Store`, unfinished `.part` downloads) are no one's video.
                Ok(_) if !e.file_name().to_string_lossy().starts_with('.') => 1,
                _ => 0,
            })
            .sum()
    }
    let videos = count_files(&out.join("videos"));
    let results = out.join("results.csv").is_file();
    match (videos, results) {
        (0, false) => None,
        (0, true) => Some("a `results.csv`".into()),
        (n, false) => Some(format!("{n} video file(s)")),
        (n, true) => Some(format!("{n} video file(s) and a `results.csv`")),
    }
}

/// What `--adopt` took over from an earlier run whose state was lost.
#[derive(Debug, Default)]
pub struct Adoption {
    /// Jobs recorded completed with the earlier run's video.
    pub adopted: usize,
    /// Jobs whose generation `results.csv` names, not finished or not saved: followed (polled,
    /// fetched) by this run, never paid for again.
    pub followed: usize,
    /// Jobs `results.csv` says were `unknown`: they stay so (`--resubmit-unknown` sends them).
    pub unknown: usize,
    /// Completed rows for planned jobs whose file is missing or differs from its hash, and that
    /// name no generation to fetch again.
    pub mismatched: usize,
    /// Files at the names planned jobs would write that no row vouches for: kept, and the jobs
    /// write beside them (name plus job id) rather than over them.
    pub kept_aside: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// `results.csv` is there but cannot be read as results.
    #[error("nothing was adopted")]
    Results(#[from] crate::results::ReadError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// After a lost state, from `results.csv` (by job id): a completed job whose file still matches
/// its recorded size and SHA-256 is recorded completed; a job whose row names a generation is
/// followed from it (polled, or its video fetched again), whatever its status; an `unknown` one
/// stays `unknown`. Every adopted row keeps its credits and attempts, so the money record and
/// `--max-credits` see what was spent. Files no row vouches for are never overwritten.
pub fn adopt(out: &Path, jobs: &mut [Job], state: &mut RunState) -> Result<Adoption, AdoptError> {
    // Read before anything is written: a state that knows its jobs is no longer a lost one, and
    // adopting nothing from results that cannot be read would pay for every job again.
    let rows = crate::results::read_rows(out)?.unwrap_or_default();
    state.register(jobs)?;
    // A job's own row comes first; later rows with its id are its aliases (copies of its video).
    let mut by_id: HashMap<&str, &ResultRow> = HashMap::new();
    for row in &rows {
        by_id.entry(row.job_id.as_str()).or_insert(row);
    }
    let mut adoption = Adoption::default();
    let mut taken: HashMap<String, JobKey> = HashMap::new();
    for job in jobs.iter() {
        let Some(row) = by_id.get(job.key.short()) else {
            continue;
        };
        let generation = Some(row.generation_id.as_str()).filter(|g| !g.is_empty());
        let paid = Paid {
            credits: row.credits,
            attempts: row.attempts.unwrap_or(1).max(1),
        };
        let phase = match row.status {
            Status::Completed => match hash_file(&out.join(&row.file)) {
                Ok(d) if Some(d.bytes) == row.bytes && d.sha256 == row.sha256 => {
                    state.adopt_completed(&job.key, generation, &row.file, d.bytes, &d.sha256, paid)?;
                    taken.insert(row.file.to_lowercase(), job.key.clone());
                    adoption.adopted += 1;
                    continue;
                }
                // The video is gone or changed; its generation is not: fetched again, free.
                _ if generation.is_some() => Phase::Downloading,
                _ => {
                    adoption.mismatched += 1;
                    continue;
                }
            },
            Status::Unknown => {
                state.adopt_unknown(&job.key)?;
                adoption.unknown += 1;
                continue;
            }
            Status::AwaitingDownload => Phase::Downloading,
            Status::Pending | Status::Failed => Phase::Generating,
        };
        if let Some(id) = generation {
            // A submit time a spreadsheet rewrote in its own way is no time at all.
            let submitted_at = Some(row.submitted_at.as_str())
                .filter(|at| humantime::parse_rfc3339_weak(at).is_ok_and(|t| t <= std::time::SystemTime::now()));
            state.adopt_generation(&job.key, id, phase, paid, submitted_at)?;
            adoption.followed += 1;
        }
    }
    // Whatever else lies where a job would write was paid for once: keep it.
    let stranger = JobKey("an earlier run".into());
    for job in jobs.iter() {
        let name = job.file.to_lowercase();
        if !taken.contains_key(&name) && out.join(&job.file).exists() {
            taken.insert(name, stranger.clone());
        }
    }
    adoption.kept_aside = crate::plan::keep_clear_of(jobs, &taken);
    state.register(jobs)?;
    Ok(adoption)
}
