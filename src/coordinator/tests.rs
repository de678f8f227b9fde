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

/// The event handling, called directly on a paused clock: what each worker's report decides,
/// read from the effects it returns before they are carried out.
mod events;

/// `--adopt` follows the generations `results.csv` names with the submit time each row gives:
/// the adoption's own time would make them look young, and the first finish would teach the
/// polls a render far too short. A time a spreadsheet rewrote in its own way is no time at all.
#[test]
fn adopted_generations_keep_the_submit_time_their_row_gives_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, MANIFEST).unwrap();
    let mut plan = plan::plan(&manifest::load(&path).unwrap()).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let earlier = "2026-12-04T10:00:00Z";
    let records: std::collections::HashMap<_, _> = [(0, Some(earlier)), (1, Some("04/12/2026 10:00")), (2, None)]
        .into_iter()
        .map(|(i, at)| {
            let key = plan.jobs[i].key.clone();
            let mut record = crate::state::JobRecord::blank(key.clone(), crate::state::Phase::Generating);
            record.generation_id = Some(format!("g{i}"));
            record.attempts = 1;
            record.submitted_at = at.map(String::from);
            (key, record)
        })
        .collect();
    crate::results::write(&out, &plan, &records).unwrap();
    let mut state = RunState::open(&out, "test").unwrap();
    let adoption = resume::adopt(&out, &mut plan.jobs, &mut state).unwrap();
    assert_eq!(adoption.followed, 3);
    let adopted = state.records().unwrap();
    let submitted = |i: usize| adopted[&plan.jobs[i].key].submitted_at.clone();
    assert_eq!(submitted(0).as_deref(), Some(earlier));
    assert_eq!(submitted(1), None);
    assert_eq!(submitted(2), None);
    drop(state);
    // Followed from an unknown age, nothing of their renders is learned (`events::render_time`).
    let c = coordinator(&plan, &out, config(0, false));
    for i in 1..3 {
        let Track::Remote(r) = &c.tracks[i] else {
            panic!("job {i} is followed")
        };
        assert_eq!(r.submitted, None);
    }
}
