//! Money in the recovery paths: what `--resubmit-unknown`, `--adopt` and a full disk do with
//! generations already paid for. Every check counts what the simulator created (each creation is
//! a paid generation), never what the client believes.

mod common;

use std::collections::HashMap;

use common::{Harness, fast_config};
use vidbatch::exit_code;
use vidbatch::sim::SimConfig;
use vidbatch::sim::chaos::{Chaos, Fault};

/// Ten text-to-video jobs at the documented 1,050,000 credits each.
fn ten_prompts(h: &Harness) -> std::path::PathBuf {
    let prompts: Vec<String> = (0..10).map(|i| format!("\"MONEY {i}\"")).collect();
    h.write(
        "money.yaml",
        &format!(
            "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
            prompts.join(", ")
        ),
    )
}

fn statuses(h: &Harness) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for row in h.results() {
        *counts.entry(row["status"].clone()).or_default() += 1;
    }
    counts
}

const PRICE: u64 = 1_050_000;

#[test]
fn a_resubmit_of_unknown_submits_stopped_by_the_cap_keeps_them_unknown_and_counted() {
    // Every answer to a submit is lost: each creates a paid generation the client never hears of.
    let h = Harness::new(SimConfig {
        chaos: Some(Chaos::only(7, &[(Fault::SubmitLostCreate, 1.0)])),
        ..fast_config()
    });
    let manifest = ten_prompts(&h);
    let cap = (5 * PRICE).to_string();
    // Over the cap, a run refuses to start unless told to spend up to it.
    let first = h.run(&manifest, &["--max-credits", &cap, "--within-cap", "order"]);
    assert_eq!(first.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits.len(), 5, "five unknown submits fill the cap");
    assert_eq!(statuses(&h).get("unknown"), Some(&5));

    // The service answers again. The user asks to resubmit the unknown ones, under the same cap:
    // their earlier submits still count, so there is no room and nothing is sent.
    h.sim.set_chaos(None);
    let resubmit = h.run(
        &manifest,
        &["--max-credits", &cap, "--resubmit-unknown", "--within-cap", "order"],
    );
    assert_eq!(resubmit.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits.len(), 5, "the cap holds the unknown submits");
    assert_eq!(statuses(&h).get("unknown"), Some(&5), "still unknown, not pending");

    // A plain rerun must not take them for new jobs.
    h.run(&manifest, &["--max-credits", &cap, "--within-cap", "order"]);
    assert_eq!(h.log().submits.len(), 5, "a plain rerun pays nothing again");
    assert_eq!(statuses(&h).get("unknown"), Some(&5));

    // With room, the resubmit happens; the earlier unknowns keep counting against the cap from
    // then on: 5 unknown + 10 sent = 15 generations that may be paid.
    let room = (15 * PRICE).to_string();
    let done = h.run(&manifest, &["--max-credits", &room, "--resubmit-unknown"]);
    assert_eq!(done.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 15);
    assert_eq!(statuses(&h).get("completed"), Some(&10));
    // One credit less than that history: nothing may be sent, and nothing needs to be.
    let tight = (15 * PRICE - 1).to_string();
    let after = h.run(&manifest, &["--max-credits", &tight]);
    assert_eq!(after.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 15);
}

