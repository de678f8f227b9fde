//! Every model of the catalog, checked the way a manifest uses it: a minimal valid job (its
//! required input, prompt and parameters) plans with no warning and runs against the simulator
//! (which checks it with the vendor's schemas, not the client's catalog), and for every parameter
//! with an enum or a range, a value outside it is refused at its own line.

mod common;

use common::catalog_jobs::{media_files, minimal_job};

use std::path::Path;

use vidbatch::catalog::{self, ParamKind};
use vidbatch::{manifest, plan};

/// A value outside the parameter's enum or range, when it has one.
fn outside(kind: ParamKind) -> Option<String> {
    match kind {
        ParamKind::Choice(_) => Some("\"not-one-of-them\"".into()),
        ParamKind::IntChoice(options) => Some((options.iter().max().unwrap() + 1).to_string()),
        ParamKind::IntRange(lo, hi) if hi < i64::MAX => Some((hi + 1).to_string()).filter(|_| lo <= hi),
        ParamKind::IntRange(lo, _) if lo > i64::MIN => Some((lo - 1).to_string()),
        ParamKind::Number { max: Some(hi), .. } => Some((hi + 1.0).to_string()),
        ParamKind::Number { min: Some(lo), .. } => Some((lo - 1.0).to_string()),
        _ => None,
    }
}

fn plan_text(dir: &Path, text: &str) -> Result<plan::Plan, manifest::Diagnostics> {
    let path = dir.join("m.yaml");
    manifest::parse(&path, text.into()).and_then(|m| plan::plan(&m))
}

#[test]
fn every_catalogued_model_plans_a_minimal_job_and_refuses_values_outside_its_enums_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    media_files(dir.path());
    let (mut models, mut params, mut cases) = (0, 0, 0);
    let mut problems = Vec::new();
    for m in catalog::models() {
        models += 1;
        // An empty `params:` is no parameter: more are added under it below.
        let text = minimal_job(m);
        match plan_text(dir.path(), &text) {
            Ok(plan) => {
                let warnings: Vec<&String> = plan.warnings.iter().map(|w| &w.message).collect();
                let expected = usize::from(m.deprecated);
                if warnings.len() != expected {
                    problems.push(format!("{}: warnings {warnings:?}\n{text}", m.id));
                }
                let body = plan.jobs[0].body();
                if body["model"] != m.id {
                    problems.push(format!("{}: sent as {}", m.id, body["model"]));
                }
            }
            Err(d) => problems.push(format!("{}: the minimal job is refused: {d}\n{text}", m.id)),
        }
        for p in m.params.iter().filter(|p| !p.required) {
            params += 1;
            let Some(bad) = outside(p.kind) else { continue };
            cases += 1;
            let line = text.lines().count() + 1;
            let text = format!("{text}      {}: {bad}\n", p.name);
            match plan_text(dir.path(), &text) {
                Ok(_) => problems.push(format!("{}: `{}: {bad}` is accepted", m.id, p.name)),
                Err(d) => {
                    let at_line = d.0.iter().any(|d| d.line() == Some(line) && d.message.contains(p.name));
                    if !at_line {
                        problems.push(format!("{}: `{}: {bad}` refused elsewhere: {d}", m.id, p.name));
                    }
                }
            }
        }
    }
    eprintln!("{models} models, {params} optional parameters, {cases} values outside an enum or range refused");
    assert!(models >= 140, "{models} models");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_misspelt_parameter_a_missing_input_and_a_wrong_kind_of_file_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    media_files(dir.path());
    let refused = |text: &str, expect: &str| {
        let err = plan_text(dir.path(), text).unwrap_err().to_string();
        assert!(err.contains(expect), "expected `{expect}` in:\n{err}");
    };
    let kling = "jobs:\n  - model: klingai/v2.1-master-image-to-video\n    input: img.png\n";
    refused(
        &format!("{kling}    params:\n      durration: 5\n"),
        "did you mean `duration`?",
    );
    refused(
        &format!("{kling}    params:\n      duration: 7\n"),
        "use one of `5` or `10`",
    );
    refused(
        "jobs:\n  - model: klingai/v2.1-master-image-to-video\n    prompt: waves\n",
        "needs an input image",
    );
    refused(
        "jobs:\n  - model: klingai/v2.1-master-image-to-video\n    input: clip.mp4\n",
        "but this model needs an image",
    );
    refused(
        "jobs:\n  - model: google/veo-3.1-first-last-image-to-video\n    input: img.png\n    prompt: x\n    \
         params:\n      last_image_url: voice.wav\n",
        "takes image",
    );
    refused(
        "jobs:\n  - model: google/veo-3.1-first-last-image-to-video\n    input: img.png\n    prompt: x\n",
        "needs `last_image_url`",
    );
    // The documented fields of a mapping: required ones present, each of its kind.
    let act_two = |character: &str| {
        format!(
            "jobs:\n  - model: runway/act_two\n    params:\n      character: {character}\n      \
             reference: {{type: video, url: https://example.com/r.mp4}}\n"
        )
    };
    refused(&act_two("{type: video}"), "`character` has no `url`");
    refused(
        &act_two("{type: sound, url: https://example.com/c.mp4}"),
        "`type` cannot be `sound`",
    );
    refused(&act_two("{type: video, url: clip.mp4}"), "`url` must be an http(s) URL");
    assert!(plan_text(dir.path(), &act_two("{type: video, url: https://example.com/c.mp4}")).is_ok());
}

