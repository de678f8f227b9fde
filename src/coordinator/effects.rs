//! What an event decided, as values. The handlers of `events.rs` (and the submit path of
//! `dispatch.rs`) change the coordinator's own bookkeeping — tracks, slots, the ledger, what is
//! learned of renders — and push every outward consequence here: a write to the state, an event
//! for the sinks, a job back in the queue, a poll to make, a stop. [`Coordinator::carry_out`]
//! then does them, in order, so a test can read exactly what one event decided without a
//! database or a server.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Coordinator, Event, StopReason, Track};
use crate::api::Paced;
use crate::plan::Job;
use crate::sinks::notice::Notice;
use crate::sinks::{RunEvent, Sinks};
use crate::state::{Failure, RunState, StateError};

/// One outward consequence of an event.
#[derive(Debug)]
pub(super) enum Effect {
    /// A write to the state for `job`.
    Record {
        job: usize,
        write: Write,
        commit: Commit,
    },
    /// Something the sinks hear.
    Emit(Say),
    /// The job (back) in the queue of submits, its track `Queued`: at the front when it was
    /// refused for too many active generations (it goes first once the pause is over), else at
    /// the end (a paid retry, which stays settled as failed if its write is not made).
    Queue {
        job: usize,
        front: bool,
    },
    /// The job's submit, sent again after `delay` (it keeps its slot meanwhile): said as
    /// [`RunEvent::Retrying`], the `attempt`-th retry, because of `error`.
    RetrySubmit {
        job: usize,
        delay: Duration,
        attempt: u32,
        error: String,
    },
    /// The job's POST, sent once this turn's writes are committed ([`Coordinator::flush`]).
    Post {
        job: usize,
        paced: Permit,
    },
    /// The job's generation is polled at `at`.
    PollAt {
        job: usize,
        at: Instant,
    },
    /// The job's video is ready: it waits for a download slot.
    Fetch {
        job: usize,
    },
    Stop(StopReason),
}

/// When a write must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Before the run goes on: committed at the end of this turn of the loop, before any POST it
    /// decided leaves ([`Coordinator::record`]).
    Urgent,
    /// Within [`super::LAZY_COMMIT`], with the writes after it: nothing is sent or paid on its
    /// strength ([`Coordinator::record_lazily`]).
    Lazy,
}

/// The writes the coordinator makes to the state for a job, one per method of [`RunState`].
#[derive(Debug, PartialEq)]
pub(super) enum Write {
    /// Its POST is about to leave (`mark_submitting`).
    Submitting,
    /// Its POST never left, or created nothing: `queued` again, or `unknown` as it was when an
    /// unknown earlier submit was being sent again (`unsend`).
    Unsent {
        was_unknown: bool,
    },
    /// The generation its submit created, its job's `attempt`-th (`record_generation`).
    Generation {
        id: Arc<str>,
        credits: Option<f64>,
        attempt: u32,
    },
    /// Its generation seen completed; its video is fetched (`mark_downloading`).
    Downloading {
        id: Arc<str>,
        credits: Option<f64>,
    },
    /// Its video saved (`mark_completed`).
    Completed {
        bytes: u64,
        sha256: String,
    },
    Failed {
        failure: Failure,
        error: String,
    },
    /// Back in the queue for a paid retry (`mark_queued`).
    Queued,
    /// Why it was left pending in this run (`note_left`).
    Left {
        why: String,
    },
    /// How long its generation's render took, for the polls of `kind` (`record_render`).
    Render {
        id: Arc<str>,
        kind: Arc<str>,
        render: Duration,
    },
}

impl Write {
    fn to(&self, state: &mut RunState, job: &Job) -> Result<(), StateError> {
        let key = &job.key;
        match self {
            Write::Submitting => state.mark_submitting(key),
            Write::Unsent { was_unknown } => state.unsend(key, *was_unknown),
            Write::Generation { id, credits, attempt } => {
                let counted = state.record_generation(key, id, *credits)?;
                // The count in memory decides paid retries: it must be the state's.
                debug_assert_eq!(counted, *attempt, "attempts of `{}`", key.short());
                Ok(())
            }
            Write::Downloading { id, credits } => state.mark_downloading(key, id, *credits),
            Write::Completed { bytes, sha256 } => state.mark_completed(key, &job.file, *bytes, sha256),
            Write::Failed { failure, error } => state.mark_failed(key, *failure, error),
            Write::Queued => state.mark_queued(key),
            Write::Left { why } => state.note_left(key, why),
            Write::Render { id, kind, render } => state.record_render(id, kind, *render),
        }
    }
}

