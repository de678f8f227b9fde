//! The real binary against the simulator over HTTP on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{Harness, assert_files_match_results, assert_said, fast_config, files_under, repo, stderr};
use serde_json::Value;
use vidbatch::exit_code;
use vidbatch::sim::SimConfig;
use vidbatch::sim::schema::{Schemas, Verdict};

/// Every body the client sent is valid for the vendor's schema of the path it was sent to: the
/// simulator refuses (400, logged) any body that is not, so none may have been refused, and the
/// accepted ones are checked again here against a fresh load of the fixtures.
fn assert_bodies_match_vendor_schemas(h: &Harness) {
    let log = h.log();
    let invalid: Vec<&String> = log.refused.iter().filter(|r| r.0 == 400).map(|r| &r.1).collect();
    assert!(
        invalid.is_empty(),
        "the simulator refused bodies the client sent: {invalid:#?}"
    );
    assert!(!log.submits.is_empty());
    let schemas = Schemas::load();
    for submit in log.submits {
        let verdict = schemas.validate(&submit.path, &submit.body);
        assert_eq!(
            verdict,
            Verdict::Valid,
            "body for {} fails its schema",
            submit.body["model"]
        );
    }
}

fn bodies(h: &Harness, model: &str) -> Vec<Value> {
    h.log()
        .submits
        .into_iter()
        .filter(|s| s.body["model"] == model)
        .map(|s| s.body)
        .collect()
}

