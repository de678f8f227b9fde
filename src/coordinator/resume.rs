//! Picking a run up where an earlier one stopped: what the state says of each job decides
//! whether it is done, followed, fetched again, submitted, or left `unknown`.

use tokio::time::Instant;

use super::{Coordinator, Remote, Track};
use crate::download::hash_file;
use crate::plan::Job;
use crate::state::{Failure, JobRecord, Phase, StateError};

impl Coordinator<'_> {
    /// Decides what this run does with a job, given what earlier runs recorded.
    pub(super) fn place(&mut self, job: &Job, record: Option<&JobRecord>) -> Result<Track, StateError> {
        let Some(record) = record else {
            return Ok(Track::Queued);
        };
        let now = Instant::now();
        // Follows a generation that already exists: poll it now. `in_flight` when it may still
        // be running remotely (it then takes a concurrency slot).
        let follow = |id: &String, in_flight: bool| {
            Track::Remote(Remote {
                generation_id: id.clone(),
                since: now,
                in_flight,
                next_poll: Some(now),
                polling: false,
                poll_errors: 0,
                video: None,
                downloading: false,
                download_tries: 0,
            })
        };
        Ok(match (record.phase, &record.generation_id) {
            (Phase::Queued, _) => Track::Queued,
            (Phase::Submitting, _) if self.config.resubmit_unknown => {
                tracing::warn!(
                    "{}: the answer to an earlier submit was lost; submitting again as asked (--resubmit-unknown)",
                    job.label()
                );
                Track::Queued
            }
            (Phase::Submitting, _) => {
                tracing::warn!(
                    "{}: an earlier submit's answer was lost: a generation may exist and be paid for. \
                     Left as `unknown`; `--resubmit-unknown` submits it again",
                    job.label()
                );
                Track::Settled
            }
            (Phase::Generating, Some(id)) => {
                tracing::info!("{}: resuming generation {id}", job.label());
                follow(id, true)
            }
            (Phase::Downloading, Some(id)) => follow(id, false),
            (Phase::Completed, id) => {
                let path = self.out.join(&record.file);
                match hash_file(&path) {
                    Ok(d) if Some(d.bytes) == record.bytes && Some(&d.sha256) == record.sha256.as_ref() => {
                        self.resumed_done += 1;
                        Track::Settled
                    }
                    found => {
                        let why = if found.is_ok() { "changed" } else { "missing" };
                        match id {
                            Some(id) => {
                                tracing::warn!("{}: `{}` is {why}; fetching it again", job.label(), record.file);
                                self.state.mark_downloading(&job.key, id, None)?;
                                follow(id, false)
                            }
                            None => Track::Queued,
                        }
                    }
                }
            }
            (Phase::Failed, id) => match (record.failure, id) {
                (Some(Failure::Generation), _) if record.attempts > self.config.paid_retries => Track::Settled,
                (Some(Failure::Generation), _) => {
                    self.state.mark_queued(&job.key)?;
                    Track::Queued
                }
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
        })
    }
}
