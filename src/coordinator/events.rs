//! What the coordinator does with each worker's report: record it, then decide the job's next
//! step. Nothing here spawns or waits; `start_work` turns the decisions into tasks.

use std::time::Duration;

use tokio::time::Instant;

use super::{CancelLevel, Coordinator, DOWNLOAD_TRIES, Event, Remote, Stage, StopReason, Track};
use crate::api::{ApiError, Disposition, GenerationStatus, Op, Pending, Submission};
use crate::download::{DownloadError, Downloaded};
use crate::state::Failure;

impl Coordinator<'_> {
    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Submitted { job, result } => self.on_submitted(job, result),
            Event::Polled { job, result } => {
                self.on_polled(job, result);
                self.schedule(job);
            }
            Event::Downloaded { job, result } => {
                self.on_downloaded(job, result);
                self.schedule(job);
            }
        }
    }

    fn on_submitted(&mut self, i: usize, result: Result<Submission, ApiError>) {
        let job = &self.jobs[i];
        match result {
            Ok(sub) => {
                let recorded =
                    self.record(|s| s.record_generation(&job.key, &sub.generation_id, sub.credits).map(drop));
                if !recorded {
                    tracing::error!(
                        "{}: generation `{}` was created but could not be recorded; note this id",
                        job.label(),
                        sub.generation_id
                    );
                }
                tracing::info!("{}: submitted, generation {}", job.label(), sub.generation_id);
                let now = Instant::now();
                let kind: std::sync::Arc<str> = super::polling::kind_of(&job.model, job.params()).into();
                let first_poll = self.poll_wait(&kind, Duration::ZERO);
                // The slot its submit took stays with the generation until it is seen finished.
                let slot = match std::mem::replace(&mut self.tracks[i], Track::Queued) {
                    Track::Submitting { slot, .. } => Some(slot),
                    _ => None,
                };
                self.tracks[i] = Track::Remote(Remote {
                    generation_id: sub.generation_id,
                    kind,
                    since: now,
                    submitted: Some(now),
                    last_pending: now,
                    slot,
                    stage: Stage::PollAt(now + first_poll),
                    poll_errors: 0,
                    download_tries: 0,
                });
                self.remote += 1;
                self.schedule(i);
            }
            Err(e) if e.is_too_many_active() => {
                // Nothing was created: the job goes back to the front of the queue, free, and
                // fewer generations are kept in flight from now on (`schedule::Ceiling`).
                let before = self.ceiling.limit();
                self.ceiling.refused(self.slots.in_use());
                let pause = e
                    .retry_after()
                    .unwrap_or(Duration::from_secs(1))
                    .min(self.config.retry.max);
                self.submits_paused_until = Some(Instant::now() + pause);
                if self.ceiling.limit() < before {
                    tracing::warn!(
                        "the service has too many generations of this account running ({e}); \
                         keeping at most {} in flight from now on",
                        self.ceiling.limit()
                    );
                }
                self.tracks[i] = Track::Queued;
                self.queue.push_front(i);
                if !self.record(|s| s.mark_queued(&job.key)) {
                    self.queue.pop_front();
                }
            }
            Err(e) => {
                let retries = match self.tracks[i] {
                    Track::Submitting { retries, .. } => retries,
                    _ => 0,
                };
                if let Disposition::Retry { after } = e.disposition(Op::Submit)
                    && retries < self.config.retry.max_retries
                {
                    // Retryable means nothing was created: the job is `queued` until its next POST.
                    if !self.record(|s| s.mark_queued(&job.key)) || self.shutdown.level() >= CancelLevel::Drain {
                        self.withdraw(i);
                        return;
                    }
                    let delay = self.config.retry.delay(retries, after);
                    tracing::warn!(
                        "transient error submitting `{}` ({} tries left, next in {:.1}s): {e}",
                        job.label(),
                        self.config.retry.max_retries - retries,
                        delay.as_secs_f64()
                    );
                    if let Track::Submitting { retries, sent, .. } = &mut self.tracks[i] {
                        *retries += 1;
                        *sent = false;
                    }
                    self.retry_submit(i, delay);
                    return;
                }
                // Failures that every other job would meet too: this one waits for the rerun.
                let run_stopper = match (&e, e.disposition(Op::Submit)) {
                    (ApiError::Unsendable(_), _) => Some(StopReason::Fatal(format!(
                        "{e}; check `AIMLAPI_BASE_URL` and `AIMLAPI_KEY`"
                    ))),
                    (ApiError::Connect(_), _) => Some(StopReason::Unreachable(format!(
                        "{e} (after {retries} retries); the run is saved and the same command resumes it"
                    ))),
                    (_, Disposition::Abort) => Some(StopReason::Refused(format!(
                        "the API refused the request for `{}`: {e}. Check `AIMLAPI_KEY` and the account's credits; \
                         the run is saved and the same command resumes it",
                        job.label()
                    ))),
                    _ => None,
                };
                if let Some(reason) = run_stopper {
                    self.record(|s| s.mark_queued(&job.key));
                    self.tracks[i] = Track::Queued;
                    self.stop(reason);
                    return;
                }
                self.tracks[i] = Track::Settled;
                if e.disposition(Op::Submit) == Disposition::Ambiguous {
                    // Left as `submitting`: reported `unknown`, never silently paid again.
                    tracing::error!(
                        "{}: the submit's outcome is unknown ({e}); a generation may exist and be paid for. \
                         Left as `unknown`",
                        job.label()
                    );
                } else {
                    // Refused as sent (400), or retries spent on a service that kept answering.
                    tracing::error!("{}: submit failed: {e}", job.label());
                    self.record(|s| s.mark_failed(&job.key, Failure::Rejected, &e.to_string()));
                }
            }
        }
    }

    fn remote_mut(&mut self, i: usize) -> Option<&mut Remote> {
        match &mut self.tracks[i] {
            Track::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// Takes a job out of remote tracking, freeing its slot.
    pub(super) fn settle(&mut self, i: usize) {
        if let Track::Remote(r) = &self.tracks[i]
            && r.stage == Stage::Downloading
        {
            self.downloads_running -= 1;
        }
        if matches!(self.tracks[i], Track::Remote(_)) {
            self.remote -= 1;
        }
        self.tracks[i] = Track::Settled;
    }

    fn on_polled(&mut self, i: usize, result: Result<GenerationStatus, ApiError>) {
        let job = &self.jobs[i];
        let timeout = self.config.generation_timeout;
        let retry = self.config.retry.clone();
        let now = Instant::now();
        // When to look again, were it still running (the policy needs `self`, `r` borrows it).
        let (kind, age) = match &self.tracks[i] {
            Track::Remote(r) => (r.kind.clone(), now.duration_since(r.submitted.unwrap_or(r.since))),
            _ => return,
        };
        let next_wait = self.poll_wait(&kind, age);
        let Some(r) = self.remote_mut(i) else { return };
        match result {
            Ok(GenerationStatus::Pending(status)) => {
                r.poll_errors = 0;
                if now.duration_since(r.since) > timeout {
                    let message = format!(
                        "no result after {}s (last status `{status}`); the generation may still finish: rerun to pick it up",
                        timeout.as_secs()
                    );
                    tracing::error!("{}: {message}", job.label());
                    self.record(|s| s.mark_failed(&job.key, Failure::Unfinished, &message));
                    self.settle(i);
                } else {
                    tracing::debug!("{}: {status}", job.label());
                    r.last_pending = now;
                    r.stage = Stage::PollAt(now + next_wait);
                    if let Pending::Unknown(word) = &status
                        && self.odd_statuses.insert(word.clone())
                    {
                        tracing::warn!(
                            "{}: the service answered status `{status}`, which vidbatch does not know; \
                             taken as still pending (until --timeout)",
                            job.label()
                        );
                    }
                }
            }
            Ok(GenerationStatus::Completed {
                url,
                credits,
                file_size,
            }) => {
                r.poll_errors = 0;
                // Its slot is free from now: the download does not hold one.
                let was_in_flight = r.slot.take().is_some();
                r.stage = Stage::Ready { url, size: file_size };
                let id = r.generation_id.clone();
                // It finished between the last poll that saw it running and this one: the middle
                // is the best guess, and polls near the end are close together.
                let render = r.submitted.filter(|_| was_in_flight).map(|at| {
                    let finished = r.last_pending + now.duration_since(r.last_pending) / 2;
                    finished.duration_since(at)
                });
                if was_in_flight {
                    self.ceiling.finished();
                    tracing::info!("{}: generation completed, downloading", job.label());
                }
                self.record(|s| s.mark_downloading(&job.key, &id, credits));
                if let Some(render) = render {
                    self.render_times.record(&kind, render);
                    self.record(|s| s.record_render(&id, &kind, render));
                }
            }
            Ok(GenerationStatus::Failed { message }) => {
                let id = r.generation_id.clone();
                self.generation_failed(i, &id, &message);
            }
            Err(e) => match e.disposition(Op::Poll) {
                Disposition::Abort => {
                    r.stage = Stage::PollAt(now);
                    self.stop(StopReason::Refused(format!(
                        "the API refused a poll: {e}. Check `AIMLAPI_KEY`; the run is saved and the same command resumes it"
                    )));
                }
                Disposition::Retry { .. } if now.duration_since(r.since) > timeout => {
                    // Polls that keep failing must not keep the run alive forever.
                    let message = format!(
                        "no answer about generation {} for {}s (last error: {e}); rerun to poll it again",
                        r.generation_id,
                        timeout.as_secs()
                    );
                    tracing::error!("{}: {message}", job.label());
                    self.record(|s| s.mark_failed(&job.key, Failure::Unfinished, &message));
                    self.settle(i);
                }
                Disposition::Retry { after } => {
                    let delay = retry.delay(r.poll_errors, after).max(next_wait);
                    r.poll_errors += 1;
                    tracing::warn!(
                        "transient error polling `{}` (next try in {:.1}s): {e}",
                        job.label(),
                        delay.as_secs_f64()
                    );
                    r.stage = Stage::PollAt(now + delay);
                }
                Disposition::FailJob | Disposition::Ambiguous => {
                    // The service answered, and not with a status (e.g. 404: it does not know
                    // the id): this generation will not finish. It was paid for all the same.
                    let id = r.generation_id.clone();
                    self.generation_failed(i, &id, &format!("polling the generation failed: {e}"));
                }
            },
        }
    }

    /// How long to wait before polling a generation of `kind` that has run for `age`.
    pub(super) fn poll_wait(&self, kind: &str, age: Duration) -> Duration {
        match &self.config.polling {
            super::Polling::Fixed(every) => *every,
            super::Polling::Adaptive(policy) => policy.next_poll(&self.render_times, kind, age),
        }
    }

    /// A paid generation that will not give a video: reported, and submitted again (paid again)
    /// only within `--paid-retries`.
    fn generation_failed(&mut self, i: usize, id: &str, message: &str) {
        let job = &self.jobs[i];
        self.record(|s| s.mark_failed(&job.key, Failure::Generation, message));
        self.settle(i);
        let attempts = self.state.attempts(&job.key).unwrap_or(u32::MAX);
        if attempts <= self.config.paid_retries {
            tracing::warn!(
                "{}: generation {id} failed: {message}; submitting again (paid retry {attempts} of {})",
                job.label(),
                self.config.paid_retries
            );
            if self.record(|s| s.mark_queued(&job.key)) {
                self.tracks[i] = Track::Queued;
                self.queue.push_back(i);
            }
        } else {
            tracing::error!("{}: generation {id} failed: {message}", job.label());
        }
    }

    fn on_downloaded(&mut self, i: usize, result: Result<Downloaded, DownloadError>) {
        let job = &self.jobs[i];
        let retry = self.config.retry.clone();
        self.downloads_running -= 1;
        let Some(r) = self.remote_mut(i) else { return };
        // Until decided below, it is back to waiting for a fresh URL.
        r.stage = Stage::PollAt(Instant::now());
        match result {
            Ok(done) => {
                tracing::info!("{}: saved {} ({} bytes)", job.label(), job.file, done.bytes);
                self.record(|s| s.mark_completed(&job.key, &job.file, done.bytes, &done.sha256));
                self.settle(i);
            }
            Err(e @ DownloadError::Write { .. }) => {
                // A full or read-only disk fails every video to come: stop paying for them.
                self.record(|s| s.mark_failed(&job.key, Failure::Download, &e.to_string()));
                self.settle(i);
                self.stop(StopReason::Fatal(format!(
                    "{e}; stopping before more generations are paid for (a rerun fetches the finished ones again)"
                )));
            }
            Err(e @ DownloadError::TooLarge { .. }) => {
                // Fetching it again would meet the same limit: the job waits for a rerun with a
                // higher one (the generation stays paid for and fetchable until its URL expires).
                let message = format!("{e}; rerun with a higher --max-download-size to fetch it");
                tracing::error!("{}: {message}", job.label());
                self.record(|s| s.mark_failed(&job.key, Failure::Download, &message));
                self.settle(i);
            }
            Err(e) => {
                r.download_tries += 1;
                if r.download_tries >= DOWNLOAD_TRIES {
                    let message = format!(
                        "{e} (after {} tries; a rerun fetches it again at no cost)",
                        r.download_tries
                    );
                    tracing::error!("{}: {message}", job.label());
                    self.record(|s| s.mark_failed(&job.key, Failure::Download, &message));
                    self.settle(i);
                    return;
                }
                // A fresh poll gives a fresh URL: that mends an expired link and costs nothing.
                let delay = match e {
                    DownloadError::Expired(_) => Duration::ZERO,
                    _ => retry.delay(r.download_tries - 1, None),
                };
                tracing::warn!(
                    "{}: {e}; asking for a fresh URL ({} tries left)",
                    job.label(),
                    DOWNLOAD_TRIES - r.download_tries
                );
                r.stage = Stage::PollAt(Instant::now() + delay);
            }
        }
    }
}
