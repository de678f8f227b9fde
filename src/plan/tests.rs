use std::path::Path;

use super::*;
use crate::manifest;

/// Writes `text` as `name` in a fresh folder beside copies of the demo assets, and loads it.
fn load(name: &str, text: &str) -> (tempfile::TempDir, Result<Plan, Diagnostics>) {
    let dir = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets");
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    for entry in std::fs::read_dir(assets).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join("assets").join(entry.file_name())).unwrap();
    }
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let result = manifest::load(&path).and_then(|m| plan(&m));
    (dir, result)
}

fn yaml(text: &str) -> Result<Plan, Diagnostics> {
    load("m.yaml", text).1
}

/// The first diagnostic, as `line: message (help)`.
fn first_error(text: &str) -> String {
    let err = yaml(text).expect_err("the manifest should be refused");
    let d = &err.0[0];
    format!(
        "{}: {}{}",
        d.line().map_or("-".into(), |l| l.to_string()),
        d.message,
        d.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )
}

#[test]
fn every_rejection_names_its_line_and_what_to_do() {
    let cases: &[(&str, &str)] = &[
        ("jobs:\n  - input: assets/shoe.jpg\n", "2: this job has no `model`"),
        (
            "jobs:\n  - model: magic/image-to-vidoe\n    input: assets/shoe.jpg\n",
            "2: unknown model `magic/image-to-vidoe` (did you mean `magic/image-to-video`?)",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: Tokio Billboard\n",
            "4: unknown template `Tokio Billboard` for `magic/image-to-video` (did you mean `Tokyo Billboard`?",
        ),
        (
            "jobs:\n  - model: magic/video-to-video\n    input: assets/teaser.mp4\n    template: New York Times Square(66)\n",
            "4: unknown template `New York Times Square(66)` for `magic/video-to-video` (did you mean `New York Times Square (67)`",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params: {resolution: 1080p, duration: 8}\n",
            "5: `resolution: 1080p` does not allow `duration: 8` (use `duration: 5`",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params:\n      durration: 5\n",
            "6: unknown parameter `durration` for `pixverse/v5/image-to-video` (did you mean `duration`?)",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params:\n      resolution: 4k\n",
            "6: `resolution` cannot be `4k` (use one of ",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params: {seed: -1}\n",
            "5: `seed` cannot be `-1` (use a whole number from 0 to 2147483647)",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params: {lip_sync_tts_speaker: Bob}\n",
            "5: `lip_sync_tts_speaker` cannot be `Bob` (use one of ",
        ),
        (
            "jobs:\n  - model: magic/text-to-video\n    prompt: hi\n    input: assets/shoe.jpg\n",
            "4: `magic/text-to-video` takes no input file",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n",
            "2: `magic/image-to-video` needs an input image",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n",
            "2: `pixverse/v5/image-to-video` needs `prompt:`",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    prompt: hello\n",
            "4: `magic/image-to-video` takes no prompt",
        ),
        (
            "jobs:\n  - model: magic/video-to-video\n    input: assets/shoe.jpg\n",
            "3: input `assets/shoe.jpg` is image/jpeg, but this model needs a video",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    inputs:\n      - assets/shoe.jpg\n      - assets/missing.png\n",
            "5: input `assets/missing.png`: file not found",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: ftp://example.com/a.png\n",
            "3: input `ftp://example.com/a.png`: `ftp://` URLs are not supported",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: [all, Phone App]\n",
            "4: `all` already names every template",
        ),
        (
            "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    template: Tokyo Billboard\n",
            "5: `pixverse/v5/image-to-video` takes no template",
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    params: {image_url: x}\n",
            "4: `image_url` is a job field, not a parameter",
        ),
        (
            "output: \"../{input}.mp4\"\njobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n",
            "1: `output: ../{input}.mp4` must stay inside the output folder",
        ),
        (
            "output: \"{inptu}.mp4\"\njobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n",
            "1: `output` uses an unknown placeholder `{inptu}`",
        ),
    ];
    for (text, expected) in cases {
        let got = first_error(text);
        assert!(
            got.starts_with(expected),
            "for:\n{text}\nexpected: {expected}\n     got: {got}"
        );
    }
}

