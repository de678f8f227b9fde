//! Seeing what a run will send before it sends it: `validate` with the options of `run` shows
//! exactly the jobs `run` submits (checked against what the simulator received); a run whose
//! jobs would pass `--max-credits` refuses to start unless `--within-cap` says which go (and
//! `validate --json` says so, job by job); the jobs the cap leaves are said once before the run
//! and once in the summary's credits line, and the next command raises the cap to what they
//! need; `--sample` covers the grid; and the names of an older folder's videos stay where they
//! are.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Output;

use common::{Harness, assert_said, stderr};
use vidbatch::exit_code;

/// Three products through four templates: twelve jobs at 1,050,000 credits, product by product.
const GRID: &str = "jobs:
  - model: magic/image-to-video
    inputs: [assets/shoe.jpg, assets/bag.png, assets/presenter.jpg]
    templates: [Tokyo Billboard, Thailand Street, Phone App, Rotating Cards]
";
const PRICE: u64 = 1_050_000;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `vidbatch validate m.yaml --out OUT EXTRA…`: its output, and the job ids it says a run would
/// submit.
fn validated(h: &Harness, out: &str, extra: &[&str]) -> (Output, BTreeSet<String>) {
    let mut args = vec!["validate", "m.yaml", "--out", out];
    args.extend_from_slice(extra);
    let output = h.finish(h.command(&args));
    let text = stdout(&output);
    let with_state = text.lines().next().is_some_and(|head| head.contains(" state "));
    let to_send = text
        .lines()
        .skip(1)
        .filter(|l| l.contains(" -> "))
        .filter(|l| {
            let state = l.split_whitespace().nth(1).unwrap_or("");
            !with_state || matches!(state, "new" | "retry" | "resubmit")
        })
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    (output, to_send)
}

/// The job ids the simulator received submits for, from the `skip`-th submit on.
fn submitted(h: &Harness, skip: usize) -> BTreeSet<String> {
    h.log().submits[skip..]
        .iter()
        .map(|s| {
            let id = s.request_id.as_deref().expect("every submit carries its job id");
            id.strip_prefix("vidbatch-").unwrap().to_string()
        })
        .collect()
}

/// The total of `validate`'s cost table, and the run summary's "(expected …)".
fn validated_total(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("total "))?;
    line.split_whitespace().last().map(String::from)
}

fn expected_by_the_run(output: &Output) -> Option<String> {
    let said = stderr(output);
    let at = said.find("(expected ")? + "(expected ".len();
    Some(said[at..].split(')').next()?.to_string())
}

#[test]
fn validate_shows_exactly_what_run_sends_with_the_same_options() {
    let h = Harness::fast();
    h.write("m.yaml", GRID);
    let manifest = h.path("m.yaml");
    let cap = (5 * PRICE).to_string();
    let cases: &[&[&str]] = &[
        &["--sample", "5"],
        &["--limit", "3"],
        &["--shard", "2/3", "--sample", "2"],
        &["--max-credits", &cap, "--within-cap", "spread"],
        &["--max-credits", &cap, "--within-cap", "order"],
    ];
    for (n, options) in cases.iter().enumerate() {
        let out = format!("out-{n}");
        let (preview, to_send) = validated(&h, &out, options);
        assert_eq!(
            preview.status.code(),
            Some(exit_code::OK),
            "{options:?}: {}",
            stderr(&preview)
        );
        assert!(!to_send.is_empty() && to_send.len() < 12, "{options:?}: {to_send:?}");
        let before = h.log().submits.len();
        let run = h.finish(h.run_in(&out, &manifest, options));
        assert!(
            matches!(run.status.code(), Some(0 | 1)),
            "{options:?}: {}",
            stderr(&run)
        );
        assert_eq!(submitted(&h, before), to_send, "{options:?}: validate and run disagree");
        assert_eq!(
            validated_total(&stdout(&preview)),
            expected_by_the_run(&run),
            "{options:?}: the same estimate"
        );
    }
}

