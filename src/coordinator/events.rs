//! What the coordinator does with each worker's report: the next step of a submit or a poll is
//! decided by the pure functions of `decide.rs`; here the coordinator's own bookkeeping follows
//! it, and everything outward — writes, events, queues, polls, a stop — is pushed as an
//! [`Effect`] that the loop carries out ([`Coordinator::carry_out`]). Nothing here writes, emits,
//! spawns or waits, so a test reads what an event decided from the effects alone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::decide::{self, AfterDownload, AfterPoll, AfterSubmit};
use super::effects::{Effect, Say, Write};
use super::halt::Verdict;
use super::{CancelLevel, Coordinator, Event, Fetch, Next, Outcome, Remote, Stage, StopReason, Track};
use crate::api::{ApiError, GenerationStatus, Submission};
use crate::cost::Charge;
use crate::download::{DownloadError, Downloaded};
use crate::state::Failure;

impl Coordinator<'_> {
    /// Decides what `event` does: the coordinator's bookkeeping changes now, its effects wait in
    /// `self.effects` for [`Coordinator::carry_out`].
    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Paced { job, paced } => self.send_submit(job, paced),
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
        // Sent again under `--resubmit-unknown`: until its new submit has an outcome (created, or
        // unknown, or refused), a job put back keeps its earlier unknown submit as it was.
        let was_unknown = self.unknown_earlier.contains(&i);
        match result {
            Ok(sub) => {
                self.unknown_earlier.remove(&i);
                self.attempts[i] += 1;
                let id: Arc<str> = sub.generation_id.into();
                self.effects.record(
                    i,
                    Write::Generation {
                        id: id.clone(),
                        credits: sub.credits,
                        attempt: self.attempts[i],
                    },
                );
                let now = Instant::now();
                let kind: Arc<str> = super::polling::kind_of(&job.model, job.params()).into();
                let phase = self.next_phase(&kind);
                let first_poll = self.poll_wait(&kind, Duration::ZERO, phase);
                // The slot its submit took stays with the generation until it is seen finished.
                let (slot, reservation) = match std::mem::replace(&mut self.tracks[i], Track::Queued) {
                    Track::Submitting { slot, reservation, .. } => (Some(slot), Some(reservation)),
                    _ => (None, None),
                };
                // A generation exists: it counts, at its reported charge when there is one.
                let mut charge = reservation
                    .unwrap_or_else(|| self.ledger.reserve(self.prices.estimate_job(job).credits))
                    .keep();
                if let Some(credits) = sub.credits {
                    self.ledger.reported(&mut charge, credits);
                }
                self.effects.say(Say::Submitted {
                    job: i,
                    generation_id: id.clone(),
                    attempt: self.attempts[i],
                    credits: sub.credits,
                });
                self.tracks[i] = Track::Remote(Remote {
                    generation_id: id,
                    kind,
                    since: now,
                    submitted: Some(now),
                    last_pending: Some(now),
                    resumed: false,
                    phase,
                    stage: Stage::Rendering {
                        slot,
                        queued: true,
                        next: Next::PollAt {
                            at: now + first_poll,
                            planned: true,
                        },
                    },
                    charge,
                    poll_errors: 0,
                    download_tries: 0,
                    fetching_since: None,
                });
                self.remote += 1;
                self.schedule(i);
            }
            Err(e) => {
                let retries = match self.tracks[i] {
                    Track::Submitting { retries, .. } => retries,
                    _ => 0,
                };
                match decide::after_submit_error(&e, retries, &self.config.retry, job.label()) {
                    AfterSubmit::TooManyActive { pause } => {
                        // Nothing was created: the job goes back to the front of the queue, free,
                        // and fewer generations are kept in flight from now on
                        // (`schedule::Ceiling`).
                        let before = self.ceiling.limit();
                        self.ceiling.refused(self.slots.in_use());
                        self.submits_paused_until = Some(Instant::now() + pause);
                        if self.ceiling.limit() < before {
                            self.effects.say(Say::CeilingLowered {
                                error: e.to_string(),
                                limit: self.ceiling.limit(),
                            });
                        }
                        // Its slot and share of the cap go back now; it goes first once the
                        // pause is over, if its write is made.
                        self.tracks[i] = Track::Queued;
                        self.effects.record(i, Write::Unsent { was_unknown });
                        self.effects.push(Effect::Queue { job: i, front: true });
                    }
                    AfterSubmit::Retry { delay } => {
                        // Nothing was created: the job is `queued` until its next POST. Like its
                        // slot, its share of `--max-credits` stays with it meanwhile, so that no
                        // other submit takes its room under the cap.
                        self.effects.record(i, Write::Unsent { was_unknown });
                        if self.shutdown.level() >= CancelLevel::Drain {
                            self.withdraw(i);
                            return;
                        }
                        if let Track::Submitting { retries, sent, .. } = &mut self.tracks[i] {
                            *retries += 1;
                            *sent = false;
                        }
                        self.effects.push(Effect::RetrySubmit {
                            job: i,
                            delay,
                            attempt: retries + 1,
                            error: format!("{e} ({} tries left)", self.config.retry.max_retries - retries),
                        });
                    }
                    AfterSubmit::StopRun(reason) => {
                        // What every other job would meet too: this one waits for the rerun.
                        self.effects.record(i, Write::Unsent { was_unknown });
                        self.withdraw(i);
                        self.effects.push(Effect::Stop(reason));
                    }
                    AfterSubmit::Unknown => {
                        self.unknown_earlier.remove(&i);
                        // Left as `submitting`: reported `unknown`, never silently paid again. It
                        // stays counted against `--max-credits`: a generation may exist.
                        if let Track::Submitting { reservation, .. } =
                            std::mem::replace(&mut self.tracks[i], Track::Settled(Outcome::Unknown))
                        {
                            reservation.keep();
                        }
                        let error = format!(
                            "the submit's outcome is unknown ({e}); a generation may exist and be paid for. \
                             Left as `unknown`"
                        );
                        self.effects.say(Say::Unknown { job: i, error });
                    }
                    AfterSubmit::Rejected => {
                        self.unknown_earlier.remove(&i);
                        self.tracks[i] = Track::Settled(Outcome::Failed);
                        // A refusal of a local file where the service wants URLs would meet every
                        // job of this model with a file there: those are not sent (nothing paid).
                        if let Some(field) = refused_file_field(job, &e.to_string()) {
                            let why = format!(
                                "not submitted: the service refused a local file for `{field}` of `{}` (job {}: {e}); \
                                 give an https URL for `{field}`",
                                job.model,
                                job.key.short()
                            );
                            self.effects.say(Say::FilesRefused { why: why.clone() });
                            self.refused_files.push((job.model.clone(), field, why));
                        }
                        self.effects.record(
                            i,
                            Write::Failed {
                                failure: Failure::Rejected,
                                error: e.to_string(),
                            },
                        );
                        self.effects.say(Say::Failed {
                            job: i,
                            generation_id: None,
                            error: format!("submit failed: {e}"),
                            resubmitting: false,
                        });
                    }
                }
            }
        }
    }

    /// Takes a job out of remote tracking, freeing its slot.
    /// A download slot it held goes back with its track.
    pub(super) fn settle(&mut self, i: usize, outcome: Outcome) {
        if matches!(self.tracks[i], Track::Remote(_)) {
            self.remote -= 1;
        }
        self.tracks[i] = Track::Settled(outcome);
    }

    fn on_polled(&mut self, i: usize, result: Result<GenerationStatus, ApiError>) {
        let job = &self.jobs[i];
        let now = Instant::now();
        // When to look again, were it still running (the policy needs `self`, `r` borrows it).
        let (kind, age, phase) = match &self.tracks[i] {
            Track::Remote(r) => (
                r.kind.clone(),
                now.duration_since(r.submitted.unwrap_or(r.since)),
                r.phase,
            ),
            _ => return,
        };
        let next_poll = self.poll_wait(&kind, age, phase);
        let Track::Remote(r) = &mut self.tracks[i] else { return };
        let followed = decide::Followed {
            generation_id: &r.generation_id,
            waited: now.duration_since(r.since),
            poll_errors: r.poll_errors,
            next_poll,
        };
        let decision = decide::after_poll(&result, &followed, self.config.generation_timeout, &self.config.retry);
        match decision {
            AfterPoll::Running { next, queued, odd } => {
                r.poll_errors = 0;
                r.last_pending = Some(now);
                if let Stage::Rendering { queued: was, .. } = &mut r.stage {
                    *was = queued;
                }
                // A poll for a fresh link keeps its own time: only a render's polls are planned.
                let planned = matches!(r.stage, Stage::Rendering { .. });
                r.stage.poll_at(now + next, planned);
                self.effects.say(Say::StillRunning { job: i });
                if let Some(word) = odd
                    && self.odd_statuses.insert(word.clone())
                {
                    self.effects.say(Say::OddStatus { job: i, word });
                }
            }
            // Seen completed before, and polled again for a fresh link: the video is paid for,
            // whatever the poll says now. It waits for a rerun to fetch it, never `failed`.
            AfterPoll::GaveUp { message } | AfterPoll::Failed { message } if r.fetching_since.is_some() => {
                let id = r.generation_id.clone();
                let why = format!("it was completed; a poll for a fresh link now says: {message}");
                self.download_failed(i, &id, why);
            }
            AfterPoll::GaveUp { message } => {
                self.effects.record_lazily(
                    i,
                    Write::Failed {
                        failure: Failure::Unfinished,
                        error: message.clone(),
                    },
                );
                self.settle(i, Outcome::Left);
                self.effects.say(Say::Pending {
                    job: i,
                    reason: message,
                });
            }
            AfterPoll::Completed => {
                let Ok(GenerationStatus::Completed {
                    url,
                    credits,
                    file_size,
                }) = result
                else {
                    unreachable!("a completion is decided only from one")
                };
                r.poll_errors = 0;
                r.fetching_since.get_or_insert(now);
                if let Some(credits) = credits {
                    self.ledger.reported(&mut r.charge, credits);
                }
                // Its slot is free from now (it goes with the stage): the download does not hold one.
                let was_in_flight = r.stage.in_flight();
                r.stage = Stage::Fetching(Fetch::Ready { url, size: file_size });
                let id = r.generation_id.clone();
                let render = was_in_flight.then(|| render_time(r, now)).flatten();
                if was_in_flight {
                    self.flow.finishes += 1;
                    self.failures.completed(&super::halt::kind_of(job));
                    self.ceiling.finished();
                    self.effects.say(Say::Generated {
                        job: i,
                        generation_id: id.clone(),
                    });
                }
                self.effects.record_lazily(
                    i,
                    Write::Downloading {
                        id: id.clone(),
                        credits,
                    },
                );
                if let Some(render) = render {
                    self.learn_render(i, id, kind, render);
                }
            }
            AfterPoll::Failed { message } => {
                // A failure takes its own time (a refusal in a second, a crash late in a render):
                // learned as it is, so that the polls of its kind find failures early too.
                let render = render_time(r, now);
                let id = r.generation_id.clone();
                self.flow.finishes += 1;
                if let Some(render) = render {
                    self.learn_render(i, id.clone(), kind, render);
                }
                self.generation_failed(i, id, message);
            }
            AfterPoll::RetryIn { delay } => {
                r.poll_errors += 1;
                // Polls are free and retried quietly; the run's counts show the wait.
                if let Err(e) = &result {
                    self.effects.say(Say::PollRetry {
                        job: i,
                        delay,
                        error: e.to_string(),
                    });
                }
                r.stage.poll_at(now + delay, false);
            }
            AfterPoll::StopRun(reason) => {
                r.stage.poll_at(now, false);
                self.effects.push(Effect::Stop(reason));
            }
        }
    }

    /// Learns one render time of `kind` from the span it lies in (kept in the state for later
    /// runs, with job `i`'s generation `id`), and times again the polls waiting on what was known
    /// before when it changed much.
    fn learn_render(&mut self, i: usize, id: Arc<str>, kind: Arc<str>, (lo, hi): (Duration, Duration)) {
        let Some((render, changed)) = self.render_times.record_between(&kind, lo, hi, fastrand::f64()) else {
            return;
        };
        self.effects.record_lazily(
            i,
            Write::Render {
                id,
                kind: kind.clone(),
                render,
            },
        );
        if changed {
            self.retime_polls(Some(&kind));
        }
    }

    /// How long to wait before polling a generation of `kind` that has run for `age` (`phase`:
    /// its place among the generations of its kind, [`Coordinator::next_phase`]).
    pub(super) fn poll_wait(&self, kind: &str, age: Duration, phase: f64) -> Duration {
        match &self.config.polling {
            super::Polling::Fixed(every) => *every,
            super::Polling::Adaptive(policy) => policy.next_poll(&self.render_times, kind, age, phase),
        }
    }

    /// What is known of `kind`'s renders changed a lot (its first durations came in), or every
    /// kind's plan changed (`None`: the request budget moved): the polls waiting on the earlier
    /// plan are timed again from the new one. Runs a handful of times per kind
    /// (`RenderTimes::record` says when) and at most once per progress tick for the budget, so
    /// its cost per event stays constant.
    pub(super) fn retime_polls(&mut self, kind: Option<&str>) {
        if matches!(self.config.polling, super::Polling::Fixed(_)) {
            return;
        }
        let now = Instant::now();
        for i in 0..self.tracks.len() {
            let Track::Remote(r) = &self.tracks[i] else { continue };
            // A back-off after an error, or a fetch again, keeps its own time; so does a poll
            // already due (waiting for a turn): the new plan would only put it off.
            let due = match r.stage.next() {
                Some(Next::PollAt { planned: true, at }) => at <= now,
                _ => continue,
            };
            if due || kind.is_some_and(|k| &*r.kind != k) {
                continue;
            }
            let age = now.duration_since(r.submitted.unwrap_or(r.since));
            let kind = r.kind.clone();
            let at = now + self.poll_wait(&kind, age, r.phase);
            if let Track::Remote(r) = &mut self.tracks[i] {
                r.stage.poll_at(at, true);
            }
            self.schedule(i);
        }
    }

    /// A paid generation that will not give a video: reported, and submitted again (paid again)
    /// only within `--paid-retries`, counted from the generations its job has had
    /// (`self.attempts`: its record's count at the start, and this run's).
    fn generation_failed(&mut self, i: usize, id: Arc<str>, message: String) {
        let job = &self.jobs[i];
        self.settle(i, Outcome::Failed);
        let kind = super::halt::kind_of(job);
        let verdict = self.failures.failed(&kind, &self.config.halt);
        let attempts = self.attempts[i];
        // Not when its kind, or the run's paying, has just stopped.
        let resubmitting = attempts <= self.config.paid_retries
            && !self.failures.stopped(&kind)
            && !matches!(verdict, Verdict::StopRun { .. })
            && self.shutdown.level() == CancelLevel::Running;
        let error = if resubmitting {
            format!(
                "generation {id} failed: {message} (paid retry {attempts} of {})",
                self.config.paid_retries
            )
        } else {
            format!("generation {id} failed: {message}")
        };
        self.effects.record(
            i,
            Write::Failed {
                failure: Failure::Generation,
                error: message,
            },
        );
        match verdict {
            Verdict::Go => {}
            Verdict::StopKind { failed } => self.effects.say(Say::Halted {
                kind: Some(kind),
                failed,
                finished: failed,
            }),
            Verdict::StopRun { failed, finished } => {
                self.effects.say(Say::Halted {
                    kind: None,
                    failed,
                    finished,
                });
                self.effects.push(Effect::Stop(StopReason::Failing(format!(
                    "{failed} of the {finished} generations finished in this run failed (--halt-run {}%): \
                     nothing more was submitted",
                    self.config.halt.run_share * 100.0
                ))));
            }
        }
        self.effects.say(Say::Failed {
            job: i,
            generation_id: Some(id),
            error,
            resubmitting,
        });
        if resubmitting {
            self.effects.record(i, Write::Queued);
            self.effects.push(Effect::Queue { job: i, front: false });
        }
    }

    fn on_downloaded(&mut self, i: usize, result: Result<Downloaded, DownloadError>) {
        let job = &self.jobs[i];
        let Track::Remote(r) = &mut self.tracks[i] else { return };
        // Until decided below, it is back to waiting for a fresh URL (its download slot freed).
        r.stage = Stage::Fetching(Fetch::Relink(Next::PollAt {
            at: Instant::now(),
            planned: false,
        }));
        if result.is_err() {
            r.download_tries += 1;
        }
        let generation_id = r.generation_id.clone();
        let trying = r.fetching_since.map_or(Duration::ZERO, |t| t.elapsed());
        let decision = decide::after_download(
            &result,
            r.download_tries,
            trying,
            self.config.generation_timeout,
            &self.config.retry,
        );
        match (decision, result) {
            (AfterDownload::Saved, Ok(done)) => {
                self.largest_video = self.largest_video.max(done.bytes);
                let credits = match r.charge {
                    Charge::Reported(c) => Some(c),
                    _ => None,
                };
                // Committed after its folder is synced (`sync_folders`): completed means on disk.
                let folder = self.out.join(&job.file).parent().map(Path::to_path_buf);
                if let Some(dir) = folder.filter(|d| !self.unsynced.contains(d)) {
                    self.unsynced.push(dir);
                }
                self.effects.record_lazily(
                    i,
                    Write::Completed {
                        bytes: done.bytes,
                        sha256: done.sha256,
                    },
                );
                self.settle(i, Outcome::Done);
                self.effects.say(Say::Completed {
                    job: i,
                    generation_id,
                    bytes: done.bytes,
                    credits,
                });
            }
            (AfterDownload::Refetch { delay, warning }, _) => {
                self.effects.say(Say::Refetch { job: i, warning });
                r.stage.poll_at(Instant::now() + delay, false);
            }
            (AfterDownload::StopRun { message, reason }, _) => {
                self.download_failed(i, &generation_id, message);
                self.effects.push(Effect::Stop(reason));
            }
            (AfterDownload::GiveUp { message }, _) => self.download_failed(i, &generation_id, message),
            (AfterDownload::Saved, Err(_)) => unreachable!("a save is decided only from a saved video"),
        }
    }

    /// A video this run cannot keep: its generation stays paid for, and the job `awaiting
    /// download` (never `failed`: the generation succeeded); a rerun fetches it for free.
    fn download_failed(&mut self, i: usize, generation_id: &str, message: String) {
        let reason = format!("generation {generation_id} is paid for; its video is not saved yet: {message}");
        self.effects.record_lazily(
            i,
            Write::Failed {
                failure: Failure::Download,
                error: message,
            },
        );
        self.settle(i, Outcome::Left);
        self.effects.say(Say::Pending { job: i, reason });
    }
}

