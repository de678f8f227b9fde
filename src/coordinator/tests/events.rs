use super::*;
use crate::api::{GenerationStatus, Pending, Submission};
use crate::coordinator::effects::{Commit, Effect, Say, Write};
use crate::download::DownloadError;

/// Nine prompts of one model, registered in a state in `dir/out`.
fn built(dir: &std::path::Path) -> (plan::Plan, std::path::PathBuf) {
    let path = dir.join("m.yaml");
    std::fs::write(&path, MANIFEST).unwrap();
    let plan = plan::plan(&manifest::load(&path).unwrap()).unwrap();
    let out = dir.join("out");
    RunState::open(&out, "test").unwrap().register(&plan.jobs).unwrap();
    (plan, out)
}

/// Adaptive polling, `paid_retries` paid resubmissions per job.
fn adaptive(paid_retries: u32) -> RunConfig {
    RunConfig {
        polling: Polling::Adaptive(polling::PollPolicy::scaled(Duration::from_secs(3))),
        ..config(paid_retries, false)
    }
}

/// Job `i` taken off the queue with a slot, its POST sent, as the submit path leaves it.
fn sending(c: &mut Coordinator, i: usize) {
    c.queue.retain(|&j| j != i);
    c.tracks[i] = Track::Submitting {
        retries: 0,
        sent: true,
        slot: c.slots.take(),
        reservation: c.ledger.reserve(0.0),
    };
}

fn created(id: &str) -> Result<Submission, crate::api::ApiError> {
    Ok(Submission {
        generation_id: id.into(),
        credits: None,
    })
}

/// Job `i`'s POST sent and its generation `id` created, carried out.
fn submitted(c: &mut Coordinator, i: usize, id: &str) {
    sending(c, i);
    c.handle(Event::Submitted {
        job: i,
        result: created(id),
    });
    c.carry_out();
}

/// A poll of job `i` answered `status`: decided, not carried out.
fn polled(c: &mut Coordinator, i: usize, status: GenerationStatus) {
    c.handle(Event::Polled {
        job: i,
        result: Ok(status),
    });
}

fn running() -> GenerationStatus {
    GenerationStatus::Pending(Pending::Known("generating".into()))
}

fn completed() -> GenerationStatus {
    GenerationStatus::Completed {
        url: "http://127.0.0.1:9/v.mp4".into(),
        credits: Some(1000.0),
        file_size: None,
    }
}

fn failed() -> GenerationStatus {
    GenerationStatus::Failed {
        message: "the template cannot be rendered".into(),
    }
}

