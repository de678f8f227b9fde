//! Running with eyes open: what a run shows (live view on a terminal, plain lines, JSON lines),
//! what it costs (`--max-credits`), what `status` reads beside a run, and `--shard`/`--limit`.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{Harness, KEY, assert_said, fast_config, stderr};
use vidbatch::exit_code;
use vidbatch::sim::SimConfig;

fn prompts(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("P{i:02}")).collect();
    format!(
        "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
        list.join(", ")
    )
}

/// What the simulator charged in all: every generation it created, at its model's price.
fn charged(h: &Harness) -> f64 {
    h.log()
        .submits
        .iter()
        .map(|s| match s.body["model"].as_str().unwrap_or_default() {
            m if m.starts_with("magic/") => 1_050_000.0,
            _ => 1_260_000.0,
        })
        .sum()
}

#[test]
fn json_lines_tell_the_same_story_as_results_csv() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [ONE, TWO, THREE]\n  - model: magic/image-to-video\n    \
         inputs: [assets/shoe.jpg]\n    templates: [Tokyo Billboard]\n",
    );
    let output = h.run(&manifest, &["--log-format", "json", "--progress-every", "50ms"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let said = stderr(&output);
    assert!(!said.contains(KEY), "the key is in no event");
    let events: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> { events.iter().filter(|e| e["event"] == kind).collect() };
    assert!(events.iter().all(|e| e["ts"].is_string()), "every object has a time");
    assert_eq!(of("run_started").len(), 1);
    assert_eq!(of("run_started")[0]["to_submit"], 4);
    assert!(!of("progress").is_empty(), "progress objects at the status pace");
    let rows = h.results();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let id = row["job_id"].as_str();
        let submitted: Vec<_> = of("job_submitted").into_iter().filter(|e| e["job_id"] == id).collect();
        let completed: Vec<_> = of("job_completed").into_iter().filter(|e| e["job_id"] == id).collect();
        assert_eq!(submitted.len(), 1, "{id}");
        assert_eq!(completed.len(), 1, "{id}");
        for e in [submitted[0], completed[0]] {
            assert_eq!(e["generation_id"], row["generation_id"].as_str(), "{id}");
            assert_eq!(e["model"], row["model"].as_str());
            assert_eq!(e["file"], row["file"].as_str());
        }
        assert_eq!(completed[0]["bytes"].to_string(), row["bytes"]);
        assert_eq!(completed[0]["credits"].as_f64().unwrap().to_string(), row["credits"]);
    }
    let finished = of("run_finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["completed"], 4);
    assert_eq!(finished[0]["exit_code"], 0);
    assert_eq!(finished[0]["credits"].as_f64(), Some(4.0 * 1_050_000.0));
}

#[test]
fn with_json_logs_every_line_is_json_warnings_and_errors_too() {
    let h = Harness::new(SimConfig {
        key: Some("the-right-key".into()),
        ..fast_config()
    });
    // A duplicate job is a warning; the wrong key stops the run.
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [A, A, B]\n",
    );
    let output = h.run(&manifest, &["--log-format", "json"]);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    let said = stderr(&output);
    let events: Vec<serde_json::Value> = said
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let warning = events
        .iter()
        .find(|e| e["event"] == "manifest_problem")
        .expect("the warning");
    assert_eq!(warning["level"], "warn");
    assert_eq!(warning["line"], 2);
    assert!(warning["message"].as_str().unwrap().contains("repeats"), "{warning}");
    let last = events.last().unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["exit_code"], exit_code::ABORTED);
    assert!(last["message"].as_str().unwrap().contains("AIMLAPI_KEY"), "{last}");
    assert!(events.iter().any(|e| e["event"] == "run_finished"));
}

