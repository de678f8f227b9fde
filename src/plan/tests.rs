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
fn csv_cells_become_numbers_where_the_model_wants_them() {
    let (_dir, p) = load(
        "m.csv",
        "model,input,prompt,template,duration,resolution,lip_sync_tts_speaker\npixverse/v5/image-to-video,assets/presenter.jpg,Hi there,,8,540P,chloe\nmagic/image-to-video,assets/shoe.jpg,,Tokyo Billboard|Phone App,,,\n",
    );
    let p = p.unwrap();
    let body = p.jobs[0].body();
    assert_eq!(body["duration"], 8);
    assert_eq!(body["resolution"], "540p");
    assert_eq!(body["lip_sync_tts_speaker"], "Chloe");
    assert_eq!(p.jobs.len(), 3);
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

#[test]
fn file_names_follow_the_pattern_and_never_collide() {
    let p = yaml(
        "output: \"{template}/{input}.mp4\"\njobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, https://cdn.example.com/x/shoe.jpg]\n    template: Tokyo Billboard\n  - model: magic/text-to-video\n    prompt: \"SALE -30%!\"\n",
    )
    .unwrap();
    let files: Vec<&str> = p.jobs.iter().map(|j| j.file.as_str()).collect();
    // Two `shoe.jpg`: told apart by the folder each is in, not by job ids.
    assert_eq!(files[0], "videos/tokyo-billboard/shoe-assets.mp4");
    assert_eq!(files[1], "videos/tokyo-billboard/shoe-x.mp4");
    assert_eq!(files[2], "videos/shanghai-drone-show/sale-30.mp4");
}

#[test]
fn files_holding_another_jobs_finished_video_are_kept_clear_of() {
    let mut p = yaml("jobs:\n  - model: magic/text-to-video\n    prompts: [A, B]\n").unwrap();
    let (a, b) = (p.jobs[0].clone(), p.jobs[1].clone());
    let other = JobKey("f".repeat(64));
    let finished = HashMap::from([(a.file.to_lowercase(), a.key.clone()), (b.file.to_lowercase(), other)]);
    let moved = keep_clear_of(&mut p.jobs, &finished);
    assert_eq!(p.jobs[0].file, a.file, "a job's own finished file stays its own");
    let expected = b.file.replace(".mp4", &format!("-{}.mp4", b.key.short()));
    assert_eq!(p.jobs[1].file, expected);
    assert_eq!(moved, vec![(b.file, expected)]);
}

#[test]
fn an_inputs_other_name_is_kept_clear_of_another_jobs_finished_video_too() {
    let shoe = asset("shoe.jpg");
    let files: &[(&str, &[u8])] = &[("a/shoe.jpg", &shoe), ("b/copy.jpg", &shoe)];
    let (_dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    inputs: [a/shoe.jpg, b/copy.jpg]\n",
        files,
    );
    let mut p = p.unwrap();
    let job = p.jobs[0].clone();
    let alias = job.aliases[0].file.clone();
    let other = JobKey("f".repeat(64));
    let finished = HashMap::from([(alias.to_lowercase(), other)]);
    let moved = keep_clear_of(&mut p.jobs, &finished);
    let expected = alias.replace(".mp4", &format!("-{}.mp4", job.key.short()));
    assert_eq!(p.jobs[0].aliases[0].file, expected);
    assert_eq!(p.jobs[0].file, job.file, "the job's own name was free");
    assert_eq!(moved, vec![(alias, expected)]);
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

/// (input as written, request field) of each job.
fn inputs(p: &Plan) -> Vec<(String, String)> {
    p.jobs
        .iter()
        .map(|j| {
            let body = j.body();
            let field = ["image_url", "video_url"].into_iter().find(|f| body.get(*f).is_some());
            (j.input_label.clone(), field.unwrap_or("-").to_string())
        })
        .collect()
}

#[test]
fn globs_and_folders_name_their_files_sorted_and_told_apart_by_content() {
    let (shoe, bag, teaser) = (asset("shoe.jpg"), asset("bag.png"), asset("teaser.mp4"));
    let photos: &[(&str, &[u8])] = &[
        ("photos/b.jpg", &shoe),
        // A PNG named `.jpg`: content decides.
        ("photos/A.jpg", &bag),
        ("photos/c.mp4", &teaser),
        ("photos/notes.txt", b"not an image"),
        // Hidden, and a copy of a photo: were it read, it would be a job's alias.
        ("photos/.DS_Store", &shoe),
        ("photos/sub/d.jpg", &shoe),
    ];
    // The manifest, the (input, field) of its jobs, a warning about files left out.
    type Case<'c> = (&'c str, &'c [(&'c str, &'c str)], Option<&'c str>);
    let cases: &[Case] = &[
        (
            "jobs:\n  - model: magic/image-to-video\n    inputs: photos/\n",
            &[("photos/A.jpg", "image_url"), ("photos/b.jpg", "image_url")],
            Some("input `photos/`: 2 files left out, not images: `photos/c.mp4` (a video), `photos/notes.txt`"),
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    inputs: [photos/*.jpg, assets/presenter.jpg]\n",
            &[
                ("photos/A.jpg", "image_url"),
                ("photos/b.jpg", "image_url"),
                ("assets/presenter.jpg", "image_url"),
            ],
            None,
        ),
        (
            "jobs:\n  - model: magic/video-to-video\n    input: photos\n",
            &[("photos/c.mp4", "video_url")],
            Some("3 files left out, not videos"),
        ),
        // A model vidbatch does not know takes either, each in its field.
        (
            "jobs:\n  - model: acme/any-to-video\n    inputs: photos/*\n",
            &[
                ("photos/A.jpg", "image_url"),
                ("photos/b.jpg", "image_url"),
                ("photos/c.mp4", "video_url"),
            ],
            Some("1 file left out, not images or videos: `photos/notes.txt`"),
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: photos/sub/*.jpg\n",
            &[("photos/sub/d.jpg", "image_url")],
            None,
        ),
    ];
    for &(text, expected, warning) in cases {
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), photos);
        let p = p.unwrap_or_else(|e| panic!("{text}\n{e}"));
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(inputs(&p), expected, "{text}");
        let warned: Vec<&str> = p
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .filter(|m| m.starts_with("input"))
            .collect();
        match warning {
            Some(w) => assert!(warned.len() == 1 && warned[0].contains(w), "{text}: {warned:?}"),
            None => assert!(warned.is_empty(), "{text}: {warned:?}"),
        }
    }
    // In a CSV cell too.
    let (_dir, p) = load_with("m.csv", b"model,input\nmagic/image-to-video,photos/*.jpg\n", photos);
    assert_eq!(inputs(&p.unwrap()).len(), 2);
    // A file whose name holds a glob's characters is itself; an absolute glob is not joined.
    let (dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    input: photos/b[1].jpg\n",
        &[("photos/b[1].jpg", &shoe), ("photos/b1.jpg", &bag)],
    );
    assert_eq!(
        inputs(&p.unwrap()),
        [("photos/b[1].jpg".to_string(), "image_url".to_string())]
    );
    let absolute = format!("{}/photos/*.jpg", dir.path().display());
    let text = format!("jobs:\n  - model: magic/image-to-video\n    input: \"{absolute}\"\n");
    let (_dir, p) = load_with("m.yaml", text.as_bytes(), photos);
    assert_eq!(inputs(&p.unwrap()).len(), 2);
}

#[test]
fn a_glob_or_folder_with_nothing_to_take_names_its_line_and_what_was_looked_for() {
    let files: &[(&str, &[u8])] = &[("empty/.DS_Store", b"x"), ("docs/brief.txt", b"a brief")];
    for (input, line, message) in [
        ("photos/*.jpg", 3, "input `photos/*.jpg`: no file matches (looked for `"),
        ("empty/", 3, "input `empty/`: the folder holds no file (looked in `"),
        (
            "docs/",
            3,
            "input `docs/`: none of the 1 file it names is one of the images this model takes: `docs/brief.txt`",
        ),
        ("photos/[a", 3, "input `photos/[a`: `photos/[a` is not a valid pattern"),
    ] {
        let text = format!("jobs:\n  - model: magic/image-to-video\n    input: {input}\n");
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), files);
        let err = p.expect_err(input);
        assert_eq!(err.0[0].line(), Some(line), "{input}");
        assert!(err.0[0].message.starts_with(message), "{input}: {}", err.0[0].message);
        assert!(err.0[0].help.is_some());
    }
}

/// The prompt `..` in `a/{prompt}.mp4` wrote into a hidden folder `a/.mp4/`, and `{input}`
/// named files without an extension: every name is visible and ends in `.mp4`.
#[test]
fn names_from_values_are_visible_files_with_the_videos_extension() {
    let p =
        yaml("output: a/{prompt}.mp4\njobs:\n  - model: magic/text-to-video\n    prompts: ['..', '.', hi]\n").unwrap();
    for job in &p.jobs {
        let parts: Vec<&str> = job.file.split('/').collect();
        assert!(parts.iter().all(|part| !part.starts_with('.')), "{}", job.file);
        assert!(job.file.ends_with(".mp4"), "{}", job.file);
        assert_eq!(parts[..2], ["videos", "a"], "{}", job.file);
    }
    assert!(p.jobs.iter().any(|j| j.file == "videos/a/hi.mp4"));
    let p = yaml("output: \"{input}\"\njobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n").unwrap();
    assert_eq!(p.jobs[0].file, "videos/shoe.mp4");
}

/// `input: /**/*.png` walked the whole file system; a `**` outside the manifest's folder is
/// refused before any walk, one inside it is read.
#[test]
fn a_recursive_glob_walks_the_manifests_folder_only() {
    let shoe = asset("shoe.jpg");
    let files: &[(&str, &[u8])] = &[("photos/sub/a.jpg", &shoe)];
    for input in ["/**/*.png", "../**/*.jpg", "photos/../../**/*.jpg"] {
        let text = format!("jobs:\n  - model: magic/image-to-video\n    input: \"{input}\"\n");
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), files);
        let err = p.expect_err(input);
        assert_eq!(err.0[0].line(), Some(3), "{input}");
        assert!(
            err.0[0]
                .message
                .contains("a `**` pattern searches inside the manifest's folder only"),
            "{input}: {}",
            err.0[0].message
        );
    }
    let (_dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    input: photos/**/*.jpg\n",
        files,
    );
    assert_eq!(
        inputs(&p.unwrap()),
        [("photos/sub/a.jpg".to_string(), "image_url".to_string())]
    );
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
fn labels_and_columns_of_ones_own_are_never_sent() {
    let (_dir, p) = load(
        "m.csv",
        "#SKU;Model;Input;Prompt;Label;Negative Prompt;Duration\nS-1;pixverse/v5/image-to-video;assets/presenter.jpg;Hi;Spring, hero;blurry;8\n",
    );
    let p = p.unwrap();
    let body = p.jobs[0].body();
    assert_eq!(p.jobs[0].user_label.as_deref(), Some("Spring, hero"));
    assert_eq!(body["negative_prompt"], "blurry");
    assert_eq!(body["duration"], 8);
    let sent = body.to_string();
    assert!(
        !sent.contains("Spring") && !sent.contains("S-1") && !sent.contains("SKU"),
        "{sent}"
    );
}

#[test]
fn spreadsheets_are_read_like_csv_and_name_cells() {
    let sheets = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sheets");
    // A workbook saved with a `.csv` name by mistake is still read for what it is.
    for (name, saved_as) in [
        ("campaign.xlsx", "campaign.xlsx"),
        ("campaign.ods", "campaign.ods"),
        ("campaign.xlsx", "campaign.csv"),
    ] {
        let bytes = std::fs::read(sheets.join(name)).unwrap();
        let (_dir, p) = load_with(saved_as, &bytes, &[]);
        let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
        // Model, template, input, label, and the body without the input.
        type Shown<'j> = (&'j str, Option<&'j str>, &'j str, Option<&'j str>, String);
        let jobs: Vec<Shown> = p
            .jobs
            .iter()
            .map(|j| {
                let mut body = j.body();
                body.as_object_mut().unwrap().retain(|k, _| !k.ends_with("_url"));
                (
                    j.model.as_str(),
                    j.template.as_deref(),
                    j.input_label.as_str(),
                    j.user_label.as_deref(),
                    body.to_string(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            [
                (
                    "magic/image-to-video",
                    Some("Tokyo Billboard"),
                    "assets/shoe.jpg",
                    Some("Hero shoe"),
                    r#"{"model":"magic/image-to-video","template":"Tokyo Billboard"}"#.to_string()
                ),
                (
                    "pixverse/v5/image-to-video",
                    None,
                    "assets/presenter.jpg",
                    Some("Presenter, 5 s"),
                    r#"{"duration":5,"model":"pixverse/v5/image-to-video","prompt":"A presenter waves","resolution":"720p"}"#
                        .to_string()
                ),
            ],
            "{name}"
        );
    }
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_manifests/74-bad-cell.xlsx")).unwrap();
    let (_dir, p) = load_with("bad.xlsx", &bytes, &[]);
    let shown: Vec<String> = p.unwrap_err().0.iter().map(|d| d.to_string()).collect();
    assert!(
        shown[0].contains("bad.xlsx: sheet Sheet1, cell C2: unknown template `Tokio Billboard`"),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|d| d.contains("bad.xlsx: sheet Sheet1, cell B3: this cell holds the error `#N/A`"))
    );
}

/// A manifest saved in each encoding a spreadsheet or an editor uses reads as the same jobs, and
/// a problem in it is placed on the same line and column of the file.
#[test]
fn every_encoding_gives_the_same_jobs_and_the_same_places() {
    use encoding_rs::WINDOWS_1252;
    let text = "Model;Prompt;Label\r\nmagic/text-to-video;Soldes d’été -20%;Café\r\nmagic/text-to-video;é;Crème\r\nmagic/text-to-video;Crème brûlée;Fête;en trop\r\n";
    let encode = |encoding: &str, text: &str| -> Vec<u8> {
        let utf16 = |mark: [u8; 2], unit: fn(u16) -> [u8; 2]| -> Vec<u8> {
            mark.into_iter().chain(text.encode_utf16().flat_map(unit)).collect()
        };
        match encoding {
            "UTF-8" => text.as_bytes().to_vec(),
            "UTF-8 with a mark" => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            "UTF-16 LE" => utf16([0xFF, 0xFE], u16::to_le_bytes),
            "UTF-16 BE" => utf16([0xFE, 0xFF], u16::to_be_bytes),
            _ => WINDOWS_1252.encode(text).0.into_owned(),
        }
    };
    for name in ["UTF-8", "UTF-8 with a mark", "UTF-16 LE", "UTF-16 BE", "Windows-1252"] {
        let (_dir, p) = load_with("m.csv", &encode(name, text), &[]);
        let err = p.expect_err(name);
        let places: Vec<(usize, usize, &str)> = err
            .0
            .iter()
            .map(|d| (d.at.unwrap().line, d.at.unwrap().column, d.message.as_str()))
            .collect();
        // Past accented characters, the column is still the file's (in characters).
        assert_eq!(
            places,
            [(4, 39, "this row has 4 cells, but the header names 3 columns")],
            "{name}"
        );
        // Without the bad row, the jobs themselves.
        let good = &text[..text.find("magic/text-to-video;Crème").unwrap()];
        let (_dir, p) = load_with("m.csv", &encode(name, good), &[]);
        let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
        let jobs: Vec<(String, Option<&str>)> = p
            .jobs
            .iter()
            .map(|j| (j.input_label.clone(), j.user_label.as_deref()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("Soldes d’été -20%".to_string(), Some("Café")),
                ("é".to_string(), Some("Crème"))
            ],
            "{name}"
        );
    }
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

// Naming (the one collision rule, readable names) and sample selection.
mod naming;
mod sample;
