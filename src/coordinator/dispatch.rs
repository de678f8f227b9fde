//! Handing out work: which request each turn of the rate limiter is spent on (the policy is in
//! `schedule.rs`), when the loop must wake next, and where a followed job waits for its next
//! step. Nothing here waits: it spawns workers, whose events come back to `events.rs`.

use std::cmp::Reverse;
use std::time::Duration;

use tokio::time::Instant;

use super::{CancelLevel, Coordinator, Event, Outcome, Stage, Track, schedule};
use crate::api::Turn;
use crate::sinks::RunEvent;

impl Coordinator<'_> {
    pub(super) fn next_wake(&self) -> Instant {
        // While a turn is awaited, a due poll waits for that turn, not for a timer: waking for
        // a poll already due would only spin the loop.
        let next_poll = self
            .due
            .peek()
            .map(|Reverse((at, _))| *at)
            .filter(|_| self.turn.is_none());
        [
            next_poll,
            self.retrying.peek().map(|Reverse((at, _))| *at),
            self.submits_paused_until,
            self.lazy_since.map(|t| t + super::LAZY_COMMIT),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_progress, Instant::min)
    }

    /// Puts job `i` where its next step will find it: the heap of due polls, or the queue of
    /// fetches. Called whenever a followed job's stage changes.
    pub(super) fn schedule(&mut self, i: usize) {
        let Track::Remote(r) = &self.tracks[i] else { return };
        match r.stage {
            Stage::PollAt(at) => self.due.push(Reverse((at, i))),
            Stage::Ready { .. } => self.fetches.push_back(i),
            Stage::Polling | Stage::Downloading => {}
        }
    }

    pub(super) fn start_work(&mut self, level: CancelLevel) {
        let now = Instant::now();
        if self.submits_paused_until.is_some_and(|t| t <= now) {
            self.submits_paused_until = None;
        }
        while let Some(&Reverse((at, i))) = self.retrying.peek() {
            if at > now {
                break;
            }
            self.retrying.pop();
            self.ready_retries.push_back(i);
        }
        if level >= CancelLevel::Drain {
            // Stopping: submits not sent yet give their slots back (they are `queued` in the state).
            let waiting: Vec<usize> = self
                .ready_retries
                .drain(..)
                .chain(self.retrying.drain().map(|e| e.0.1))
                .collect();
            for i in waiting {
                self.withdraw(i);
            }
        }
        while self.downloads_running < self.config.downloads
            && let Some(i) = self.fetches.pop_front()
        {
            let Track::Remote(r) = &mut self.tracks[i] else {
                continue;
            };
            // A stale entry (not waiting for a download slot any more) is skipped as it is.
            let Stage::Ready { url, size } = &r.stage else {
                continue;
            };
            let (url, size) = (url.clone(), *size);
            r.stage = Stage::Downloading;
            self.downloads_running += 1;
            let downloader = self.downloader.clone();
            let dest = self.out.join(&self.jobs[i].file);
            self.lookups.spawn(async move {
                let result = downloader.fetch(&url, &dest, size).await;
                Event::Downloaded { job: i, result }
            });
        }
        // Requests want turns: spend every one free right now (the POSTs among them go out
        // after one commit; the API client paces the sends), then ask the rate limiter for the
        // next.
        for _ in 0..1024 {
            if self.turn.is_some() || !self.wants_turn(level, now) {
                break;
            }
            let Some(turn) = self.api.try_turn() else { break };
            self.dispatch(turn, level);
        }
        if self.turn.is_none() && self.wants_turn(level, now) {
            let api = self.api.clone();
            self.turn = Some(Box::pin(async move { api.turn().await }));
        }
    }

    /// Whether a new generation may start now.
    fn slots_free(&self, level: CancelLevel, now: Instant) -> bool {
        level == CancelLevel::Running
            && !self.queue.is_empty()
            && self.slots.in_use() < self.ceiling.limit()
            && self.submits_paused_until.is_none_or(|t| t <= now)
    }

    /// Drops due-poll entries that are stale; says whether a live one is due.
    fn poll_due(&mut self, now: Instant) -> bool {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            let live = matches!(&self.tracks[i], Track::Remote(r) if r.stage == Stage::PollAt(at));
            if live {
                return at <= now;
            }
            self.due.pop();
        }
        false
    }

    fn wants_turn(&mut self, level: CancelLevel, now: Instant) -> bool {
        self.slots_free(level, now) || !self.ready_retries.is_empty() || self.poll_due(now)
    }

    /// Spends a turn of the rate limiter on what [`schedule::choose`] says goes first.
    pub(super) fn dispatch(&mut self, turn: Turn, level: CancelLevel) {
        let now = Instant::now();
        let slots_free = self.slots_free(level, now);
        let retry_ready = level == CancelLevel::Running && !self.ready_retries.is_empty();
        let poll_due = self.poll_due(now);
        match schedule::choose(slots_free, retry_ready, poll_due) {
            schedule::Next::Submit => {
                let i = match self.ready_retries.pop_front() {
                    Some(i) => i,
                    None => {
                        let Some(i) = self.next_affordable() else { return };
                        // The slot is taken now that the request can go: no slot waits idle
                        // for the rate limiter.
                        self.tracks[i] = Track::Submitting {
                            retries: 0,
                            sent: false,
                            slot: self.slots.take(),
                            charge: None,
                        };
                        i
                    }
                };
                self.send_submit(i, turn);
            }
            schedule::Next::Poll => {
                let Some(Reverse((_, i))) = self.due.pop() else { return };
                let Track::Remote(r) = &mut self.tracks[i] else { return };
                r.stage = Stage::Polling;
                let api = self.api.clone();
                let id = r.generation_id.clone();
                // Sent at once: what it depends on, the generation id, was committed in the turn
                // of the loop that received it.
                self.lookups.spawn(async move {
                    let result = api.poll(turn, &id).await;
                    Event::Polled { job: i, result }
                });
            }
            // Nothing wants it any more: a turn unused is a request not made.
            schedule::Next::Keep => {}
        }
    }

    /// The next queued job that `--max-credits` leaves room for. A job that does not fit is left
    /// pending for this run, with the reason in its row; a cheaper one behind it may still fit.
    fn next_affordable(&mut self) -> Option<usize> {
        while let Some(i) = self.queue.pop_front() {
            let expected = self.prices.estimate(&self.jobs[i].model);
            if self.ledger.allows(expected.credits) {
                return Some(i);
            }
            let cap = self.ledger.cap.unwrap_or_default();
            let why = format!(
                "budget reached: submitting it ({} credits, {}) would pass --max-credits {} \
                 ({} committed in this folder)",
                crate::sinks::thousands(expected.credits),
                expected.basis.as_str(),
                crate::sinks::thousands(cap),
                crate::sinks::thousands(self.ledger.committed)
            );
            let job = &self.jobs[i];
            self.record(|s| s.note_left(&job.key, &why));
            self.tracks[i] = Track::Settled(Outcome::Left);
            self.over_budget += 1;
            self.sinks.emit(RunEvent::Pending { job, reason: &why });
        }
        None
    }

    /// A submit to try again after `delay`, keeping its slot. Nothing is recorded meanwhile:
    /// the job stays `queued` in the state until its POST really goes out, so a run killed while
    /// it waits leaves nothing to be unsure about.
    pub(super) fn retry_submit(&mut self, i: usize, delay: Duration) {
        if delay.is_zero() {
            self.ready_retries.push_back(i);
        } else {
            self.retrying.push(Reverse((Instant::now() + delay, i)));
        }
    }

    /// The job's turn has come: record that it is being submitted, then POST.
    pub(super) fn send_submit(&mut self, i: usize, turn: Turn) {
        let job = &self.jobs[i];
        if self.shutdown.level() >= CancelLevel::Drain || !self.record(|s| s.mark_submitting(&job.key)) {
            self.withdraw(i);
            return;
        }
        // Counted against `--max-credits` from the record on: the POST may create a generation.
        // A retry keeps what its first try reserved (it was checked against the cap then).
        let expected = self.prices.estimate(&job.model).credits;
        if let Track::Submitting { sent, charge, .. } = &mut self.tracks[i] {
            *sent = true;
            if charge.is_none() {
                *charge = Some(self.ledger.reserve(expected));
            }
        }
        let api = self.api.clone();
        let body = job.body();
        let request_id = format!("vidbatch-{}", job.key.short());
        self.outbox.push((
            i,
            Box::pin(async move {
                let result = api.submit(turn, &body, &request_id).await;
                Event::Submitted { job: i, result }
            }),
        ));
    }

    /// A submit that never went out gives its slot (and what it counted against the cap) back;
    /// the job is still `queued` in the state.
    pub(super) fn withdraw(&mut self, i: usize) {
        self.release_charge(i);
        self.tracks[i] = Track::Queued;
    }

    /// A submit that created nothing no longer counts against `--max-credits`.
    pub(super) fn release_charge(&mut self, i: usize) {
        if let Track::Submitting { charge, .. } = &mut self.tracks[i]
            && let Some(charge) = charge.take()
        {
            self.ledger.release(charge);
        }
    }
}