#[test]
fn the_demo_runs_all_its_models_end_to_end() {
    let h = Harness::fast();
    let manifest = repo().join("manifests/demo.yaml");
    // The demo refers to `assets/…` beside it: run it from its own folder.
    let out = h.out();
    let output = h
        .command(&[
            "run",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--rate",
            "100",
            "--poll-interval",
            "50ms",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    let rows = h.results();
    assert_eq!(rows.len(), 11);
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:#?}");
    assert_files_match_results(&out, &rows);
    assert_bodies_match_vendor_schemas(&h);

    // Column order is part of the contract: these first, in this order (more may follow); the
    // byte-order mark makes spreadsheets read UTF-8.
    let header = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(header.starts_with(
        "\u{feff}job_id,model,template,input,status,generation_id,file,bytes,sha256,credits,attempts,submitted_at,finished_at,error,label,params,prompt,custom_id\n"
    ));

    let i2v = bodies(&h, "magic/image-to-video");
    assert_eq!(i2v.len(), 4);
    let templates: Vec<&str> = i2v.iter().map(|b| b["template"].as_str().unwrap()).collect();
    assert!(
        templates.contains(&"Rotating Cards"),
        "the gallery's Cyrillic С is sent as ASCII: {templates:?}"
    );
    assert!(
        i2v.iter()
            .any(|b| b["image_url"].as_str().unwrap().starts_with("data:image/jpeg;base64,"))
    );
    assert!(
        i2v.iter()
            .any(|b| b["image_url"].as_str().unwrap().starts_with("data:image/png;base64,"))
    );

    let v2v = bodies(&h, "magic/video-to-video");
    assert!(
        v2v[0]["video_url"]
            .as_str()
            .unwrap()
            .starts_with("data:video/mp4;base64,")
    );
    assert_eq!(v2v[0]["template"], "New York Times Square (67)");

    let t2v = bodies(&h, "magic/text-to-video");
    let mut prompts: Vec<&str> = t2v.iter().map(|b| b["prompt"].as_str().unwrap()).collect();
    prompts.sort();
    assert_eq!(prompts, ["NEW SEASON", "SALE -30%"]);
    assert!(t2v.iter().all(|b| b["template"] == "Shanghai Drone Show"));

    let pix = bodies(&h, "pixverse/v5/image-to-video");
    assert_eq!(pix[0]["lip_sync_tts_content"], "Hello! Our spring sale starts today.");
    assert_eq!(pix[0]["lip_sync_tts_speaker"], "Chloe");
    assert_eq!(pix[0]["duration"], 5);
    let pix_row = rows
        .iter()
        .find(|r| r["model"] == "pixverse/v5/image-to-video")
        .unwrap();
    assert!(
        pix_row["generation_id"].ends_with(":pixverse/v5/image-to-video"),
        "ids with `:` and `/` poll fine"
    );
    assert_eq!(pix_row["template"], "");
    assert_eq!(pix_row["input"], "assets/presenter.jpg");
    let t2v_row = rows.iter().find(|r| r["input"] == "SALE -30%").unwrap();
    assert_eq!(t2v_row["model"], "magic/text-to-video");
    assert_eq!(t2v_row["credits"], "1050000");
    assert_eq!(t2v_row["attempts"], "1");

    // No API key ever reached the file host.
    let downloads = h.log().downloads;
    assert_eq!(downloads.len(), 11);
    assert!(downloads.iter().all(|d| !d.had_authorization));

    // The same command again: everything is done, nothing is sent.
    let before = h.log();
    let again = h
        .command(&["run", manifest.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(exit_code::OK), "{}", stderr(&again));
    let after = h.log();
    assert_eq!(after.submits.len(), before.submits.len());
    assert_eq!(after.polls, before.polls);
    assert_said(&again, "11 already done");
}

#[test]
fn a_csv_manifest_runs_with_numbers_parsed_and_gallery_names_resolved() {
    let h = Harness::fast();
    let manifest = h.write(
        "campaign.csv",
        &std::fs::read_to_string(repo().join("manifests/campaign.csv")).unwrap(),
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let rows = h.results();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["status"] == "completed"));
    assert_files_match_results(&h.out(), &rows);
    assert_bodies_match_vendor_schemas(&h);
    let i2v = bodies(&h, "magic/image-to-video");
    assert!(i2v.iter().any(|b| b["template"] == "New York Times Square (66)"));
    let pix = &bodies(&h, "pixverse/v5/image-to-video")[0];
    assert_eq!(
        pix["duration"], 8,
        "a CSV cell becomes a number where the schema wants one"
    );
    assert_eq!(pix["resolution"], "540p");
}

#[test]
fn all_templates_with_a_url_input_passed_through() {
    let h = Harness::fast();
    let url = "https://cdn.example.com/products/bag.png?v=2";
    let manifest = h.write(
        "all.yaml",
        &format!("jobs:\n  - model: magic/image-to-video\n    input: \"{url}\"\n    templates: all\n"),
    );
    let output = h.run(&manifest, &["--concurrency", "32"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let rows = h.results();
    assert_eq!(rows.len(), 21);
    let sent = bodies(&h, "magic/image-to-video");
    assert_eq!(sent.len(), 21);
    assert!(sent.iter().all(|b| b["image_url"] == url));
    let mut templates: Vec<String> = sent
        .iter()
        .map(|b| b["template"].as_str().unwrap().to_string())
        .collect();
    templates.sort();
    templates.dedup();
    assert_eq!(templates.len(), 21);
    assert_bodies_match_vendor_schemas(&h);
}

#[test]
fn an_unknown_template_is_refused_and_nothing_is_sent() {
    let h = Harness::fast();
    let manifest = h.write(
        "bad.yaml",
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: [Tokyo Billboard, Tokio Bilboard]\n  - model: magic/video-to-video\n    input: assets/teaser.mp4\n    template: New York Times Square(66)\n",
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::INVALID));
    let err = stderr(&output);
    // Each error names file, line and column, and shows the line with the name underlined.
    assert!(err.contains("unknown template `Tokio Bilboard`"), "{err}");
    assert!(err.contains("bad.yaml:4:34]"), "{err}");
    assert!(err.contains("templates: [Tokyo Billboard, Tokio Bilboard]"), "{err}");
    assert!(err.contains("2 errors in the manifest"), "{err}");
    assert!(err.contains("did you mean `Tokyo Billboard`"), "{err}");
    assert!(
        err.contains("unknown template `New York Times Square(66)` for `magic/video-to-video`"),
        "{err}"
    );
    assert!(err.contains("bad.yaml:7:15]"), "{err}");
    assert!(
        err.contains("`New York Times Square (67)`") && err.contains("`New York Times Square (78)`"),
        "{err}"
    );
    let log = h.log();
    assert_eq!(log.submits.len() + log.refused.len(), 0);
    assert_eq!(log.polls, 0);
    assert!(
        !h.out().join("state.db").exists(),
        "nothing is written for a refused manifest"
    );
}

#[test]
fn a_missing_input_file_stops_everything_before_any_request() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    inputs:\n      - assets/shoe.jpg\n      - assets/gone.jpg\n",
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::INVALID));
    assert_said(&output, "input `assets/gone.jpg`: file not found");
    assert_said(&output, "m.yaml:5:9]");
    assert_eq!(h.log().submits.len(), 0);
}

