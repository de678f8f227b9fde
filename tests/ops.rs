//! What an operator's scripts and cron read: `status` exits as the folder's run did and speaks
//! JSON, `verify` finds the videos that are not as saved, `validate --json` names every error
//! with its line, and the summary says what came down, which jobs were slowest, and what a cap
//! or a refused key left unspent. Every folder is made by a real run against the simulator.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Harness, assert_said, fast_config, stderr};
use serde_json::Value;
use vidbatch::exit_code;
use vidbatch::sim::SimConfig;

fn prompts(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("P{i:02}")).collect();
    format!(
        "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
        list.join(", ")
    )
}

/// stdout read as one JSON document.
fn document(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{text}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn status_exits_as_the_folders_run_did_and_speaks_json() {
    let h = Harness::new(SimConfig {
        fail_first: 1,
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(3));
    let run = h.run(&manifest, &[]);
    assert_eq!(run.status.code(), Some(exit_code::JOBS_INCOMPLETE));

    let text = h.finish(h.command(&["status", "out"]));
    assert_eq!(text.status.code(), run.status.code(), "status exits as the run did");
    assert!(stdout(&text).contains("0 completed, 3 failed"), "{}", stdout(&text));

    let json = h.finish(h.command(&["status", "out", "--json", "--jobs"]));
    assert_eq!(json.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let doc = document(&json);
    assert_eq!(
        (doc["schema_version"].as_u64(), doc["command"].as_str()),
        (Some(1), Some("status"))
    );
    assert_eq!(doc["exit_code"], exit_code::JOBS_INCOMPLETE);
    let folder = &doc["folders"][0];
    assert_eq!(folder["folder"], "out");
    assert_eq!(folder["run_going"], false);
    assert_eq!(
        (
            &folder["counts"]["jobs"],
            &folder["counts"]["failed"],
            &folder["counts"]["completed"]
        ),
        (&Value::from(3), &Value::from(3), &Value::from(0))
    );
    // Credits are the whole numbers of results.csv, folder by folder and in all.
    let rows = h.results();
    let recorded: u64 = rows.iter().map(|r| r["credits"].parse::<u64>().unwrap()).sum();
    assert!(recorded > 0, "failed generations are paid");
    assert_eq!(folder["credits"].as_u64(), Some(recorded), "{folder}");
    assert_eq!(doc["credits"].as_u64(), Some(recorded));
    let jobs = folder["jobs"].as_array().expect("`--jobs` lists the jobs");
    let mut ids: Vec<&str> = jobs.iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = rows.iter().map(|r| r["job_id"].as_str()).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    for job in jobs {
        assert_eq!(job["status"], "failed", "{job}");
        assert!(
            job["error"].as_str().is_some_and(|e| e.contains("simulated failure")),
            "{job}"
        );
        assert!(job["generation_id"].is_string() && job["credits"].is_u64(), "{job}");
    }
    // Without `--jobs`, counts only; `--log-format json` asks for the same document.
    let brief = h.finish(h.command(&["--log-format", "json", "status", "out"]));
    let brief = document(&brief);
    assert!(brief["folders"][0].get("jobs").is_none());
    assert_eq!(brief["folders"][0]["counts"], folder["counts"]);

    // The paid retries succeed: the folder is complete, and `status` says 0 as the run did.
    let rerun = h.run(&manifest, &["--paid-retries", "1"]);
    assert_eq!(rerun.status.code(), Some(exit_code::OK));
    let done = h.finish(h.command(&["status", "out", "--json"]));
    assert_eq!(done.status.code(), Some(exit_code::OK));
    assert_eq!(document(&done)["folders"][0]["counts"]["completed"], 3);

    // A folder no run used: exit 2, and the document says why.
    let nowhere = h.finish(h.command(&["status", "out", "nowhere", "--json"]));
    assert_eq!(nowhere.status.code(), Some(exit_code::INVALID));
    let doc = document(&nowhere);
    assert_eq!(doc["folders"][0]["exit_code"], exit_code::OK);
    assert_eq!(doc["folders"][1]["exit_code"], exit_code::INVALID);
    assert!(
        doc["folders"][1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no run has used this folder")),
        "{doc}"
    );
}

/// Copies the files of `from` (results.csv and videos, no state) into `to`.
fn copy_without_state(from: &Path, to: &Path) {
    for file in common::files_under(from) {
        if file.starts_with("state.") || !(file == "results.csv" || file.starts_with("videos/")) {
            continue;
        }
        let target = to.join(&file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&file), target).unwrap();
    }
}

#[test]
fn verify_finds_missing_and_changed_videos_and_a_rerun_mends_them() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", &prompts(4));
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    let clean = h.finish(h.command(&["verify", "out"]));
    assert_eq!(clean.status.code(), Some(exit_code::OK), "{}", stderr(&clean));
    assert!(
        stdout(&clean).contains("4 videos checked") && stdout(&clean).contains("4 ok"),
        "{}",
        stdout(&clean)
    );

    // Tampered with: one video edited in place (same size), one grown, one deleted.
    let rows = h.results();
    let file = |i: usize| h.out().join(&rows[i]["file"]);
    let mut edited = std::fs::read(file(0)).unwrap();
    let middle = edited.len() / 2;
    edited[middle] ^= 0xff;
    std::fs::write(file(0), edited).unwrap();
    let mut grown = std::fs::read(file(1)).unwrap();
    grown.extend_from_slice(b"more");
    std::fs::write(file(1), grown).unwrap();
    std::fs::remove_file(file(2)).unwrap();

    let found = h.finish(h.command(&["verify", "out"]));
    assert_eq!(found.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let said = stdout(&found);
    assert!(said.contains("1 ok, 1 missing, 2 changed"), "{said}");
    assert!(
        said.contains(&format!(
            "missing    {} {}: not in the folder",
            rows[2]["job_id"], rows[2]["file"]
        )),
        "{said}"
    );
    assert!(said.contains("its SHA-256 is not the one recorded"), "{said}");
    assert!(said.contains("the same `vidbatch run` command fetches"), "{said}");

    let json = h.finish(h.command(&["verify", "out", "--json"]));
    assert_eq!(json.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let doc = document(&json);
    assert_eq!(doc["exit_code"], exit_code::JOBS_INCOMPLETE);
    assert_eq!(doc["folders"][0]["source"], "state.db+results.csv");
    let status_of = |doc: &Value, file: &str| -> String {
        let files = doc["folders"][0]["files"].as_array().unwrap();
        let entry = files
            .iter()
            .find(|f| f["file"] == file)
            .unwrap_or_else(|| panic!("{file} in {doc}"));
        entry["status"].as_str().unwrap().to_string()
    };
    for (i, expected) in [(0, "changed"), (1, "changed"), (2, "missing"), (3, "ok")] {
        assert_eq!(status_of(&doc, &rows[i]["file"]), expected, "{}", rows[i]["file"]);
    }
    assert_eq!(doc["totals"]["videos"], 4);

    // A copy of the deliverables without the state is checked against results.csv.
    copy_without_state(&h.out(), &h.path("copy"));
    let copy = h.finish(h.command(&["verify", "copy", "--json"]));
    let doc = document(&copy);
    assert_eq!(doc["folders"][0]["source"], "results.csv");
    assert_eq!(doc["totals"]["changed"], 2, "{doc}");

    // As verify says: the same command fetches them again, and pays nothing.
    let submits = h.log().submits.len();
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), submits, "nothing is paid again");
    let mended = h.finish(h.command(&["verify", "out"]));
    assert_eq!(mended.status.code(), Some(exit_code::OK), "{}", stdout(&mended));

    let nothing = h.finish(h.command(&["verify", "assets"]));
    assert_eq!(nothing.status.code(), Some(exit_code::INVALID));
    assert_said(&nothing, "holds no record of a run");
}

#[test]
fn validate_json_names_every_error_with_its_line_and_prices_the_plan() {
    let h = Harness::fast();
    h.write(
        "bad.csv",
        "model,input,template\nmagic/image-to-video,assets/shoe.jpg,\"Tokyo Billboard, Phone Social\"\n\
         magic/image-to-vidoe,assets/bag.png,\n",
    );
    let bad = h.finish(h.command(&["validate", "bad.csv", "--json"]));
    assert_eq!(bad.status.code(), Some(exit_code::INVALID));
    let doc = document(&bad);
    assert_eq!(
        (doc["valid"].as_bool(), doc["exit_code"].as_i64()),
        (Some(false), Some(2))
    );
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{doc}");
    assert_eq!(
        (errors[0]["file"].as_str(), errors[0]["line"].as_u64()),
        (Some("bad.csv"), Some(2))
    );
    assert!(
        errors[0]["help"]
            .as_str()
            .unwrap()
            .contains("Tokyo Billboard | Phone Social"),
        "{doc}"
    );
    assert_eq!(errors[1]["line"], 3);
    assert!(errors[1]["column"].is_u64());
    assert!(bad.stderr.is_empty(), "the document says it all: {}", stderr(&bad));

    h.write("m.yaml", &prompts(3));
    let good = h.finish(h.command(&["--log-format", "json", "validate", "m.yaml"]));
    assert_eq!(good.status.code(), Some(exit_code::OK), "{}", stderr(&good));
    let doc = document(&good);
    assert_eq!((doc["valid"].as_bool(), doc["jobs"].as_u64()), (Some(true), Some(3)));
    assert_eq!(doc["estimate"]["jobs"], 3);
    assert_eq!(doc["estimate"]["credits"], Value::from(3 * 1_050_000));
    let plan = doc["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 3);
    assert!(plan.iter().all(|j| j["credits"] == 1_050_000 && j["state"] == "new"));
}

#[test]
fn the_summary_says_what_came_down_which_jobs_were_slowest_and_what_a_cap_left_unspent() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", &prompts(5));
    // Over the cap, a run refuses unless `--within-cap` says which jobs go.
    let capped = h.run(
        &manifest,
        &[
            "--max-credits",
            "4200000",
            "--within-cap",
            "order",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(capped.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_said(
        &capped,
        "credits: 4,200,000 spent in this run on 4 generations (expected 4,200,000); 1 job not submitted, \
         as it would pass --max-credits 4,200,000: 1,050,000 of the 5,250,000 estimate not spent; \
         4,200,000 recorded for these jobs\n",
    );
    let said = stderr(&capped);
    let bytes: u64 = h.results().iter().filter_map(|r| r["bytes"].parse::<u64>().ok()).sum();
    assert!(
        said.contains(&format!(
            " · downloaded 4 videos, {} at ",
            vidbatch::wording::bytes(bytes)
        )),
        "{said}"
    );
    assert!(said.contains("slowest, submit to saved video (median "), "{said}");
    assert!(said.contains("over 4 jobs):"), "{said}");
    // Named by id and file, each with its time.
    let slow = said.lines().skip_while(|l| !l.starts_with("slowest")).nth(1).unwrap();
    let id = slow.split_whitespace().next().unwrap();
    assert!(h.results().iter().any(|r| r["job_id"] == id), "{slow}");
    assert!(slow.ends_with('s'), "{slow}");
    // Log lines in a file are stamped in RFC 3339, with milliseconds.
    let stamped = said.lines().find(|l| l.contains("INFO")).unwrap();
    assert!(
        stamped.len() > 24 && stamped.as_bytes()[10] == b'T' && stamped[..24].ends_with('Z'),
        "{stamped}"
    );
}

#[test]
fn a_run_stopped_before_its_first_submit_says_nothing_was_spent_not_an_error_of_money() {
    let h = Harness::new(SimConfig {
        key: Some(common::KEY.into()),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", &prompts(3));
    let refused = h.finish(h.command_as(
        "not-the-key",
        &["run", "m.yaml", "--out", "out", "--retry-base", "10ms"],
    ));
    assert_eq!(refused.status.code(), Some(exit_code::ABORTED));
    let said = stderr(&refused);
    assert!(!said.contains("(expected"), "{said}");
    assert!(
        said.contains("credits: 0 spent in this run; 3 jobs not submitted: the 3,150,000 estimate not spent"),
        "{said}"
    );
    let _ = manifest;
}