/// A [`RunEvent`] as a value: its job by index, its text its own. Turned into the borrowed form
/// the sinks take when it is emitted ([`Say::emit`]).
#[derive(Debug, PartialEq)]
pub(super) enum Say {
    Submitted {
        job: usize,
        generation_id: Arc<str>,
        attempt: u32,
        credits: Option<f64>,
    },
    Generated {
        job: usize,
        generation_id: Arc<str>,
    },
    Completed {
        job: usize,
        generation_id: Arc<str>,
        bytes: u64,
        credits: Option<f64>,
    },
    Failed {
        job: usize,
        generation_id: Option<Arc<str>>,
        error: String,
        resubmitting: bool,
    },
    Unknown {
        job: usize,
        error: String,
    },
    Pending {
        job: usize,
        reason: String,
    },
    Halted {
        kind: Option<String>,
        failed: u32,
        finished: u32,
    },
    /// A [`Notice`] of the same name.
    CeilingLowered {
        error: String,
        limit: usize,
    },
    FilesRefused {
        why: String,
    },
    StillRunning {
        job: usize,
    },
    OddStatus {
        job: usize,
        word: String,
    },
    PollRetry {
        job: usize,
        delay: Duration,
        error: String,
    },
    Refetch {
        job: usize,
        warning: String,
    },
    Fatal {
        text: String,
    },
}

impl Say {
    pub(super) fn emit(&self, sinks: &mut Sinks<'_>, jobs: &[Job]) {
        let notice = |notice: Notice<'_>, sinks: &mut Sinks<'_>| sinks.emit(RunEvent::Notice(&notice));
        match self {
            Say::Submitted {
                job,
                generation_id,
                attempt,
                credits,
            } => sinks.emit(RunEvent::Submitted {
                job: &jobs[*job],
                generation_id,
                attempt: *attempt,
                credits: *credits,
            }),
            Say::Generated { job, generation_id } => sinks.emit(RunEvent::Generated {
                job: &jobs[*job],
                generation_id,
            }),
            Say::Completed {
                job,
                generation_id,
                bytes,
                credits,
            } => sinks.emit(RunEvent::Completed {
                job: &jobs[*job],
                generation_id: Some(generation_id),
                bytes: *bytes,
                credits: *credits,
            }),
            Say::Failed {
                job,
                generation_id,
                error,
                resubmitting,
            } => sinks.emit(RunEvent::Failed {
                job: &jobs[*job],
                generation_id: generation_id.as_deref(),
                error,
                resubmitting: *resubmitting,
            }),
            Say::Unknown { job, error } => sinks.emit(RunEvent::Unknown {
                job: &jobs[*job],
                error,
            }),
            Say::Pending { job, reason } => sinks.emit(RunEvent::Pending {
                job: &jobs[*job],
                reason,
            }),
            Say::Halted { kind, failed, finished } => sinks.emit(RunEvent::Halted {
                kind: kind.as_deref(),
                failed: *failed,
                finished: *finished,
            }),
            Say::CeilingLowered { error, limit } => notice(Notice::CeilingLowered { error, limit: *limit }, sinks),
            Say::FilesRefused { why } => notice(Notice::FilesRefused { why }, sinks),
            Say::StillRunning { job } => notice(Notice::StillRunning { job: &jobs[*job] }, sinks),
            Say::OddStatus { job, word } => notice(Notice::OddStatus { job: &jobs[*job], word }, sinks),
            Say::PollRetry { job, delay, error } => notice(
                Notice::PollRetry {
                    job: &jobs[*job],
                    delay: *delay,
                    error,
                },
                sinks,
            ),
            Say::Refetch { job, warning } => notice(
                Notice::Refetch {
                    job: &jobs[*job],
                    warning,
                },
                sinks,
            ),
            Say::Fatal { text } => notice(Notice::Fatal { text }, sinks),
        }
    }
}

/// The pacer's permit for a POST, carried to the request: it holds one of the API's connections.
pub(super) struct Permit(pub(super) Paced);

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