#[test]
fn a_refused_key_aborts_with_exit_3_and_the_run_resumes_with_the_right_one() {
    let h = Harness::new(SimConfig {
        key: Some("the-right-key".into()),
        ..fast_config()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: all\n",
    );
    let output = h.run(&manifest, &["--concurrency", "8"]);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    assert_said(&output, "AIMLAPI_KEY");
    assert!(!stderr(&output).contains(common::KEY), "the key is never printed");
    let refused = h.log().refused.len();
    assert!(
        (1..=8).contains(&refused),
        "the run stops at the first refusal ({refused} requests refused)"
    );
    let rows = h.results();
    assert!(rows.iter().all(|r| r["status"] == "pending"), "{rows:#?}");

    let output = h
        .command(&[
            "run",
            manifest.to_str().unwrap(),
            "--out",
            "out",
            "--poll-interval",
            "50ms",
        ])
        .env("AIMLAPI_KEY", "the-right-key")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    assert!(h.results().iter().all(|r| r["status"] == "completed"));
}

#[test]
fn an_account_out_of_credits_stops_the_run_and_a_rerun_finishes_it() {
    let h = Harness::new(SimConfig {
        out_of_credits_first_submits: 1,
        ..fast_config()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B, C]\n",
    );
    let output = h.run(&manifest, &["--concurrency", "1"]);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    let err = stderr(&output);
    assert!(err.contains("HTTP 403") && err.contains("credits"), "{err}");
    assert!(h.log().submits.is_empty(), "nothing is sent after the refusal");
    assert!(h.results().iter().all(|r| r["status"] == "pending"));

    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 3);
    assert_files_match_results(&h.out(), &h.results());
}

/// Nothing listens: the submit is retried with backoff, then the run stops as a whole (rather
/// than failing every job in turn), with every job left `pending` for the same command.
#[test]
fn an_unreachable_api_stops_the_run_and_leaves_every_job_to_resume() {
    let h = Harness::fast();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B, C]\n",
    );
    let output = h
        .run_command(&manifest, &["--retry-base", "5ms", "--concurrency", "1"])
        .env("AIMLAPI_BASE_URL", &url)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED), "{err}");
    assert!(
        err.contains("cannot reach the API") && err.contains("after 8 retries"),
        "{err}"
    );
    assert_eq!(
        err.matches("transient error submitting").count(),
        8,
        "one job's retries, then a stop: {err}"
    );
    let rows = h.results();
    assert!(
        rows.iter()
            .all(|r| r["status"] == "pending" && r["error"].contains("the run stopped: cannot reach the API")),
        "{rows:#?}"
    );
}

