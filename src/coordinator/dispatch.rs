//! Handing out work: which request each turn of the rate limiter is spent on (the policy is in
//! `schedule.rs`), when the loop must wake next, and where a followed job waits for its next
//! step. Nothing here waits: it spawns workers, whose events come back to `events.rs`. What a
//! submit's way out writes and says is pushed as effects, like an event's ([`super::effects`]).

use std::cmp::Reverse;
use std::time::Duration;

use tokio::time::Instant;

use super::effects::{Effect, Permit, Say, Write};
use super::{CancelLevel, Coordinator, Event, Fetch, Next, Outcome, Stage, Track, schedule};
use crate::api::Turn;

/// How often the polls waiting for a turn are ranked again ([`Coordinator::next_poll`]).
const READY_RERANK: Duration = Duration::from_millis(100);

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

    /// Puts job `i` where its next step will find it (as an effect): the heap of due polls, or
    /// the queue of fetches. Called whenever a followed job's stage changes.
    pub(super) fn schedule(&mut self, i: usize) {
        let Track::Remote(r) = &self.tracks[i] else { return };
        match (&r.stage, r.stage.next()) {
            (_, Some(Next::PollAt { at, .. })) => self.effects.push(Effect::PollAt { job: i, at }),
            (Stage::Fetching(Fetch::Ready { .. }), _) => self.effects.push(Effect::Fetch { job: i }),
            _ => {}
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
        while self.downloads.in_use() < self.config.downloads
            && let Some(i) = self.fetches.pop_front()
        {
            let Track::Remote(r) = &mut self.tracks[i] else {
                continue;
            };
            // A stale entry (not waiting for a download slot any more) is skipped as it is.
            let Stage::Fetching(Fetch::Ready { url, size }) = &r.stage else {
                continue;
            };
            let (url, size) = (url.clone(), *size);
            r.stage = Stage::Fetching(Fetch::Downloading(self.downloads.take()));
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

    /// Whether job `i` is still to be polled at `at` (a job rescheduled leaves its old entries
    /// behind).
    fn poll_live(&self, i: usize, at: Instant) -> bool {
        matches!(&self.tracks[i],
            Track::Remote(r) if matches!(r.stage.next(), Some(Next::PollAt { at: t, .. }) if t == at))
    }

    /// Drops due-poll entries that are stale; says whether a live one is due.
    fn poll_due(&mut self, now: Instant) -> bool {
        while let Some(&(_, Reverse(at), i)) = self.ready_polls.peek() {
            if self.poll_live(i, at) {
                return true;
            }
            self.ready_polls.pop();
        }
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if self.poll_live(i, at) {
                return at <= now;
            }
            self.due.pop();
        }
        false
    }

    /// The poll a turn goes to: of those whose time has come, the one most likely to find its
    /// generation finished, from what is known of its kind's renders: the chance that it
    /// finished since it was last seen running. Only where polls wait for turns (the rate limit
    /// is what binds) does the order matter: a poll likely to find a finish frees a slot, one
    /// likely to find the render still going can wait, and is then likelier to find it done.
    /// (The oldest first is not it: a generation looked at a moment ago, old as it is, has had
    /// less time to finish since than a younger one not looked at for seconds.)
    pub(super) fn next_poll(&mut self, now: Instant) -> Option<usize> {
        // The chances of polls left waiting grow as they wait: taken again now and then, so that
        // one found unlikely at first is not passed over for good by a stream of likelier ones.
        if now.duration_since(self.ready_ranked) >= READY_RERANK && !self.ready_polls.is_empty() {
            self.ready_ranked = now;
            let waiting = std::mem::take(&mut self.ready_polls).into_vec();
            self.ready_polls = waiting
                .into_iter()
                .filter(|&(_, Reverse(at), i)| self.poll_live(i, at))
                .map(|(_, at, i)| (self.poll_chance(i, now), at, i))
                .collect();
        }
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            if !self.poll_live(i, at) {
                continue;
            }
            let chance = self.poll_chance(i, now);
            self.ready_polls.push((chance, Reverse(at), i));
        }
        while let Some((_, Reverse(at), i)) = self.ready_polls.pop() {
            if self.poll_live(i, at) {
                return Some(i);
            }
        }
        None
    }

    /// The rank of job `i`'s poll among those waiting for a turn: the chance that its generation
    /// finished since it was last seen running (in millionths), then how long that was (in
    /// microseconds): with few renders known, every generation older than all of them has a
    /// chance of one, and the one not looked at for longest goes first.
    fn poll_chance(&self, i: usize, now: Instant) -> (u64, u64) {
        let Track::Remote(r) = &self.tracks[i] else {
            return (0, 0);
        };
        let submitted = r.submitted.unwrap_or(r.since);
        let age = now.duration_since(submitted);
        let since = r
            .last_pending
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(submitted));
        // Before anything is known of its kind: its age over the prior, below any chance known
        // to be better than even.
        let chance = self
            .render_times
            .chance_finished(&r.kind, since, age)
            .unwrap_or_else(|| {
                let prior = match &self.config.polling {
                    super::Polling::Adaptive(policy) => policy.prior_for(&self.render_times, &r.kind),
                    super::Polling::Fixed(every) => *every,
                };
                (age.as_secs_f64() / prior.as_secs_f64().max(1e-3)).min(1.0) / 2.0
            });
        ((chance * 1e6) as u64, age.saturating_sub(since).as_micros() as u64)
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
                        let chosen = self.next_affordable();
                        // What was left on the way (held back, over the cap) is recorded and said.
                        self.carry_out();
                        let Some((i, reservation)) = chosen else {
                            return;
                        };
                        // The slot is taken now that the request can go: no slot waits idle
                        // for the rate limiter.
                        self.tracks[i] = Track::Submitting {
                            retries: 0,
                            sent: false,
                            slot: self.slots.take(),
                            reservation,
                        };
                        i
                    }
                };
                let api = self.api.clone();
                // Recorded when the pacer lets it go (`send_submit`), not now: a kill while it
                // waits there leaves it `queued`, not `unknown`.
                self.lookups.spawn(async move {
                    let paced = api.pace_submit(turn).await;
                    Event::Paced { job: i, paced }
                });
            }
            schedule::Next::Poll => {
                let Some(i) = self.next_poll(now) else { return };
                let Track::Remote(r) = &mut self.tracks[i] else { return };
                match &mut r.stage {
                    Stage::Rendering { next, .. } | Stage::Fetching(Fetch::Relink(next)) => *next = Next::Polling,
                    Stage::Fetching(_) => return,
                }
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

    /// The next queued job that `--max-credits` leaves room for, with its share of the cap held.
    /// A job that does not fit is left pending for this run, with the reason in its row (an
    /// unknown one sent again stays `unknown`); a cheaper one behind it may still fit.
    pub(super) fn next_affordable(&mut self) -> Option<(usize, crate::cost::Reservation)> {
        if !self.disk_has_room() {
            return None;
        }
        while let Some(i) = self.queue.pop_front() {
            if self.held_back(i) {
                continue;
            }
            let job = &self.jobs[i];
            if let Some((_, _, why)) = self
                .refused_files
                .iter()
                .find(|(model, field, _)| *model == job.model && job.local_fields().contains(field))
                .filter(|_| !self.unknown_earlier.contains(&i))
            {
                let why = why.clone();
                self.effects.record(i, Write::Left { why: why.clone() });
                self.tracks[i] = Track::Settled(Outcome::Left);
                self.effects.say(Say::Pending { job: i, reason: why });
                continue;
            }
            let expected = self.prices.estimate_job(&self.jobs[i]);
            if self.ledger.allows(expected.credits) {
                return Some((i, self.ledger.reserve(expected.credits)));
            }
            let cap = self.ledger.cap.unwrap_or_default();
            let why = format!(
                "budget reached: submitting it ({} credits, {}) would pass --max-credits {} \
                 ({} committed in this folder)",
                crate::sinks::thousands(expected.credits),
                expected.basis.as_str(),
                crate::sinks::thousands(cap),
                crate::sinks::thousands(self.ledger.committed())
            );
            if self.unknown_earlier.contains(&i) {
                // Its earlier submit still counts and is still unknown: so is the job.
                self.tracks[i] = Track::Settled(Outcome::Unknown);
                let error = format!("not submitted again: {why}; its earlier submit is still `unknown`");
                self.effects.say(Say::Unknown { job: i, error });
                continue;
            }
            self.effects.record(i, Write::Left { why: why.clone() });
            self.tracks[i] = Track::Settled(Outcome::Left);
            self.effects.say(Say::Pending { job: i, reason: why });
        }
        None
    }

    /// Whether job `i` is of a kind whose submits stopped (`--halt-kind`): then it is not sent.
    /// It is left pending with the reason in its row; one whose earlier submit is unknown stays
    /// `unknown` (its earlier submit may have made a generation). Its slot and share of the cap go
    /// back with its track.
    pub(super) fn held_back(&mut self, i: usize) -> bool {
        if !self.failures.any_stopped() {
            return false;
        }
        let job = &self.jobs[i];
        let kind = super::halt::kind_of(job);
        if !self.failures.stopped(&kind) {
            return false;
        }
        let why = format!(
            "not submitted: {} generations of `{kind}` failed in this run with none completed \
             (--halt-kind {}); look at the failures, then rerun (`--halt-kind 0` never stops a kind)",
            self.config.halt.kind_failures, self.config.halt.kind_failures
        );
        if self.unknown_earlier.contains(&i) {
            self.tracks[i] = Track::Settled(Outcome::Unknown);
            let error = format!("not submitted again: {why}; its earlier submit is still `unknown`");
            self.effects.say(Say::Unknown { job: i, error });
        } else {
            self.effects.record(i, Write::Left { why: why.clone() });
            self.tracks[i] = Track::Settled(Outcome::Left);
            self.effects.say(Say::Pending { job: i, reason: why });
        }
        true
    }

    /// Whether the disks holding the output folder and its videos can take one more video: a
    /// generation paid for must have somewhere to go. Looked at again at most every
    /// [`DISK_RECHECK`] (one `statvfs` each); too little room stops the submits for good.
    fn disk_has_room(&mut self) -> bool {
        let now = Instant::now();
        if let Some((at, room)) = self.disk_checked
            && now.duration_since(at) < DISK_RECHECK
        {
            return room;
        }
        // Room for the videos already paid for and not saved yet, as large as the largest seen,
        // besides the margin.
        let unsaved = (self.slots.in_use() + self.fetches.len() + self.downloads.in_use()) as u64;
        let margin = self
            .config
            .min_free
            .unwrap_or_else(|| self.largest_video.saturating_mul(2).max(super::DEFAULT_MIN_FREE));
        let needed = margin.saturating_add(unsaved.saturating_mul(self.largest_video));
        let videos = self.out.join("videos");
        let short = [self.out.as_path(), videos.as_path()]
            .into_iter()
            .filter_map(|dir| Some((dir, crate::download::free_space(dir)?)))
            .find(|&(_, free)| free < needed);
        self.disk_checked = Some((now, short.is_none()));
        let Some((dir, free)) = short else { return true };
        let text = format!(
            "the disk holding `{}` has {} free, less than the {} a video may need (--min-free): \
             nothing more is submitted or paid for",
            dir.display(),
            bytes_text(free),
            bytes_text(needed)
        );
        self.effects.say(Say::Fatal { text: text.clone() });
        self.effects.push(Effect::Stop(super::StopReason::DiskFull(text)));
        false
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

    /// The pacer let job `i`'s submit go: record that it is being submitted, then POST once the
    /// record is committed ([`Coordinator::flush`], at the end of this turn of the loop).
    ///
    /// A kill between the record and the request's first bytes on the wire leaves the job
    /// `unknown` though nothing reached the service. That window is the commit's sync (a few
    /// milliseconds on a disk: the record written to the journal survives a killed process
    /// before the sync returns, and the POST must wait for the sync, or a power cut could lose
    /// the record of a paid generation), the rest of this turn of the loop (spawning the
    /// request: microseconds; the loop yields to it at once), and opening a connection when none
    /// is free in the pool (a TCP handshake, and TLS against the real service: tens to hundreds
    /// of milliseconds once per connection, kept alive after). Waiting for the pacer, which can
    /// take several periods, is outside it.
    pub(super) fn send_submit(&mut self, i: usize, paced: crate::api::Paced) {
        if !matches!(self.tracks[i], Track::Submitting { sent: false, .. }) {
            return;
        }
        // Its kind may have stopped while it waited (a retry's back-off, the pacer).
        if self.held_back(i) {
            return;
        }
        if self.shutdown.level() >= CancelLevel::Drain {
            self.withdraw(i);
            return;
        }
        // Its POST goes into the outbox only once its record is written (`carry_out`).
        self.effects.record(i, Write::Submitting);
        if let Track::Submitting { sent, .. } = &mut self.tracks[i] {
            *sent = true;
        }
        self.effects.push(Effect::Post {
            job: i,
            paced: Permit(paced),
        });
    }

    /// A submit that never went out gives its slot and what it held of the cap back (dropped
    /// with its track); the job is still `queued` in the state (or `unknown`, as it was).
    pub(super) fn withdraw(&mut self, i: usize) {
        self.tracks[i] = match self.tracks[i] {
            Track::Submitting { .. } if self.unknown_earlier.contains(&i) => Track::Settled(Outcome::Unknown),
            _ => Track::Queued,
        };
    }
}

/// How long a look at the disk's free space stands.
const DISK_RECHECK: Duration = Duration::from_millis(250);

/// `12.5 MB`, `640 kB`: sizes as people read them.
fn bytes_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.0} kB", b as f64 / 1e3),
        b => format!("{b} bytes"),
    }
}
