//! Resume decisions, one per phase a crashed run can leave a job in, and the event handling called
//! directly. No server is needed: the coordinator is built, not run.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::api::ApiKey;
use crate::manifest;
use crate::plan;
use crate::state::Failure;

const MANIFEST: &str = "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B, C, D, E, F, G, H, I]\n";

fn config(paid_retries: u32, resubmit_unknown: bool) -> RunConfig {
    RunConfig {
        concurrency: 4,
        downloads: 2,
        polling: Polling::Fixed(Duration::from_secs(1)),
        paid_retries,
        resubmit_unknown,
        generation_timeout: Duration::from_secs(60),
        retry: RetryPolicy::default(),
        progress_every: Duration::from_secs(60),
        max_credits: None,
        min_free: None,
        price_list: None,
        halt: Halt::default(),
    }
}

/// A coordinator for `plan` over the state in `out`, built, not run (no server behind its URL).
fn coordinator<'p>(plan: &'p plan::Plan, out: &std::path::Path, config: RunConfig) -> Coordinator<'p> {
    Coordinator::new(
        plan,
        out,
        RunState::open(out, "test").unwrap(),
        ApiClient::new("http://127.0.0.1:9", ApiKey::new("k"), 1.0).unwrap(),
        Arc::new(Downloader::new(crate::download::DEFAULT_MAX_BYTES).unwrap()),
        config,
        &Shutdown::default(),
        crate::sinks::Sinks::default(),
    )
    .unwrap()
}

#[derive(Debug, PartialEq)]
enum Placed {
    Queued,
    Settled,
    /// Polled; `true` when it counts against the concurrency limit.
    Remote(bool),
}

fn placed(c: &Coordinator, i: usize) -> Placed {
    match &c.tracks[i] {
        Track::Queued => {
            assert!(c.queue.contains(&i));
            Placed::Queued
        }
        Track::Settled(_) => Placed::Settled,
        Track::Remote(r) => {
            assert!(c.due.iter().any(|e| e.0.1 == i), "a followed job is due to be polled");
            assert!(
                matches!(r.stage.next(), Some(Next::PollAt { .. })),
                "a resumed generation is polled at once"
            );
            Placed::Remote(r.stage.in_flight())
        }
        Track::Submitting { .. } => panic!("nothing is submitting before the run starts"),
    }
}

#[test]
fn each_phase_left_by_a_dead_run_is_resumed_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, MANIFEST).unwrap();
    let plan = plan::plan(&manifest::load(&path).unwrap()).unwrap();
    let out = dir.path().join("out");
    let j = |i: usize| &plan.jobs[i].key;
    {
        let mut state = RunState::open(&out, "test").unwrap();
        state.register(&plan.jobs).unwrap();
        // 0: never started. 1: submit sent, answer lost.
        state.mark_submitting(j(1)).unwrap();
        // 2: generating remotely.
        state.mark_submitting(j(2)).unwrap();
        state.record_generation(j(2), "g2", None).unwrap();
        // 3: completed remotely, download not finished.
        state.mark_submitting(j(3)).unwrap();
        state.record_generation(j(3), "g3", None).unwrap();
        state.mark_downloading(j(3), "g3", None).unwrap();
        // 4: completed and its file is intact. 5: completed but the file was deleted.
        for (i, id) in [(4, "g4"), (5, "g5")] {
            state.mark_submitting(j(i)).unwrap();
            state.record_generation(j(i), id, None).unwrap();
            let file = out.join(&plan.jobs[i].file);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, b"video").unwrap();
            let d = crate::download::hash_file(&file).unwrap();
            state
                .mark_completed(j(i), &plan.jobs[i].file, d.bytes, &d.sha256)
                .unwrap();
        }
        std::fs::remove_file(out.join(&plan.jobs[5].file)).unwrap();
        // 6: the generation failed remotely (paid). 7: the service refused the request (not paid).
        // 8: the download kept failing.
        for (i, failure) in [(6, Failure::Generation), (7, Failure::Rejected), (8, Failure::Download)] {
            state.mark_submitting(j(i)).unwrap();
            if failure != Failure::Rejected {
                state.record_generation(j(i), &format!("g{i}"), None).unwrap();
            }
            state.mark_failed(j(i), failure, "x").unwrap();
        }
    }
    let build = |paid_retries, resubmit_unknown| {
        let c = coordinator(&plan, &out, config(paid_retries, resubmit_unknown));
        let placed: Vec<Placed> = (0..plan.jobs.len()).map(|i| placed(&c, i)).collect();
        (placed, c.slots.in_use(), c.resumed_done)
    };

    let (p, in_flight, done) = build(0, false);
    assert_eq!(p[0], Placed::Queued);
    assert_eq!(
        p[1],
        Placed::Settled,
        "a lost submit answer is `unknown`, never silently paid again"
    );
    assert_eq!(
        p[2],
        Placed::Remote(true),
        "a known generation is polled, not resubmitted"
    );
    assert_eq!(p[3], Placed::Remote(false), "a finished generation is fetched again");
    assert_eq!(p[4], Placed::Settled);
    assert_eq!(
        p[5],
        Placed::Remote(false),
        "a deleted video is fetched again from its generation"
    );
    assert_eq!(
        p[6],
        Placed::Settled,
        "a failed generation is paid again only with --paid-retries"
    );
    assert_eq!(
        p[7],
        Placed::Queued,
        "a refused request cost nothing: it is tried again"
    );
    assert_eq!(
        p[8],
        Placed::Remote(false),
        "a failed download is fetched again for free"
    );
    assert_eq!((in_flight, done), (1, 1));

    // Dropping the coordinator released the folder; with the options, the two paid cases change.
    let (p, in_flight, _) = build(1, true);
    assert_eq!(p[1], Placed::Queued, "--resubmit-unknown submits it again");
    assert_eq!(p[6], Placed::Queued, "--paid-retries 1 allows one more generation");
    assert_eq!(p[5], Placed::Remote(false), "still a fetch, not a generation in flight");
    assert_eq!(in_flight, 1);
}