/// From this moment, every write that sets a job to one of `phases` fails, as on a failing disk:
/// another connection adds a trigger to the state (the coordinator's batch must be committed).
fn fail_writes_to(out: &std::path::Path, phases: &str) {
    let conn = rusqlite::Connection::open(out.join("state.db")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER failing_disk BEFORE UPDATE ON jobs WHEN NEW.phase IN ({phases})
         BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;"
    ))
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_finish_frees_its_slot_is_learned_from_its_span_and_waits_for_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    sending(&mut c, 0);
    c.handle(Event::Submitted {
        job: 0,
        result: created("g0"),
    });
    // The id is recorded before anything else, urgently: a kill must not lose a paid generation.
    assert!(
        matches!(&c.effects[..], [
            Effect::Record { job: 0, write: Write::Generation { id, attempt: 1, .. }, commit: Commit::Urgent },
            Effect::Emit(Say::Submitted { job: 0, attempt: 1, .. }),
            Effect::PollAt { job: 0, .. },
        ] if &**id == "g0"),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert_eq!(c.slots.in_use(), 1, "the generation holds its slot");
    tokio::time::advance(Duration::from_secs(2)).await;
    polled(&mut c, 0, running());
    assert!(
        matches!(
            &c.effects[..],
            [
                Effect::Emit(Say::StillRunning { job: 0 }),
                Effect::PollAt { job: 0, .. }
            ]
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    tokio::time::advance(Duration::from_secs(2)).await;
    polled(&mut c, 0, completed());
    assert_eq!(
        c.slots.in_use(),
        0,
        "seen finished: its slot is free for the next submit"
    );
    // Said, written when it may wait (a crash loses nothing paid), learned, and fetched.
    assert!(
        matches!(&c.effects[..], [
            Effect::Emit(Say::Generated { job: 0, .. }),
            Effect::Record { job: 0, write: Write::Downloading { id, credits }, commit: Commit::Lazy },
            Effect::Record { job: 0, write: Write::Render { .. }, commit: Commit::Lazy },
            Effect::Fetch { job: 0 },
        ] if &**id == "g0" && *credits == Some(1000.0)),
        "{:#?}",
        c.effects
    );
    // Finished between the poll at 2 s that saw it running and the one at 4 s.
    let kind = polling::kind_of(&plan.jobs[0].model, plan.jobs[0].params());
    let learned = c.render_times.median(&kind).unwrap();
    assert!(
        learned > Duration::from_secs(2) && learned <= Duration::from_secs(4),
        "{learned:?}"
    );
    c.carry_out();
    assert!(c.fetches.contains(&0), "waiting for a download slot");
    c.commit();
    let record = &c.state.records().unwrap()[&plan.jobs[0].key];
    assert_eq!(record.phase, Phase::Downloading);
    assert_eq!(record.generation_id.as_deref(), Some("g0"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_download_gives_its_slot_back_and_asks_for_a_fresh_link() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    submitted(&mut c, 0, "g0");
    polled(&mut c, 0, completed());
    c.carry_out();
    // Taken by a download slot, as `start_work` does.
    if let Track::Remote(r) = &mut c.tracks[0] {
        r.stage = Stage::Fetching(Fetch::Downloading(c.downloads.take()));
    }
    assert_eq!(c.downloads.in_use(), 1);
    c.handle(Event::Downloaded {
        job: 0,
        result: Err(DownloadError::Transient("cut off".into())),
    });
    assert_eq!(c.downloads.in_use(), 0, "the slot went back with the stage");
    assert!(
        matches!(
            &c.effects[..],
            [Effect::Emit(Say::Refetch { job: 0, .. }), Effect::PollAt { job: 0, .. }]
        ),
        "nothing written: a fresh link is free; {:#?}",
        c.effects
    );
    let Track::Remote(r) = &c.tracks[0] else {
        panic!("still followed")
    };
    assert!(
        matches!(
            r.stage,
            Stage::Fetching(Fetch::Relink(Next::PollAt { planned: false, .. }))
        ),
        "a fresh link is polled for, when the policy's plans do not move it"
    );
    assert_eq!(r.download_tries, 1);
    c.carry_out();
}

#[tokio::test(start_paused = true)]
async fn three_paid_failures_of_a_kind_hold_its_other_jobs_back_unpaid() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    // One paid retry each: the first two failures are sent again, the third is not.
    let mut c = coordinator(&plan, &out, adaptive(1));
    // Job 8's POST was decided in the turn that sees the third failure: recorded `submitting`,
    // waiting in the outbox for the commit.
    sending(&mut c, 8);
    let key = plan.jobs[8].key.clone();
    assert!(c.record(|s| s.mark_submitting(&key)));
    c.outbox.push((
        8,
        Box::pin(async {
            Event::Submitted {
                job: 8,
                result: Err(crate::api::ApiError::Connect("never sent".into())),
            }
        }),
    ));
    for i in 0..2 {
        submitted(&mut c, i, &format!("g{i}"));
        tokio::time::advance(Duration::from_secs(1)).await;
        polled(&mut c, i, failed());
        assert!(
            matches!(&c.effects[..], [
                Effect::Record { job, write: Write::Failed { failure: Failure::Generation, .. }, commit: Commit::Urgent },
                Effect::Emit(Say::Failed { resubmitting: true, .. }),
                Effect::Record { write: Write::Queued, commit: Commit::Urgent, .. },
                Effect::Queue { front: false, .. },
            ] if *job == i),
            "{:#?}",
            c.effects
        );
        c.carry_out();
    }
    submitted(&mut c, 2, "g2");
    tokio::time::advance(Duration::from_secs(1)).await;
    polled(&mut c, 2, failed());
    // The kind stops here: said, and this failure is not paid for again.
    let kind = halt::kind_of(&plan.jobs[2]);
    assert!(
        matches!(&c.effects[..], [
            Effect::Record { job: 2, write: Write::Failed { failure: Failure::Generation, .. }, commit: Commit::Urgent },
            Effect::Emit(Say::Halted { kind: Some(halted), failed: 3, finished: 3 }),
            Effect::Emit(Say::Failed { job: 2, resubmitting: false, .. }),
        ] if *halted == kind),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert!(matches!(c.tracks[2], Track::Settled(Outcome::Failed)));
    // The POST decided before the stop is not sent: undone in the same commit, its slot back.
    assert!(!c.flush() && c.outbox.is_empty() && c.submits.is_empty());
    assert_eq!(c.slots.in_use(), 0);
    // Nothing more of that kind is taken: the jobs left, paid retries too, are pending with the
    // reason.
    assert!(c.next_affordable().is_none());
    c.carry_out();
    assert!(
        (0..9)
            .filter(|&i| i != 2)
            .all(|i| matches!(c.tracks[i], Track::Settled(Outcome::Left)))
    );
    c.commit();
    let records = c.state.records().unwrap();
    assert_eq!(
        records[&plan.jobs[8].key].phase,
        Phase::Queued,
        "never sent, so never `submitting`"
    );
    for i in [0, 5] {
        let note = records[&plan.jobs[i].key].error.clone().unwrap_or_default();
        assert!(note.contains("--halt-kind 3"), "{note}");
        assert_eq!(records[&plan.jobs[i].key].phase, Phase::Queued, "not submitted again");
    }
}

#[tokio::test(start_paused = true)]
async fn a_submit_refused_for_too_many_active_goes_back_first_and_is_undone_urgently() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    sending(&mut c, 3);
    c.handle(Event::Submitted {
        job: 3,
        result: Err(crate::api::ApiError::Http {
            status: 429,
            message: "too many generations running".into(),
            code: Some("too_many_active_generations".into()),
            retry_after: None,
        }),
    });
    assert_eq!(c.slots.in_use(), 0, "nothing was created: its slot is free");
    assert!(matches!(c.tracks[3], Track::Queued));
    // Its `submitting` record undone before anything else is sent; then first in the queue.
    assert!(
        matches!(
            &c.effects[..],
            [
                Effect::Emit(Say::CeilingLowered { limit: 1, .. }),
                Effect::Record {
                    job: 3,
                    write: Write::Unsent { was_unknown: false },
                    commit: Commit::Urgent
                },
                Effect::Queue { job: 3, front: true },
            ]
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert_eq!(c.queue.front(), Some(&3));
    assert!(c.submits_paused_until.is_some(), "no submit before the pause is over");
}

#[tokio::test(start_paused = true)]
async fn a_failed_generation_is_paid_again_within_paid_retries_and_not_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(1));
    submitted(&mut c, 0, "g0");
    tokio::time::advance(Duration::from_secs(1)).await;
    polled(&mut c, 0, failed());
    // Recorded failed, said, then back to `queued` (urgently: it is to be paid again) and queued.
    assert!(
        matches!(&c.effects[..], [
            Effect::Record { job: 0, write: Write::Failed { failure: Failure::Generation, .. }, commit: Commit::Urgent },
            Effect::Emit(Say::Failed { job: 0, resubmitting: true, error, .. }),
            Effect::Record { job: 0, write: Write::Queued, commit: Commit::Urgent },
            Effect::Queue { job: 0, front: false },
        ] if error.ends_with("(paid retry 1 of 1)")),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert_eq!(c.queue.back(), Some(&0));
    assert!(matches!(c.tracks[0], Track::Queued));
    sending(&mut c, 0);
    c.handle(Event::Submitted {
        job: 0,
        result: created("g0b"),
    });
    assert!(
        matches!(
            &c.effects[0],
            Effect::Record {
                job: 0,
                write: Write::Generation { attempt: 2, .. },
                ..
            }
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    // The second generation fails too: past `--paid-retries`, nothing more is paid.
    tokio::time::advance(Duration::from_secs(1)).await;
    polled(&mut c, 0, failed());
    assert!(
        matches!(
            &c.effects[..],
            [
                Effect::Record {
                    job: 0,
                    write: Write::Failed { .. },
                    ..
                },
                Effect::Emit(Say::Failed {
                    job: 0,
                    resubmitting: false,
                    ..
                }),
            ]
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert!(matches!(c.tracks[0], Track::Settled(Outcome::Failed)));
    assert!(!c.queue.contains(&0));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_job_counts_its_earlier_generations_against_paid_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    {
        // An earlier run paid for one generation of job 0, which failed.
        let mut state = RunState::open(&out, "test").unwrap();
        let key = &plan.jobs[0].key;
        state.mark_submitting(key).unwrap();
        state.record_generation(key, "g1", None).unwrap();
        state.mark_failed(key, Failure::Generation, "x").unwrap();
    }
    let mut c = coordinator(&plan, &out, adaptive(1));
    assert!(c.queue.contains(&0), "--paid-retries 1 allows one more generation");
    assert_eq!(c.attempts[0], 1, "counted from its record");
    submitted(&mut c, 0, "g2");
    polled(&mut c, 0, failed());
    assert!(
        c.effects.iter().all(|e| !matches!(
            e,
            Effect::Queue { .. }
                | Effect::Record {
                    write: Write::Queued,
                    ..
                }
        )),
        "its second generation was its last: {:#?}",
        c.effects
    );
    assert!(c.effects.iter().any(|e| matches!(
        e,
        Effect::Emit(Say::Failed {
            job: 0,
            resubmitting: false,
            ..
        })
    )));
    c.carry_out();
    c.commit();
    assert_eq!(c.state.records().unwrap()[&plan.jobs[0].key].attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_cancels_the_queue_effects_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(1));
    submitted(&mut c, 0, "g0");
    sending(&mut c, 1);
    c.commit();
    fail_writes_to(&out, "'queued'");
    // A paid retry is decided as always; its `mark_queued` fails: the run stops, the job is not
    // queued to be paid again, and stays settled as failed.
    polled(&mut c, 0, failed());
    assert!(matches!(c.effects.last(), Some(Effect::Queue { job: 0, .. })));
    c.carry_out();
    assert!(matches!(c.stopped, Some(StopReason::Fatal(_))), "{:?}", c.stopped);
    assert!(!c.queue.contains(&0), "not queued without its record");
    assert!(matches!(c.tracks[0], Track::Settled(Outcome::Failed)));
    // A refused submit whose undo fails is not put back in the queue either.
    c.handle(Event::Submitted {
        job: 1,
        result: Err(crate::api::ApiError::Http {
            status: 429,
            message: "too many generations running".into(),
            code: Some("too_many_active_generations".into()),
            retry_after: None,
        }),
    });
    assert!(matches!(c.effects.last(), Some(Effect::Queue { job: 1, front: true })));
    c.carry_out();
    assert!(!c.queue.contains(&1));
    assert_eq!(c.slots.in_use(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_retry_whose_undo_failed_is_withdrawn_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    sending(&mut c, 2);
    fail_writes_to(&out, "'queued'");
    c.handle(Event::Submitted {
        job: 2,
        result: Err(crate::api::ApiError::Connect("connection refused".into())),
    });
    assert!(
        matches!(
            &c.effects[..],
            [
                Effect::Record {
                    job: 2,
                    write: Write::Unsent { was_unknown: false },
                    commit: Commit::Urgent
                },
                Effect::RetrySubmit { job: 2, attempt: 1, .. },
            ]
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert!(c.retrying.is_empty() && c.ready_retries.is_empty(), "not sent again");
    assert!(matches!(c.tracks[2], Track::Queued), "withdrawn");
    assert_eq!(c.slots.in_use(), 0);
    assert!(matches!(c.stopped, Some(StopReason::Fatal(_))));
}

#[tokio::test(start_paused = true)]
async fn a_post_whose_submitting_record_failed_is_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (plan, out) = built(dir.path());
    let mut c = coordinator(&plan, &out, adaptive(0));
    fail_writes_to(&out, "'submitting'");
    // Chosen, and its turn came: the pacer lets it go.
    c.queue.retain(|&j| j != 4);
    c.tracks[4] = Track::Submitting {
        retries: 0,
        sent: false,
        slot: c.slots.take(),
        reservation: c.ledger.reserve(0.0),
    };
    let turn = c.api.try_turn().expect("a turn of an idle limiter");
    let paced = c.api.pace_submit(turn).await;
    c.handle(Event::Paced { job: 4, paced });
    assert!(
        matches!(
            &c.effects[..],
            [
                Effect::Record {
                    job: 4,
                    write: Write::Submitting,
                    commit: Commit::Urgent
                },
                Effect::Post { job: 4, .. },
            ]
        ),
        "{:#?}",
        c.effects
    );
    c.carry_out();
    assert!(c.outbox.is_empty(), "no POST without its record");
    assert!(matches!(c.tracks[4], Track::Queued), "withdrawn");
    assert_eq!(c.slots.in_use(), 0);
    assert_eq!(c.flow.submits, 0);
    assert!(matches!(c.stopped, Some(StopReason::Fatal(_))));
}

mod polls;