#[test]
fn adopt_follows_the_generations_results_name_and_keeps_every_charge() {
    let h = Harness::new(SimConfig {
        generating: std::time::Duration::from_millis(900),
        ..fast_config()
    });
    let manifest = ten_prompts(&h);
    // Five finish; five are given up on while still rendering: `pending`, with their ids.
    let five = h.write(
        "five.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [\"MONEY 0\", \"MONEY 1\", \"MONEY 2\", \"MONEY 3\", \"MONEY 4\"]\n",
    );
    assert_eq!(h.run(&five, &[]).status.code(), Some(exit_code::OK));
    let cut = h.run(&manifest, &["--timeout", "200ms"]);
    assert_eq!(cut.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let rows = h.results();
    let pending_with_ids = rows
        .iter()
        .filter(|r| r["status"] == "pending" && !r["generation_id"].is_empty())
        .count();
    assert_eq!(pending_with_ids, 5, "{rows:#?}");
    let credits: u64 = rows.iter().map(|r| r["credits"].parse::<u64>().unwrap()).sum();
    assert_eq!(credits, 10 * PRICE, "every submit's charge is in results.csv");
    assert_eq!(h.log().submits.len(), 10);

    // The state is lost; adoption follows what results.csv names and pays for nothing.
    std::fs::remove_file(h.out().join("state.db")).unwrap();
    let adopted = h.run(&manifest, &["--adopt"]);
    assert_eq!(h.log().submits.len(), 10, "no generation is paid twice");
    assert_eq!(adopted.status.code(), Some(exit_code::OK));
    common::assert_said(&adopted, "adopted 5 finished video(s)");
    common::assert_said(&adopted, "5 generation(s) it names are followed");
    let rows = h.results();
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:#?}");
    common::assert_files_match_results(&h.out(), &rows);
    let credits: u64 = rows.iter().map(|r| r["credits"].parse::<u64>().unwrap()).sum();
    assert_eq!(credits, 10 * PRICE, "adopted rows keep their charges");
    let status = h.finish(h.command(&["status", "out"]));
    let said = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(said.contains("10,500,000 credits recorded"), "{said}");
    // The cap sees them too: one more credit of room than is spent, nothing to submit anyway.
    let cap = (10 * PRICE).to_string();
    assert_eq!(
        h.run(&manifest, &["--max-credits", &cap]).status.code(),
        Some(exit_code::OK)
    );
    assert_eq!(h.log().submits.len(), 10);
}

#[test]
fn an_unknown_submit_sent_again_and_refused_stays_unknown() {
    let h = Harness::new(SimConfig {
        key: Some(common::KEY.into()),
        chaos: Some(Chaos::only(7, &[(Fault::SubmitLostCreate, 1.0)])),
        ..fast_config()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B, C]\n",
    );
    h.run(&manifest, &[]);
    assert_eq!(statuses(&h).get("unknown"), Some(&3));
    h.sim.set_chaos(None);
    // Sent again with a key the service refuses: nothing is created, and the run stops.
    let mut refused = h.command_as("a-wrong-key", &["run", manifest.to_str().unwrap(), "--out", "out"]);
    refused.args(["--resubmit-unknown", "--retry-base", "10ms"]);
    let refused = h.finish(refused);
    assert_eq!(refused.status.code(), Some(vidbatch::exit_code::ABORTED));
    assert_eq!(
        statuses(&h).get("unknown"),
        Some(&3),
        "their earlier submits are still unknown"
    );
    // A plain rerun must not take them for new jobs.
    h.run(&manifest, &[]);
    assert_eq!(h.log().submits.len(), 3, "nothing paid again");
    assert_eq!(statuses(&h).get("unknown"), Some(&3));
}

/// A folder an earlier vidbatch filled with a model it sent unchecked (its jobs keyed by the id
/// and parameters as written): with the catalog the same jobs have other keys, and are picked up
/// under them, not paid for again.
#[test]
fn jobs_an_earlier_version_sent_unchecked_are_picked_up_not_paid_again() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: klingai/v2.1-master-image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png]\n    \
         params: {duration: 5, negative_prompt: blur}\n",
    );
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    // The state as the earlier version left it: the same jobs under their old keys.
    let plan = vidbatch::plan::plan(
        &vidbatch::manifest::parse(&manifest, std::fs::read_to_string(&manifest).unwrap().into()).unwrap(),
    )
    .unwrap();
    let db = rusqlite::Connection::open(h.out().join("state.db")).unwrap();
    for job in &plan.jobs {
        let old = job.legacy_key().expect("`duration: 5` is the default: the keys differ");
        db.execute("UPDATE jobs SET key = ?2 WHERE key = ?1", [&job.key.0, &old.0])
            .unwrap();
        db.execute(
            "UPDATE generations SET job_key = ?2 WHERE job_key = ?1",
            [&job.key.0, &old.0],
        )
        .unwrap();
    }
    drop(db);
    let again = h.run(&manifest, &[]);
    assert_eq!(again.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 2, "nothing paid again");
    common::assert_said(&again, "2 already done");
}

#[test]
fn adopt_refuses_a_part_of_the_manifest_that_would_drop_the_other_rows() {
    let h = Harness::fast();
    let manifest = ten_prompts(&h);
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    std::fs::remove_file(h.out().join("state.db")).unwrap();
    let part = h.run(&manifest, &["--adopt", "--limit", "3"]);
    assert_eq!(part.status.code(), Some(exit_code::INVALID));
    common::assert_said(&part, "`--adopt` needs the whole manifest");
    assert_eq!(h.results().len(), 10, "results.csv keeps every row");
    let whole = h.run(&manifest, &["--adopt"]);
    assert_eq!(whole.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 10, "nothing paid again");
}

#[test]
fn a_kind_whose_generations_keep_failing_stops_being_paid_for() {
    // Every generation fails (the first of each request body): the service cannot render this
    // template, say. One at a time, so that the count is exact.
    let h = Harness::new(SimConfig {
        fail_first: 1,
        ..fast_config()
    });
    let manifest = ten_prompts(&h);
    let run = h.run(&manifest, &["--concurrency", "1", "--halt-run", "0"]);
    assert_eq!(run.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits.len(), 3, "three paid failures, then the kind stops");
    let counts = statuses(&h);
    assert_eq!((counts.get("failed"), counts.get("pending")), (Some(&3), Some(&7)));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("`magic/text-to-video · Shanghai Drone Show`: 3 generations failed and none completed"),
        "{stderr}"
    );
    let pending = h.results().into_iter().find(|r| r["status"] == "pending").unwrap();
    assert!(pending["error"].contains("--halt-kind 3"), "{pending:?}");

    // `--halt-kind 0` never stops a kind: the rerun pays for the 7 left (each fails again).
    let again = h.run(&manifest, &["--concurrency", "1", "--halt-kind", "0"]);
    assert_eq!(again.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits.len(), 10);
}

#[test]
fn a_run_whose_generations_mostly_fail_stops_submitting() {
    let h = Harness::new(SimConfig {
        fail_first: 1,
        ..fast_config()
    });
    let prompts: Vec<String> = (0..24).map(|i| format!("\"HALT {i}\"")).collect();
    let manifest = h.write(
        "halt.yaml",
        &format!(
            "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
            prompts.join(", ")
        ),
    );
    // Judged after ten finished generations: ten of ten failed, more than half.
    let run = h.run(&manifest, &["--concurrency", "1", "--halt-kind", "0"]);
    assert_eq!(run.status.code(), Some(exit_code::ABORTED));
    assert_eq!(h.log().submits.len(), 10);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("10 of 10 generations failed: nothing more is submitted (--halt-run)"),
        "{stderr}"
    );
    assert_eq!(statuses(&h).get("pending"), Some(&14));
}