#[test]
fn a_run_over_the_cap_refuses_before_sending_anything_and_validate_says_so() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", GRID);
    let cap = (5 * PRICE).to_string();
    let run = h.run(&manifest, &["--max-credits", &cap]);
    assert_eq!(run.status.code(), Some(exit_code::INVALID));
    assert_eq!(h.log().submits_received, 0, "nothing sent");
    assert_said(
        &run,
        "the 12 jobs to submit are expected to cost 12,600,000 credits: that passes --max-credits 5,250,000 by \
         7,350,000; nothing was sent",
    );
    assert_said(&run, "raise the cap (`--max-credits 12600000`) or drop it");
    assert_said(&run, "`--within-cap order`");
    assert_said(&run, "`--within-cap spread`");

    let (preview, _) = validated(&h, "out", &["--max-credits", &cap]);
    assert_eq!(preview.status.code(), Some(exit_code::INVALID));
    assert_said(&preview, "`run` with these options would refuse to start");
    assert!(
        stdout(&preview).contains(
            "--max-credits 5,250,000: 0 committed in the folder + 12,600,000 to submit = 12,600,000: over the cap"
        ),
        "{}",
        stdout(&preview)
    );
    // `--within-cap` means nothing without a cap.
    let odd = h.run(&manifest, &["--within-cap", "order"]);
    assert_eq!(odd.status.code(), Some(exit_code::INVALID));
    assert_said(&odd, "--max-credits");
}

#[test]
fn within_cap_spread_sends_an_even_part_says_the_rest_once_and_the_next_command_sends_it() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", GRID);
    let cap = (6 * PRICE).to_string();
    let run = h.run(&manifest, &["--max-credits", &cap, "--within-cap", "spread"]);
    assert_eq!(run.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    // Six jobs, spread: every template and every product, none twice more than another.
    let rows = h.results();
    let done: Vec<&HashMap<String, String>> = rows.iter().filter(|r| r["status"] == "completed").collect();
    assert_eq!(done.len(), 6);
    let count = |column: &str| {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for row in &done {
            *counts.entry(row[column].as_str()).or_default() += 1;
        }
        counts
    };
    assert_eq!(count("template").len(), 4, "{:?}", count("template"));
    assert!(count("input").values().all(|n| *n == 2), "{:?}", count("input"));
    // results.csv keeps the manifest's order, whatever order the jobs were sent in.
    let inputs: Vec<&str> = rows.iter().map(|r| r["input"].as_str()).collect();
    assert_eq!(inputs[..4], ["assets/shoe.jpg"; 4]);
    assert_eq!(inputs[8..], ["assets/presenter.jpg"; 4]);

    // Said before the run and once at its end, never once a job.
    let said = stderr(&run);
    assert_said(
        &run,
        "--within-cap spread: 6 of the 12 jobs to submit fit under --max-credits 6,300,000",
    );
    assert_eq!(
        said.matches("6 jobs not sent: they would pass --max-credits 6,300,000 (est. 6,300,000 more)")
            .count(),
        1,
        "{said}"
    );
    // At the end, in the credits line, with what they leave unspent of the run's estimate.
    assert_said(
        &run,
        "6 jobs not submitted, as they would pass --max-credits 6,300,000: 6,300,000 of the 12,600,000 estimate \
         not spent",
    );
    assert_eq!(said.matches("would pass --max-credits").count(), 2, "{said}");
    assert!(!said.contains("left pending"), "{said}");
    // The next command raises the cap to what the rest needs; the same cap would send nothing.
    let next = said
        .lines()
        .find(|l| l.contains("send the 6 jobs the cap left"))
        .unwrap_or_else(|| panic!("{said}"));
    let command = next.split_once("): ").unwrap().1;
    assert!(command.contains("--max-credits 12600000"), "{command}");
    assert!(!command.contains(&cap), "{command}");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let pasted = h.finish(h.command(&args));
    assert_eq!(pasted.status.code(), Some(exit_code::OK), "{}", stderr(&pasted));
    assert_eq!(h.log().submits.len(), 12, "the six left, and nothing twice");
    assert!(h.results().iter().all(|r| r["status"] == "completed"));
}

#[test]
fn a_resumed_run_prices_only_what_is_left_beside_what_the_folder_committed() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", GRID);
    assert_eq!(h.run(&manifest, &["--limit", "4"]).status.code(), Some(exit_code::OK));
    let cap = (8 * PRICE).to_string();
    let refused = h.run(&manifest, &["--max-credits", &cap]);
    assert_eq!(refused.status.code(), Some(exit_code::INVALID));
    assert_said(
        &refused,
        "the 8 jobs to submit are expected to cost 8,400,000 credits, and 4,200,000 are already committed in this \
         folder: that passes --max-credits 8,400,000 by 4,200,000",
    );
    assert_eq!(h.log().submits.len(), 4);

    let (preview, to_send) = validated(&h, "out", &["--max-credits", &cap, "--within-cap", "order"]);
    assert!(
        stdout(&preview).contains("in `out`: 4 done, 4 new, 4 over cap"),
        "{}",
        stdout(&preview)
    );
    // JSON lines for machines keep one `job_pending` event per job.
    let run = h.run(
        &manifest,
        &["--max-credits", &cap, "--within-cap", "order", "--log-format", "json"],
    );
    assert_eq!(run.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(submitted(&h, 4), to_send);
    let pending = stderr(&run)
        .lines()
        .filter(|l| l.contains("\"event\":\"job_pending\"") && l.contains("budget reached"))
        .count();
    assert_eq!(pending, 4);
}