#[test]
fn named_media_go_to_their_fields_and_tell_jobs_apart() {
    let dir = tempfile::tempdir().unwrap();
    media_files(dir.path());
    std::fs::copy(dir.path().join("img.png"), dir.path().join("end.png")).unwrap();
    std::fs::write(dir.path().join("end2.png"), {
        let mut b = std::fs::read(dir.path().join("img.png")).unwrap();
        b.extend(b"more");
        b
    })
    .unwrap();
    let job = |last: &str| {
        format!(
            "  - model: google/veo-3.1-first-last-image-to-video\n    input: img.png\n    prompt: x\n    params:\n      \
             last_image_url: {last}\n"
        )
    };
    let text = format!("jobs:\n{}{}", job("end.png"), job("end2.png"));
    let plan = plan_text(dir.path(), &text).unwrap();
    assert_eq!(plan.jobs.len(), 2);
    assert_ne!(plan.jobs[0].key, plan.jobs[1].key, "another end frame is another job");
    let body = plan.jobs[0].body();
    assert!(
        body["last_image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert!(
        body["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    // Written as its default or left out: one job, and the default is the service's to apply.
    let veo = "jobs:\n  - model: google/veo-3.0-i2v\n    input: img.png\n    prompt: x\n";
    let omitted = plan_text(dir.path(), veo).unwrap();
    let written = plan_text(dir.path(), &format!("{veo}    params:\n      duration: 8\n")).unwrap();
    assert_eq!(omitted.jobs[0].key, written.jobs[0].key);
    assert!(written.jobs[0].body().get("duration").is_none());
}

#[test]
fn a_minimal_job_of_every_catalogued_model_runs_against_the_simulator() {
    let h = common::Harness::fast();
    media_files(h.dir.path());
    let mut manifest = String::from("jobs:\n");
    for m in catalog::models() {
        manifest.push_str(minimal_job(m).strip_prefix("jobs:\n").unwrap());
    }
    let path = h.write("all.yaml", &manifest);
    let output = h.run(&path, &["--concurrency", "64"]);
    let log = h.log();
    let refused: Vec<&String> = log.refused.iter().filter(|r| r.0 == 400).map(|r| &r.1).collect();
    assert!(
        refused.is_empty(),
        "the simulator refused what the client sent: {refused:#?}"
    );
    assert_eq!(
        output.status.code(),
        Some(vidbatch::exit_code::OK),
        "{}",
        common::stderr(&output)
    );
    let rows = h.results();
    assert_eq!(rows.len(), catalog::models().len());
    assert!(rows.iter().all(|r| r["status"] == "completed"));
    assert_eq!(log.submits.len(), rows.len());
}

/// A field the service takes URLs only for: the first local file refused there stops the jobs of
/// that model with a file there (left pending, nothing paid); one given a URL still goes.
#[test]
fn a_local_file_refused_where_urls_only_are_taken_stops_that_kind_early() {
    let h = common::Harness::new(vidbatch::sim::SimConfig {
        urls_only: vec!["last_image_url".into()],
        ..common::fast_config()
    });
    media_files(h.dir.path());
    let job = |prompt: &str, last: &str| {
        format!(
            "  - model: google/veo-3.1-first-last-image-to-video\n    input: img.png\n    prompt: \"{prompt}\"\n    \
             params:\n      last_image_url: {last}\n"
        )
    };
    let mut text = String::from("jobs:\n");
    for i in 0..5 {
        text.push_str(&job(&format!("scene {i}"), "img.png"));
    }
    text.push_str(&job("by url", "https://example.com/end.png"));
    let path = h.write("m.yaml", &text);
    let output = h.run(&path, &["--concurrency", "1"]);
    assert_eq!(output.status.code(), Some(vidbatch::exit_code::JOBS_INCOMPLETE));
    assert_eq!(h.log().submits_received, 2, "one refused, then only the job with a URL");
    let rows = h.results();
    let status = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
    assert_eq!(
        (status("failed"), status("pending"), status("completed")),
        (1, 4, 1),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r["status"] == "pending")
            .all(|r| r["error"].contains("refused a local file for `last_image_url`")),
        "{rows:#?}"
    );
}

#[test]
fn a_list_field_takes_a_folder_or_a_glob_and_counts_its_files() {
    let dir = tempfile::tempdir().unwrap();
    media_files(dir.path());
    let png = std::fs::read(dir.path().join("img.png")).unwrap();
    std::fs::create_dir(dir.path().join("refs")).unwrap();
    for i in 0..5 {
        let mut bytes = png.clone();
        bytes.push(i);
        std::fs::write(dir.path().join(format!("refs/{i}.png")), bytes).unwrap();
    }
    let job = |list: &str| {
        format!(
            "jobs:\n  - model: kling-video/v1.6/standard/multi-image-to-video\n    prompt: x\n    params:\n      \
             image_list: {list}\n"
        )
    };
    let plan = plan_text(dir.path(), &job("refs/[0-2].png")).unwrap();
    let body = plan.jobs[0].body();
    let sent = body["image_list"].as_array().unwrap();
    assert_eq!(sent.len(), 3, "the glob's three files, in name order");
    assert!(
        sent.iter()
            .all(|v| v.as_str().unwrap().starts_with("data:image/png;base64,"))
    );
    // The folder holds five: more than the model takes.
    let err = plan_text(dir.path(), &job("refs/")).unwrap_err().to_string();
    assert!(
        err.contains("`image_list` has 5 files") && err.contains("give 2 to 4 files"),
        "{err}"
    );
    // A field that takes one file is given one.
    let err = plan_text(
        dir.path(),
        "jobs:\n  - model: google/veo-3.1-first-last-image-to-video\n    input: img.png\n    prompt: x\n    params:\n      \
         last_image_url: refs/\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`last_image_url` takes one file"), "{err}");
}