/// The effects of the event being handled, in the order decided. One buffer, kept by the
/// coordinator and emptied by each [`Coordinator::carry_out`], so handling an event allocates
/// nothing for it.
#[derive(Debug, Default)]
pub(super) struct Effects(Vec<Effect>);

impl Effects {
    /// A write that must be on disk before the run goes on.
    pub(super) fn record(&mut self, job: usize, write: Write) {
        self.0.push(Effect::Record {
            job,
            write,
            commit: Commit::Urgent,
        });
    }

    /// A write that may share a commit with the next ones, for up to [`super::LAZY_COMMIT`].
    pub(super) fn record_lazily(&mut self, job: usize, write: Write) {
        self.0.push(Effect::Record {
            job,
            write,
            commit: Commit::Lazy,
        });
    }

    pub(super) fn say(&mut self, say: Say) {
        self.0.push(Effect::Emit(say));
    }

    pub(super) fn push(&mut self, effect: Effect) {
        self.0.push(effect);
    }
}

impl std::ops::Deref for Effects {
    type Target = [Effect];

    fn deref(&self) -> &[Effect] {
        &self.0
    }
}

impl Coordinator<'_> {
    /// Carries out the effects decided since the last call, in order.
    ///
    /// A write that fails stops the run ([`StopReason::Fatal`], said by [`Coordinator::write`]),
    /// and the effects after it that would send a submit or put one back to wait — `Queue`,
    /// `RetrySubmit` (with the `Retrying` it would say), `Post` — are not carried out: nothing is
    /// sent or queued on the strength of a write that did not happen (a submit held is
    /// withdrawn, its slot and share of the cap given back). Everything else still happens as
    /// decided, the events above all, so what the run did before it stopped is reported; a
    /// generation whose id could not be recorded is still followed, and named
    /// ([`Notice::Unrecorded`]). The loop calls this after each event, so "after it" never
    /// reaches into another event's effects.
    pub(super) fn carry_out(&mut self) {
        let mut effects = std::mem::take(&mut self.effects.0);
        let mut unrecorded = false;
        for effect in effects.drain(..) {
            match effect {
                Effect::Record { job, write, commit } => {
                    let jobs = self.jobs;
                    let to = |s: &mut RunState| write.to(s, &jobs[job]);
                    let written = match commit {
                        Commit::Urgent => self.record(to),
                        Commit::Lazy => self.record_lazily(to),
                    };
                    if !written {
                        unrecorded = true;
                        if let Write::Generation { id, .. } = &write {
                            self.sinks.emit(RunEvent::Notice(&Notice::Unrecorded {
                                job: &jobs[job],
                                generation_id: id,
                            }));
                        }
                    }
                }
                Effect::Emit(say) => say.emit(&mut self.sinks, self.jobs),
                Effect::Queue { .. } if unrecorded => {}
                Effect::Queue { job, front } => {
                    self.tracks[job] = Track::Queued;
                    match front {
                        true => self.queue.push_front(job),
                        false => self.queue.push_back(job),
                    }
                }
                Effect::RetrySubmit { job, .. } | Effect::Post { job, .. } if unrecorded => self.withdraw(job),
                Effect::RetrySubmit {
                    job,
                    delay,
                    attempt,
                    error,
                } => {
                    self.sinks.emit(RunEvent::Retrying {
                        job: &self.jobs[job],
                        attempt,
                        delay,
                        error: &error,
                    });
                    self.retry_submit(job, delay);
                }
                Effect::Post { job, paced } => self.post(job, paced.0),
                Effect::PollAt { job, at } => self.due.push(Reverse((at, job))),
                Effect::Fetch { job } => self.fetches.push_back(job),
                Effect::Stop(reason) => self.stop(reason),
            }
        }
        // The buffer goes back empty, its room kept for the next event.
        self.effects.0 = effects;
    }

    /// Puts job `i`'s POST in the outbox, sent once this turn's writes are committed.
    fn post(&mut self, i: usize, paced: Paced) {
        let job = &self.jobs[i];
        self.flow.submits += 1;
        let api = self.api.clone();
        let body = job.body();
        let request_id = format!("vidbatch-{}", job.key.short());
        self.outbox.push((
            i,
            Box::pin(async move {
                let result = api.submit(paced, &body, &request_id).await;
                Event::Submitted { job: i, result }
            }),
        ));
    }
}
