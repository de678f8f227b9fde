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