#[test]
fn a_long_prompt_is_refused_with_its_length() {
    let text = format!(
        "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: \"{}\"\n",
        "x".repeat(2049)
    );
    assert_eq!(
        first_error(&text),
        "4: `prompt` is 2049 characters long; the most is 2048 (shorten it to 2048 characters or fewer (1 too many))"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let err = yaml(
        "jobs:\n  - model: magic/image-to-video\n    input: assets/nope.jpg\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: Nowhere\n",
    )
    .unwrap_err();
    let lines: Vec<_> = err.0.iter().map(|d| d.line()).collect();
    assert_eq!(lines, vec![Some(3), Some(6)]);
}

#[test]
fn keys_depend_on_what_is_sent_not_on_order() {
    let a = yaml(
        "jobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png]\n    templates: [Tokyo Billboard, Phone App]\n",
    )
    .unwrap();
    let b = yaml(
        "jobs:\n  - model: magic/text-to-video\n    prompt: NEW\n  - model: magic/image-to-video\n    inputs: [assets/bag.png, assets/shoe.jpg]\n    templates: [phone app, TOKYO BILLBOARD]\n",
    )
    .unwrap();
    let keys = |p: &Plan| {
        let mut k: Vec<_> = p
            .jobs
            .iter()
            .filter(|j| j.model == "magic/image-to-video")
            .map(|j| j.key.clone())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(a.jobs.len(), 4);
    // Parameters given in a different order are the same job.
    let p1 = yaml("jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params: {style: anime, seed: 3}\n").unwrap();
    let p2 = yaml("jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: p\n    params: {seed: 3, style: anime, duration: 5}\n").unwrap();
    assert_eq!(
        p1.jobs[0].key, p2.jobs[0].key,
        "defaults filled in make omitted and explicit equal"
    );
}

#[test]
fn identical_jobs_run_once_with_a_warning() {
    let p = yaml(
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: thailand street\n",
    )
    .unwrap();
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.jobs[0].template.as_deref(), Some("Thailand Street"));
    assert!(
        p.warnings[0].message.contains("repeats the one of line 2"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn requests_carry_exact_values_and_data_urls() {
    let p = yaml(
        "jobs:\n  - model: magic/image-to-video\n    input: assets/bag.png\n    template: Rotating \u{0421}ards\n  - model: magic/video-to-video\n    input: assets/teaser.mp4\n    template: new york times square(78)\n  - model: magic/image-to-video\n    input: https://example.com/a.png?x=1\n    template: all\n",
    )
    .unwrap();
    let body = p.jobs[0].body();
    assert_eq!(body["template"], "Rotating Cards");
    assert!(
        body["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR")
    );
    let body = p.jobs[1].body();
    assert_eq!(body["template"], "New York Times Square (78)");
    assert!(
        body["video_url"]
            .as_str()
            .unwrap()
            .starts_with("data:video/mp4;base64,")
    );
    assert_eq!(p.jobs.len(), 2 + 21);
    assert_eq!(p.jobs[2].body()["image_url"], "https://example.com/a.png?x=1");
    assert_eq!(p.jobs[2].input_label, "https://example.com/a.png?x=1");
}

#[test]
fn unknown_models_pass_through_with_a_warning() {
    let (_dir, p) = load(
        "m.csv",
        "model,input,prompt,duration,aspect_ratio\nacme/video-9000,assets/shoe.jpg,a dog runs,10,16:9\n",
    );
    let p = p.unwrap();
    let body = p.jobs[0].body();
    assert_eq!(body["duration"], 10);
    assert_eq!(body["aspect_ratio"], "16:9");
    assert!(body["image_url"].as_str().unwrap().starts_with("data:image/jpeg"));
    assert!(p.warnings[0].message.contains("sent unchecked"));
}

/// Loads `name` from a fresh folder holding the demo assets and `files` (path, bytes).
fn load_with(name: &str, text: &[u8], files: &[(&str, &[u8])]) -> (tempfile::TempDir, Result<Plan, Diagnostics>) {
    let (dir, _) = load("unused.yaml", "");
    for (path, bytes) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let result = manifest::load(&path).and_then(|m| plan(&m));
    (dir, result)
}

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests/assets")
            .join(name),
    )
    .unwrap()
}

/// 40,000 identical rows were 40,000 warnings, each drawn (88 s): one warning names them all.
#[test]
fn identical_jobs_are_one_warning_however_many() {
    let rows = "magic/text-to-video,hi\n".repeat(3000);
    let (_dir, p) = load("m.csv", &format!("model,prompt\n{rows}"));
    let p = p.unwrap();
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0]
            .message
            .ends_with("repeats the one of line 2: it runs once; so do 2998 more (lines 4, 5, 6, 7, 8 and 2993 more)"),
        "{}",
        p.warnings[0].message
    );
}