#[test]
fn every_kind_numbers_its_own_generations_for_the_early_probes() {
    // Jobs of two kinds taking turns in the plan: by job index, one kind would get every even
    // place of the octave and no scout at all; numbered per kind, each starts with a scout.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, MANIFEST).unwrap();
    let plan = plan::plan(&manifest::load(&path).unwrap()).unwrap();
    let out = dir.path().join("out");
    RunState::open(&out, "test").unwrap().register(&plan.jobs).unwrap();
    let mut c = coordinator(&plan, &out, config(0, false));
    let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
    let places: Vec<f64> = (0..6).flat_map(|_| [c.next_phase(&a), c.next_phase(&b)]).collect();
    let s = polling::SCOUTS;
    assert_eq!(
        places,
        [
            0.0,
            0.0,
            s / 2.0,
            s / 2.0,
            s / 4.0,
            s / 4.0,
            s * 0.75,
            s * 0.75,
            0.125,
            0.125,
            0.625,
            0.625
        ]
    );
}

/// The event handling, called directly on a paused clock: what each worker's report does to the
/// job's track, its slots, what is learned and what is recorded.
mod events {
    use super::*;
    use crate::api::{GenerationStatus, Pending, Submission};
    use crate::download::DownloadError;

    /// A coordinator for nine prompts of one model, built (no server), adaptive polling.
    fn built(dir: &std::path::Path) -> (plan::Plan, std::path::PathBuf) {
        let path = dir.join("m.yaml");
        std::fs::write(&path, MANIFEST).unwrap();
        let plan = plan::plan(&manifest::load(&path).unwrap()).unwrap();
        let out = dir.join("out");
        RunState::open(&out, "test").unwrap().register(&plan.jobs).unwrap();
        (plan, out)
    }

    fn adaptive() -> RunConfig {
        RunConfig {
            polling: Polling::Adaptive(polling::PollPolicy::scaled(Duration::from_secs(3))),
            ..config(0, false)
        }
    }

    /// Job `i` taken off the queue with a slot, its POST sent, and its generation `id` created.
    fn submitted(c: &mut Coordinator, i: usize, id: &str) {
        c.queue.retain(|&j| j != i);
        c.tracks[i] = Track::Submitting {
            retries: 0,
            sent: true,
            slot: c.slots.take(),
            reservation: c.ledger.reserve(0.0),
        };
        c.handle(Event::Submitted {
            job: i,
            result: Ok(Submission {
                generation_id: id.into(),
                credits: None,
            }),
        });
    }

    fn polled(c: &mut Coordinator, i: usize, status: GenerationStatus) {
        c.handle(Event::Polled {
            job: i,
            result: Ok(status),
        });
    }