#[test]
fn a_failed_generation_is_reported_and_resubmitted_only_when_allowed() {
    let h = Harness::new(SimConfig {
        fail_first: 1,
        ..fast_config()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: hello\n",
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let rows = h.results();
    assert!(
        rows.iter().all(|r| r["status"] == "failed" && r["attempts"] == "1"),
        "{rows:#?}"
    );
    let magic = rows.iter().find(|r| r["model"] == "magic/image-to-video").unwrap();
    assert!(magic["error"].contains("RenderError: simulated failure"), "{magic:?}");
    let pix = rows
        .iter()
        .find(|r| r["model"] == "pixverse/v5/image-to-video")
        .unwrap();
    assert!(pix["error"].contains("body.image_url: simulated failure"), "{pix:?}");

    // Rerunning without permission to pay again changes nothing.
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits.len(), 2);

    let output = h.run(&manifest, &["--paid-retries", "1"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let rows = h.results();
    assert!(
        rows.iter().all(|r| r["status"] == "completed" && r["attempts"] == "2"),
        "{rows:#?}"
    );
    assert_eq!(h.log().submits.len(), 4);
}

/// The service says it does not know a generation the state recorded: that one will never finish,
/// so the job is `failed` (not left pending forever) and submitted again only as a paid retry.
#[test]
fn a_generation_the_service_does_not_know_fails_and_is_paid_again_only_when_allowed() {
    let h = Harness::fast();
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompt: LOST\n");
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    let db = rusqlite::Connection::open(h.out().join("state.db")).unwrap();
    db.execute(
        "UPDATE jobs SET phase = 'generating', generation_id = 'no-such-generation'",
        [],
    )
    .unwrap();
    drop(db);

    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let row = h.results().remove(0);
    assert_eq!(row["status"], "failed");
    assert!(row["error"].contains("HTTP 404"), "{row:?}");
    assert_eq!(h.log().submits.len(), 1, "not paid again unasked");

    let output = h.run(&manifest, &["--paid-retries", "1"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 2);
    assert_eq!(h.results()[0]["attempts"], "2");
}

#[test]
fn paid_retries_happen_within_one_run() {
    let h = Harness::new(SimConfig {
        fail_first: 2,
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompt: HELLO\n");
    let output = h.run(&manifest, &["--paid-retries", "2"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(h.results()[0]["attempts"], "3");
    assert_eq!(h.log().submits.len(), 3);
}

#[test]
fn an_expired_download_url_is_replaced_by_a_fresh_poll() {
    let h = Harness::new(SimConfig {
        expire_first_urls: 1,
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B]\n");
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let downloads = h.log().downloads;
    let statuses: Vec<u16> = downloads.iter().map(|d| d.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    assert!(downloads.iter().all(|d| !d.had_authorization));
    assert_files_match_results(&h.out(), &h.results());
}

#[test]
fn a_request_the_service_refuses_fails_that_job_with_its_message() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: acme/video-9000\n    prompt: a cat\n  - model: magic/text-to-video\n    prompt: OK\n",
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    assert_said(&output, "`acme/video-9000` is not one vidbatch knows");
    let rows = h.results();
    let bad = rows.iter().find(|r| r["model"] == "acme/video-9000").unwrap();
    assert_eq!(bad["status"], "failed");
    assert!(bad["error"].contains("HTTP 400: Body validation error!"), "{bad:?}");
    assert_eq!(
        rows.iter().find(|r| r["model"] == "magic/text-to-video").unwrap()["status"],
        "completed"
    );
}

#[test]
fn ctrl_c_stops_submitting_and_waits_for_what_is_paid_for() {
    let h = Harness::new(SimConfig {
        queued: Duration::from_millis(100),
        generating: Duration::from_millis(700),
        ..SimConfig::default()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png]\n    templates: all\n",
    );
    let child = h.spawn_run(&manifest, &["--concurrency", "3"]);
    h.wait_for("the first submits", |l| l.submits.len() >= 3);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    let rows = h.results();
    let submitted = h.log().submits.len();
    let completed = rows.iter().filter(|r| r["status"] == "completed").count();
    assert!(submitted < 42, "submissions stopped");
    assert_eq!(
        completed, submitted,
        "every generation paid for was waited for and fetched"
    );
    assert!(
        rows.iter()
            .all(|r| r["status"] == "completed" || r["status"] == "pending")
    );

    let output = h.run(&manifest, &["--concurrency", "16"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 42, "each job paid exactly once across both runs");
}

#[test]
fn validate_and_templates_send_nothing() {
    let h = Harness::fast();
    let output = h
        .command(&["validate", repo().join("manifests/demo.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("11 jobs valid; nothing was sent"), "{stdout}");
    let output = h.command(&["templates", "magic/video-to-video"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("New York Times Square (78)") && !stdout.contains("Digital Float"),
        "{stdout}"
    );
    let output = h.command(&["templates", "magic/image-to-vidoe"]).output().unwrap();
    assert_eq!(output.status.code(), Some(exit_code::INVALID));
    assert_said(&output, "did you mean `magic/image-to-video`");
    assert_eq!(h.log().polls + h.log().submits.len() as u64, 0);
    assert!(files_under(h.dir.path()).iter().all(|f| f.starts_with("assets/")));
}

/// SIGKILL at several moments (after the first submits, in the middle of a download, later on),
/// then the same command: every job completes, no recorded generation is ever submitted again,
/// and no partial file is left under a final name.
#[test]
fn a_run_killed_with_sigkill_resumes_without_paying_twice() {
    // Videos of 4 MiB: the half served before the pause is more than the downloader's first
    // write batch (1 MiB), so the `.part` file is on disk while the simulator waits.
    const SIZE: u64 = 4 << 20;
    let h = Harness::new(SimConfig {
        queued: Duration::from_millis(100),
        generating: Duration::from_millis(600),
        download_pause: Duration::from_millis(400),
        video_size: Some(SIZE),
        ..SimConfig::default()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png]\n    templates: [Tokyo Billboard, Phone App, Art Gallery, Dubai Museum, Egypt Pyramid, Phone Social]\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompts: [one, two]\n",
    );
    let jobs = 14;
    let args = ["--concurrency", "4"];
    type Moment = Box<dyn Fn(&vidbatch::sim::SimLog, &vidbatch::sim::SimLog) -> bool>;
    let moments: Vec<(&str, Moment)> = vec![
        ("three submits", Box::new(|_, l| l.submits.len() >= 3)),
        (
            "a download under way",
            Box::new(|before, l| l.downloads.len() > before.downloads.len()),
        ),
        (
            "more submits",
            Box::new(move |before, l| l.submits.len() > before.submits.len()),
        ),
    ];
    for (what, moment) in &moments {
        let before = h.log();
        let mut child = h.spawn_run(&manifest, &args);
        if *what == "more submits" {
            // The kills before may have left every job submitted or `unknown` (a submit cut off
            // is never sent again): then there is nothing more to submit, and the run is killed
            // wherever it is.
            if !h.wait_at_most(Duration::from_secs(10), |l| moment(&before, l)) {
                let records = vidbatch::state::StateReader::open(&h.out()).unwrap().records().unwrap();
                let queued = records
                    .values()
                    .filter(|r| r.phase == vidbatch::state::Phase::Queued)
                    .count();
                assert_eq!(
                    queued, 0,
                    "jobs were left to submit, and the resumed run submitted none"
                );
            }
        } else {
            h.wait_for(what, |l| moment(&before, l));
        }
        if *what == "a download under way" {
            // The simulator pauses mid-file: kill while the `.part` file is there.
            let start = std::time::Instant::now();
            while !files_under(&h.out()).iter().any(|f| f.ends_with(".part")) {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "no partial download appeared"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the moment, a file under a final name is a whole video the simulator served.
        let log = h.log();
        for file in files_under(&h.out().join("videos")) {
            if file.ends_with(".part") {
                continue;
            }
            let bytes = std::fs::read(h.out().join("videos").join(&file)).unwrap();
            assert!(
                log.submits
                    .iter()
                    .any(|s| vidbatch::sim::media::padded_video(&s.generation_id, SIZE) == bytes),
                "after the kill at {what}: `{file}` is not a whole video"
            );
        }
        if *what == "a download under way" {
            assert!(
                files_under(&h.out()).iter().any(|f| f.ends_with(".part")),
                "the mid-download kill should have left a partial file"
            );
        }
    }

    // Submits cut off by a kill have an unknown outcome; this run accepts paying for those again.
    let output = h.run(&manifest, &["--concurrency", "4", "--resubmit-unknown"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let rows = h.results();
    assert_eq!(rows.len(), jobs);
    assert!(rows.iter().all(|r| r["status"] == "completed"), "{rows:#?}");
    assert_files_match_results(&h.out(), &rows);
    assert!(files_under(&h.out()).iter().all(|f| !f.ends_with(".part")));

    // Every generation the runs recorded: exactly one per job, and the simulator saw exactly one
    // submit of each job's request among the submits whose answer was recorded.
    let state = vidbatch::state::RunState::open(&h.out(), &h.sim.base_url).unwrap();
    let recorded = state.generations().unwrap();
    let mut per_job: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for (key, _) in &recorded {
        *per_job.entry(key.clone()).or_default() += 1;
    }
    assert_eq!(per_job.len(), jobs);
    assert!(per_job.values().all(|&n| n == 1), "a job was paid twice: {per_job:?}");
    let log = h.log();
    let recorded_ids: std::collections::HashSet<&str> = recorded.iter().map(|(_, id)| id.as_str()).collect();
    let mut bodies_with_recorded_ids: Vec<&str> = log
        .submits
        .iter()
        .filter(|s| recorded_ids.contains(s.generation_id.as_str()))
        .map(|s| s.body_sha256.as_str())
        .collect();
    bodies_with_recorded_ids.sort();
    let before_dedup = bodies_with_recorded_ids.len();
    bodies_with_recorded_ids.dedup();
    assert_eq!(before_dedup, bodies_with_recorded_ids.len());
    // Only submits whose answers were lost to a kill may be extra.
    let unrecorded = log.submits.len() - recorded_ids.len();
    assert!(unrecorded <= 3 * 4, "{unrecorded} submits were never recorded");
    // Each job's row names the generation the simulator created for that job's request.
    for row in &rows {
        let submit = log
            .submits
            .iter()
            .find(|s| s.generation_id == row["generation_id"])
            .unwrap();
        assert_eq!(submit.body["model"], row["model"].as_str());
    }
}

/// A long run keeps `results.csv` current, so a run killed outright still leaves a recent one.
#[test]
fn results_are_refreshed_during_the_run() {
    let h = Harness::new(SimConfig {
        generating: Duration::from_secs(30),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B]\n");
    let mut child = h.spawn_run(&manifest, &["--progress-every", "100ms"]);
    h.wait_for("two submits", |l| l.submits.len() == 2);
    let path = h.out().join("results.csv");
    let start = std::time::Instant::now();
    let rows = loop {
        if path.exists() {
            let rows = common::read_results(&path);
            if rows.iter().all(|r| !r["generation_id"].is_empty()) {
                break rows;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "results.csv was not refreshed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "pending"), "{rows:#?}");
}

#[test]
fn two_runs_cannot_share_an_output_folder() {
    let h = Harness::new(SimConfig {
        generating: Duration::from_secs(2),
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompt: LOCKED\n");
    let mut first = h.spawn_run(&manifest, &[]);
    h.wait_for("the first submit", |l| !l.submits.is_empty());
    let second = h.run(&manifest, &[]);
    assert_eq!(second.status.code(), Some(exit_code::BUSY));
    assert_said(&second, "another vidbatch run is using");
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(h.log().submits.len(), 1);
}

#[test]
fn throttled_submits_and_unavailable_polls_are_retried_honouring_retry_after() {
    let h = Harness::new(SimConfig {
        throttle_first_submits: 2,
        retry_after: Duration::from_secs(1),
        unavailable_first_polls: 3,
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B]\n");
    // Poll retries are said only with -v: they are free, and the counts show the wait.
    let output = h.run(&manifest, &["--retry-base", "10ms", "-v"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    let err = stderr(&output);
    assert!(
        err.contains("transient error submitting") && err.contains("HTTP 429"),
        "{err}"
    );
    assert!(
        err.contains("transient error polling") && err.contains("HTTP 503"),
        "{err}"
    );
    let log = h.log();
    assert_eq!(log.submits.len(), 2, "a 429 creates nothing, so nothing is paid twice");
    // Retry-After is a floor: no submit came back sooner than the server asked.
    let last_429 = log.refused.iter().filter(|r| r.0 == 429).map(|r| r.2).max().unwrap();
    let first_429 = log.refused.iter().filter(|r| r.0 == 429).map(|r| r.2).min().unwrap();
    let first_accepted = log.submits.iter().map(|s| s.at).min().unwrap();
    assert!(first_accepted.duration_since(first_429).unwrap() >= Duration::from_secs(1));
    assert!(first_accepted >= last_429);
    assert!(h.results().iter().all(|r| r["status"] == "completed"));
}

/// A submit waiting out a 429 has sent nothing that could have created a generation: a kill
/// then leaves it plainly queued, not `unknown`, and the rerun submits it without being told to.
#[test]
fn a_run_killed_while_waiting_out_a_429_leaves_nothing_unknown() {
    let h = Harness::new(SimConfig {
        throttle_first_submits: 3,
        retry_after: Duration::from_secs(5),
        ..fast_config()
    });
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/text-to-video\n    prompts: [A, B, C]\n",
    );
    let mut child = h.spawn_run(&manifest, &[]);
    h.wait_for("three throttled submits", |l| l.refused.len() >= 3);
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL, inside the 5 s the server asked for
    child.wait().unwrap();
    assert!(h.log().submits.is_empty());

    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "nothing was left `unknown`");
    assert_eq!(h.log().submits.len(), 3);
    assert!(
        h.results()
            .iter()
            .all(|r| r["status"] == "completed" && r["attempts"] == "1")
    );
}

/// An edited prompt is a new job that would be named like the old one: the old video, paid for,
/// stays where it is, and the new one is written beside it.
#[test]
fn a_new_job_never_overwrites_an_earlier_jobs_video() {
    let h = Harness::fast();
    let write = |prompt: &str| {
        h.write(
            "m.yaml",
            &format!(
                "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: {prompt}\n"
            ),
        )
    };
    let manifest = write("A presenter waves");
    assert_eq!(h.run(&manifest, &[]).status.code(), Some(exit_code::OK));
    let first = h.results().remove(0);

    write("A presenter bows");
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_said(&output, "already holds the finished video of another job");
    let second = h.results().remove(0);
    assert_ne!(second["job_id"], first["job_id"]);
    assert_ne!(second["file"], first["file"]);
    // Both videos are whole and each is the one its generation produced.
    assert_files_match_results(&h.out(), &[first, second]);
}

#[test]
fn an_unwritable_output_folder_stops_the_run_before_more_is_paid_for() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: all\n",
    );
    std::fs::create_dir_all(h.out()).unwrap();
    // A file where the videos folder should be: every download fails to write.
    std::fs::write(h.out().join("videos"), "not a folder").unwrap();
    let output = h.run(&manifest, &["--concurrency", "2"]);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    assert_said(&output, "cannot write");
    let paid = h.log().submits.len();
    assert!(paid < 21, "the run stopped submitting ({paid} submitted)");

    std::fs::remove_file(h.out().join("videos")).unwrap();
    let output = h.run(&manifest, &["--concurrency", "8"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(
        h.log().submits.len(),
        21,
        "the generations of the first run were fetched, not paid again"
    );
    assert_files_match_results(&h.out(), &h.results());
}

#[test]
fn a_generation_that_cannot_be_polled_gives_up_at_the_timeout_and_a_rerun_picks_it_up() {
    let h = Harness::new(SimConfig {
        unavailable_first_polls: 10,
        ..fast_config()
    });
    let manifest = h.write("m.yaml", "jobs:\n  - model: magic/text-to-video\n    prompt: LATE\n");
    let output = h.run(&manifest, &["--timeout", "300ms", "--retry-base", "10ms"]);
    assert_eq!(output.status.code(), Some(exit_code::JOBS_INCOMPLETE));
    let row = &h.results()[0];
    assert_eq!(row["status"], "pending", "the generation may still finish");
    assert!(row["error"].contains("rerun to poll it again"), "{row:?}");

    // The service recovers: the same command polls the same generation, no second submit.
    let output = h.run(&manifest, &["--retry-base", "10ms"]);
    assert_eq!(output.status.code(), Some(exit_code::OK));
    assert_eq!(h.log().submits.len(), 1);
    assert_eq!(h.results()[0]["generation_id"], row["generation_id"]);
}