#[test]
fn a_sample_covers_every_template_and_the_summary_says_what_was_not_run() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", GRID);
    let (_, to_send) = validated(&h, "out", &["--sample", "5"]);
    let run = h.run(&manifest, &["--sample", "5"]);
    assert_eq!(
        run.status.code(),
        Some(exit_code::OK),
        "a completed sample is a success"
    );
    assert_said(
        &run,
        "finished: 5 of 5 jobs completed · 7 jobs of the plan not run (--sample 5)",
    );
    assert_eq!(submitted(&h, 0), to_send);
    let rows = h.results();
    let templates: BTreeSet<&str> = rows.iter().map(|r| r["template"].as_str()).collect();
    let inputs: BTreeSet<&str> = rows.iter().map(|r| r["input"].as_str()).collect();
    assert_eq!((templates.len(), inputs.len()), (4, 3), "{rows:#?}");
    // The same sample again: nothing new to pay for.
    let again = h.run(&manifest, &["--sample", "5"]);
    assert_eq!(again.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 5);
    let limited = h.run(&manifest, &["--limit", "2"]);
    assert_said(
        &limited,
        "2 of 2 jobs completed · 10 jobs of the plan not run (--limit 2)",
    );
}

/// PixVerse prompt variants of one product under one label.
const VARIANTS: &str = "jobs:
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompts: [\"A presenter smiles at the camera\", \"The bag turns slowly on a marble table\"]
    label: sac cuir
";

#[test]
fn validate_shows_what_tells_jobs_apart() {
    let h = Harness::fast();
    h.write("m.yaml", VARIANTS);
    let (preview, _) = validated(&h, "out", &[]);
    let text = stdout(&preview);
    for expected in [
        "assets/bag.png · \"A presenter smiles at the camera\" [sac cuir] -> \
         videos/pixverse-v5-image-to-video/bag-a-presenter-smiles-at-the-camera.mp4",
        "assets/bag.png · \"The bag turns slowly on a marble table\" [sac cuir] -> \
         videos/pixverse-v5-image-to-video/bag-the-bag-turns-slowly-on-a-marble-table.mp4",
    ] {
        assert!(text.contains(expected), "{text}");
    }
}

/// A folder made when colliding names got the job id appended keeps its videos where they are:
/// the job ids do not depend on names, completed jobs keep their recorded file, and nothing is
/// paid again.
#[test]
fn an_older_folders_videos_keep_their_names_and_nothing_is_paid_again() {
    let h = Harness::fast();
    // What the naming before this change gave these two jobs: the default pattern's name, with
    // the job id appended (`bag-<job_id>.mp4`).
    let old = h.write(
        "m.yaml",
        &format!("output: \"{{model}}/{{input}}-{{job_id}}.mp4\"\n{VARIANTS}"),
    );
    assert_eq!(h.run(&old, &[]).status.code(), Some(exit_code::OK));
    let before: BTreeSet<(String, String)> = h
        .results()
        .iter()
        .map(|r| (r["job_id"].clone(), r["file"].clone()))
        .collect();
    assert!(
        before.iter().all(|(id, file)| file.ends_with(&format!("bag-{id}.mp4"))),
        "{before:?}"
    );

    // The same manifest without `output:`: the names are readable now, for new jobs.
    let manifest = h.write(
        "m.yaml",
        &format!(
            "{VARIANTS}  - model: pixverse/v5/image-to-video\n    input: assets/bag.png\n    prompt: The bag is packed in a gift box\n    label: sac cuir\n"
        ),
    );
    let rerun = h.run(&manifest, &[]);
    assert_eq!(rerun.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 3, "only the new prompt is paid for");
    let after: BTreeSet<(String, String)> = h
        .results()
        .iter()
        .map(|r| (r["job_id"].clone(), r["file"].clone()))
        .collect();
    assert!(before.is_subset(&after), "the old videos keep their names: {after:?}");
    assert!(
        after
            .iter()
            .any(|(_, f)| f == "videos/pixverse-v5-image-to-video/bag-the-bag-is-packed-in-a-gift-box.mp4"),
        "{after:?}"
    );
    common::assert_files_match_results(&h.out(), &h.results());
    // `validate` shows the files where they are.
    let (preview, to_send) = validated(&h, "out", &[]);
    assert!(to_send.is_empty());
    for (_, file) in &before {
        assert!(stdout(&preview).contains(&format!("-> {file}")), "{}", stdout(&preview));
    }
    assert!(Path::new(&h.out().join(&before.iter().next().unwrap().1)).is_file());
}

#[test]
fn validate_with_simulate_prices_as_run_with_simulate() {
    let h = Harness::fast();
    h.write("m.yaml", VARIANTS);
    // PixVerse is priced from the simulator's list (1,260,000), not counted at the highest
    // charge (2,000,000): both fit under 2,600,000.
    let mut command = h.command(&["validate", "m.yaml", "--simulate", "--max-credits", "2600000"]);
    command.env("AIMLAPI_BASE_URL", "http://127.0.0.1:9");
    let preview = h.finish(command);
    assert_eq!(preview.status.code(), Some(exit_code::OK), "{}", stderr(&preview));
    let text = stdout(&preview);
    assert!(text.contains("2 ×   1,260,000"), "{text}");
    assert!(text.contains("within the cap"), "{text}");
    assert!(text.contains("the built-in simulator's price list"), "{text}");
    let mut run = h.command(&["run", "m.yaml", "--simulate", "--max-credits", "2600000"]);
    run.env("AIMLAPI_BASE_URL", "http://127.0.0.1:9");
    let run = h.finish(run);
    assert_eq!(run.status.code(), Some(exit_code::OK), "{}", stderr(&run));
    assert_said(&run, "2 of 2 jobs completed");
}

/// `validate --json` with the options of `run`: each job of the plan says whether the run
/// submits it and in which order (checked against what the simulator received), and the
/// document says what the cap leaves and whether `run` would refuse, with `run`'s exit code.
#[test]
fn validate_json_says_which_jobs_run_sends_in_which_order_and_whether_it_would_refuse() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", GRID);
    let cap = (5 * PRICE).to_string();
    let json = |extra: &[&str]| {
        let mut args = vec!["validate", "m.yaml", "--out", "out", "--json"];
        args.extend_from_slice(extra);
        let output = h.finish(h.command(&args));
        assert!(
            output.stderr.is_empty(),
            "the document says it all: {}",
            stderr(&output)
        );
        let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(&output)));
        (output.status.code(), doc)
    };

    let (code, refused) = json(&["--max-credits", &cap]);
    assert_eq!(code, Some(exit_code::INVALID));
    assert_eq!(
        (refused["valid"].as_bool(), refused["exit_code"].as_i64()),
        (Some(true), Some(2))
    );
    assert_eq!(refused["run"]["refuses"], true);
    assert_eq!(refused["run"]["over_cap_jobs"], 7);
    let error = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        error.contains("`run` with these options would refuse to start"),
        "{error}"
    );
    assert!(
        refused["errors"][0]["help"]
            .as_str()
            .unwrap()
            .contains("--within-cap spread")
    );
    assert_eq!(
        refused["plan"].as_array().unwrap().len(),
        12,
        "the plan is shown all the same"
    );

    let (code, spread) = json(&["--max-credits", &cap, "--within-cap", "spread", "--sample", "8"]);
    assert_eq!(code, Some(exit_code::OK));
    assert_eq!(
        (spread["run"]["refuses"].as_bool(), spread["run"]["within_cap"].as_str()),
        (Some(false), Some("spread"))
    );
    assert_eq!(
        (spread["jobs"].as_u64(), spread["run"]["not_run_jobs"].as_u64()),
        (Some(8), Some(4))
    );
    assert_eq!(spread["run"]["not_run_by"][0], "--sample 8");
    assert_eq!(
        (
            spread["run"]["over_cap_jobs"].as_u64(),
            spread["estimate"]["jobs"].as_u64()
        ),
        (Some(3), Some(5))
    );
    let mut to_send: Vec<(u64, String)> = spread["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["submit"] == true)
        .map(|j| {
            (
                j["submit_order"].as_u64().unwrap(),
                j["job_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    to_send.sort();
    assert_eq!(to_send.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(
        spread["plan"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| (j["state"] == "over cap") != (j["submit"] == true))
    );

    // One generation at a time: the simulator receives the submits in the order said.
    let run = h.run(
        &manifest,
        &[
            "--max-credits",
            &cap,
            "--within-cap",
            "spread",
            "--sample",
            "8",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(run.status.code(), Some(exit_code::JOBS_INCOMPLETE), "{}", stderr(&run));
    let received: Vec<String> = h
        .log()
        .submits
        .iter()
        .map(|s| {
            s.request_id
                .as_deref()
                .unwrap()
                .strip_prefix("vidbatch-")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(received, to_send.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
}