/// What is known of how long a generation seen finished by this poll took: more than its age
/// when it was last known running, at most its age now. Unknown when this process never saw it
/// running, or when an earlier run submitted it and its submit time, known to the second, is too
/// coarse for it (under 10 s).
fn render_time(r: &Remote, now: Instant) -> Option<(Duration, Duration)> {
    let submitted = r.submitted?;
    let span = (
        r.last_pending?.saturating_duration_since(submitted),
        now.duration_since(submitted),
    );
    (!r.resumed || span.0 >= Duration::from_secs(10)).then_some(span)
}

/// The field whose local file (sent as a `data:` URI) a 400 refuses, when its message says so: it
/// names the field, or speaks of URLs or base64, and the job sent a file there.
fn refused_file_field(job: &crate::plan::Job, message: &str) -> Option<&'static str> {
    let fields = job.local_fields();
    let lower = message.to_ascii_lowercase();
    let about_files = ["url", "uri", "base64", "data:"].iter().any(|w| lower.contains(w));
    fields
        .iter()
        .copied()
        .find(|f| names(&lower, f))
        .or_else(|| (about_files && fields.len() == 1).then(|| fields[0]))
}

/// Whether `text` names `field` as a word of its own (`/last_image_url:` names `last_image_url`,
/// not `image_url`).
fn names(text: &str, field: &str) -> bool {
    let part_of_name = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(field).any(|(at, _)| {
        !part_of_name(text[..at].chars().next_back()) && !part_of_name(text[at + field.len()..].chars().next())
    })
}