    fn running() -> GenerationStatus {
        GenerationStatus::Pending(Pending::Known("generating".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_finish_frees_its_slot_is_learned_from_its_span_and_waits_for_a_download() {
        let dir = tempfile::tempdir().unwrap();
        let (plan, out) = built(dir.path());
        let mut c = coordinator(&plan, &out, adaptive());
        submitted(&mut c, 0, "g0");
        assert_eq!(c.slots.in_use(), 1, "the generation holds its slot");
        assert!(matches!(&c.tracks[0], Track::Remote(r) if r.stage.in_flight()));
        tokio::time::advance(Duration::from_secs(2)).await;
        polled(&mut c, 0, running());
        tokio::time::advance(Duration::from_secs(2)).await;
        polled(
            &mut c,
            0,
            GenerationStatus::Completed {
                url: "http://127.0.0.1:9/v.mp4".into(),
                credits: Some(1000.0),
                file_size: None,
            },
        );
        assert_eq!(
            c.slots.in_use(),
            0,
            "seen finished: its slot is free for the next submit"
        );
        assert!(matches!(&c.tracks[0], Track::Remote(r) if matches!(r.stage, Stage::Fetching(Fetch::Ready { .. }))));
        assert!(c.fetches.contains(&0), "waiting for a download slot");
        // Finished between the poll at 2 s that saw it running and the one at 4 s.
        let kind = polling::kind_of(&plan.jobs[0].model, plan.jobs[0].params());
        let learned = c.render_times.median(&kind).unwrap();
        assert!(
            learned > Duration::from_secs(2) && learned <= Duration::from_secs(4),
            "{learned:?}"
        );
        // Recorded (lazily, committed by the loop's next flush).
        c.commit();
        let record = &c.state.records().unwrap()[&plan.jobs[0].key];
        assert_eq!(record.phase, Phase::Downloading);
        assert_eq!(record.generation_id.as_deref(), Some("g0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_download_gives_its_slot_back_and_asks_for_a_fresh_link() {
        let dir = tempfile::tempdir().unwrap();
        let (plan, out) = built(dir.path());
        let mut c = coordinator(&plan, &out, adaptive());
        submitted(&mut c, 0, "g0");
        polled(
            &mut c,
            0,
            GenerationStatus::Completed {
                url: "http://127.0.0.1:9/v.mp4".into(),
                credits: None,
                file_size: None,
            },
        );
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
    }

    #[tokio::test(start_paused = true)]
    async fn three_paid_failures_of_a_kind_hold_its_other_jobs_back_unpaid() {
        let dir = tempfile::tempdir().unwrap();
        let (plan, out) = built(dir.path());
        let mut c = coordinator(&plan, &out, adaptive());
        // Job 8's POST was decided in the turn that sees the third failure: recorded
        // `submitting`, waiting in the outbox for the commit.
        c.queue.retain(|&j| j != 8);
        c.tracks[8] = Track::Submitting {
            retries: 0,
            sent: true,
            slot: c.slots.take(),
            reservation: c.ledger.reserve(0.0),
        };
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
        for i in 0..3 {
            submitted(&mut c, i, &format!("g{i}"));
            tokio::time::advance(Duration::from_secs(1)).await;
            polled(
                &mut c,
                i,
                GenerationStatus::Failed {
                    message: "the template cannot be rendered".into(),
                },
            );
            assert!(matches!(c.tracks[i], Track::Settled(Outcome::Failed)));
        }
        // The POST decided before the stop is not sent: undone in the same commit, its slot back.
        assert!(!c.flush() && c.outbox.is_empty() && c.submits.is_empty());
        assert_eq!(c.slots.in_use(), 0);
        // Nothing more of that kind is taken: the jobs left are pending, with the reason.
        assert!(c.next_affordable().is_none());
        assert!((3..9).all(|i| matches!(c.tracks[i], Track::Settled(Outcome::Left))));
        c.commit();
        let held = &c.state.records().unwrap()[&plan.jobs[8].key];
        assert_eq!(held.phase, Phase::Queued, "never sent, so never `submitting`");
        let records = c.state.records().unwrap();
        let note = records[&plan.jobs[5].key].error.clone().unwrap_or_default();
        assert!(note.contains("--halt-kind 3"), "{note}");
        assert_eq!(records[&plan.jobs[5].key].phase, Phase::Queued, "never submitted");
    }
}