#[test]
fn the_same_content_under_two_names_is_one_job_with_an_alias() {
    let shoe = asset("shoe.jpg");
    let files: &[(&str, &[u8])] = &[("a/shoe.jpg", &shoe), ("b/shoe.jpg", &shoe), ("b/shoe-copy.jpg", &shoe)];
    let (_dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    inputs: [a/shoe.jpg, b/shoe.jpg]\n    label: first\n  - model: magic/image-to-video\n    input: b/shoe-copy.jpg\n    label: copy\n  - model: magic/image-to-video\n    input: a/shoe.jpg\n",
        files,
    );
    let p = p.unwrap();
    assert_eq!(p.jobs.len(), 1, "one generation");
    let job = &p.jobs[0];
    assert_eq!(job.input_label, "a/shoe.jpg");
    assert_eq!(job.user_label.as_deref(), Some("first"));
    let aliases: Vec<(&str, Option<&str>, &str)> = job
        .aliases
        .iter()
        .map(|a| (a.input_label.as_str(), a.user_label.as_deref(), a.file.as_str()))
        .collect();
    // `a/shoe.jpg` and `b/shoe.jpg` are named alike: the folder each is in tells them apart.
    assert_eq!(job.file, "videos/magic-image-to-video/thailand-street/shoe-a.mp4");
    assert_eq!(
        aliases,
        [
            (
                "b/shoe.jpg",
                Some("first"),
                "videos/magic-image-to-video/thailand-street/shoe-b.mp4"
            ),
            (
                "b/shoe-copy.jpg",
                Some("copy"),
                "videos/magic-image-to-video/thailand-street/shoe-copy.mp4"
            ),
        ]
    );
    let warnings: Vec<&str> = p.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warnings[0].contains("`b/shoe.jpg` has the same content as `a/shoe.jpg` (line 2)"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].contains("repeats the one of line 2: it runs once"),
        "{warnings:?}"
    );
}

#[test]
fn templates_joined_in_one_cell_are_told_how_to_be_listed() {
    let (_dir, csv) = load(
        "m.csv",
        "model,input,template\nmagic/image-to-video,assets/shoe.jpg,\"Tokyo Billboard, phone social\"\n",
    );
    let d = &csv.expect_err("two names in one cell").0[0];
    assert_eq!(
        (d.line(), d.message.as_str(), d.help.as_deref()),
        (
            Some(2),
            "`Tokyo Billboard, phone social` names 2 templates in one",
            Some("separate templates with `|` in a cell: `Tokyo Billboard | Phone Social`")
        )
    );
    assert_eq!(
        first_error(
            "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: Tokyo Billboard; Rotating Cards\n"
        ),
        "4: `Tokyo Billboard; Rotating Cards` names 2 templates in one \
         (write a list: `templates: [Tokyo Billboard, Rotating Cards]`)"
    );
    // A comma with a name that does not exist is an unknown template, as before.
    assert!(
        first_error("jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: Tokyo, Paris\n")
            .starts_with("4: unknown template `Tokyo, Paris`")
    );
    // Separated as documented, both are planned.
    let (_dir, piped) = load(
        "m.csv",
        "model,input,template\nmagic/image-to-video,assets/shoe.jpg,Tokyo Billboard | Phone Social\n",
    );
    assert_eq!(piped.unwrap().jobs.len(), 2);
}

mod inputs;
mod spreadsheets;

// Naming (the one collision rule, readable names) and sample selection.
mod naming;
mod sample;