#[test]
fn plain_lines_carry_no_escape_codes_and_one_line_per_job() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", &prompts(6));
    let output = h.run(&manifest, &["--progress-every", "50ms"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let said = stderr(&output);
    assert!(!said.contains('\x1b'), "no escape codes when stderr is a file:\n{said}");
    assert_eq!(said.matches(": saved videos/").count(), 6, "{said}");
    assert!(said.contains("settled ("), "a status line: {said}");
    assert!(said.contains("finished: 6 of 6 jobs completed"), "{said}");
    // Colour when asked for, even into a file.
    let again = h.run(&manifest, &["--color", "always"]);
    assert!(stderr(&again).contains('\x1b'), "{}", stderr(&again));
}

#[test]
fn the_live_view_draws_on_a_terminal() {
    // `script` (util-linux) gives the run a pseudo-terminal.
    if let Err(e) = Command::new("script").arg("--version").output() {
        common::skip::skip(
            "the_live_view_draws_on_a_terminal",
            &format!("`script` (util-linux) cannot be run: {e}"),
            "install util-linux (it gives a run a pseudo-terminal)",
        );
        return;
    }
    let h = Harness::new(SimConfig {
        generating: Duration::from_millis(600),
        ..fast_config()
    });
    h.write("m.yaml", &prompts(6));
    // `script` gives the run a pseudo-terminal; its output is what the terminal was sent.
    let command = format!(
        "{} run m.yaml --out out --rate 20 --poll-interval 50ms",
        env!("CARGO_BIN_EXE_vidbatch")
    );
    let output = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(h.dir.path())
        .env("AIMLAPI_BASE_URL", &h.sim.base_url)
        .env("AIMLAPI_KEY", KEY)
        .env("COLUMNS", "120")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("`script` (util-linux) runs the live view under a pseudo-terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    assert!(screen.contains("\x1b["), "drawn with escape codes");
    assert!(screen.contains("/6 ("), "done/total: {screen}");
    assert!(screen.contains("ETA"), "{screen}");
    assert!(
        screen.contains(" generating") && screen.contains(" done"),
        "counts per state: {screen}"
    );
    assert!(screen.contains("credits") && screen.contains("req/s"), "{screen}");
    assert!(screen.contains("finished: 6 of 6 jobs completed"), "{screen}");
    assert!(
        !screen.contains(": saved videos/"),
        "the bar counts finished jobs; they get no line each"
    );
}

#[test]
fn max_credits_is_never_passed_even_across_a_killed_run() {
    let h = Harness::new(SimConfig {
        generating: Duration::from_millis(800),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(12));
    let cap = "5500000";
    let args = [
        "--max-credits",
        cap,
        "--within-cap",
        "order",
        "--concurrency",
        "3",
        "--rate",
        "50",
    ];
    let mut first = h.spawn_run(&manifest, &args);
    h.wait_for("two paid submits", |l| l.submits.len() >= 2);
    first.kill().unwrap();
    first.wait().unwrap();
    let output = h.run(&manifest, &args);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let paid = charged(&h);
    assert!(paid <= 5_500_000.0, "the simulator charged {paid}");
    let rows = h.results();
    let count = |status: &str| rows.iter().filter(|r| r["status"] == status).count();
    // A submit cut off by the kill is `unknown` and still counted: it may have been paid.
    assert_eq!(count("completed") + count("unknown"), 5, "{rows:#?}");
    let over: Vec<_> = rows.iter().filter(|r| r["status"] == "pending").collect();
    assert_eq!(over.len(), 7);
    assert!(over.iter().all(|r| r["error"].contains("budget reached")), "{over:#?}");
    assert_said(&output, "7 jobs not sent: they would pass --max-credits 5,500,000");

    // A higher cap takes more, counting what the folder already committed.
    let output = h.run(&manifest, &["--max-credits", "9000000", "--within-cap", "order"]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let paid = charged(&h);
    assert!((7.0 * 1_050_000.0..=9_000_000.0).contains(&paid), "{paid}");
}

#[test]
fn an_unknown_price_counts_at_the_highest_seen() {
    let h = Harness::fast();
    h.sim.set_listing_fault(Some(vidbatch::sim::ListingFault::Unavailable));
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: pixverse/v5/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png, \
         assets/presenter.jpg]\n    prompt: wave\n",
    );
    // Without a price list (the API's is down, and no copy was kept), PixVerse's price is not
    // known (it varies with options): each is counted at the highest
    // charge seen, 2,000,000 in the vendor's pages, until the service charges it. Under a cap of
    // 3,000,000 the first goes out and is charged 1,260,000; a second, counted at 2,000,000,
    // would pass the cap.
    let output = h.run(
        &manifest,
        &[
            "--max-credits",
            "3000000",
            "--within-cap",
            "order",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let paid = charged(&h);
    assert!(paid <= 3_000_000.0, "{paid}");
    assert_eq!(h.log().submits.len(), 1, "the second would be counted at 2,000,000");
    let validate = h.finish(h.command(&["validate", "m.yaml", "--out", "out"]));
    let said = String::from_utf8_lossy(&validate.stdout);
    assert!(
        said.contains("in `out`: 1 done, 2 new") && said.contains("2 ×   2,000,000") && said.contains("no fixed price"),
        "one charge of 1,260,000 is no bound on the next: {said}"
    );
}

#[test]
fn a_submit_waiting_to_retry_keeps_its_share_of_the_cap() {
    let h = Harness::new(SimConfig {
        throttle_first_submits: 1,
        retry_after: Duration::from_millis(1500),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(3));
    // Room for two: while the throttled submit waits out its Retry-After (longer than a whole
    // render of the other), the third must not take its room.
    let output = h.run(
        &manifest,
        &[
            "--max-credits",
            "2100000",
            "--within-cap",
            "order",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert!(charged(&h) <= 2_100_000.0, "charged {}", charged(&h));
    assert_eq!(h.log().submits.len(), 2);
    let rows = h.results();
    assert_eq!(rows.iter().filter(|r| r["status"] == "completed").count(), 2);
}

#[test]
fn status_reads_a_folder_while_a_run_holds_it() {
    let h = Harness::new(SimConfig {
        generating: Duration::from_secs(3),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(3));
    let mut run = h.spawn_run(&manifest, &[]);
    h.wait_for("three submits", |l| l.submits.len() == 3);
    std::thread::sleep(Duration::from_millis(300));
    let status = h.finish(h.command(&["status", "out"]));
    let said = String::from_utf8_lossy(&status.stdout).into_owned();
    run.kill().unwrap();
    run.wait().unwrap();
    // The run's outcome is not decided yet: `status` says so as `run` would (another run holds it).
    assert_eq!(status.status.code(), Some(exit_code::BUSY), "{}", stderr(&status));
    assert!(said.contains("a run is going"), "{said}");
    assert!(said.contains("3 running"), "{said}");
    assert!(said.contains("still running remotely (3)"), "{said}");
    let after = h.finish(h.command(&["status", "out"]));
    assert!(String::from_utf8_lossy(&after.stdout).contains("no run is going"));
    let missing = h.finish(h.command(&["status", "nowhere"]));
    assert_eq!(missing.status.code(), Some(exit_code::INVALID));
    assert_said(&missing, "no run has used this folder");
}

/// Job ids and files of `validate` output.
fn planned(h: &Harness, extra: &[&str]) -> BTreeSet<(String, String)> {
    let mut args = vec!["validate", "m.yaml"];
    args.extend_from_slice(extra);
    let output = h.finish(h.command(&args));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    listed(&output)
}

/// Job ids and files of the table `validate` printed.
fn listed(output: &std::process::Output) -> BTreeSet<(String, String)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(" -> ") && !l.starts_with("job_id"))
        .map(|l| {
            let id = l.split_whitespace().next().unwrap().to_string();
            let file = l.rsplit(" -> ").next().unwrap().to_string();
            (id, file)
        })
        .collect()
}

#[test]
fn shards_split_the_plan_exactly_and_name_files_as_the_whole_run() {
    let h = Harness::fast();
    h.write("m.yaml", &prompts(30));
    let whole = planned(&h, &[]);
    assert_eq!(whole.len(), 30);
    let parts: Vec<_> = (1..=3).map(|k| planned(&h, &["--shard", &format!("{k}/3")])).collect();
    let mut union = BTreeSet::new();
    for part in &parts {
        assert!(!part.is_empty() && part.len() < 30, "{}", part.len());
        for job in part {
            assert!(union.insert(job.clone()), "{job:?} is in two shards");
        }
    }
    assert_eq!(union, whole, "the shards together are the plan, file names included");

    // Runs: `--shard` and Kubernetes' indexed-job variables pick the same jobs.
    let manifest = h.path("m.yaml");
    let out = h.finish(h.run_in("shard-1", &manifest, &["--shard", "1/3"]));
    assert_eq!(out.status.code(), Some(0));
    let mut k8s = h.run_in("shard-2", &manifest, &[]);
    k8s.env("JOB_COMPLETION_INDEX", "1").env("JOB_COMPLETION_COUNT", "3");
    assert_eq!(h.finish(k8s).status.code(), Some(0));
    for (dir, part) in [("shard-1", &parts[0]), ("shard-2", &parts[1])] {
        let rows = common::read_results(&h.path(dir).join("results.csv"));
        let got: BTreeSet<(String, String)> = rows.iter().map(|r| (r["job_id"].clone(), r["file"].clone())).collect();
        assert_eq!(&got, part, "{dir}");
    }
    let status = h.finish(h.command(&["status", "shard-1", "shard-2"]));
    let said = String::from_utf8_lossy(&status.stdout);
    let done = parts[0].len() + parts[1].len();
    assert!(said.contains(&format!("all 2 folders: {done} completed")), "{said}");
}

/// `validate` in a pod of an Indexed Job shows the jobs `run` would run there, not all of them.
#[test]
fn validate_reads_the_kubernetes_shard_as_run_does() {
    let h = Harness::fast();
    h.write("m.yaml", &prompts(30));
    let planned_in_pod = |index: Option<&str>, count: Option<&str>| {
        let mut command = h.command(&["validate", "m.yaml"]);
        for (name, value) in [("JOB_COMPLETION_INDEX", index), ("JOB_COMPLETION_COUNT", count)] {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        h.finish(command)
    };
    let pod = planned_in_pod(Some("1"), Some("3"));
    assert_eq!(pod.status.code(), Some(exit_code::OK), "{}", stderr(&pod));
    assert_eq!(listed(&pod), planned(&h, &["--shard", "2/3"]));
    assert_said(&pod, "shard 2/3");
    // Half the variables would make every pod run every job: refused, as `run` refuses it.
    let half = planned_in_pod(Some("1"), None);
    assert_eq!(half.status.code(), Some(exit_code::INVALID), "{}", stderr(&half));
    assert_said(&half, "JOB_COMPLETION_COUNT");
}

#[test]
fn limit_runs_the_first_jobs_only() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", &prompts(5));
    let output = h.run(&manifest, &["--limit", "2"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let rows = h.results();
    let inputs: Vec<&str> = rows.iter().map(|r| r["input"].as_str()).collect();
    assert_eq!(inputs, ["P00", "P01"]);
    assert_eq!(h.log().submits.len(), 2);
}

#[test]
fn a_refused_key_says_why_in_every_row_it_left() {
    let h = Harness::new(SimConfig {
        key: Some("the-right-key".into()),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(3));
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    let rows = h.results();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row["status"], "pending");
        assert!(
            row["error"].contains("the run stopped") && row["error"].contains("AIMLAPI_KEY"),
            "{row:?}"
        );
    }
    assert_said(&output, "stopped early");
}

#[test]
fn completion_scripts_are_printed_for_each_shell() {
    let h = Harness::fast();
    for shell in ["bash", "zsh", "fish"] {
        let output = h.finish(h.command(&["completions", shell]));
        assert_eq!(output.status.code(), Some(0));
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("vidbatch") && script.contains("max-credits"), "{shell}");
    }
    let help = h.finish(h.command(&["run", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
}
