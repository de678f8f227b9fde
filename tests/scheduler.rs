//! The scheduler against a simulator that enforces an account's limits: a request rate and a
//! number of active generations, each answered with the service's 429.

mod common;

use std::time::Duration;

use common::{Harness, assert_files_match_results, assert_said, fast_config, stderr};
use vidbatch::exit_code;
use vidbatch::sim::{CONCURRENCY_LIMIT_EXCEEDED, RATE_LIMIT_EXCEEDED, SimConfig};

fn prompts(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    format!(
        "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
        list.join(", ")
    )
}

/// 429s the simulator sent with this code (its own count, not the client's belief).
fn refusals(h: &Harness, code: &str) -> u64 {
    h.sim.stats().throttled(code)
}

/// `--concurrency` above what the account allows: the "too many active" 429s lower the ceiling
/// instead of being hammered, every job completes, and the limit found is reported.
#[test]
fn too_many_active_generations_lower_the_ceiling_and_every_job_completes() {
    let h = Harness::new(SimConfig {
        max_active: Some(4),
        retry_after: Duration::from_millis(100),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(24));
    let output = h.run(&manifest, &["--concurrency", "16"]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    let rows = h.results();
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:#?}");
    assert_files_match_results(&h.out(), &rows);
    let refused = refusals(&h, CONCURRENCY_LIMIT_EXCEEDED);
    assert!(refused >= 1, "the limit was never reached");
    // Lowered after the first refusals, the ceiling stays near the limit: a few more refusals
    // as it creeps back up, not one per job.
    assert!(refused < 20, "{refused} refusals for 24 jobs");
    assert_said(&output, "too many active generations: this account runs about");
    // Nothing created by a refusal, nothing paid twice.
    assert_eq!(h.log().submits.len(), 24);
}

/// Within the account's limits, vidbatch never causes a 429 itself.
#[test]
fn within_the_accounts_limits_no_request_is_refused() {
    let h = Harness::new(SimConfig {
        rate_limit: Some(60.0),
        max_active: Some(6),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(20));
    // A quarter of the account's rate. The client spaces its sends (its pacer is tested on a
    // paused clock in `api/rate.rs`); the margin is for the simulator, which judges a request
    // when it gets to handle it: on a test machine busy with other builds it can be held up and
    // then handle several at once, and the account allows a burst of only 2.
    let output = h.run(&manifest, &["--concurrency", "6", "--rate", "15"]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    assert_eq!(refusals(&h, RATE_LIMIT_EXCEEDED), 0);
    assert_eq!(refusals(&h, CONCURRENCY_LIMIT_EXCEEDED), 0);
    assert!(!stderr(&output).contains("too many active"));
}
