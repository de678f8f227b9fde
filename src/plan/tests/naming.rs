//! File names: the one rule for names that collide (the same with the pattern written out or
//! left implicit), readable names for prompt variants, separators an empty value leaves, and a
//! job's own `output:`.

use std::collections::HashMap;

use super::{asset, first_error, load, load_with, yaml};
use crate::plan::{JobKey, Plan, keep_clear_of};

fn files(p: &Plan) -> Vec<&str> {
    p.jobs.iter().map(|j| j.file.as_str()).collect()
}

/// A campaign as the issue tried it: products through templates, and PixVerse prompt variants
/// of one product under one label.
const CAMPAIGN: &str = "jobs:
  - model: magic/image-to-video
    inputs: [assets/shoe.jpg, assets/bag.png]
    templates: [Tokyo Billboard, Phone App]
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompts: [\"A presenter smiles at the camera\", \"The bag turns slowly on a marble table\"]
    label: sac cuir
";

#[test]
fn the_default_pattern_written_out_names_files_as_when_left_implicit() {
    let implicit = yaml(CAMPAIGN).unwrap();
    let written = yaml(&format!("output: \"{{model}}/{{template}}/{{input}}.mp4\"\n{CAMPAIGN}")).unwrap();
    assert_eq!(files(&implicit), files(&written));
    assert_eq!(
        files(&implicit),
        [
            "videos/magic-image-to-video/tokyo-billboard/shoe.mp4",
            "videos/magic-image-to-video/phone-app/shoe.mp4",
            "videos/magic-image-to-video/tokyo-billboard/bag.mp4",
            "videos/magic-image-to-video/phone-app/bag.mp4",
            // One label for both: the prompt tells them apart, not a hash.
            "videos/pixverse-v5-image-to-video/bag-a-presenter-smiles-at-the-camera.mp4",
            "videos/pixverse-v5-image-to-video/bag-the-bag-turns-slowly-on-a-marble-table.mp4",
        ]
    );
}

#[test]
fn a_label_that_tells_variants_apart_names_them_first() {
    let p = yaml(
        "jobs:
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompt: A presenter smiles at the camera
    label: Spring hero (A)
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompt: The bag turns slowly on a marble table
    label: Spring hero (B)
",
    )
    .unwrap();
    assert_eq!(
        files(&p),
        [
            "videos/pixverse-v5-image-to-video/bag-spring-hero-a.mp4",
            "videos/pixverse-v5-image-to-video/bag-spring-hero-b.mp4"
        ]
    );
}

#[test]
fn a_hash_only_when_nothing_readable_tells_jobs_apart() {
    // The prompts differ past the short slug: the job ids settle it.
    let long = "A presenter smiles at the camera in a bright studio";
    let p = yaml(&format!(
        "jobs:\n  - model: pixverse/v5/image-to-video\n    input: assets/bag.png\n    prompts: [\"{long}, then waves\", \"{long}, then bows\"]\n"
    ))
    .unwrap();
    for job in &p.jobs {
        assert_eq!(
            job.file,
            format!("videos/pixverse-v5-image-to-video/bag-{}.mp4", job.key.short())
        );
    }
    // A parameter that differs is readable: the resolution names the second.
    let p = yaml(
        "jobs:
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompt: wave
    params: {resolution: 540p}
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompt: wave
    params: {resolution: 720p}
",
    )
    .unwrap();
    assert_eq!(
        files(&p),
        [
            "videos/pixverse-v5-image-to-video/bag-resolution-540p.mp4",
            "videos/pixverse-v5-image-to-video/bag-resolution-720p.mp4"
        ]
    );
}

#[test]
fn a_pattern_without_the_placeholder_that_differs_gets_it_added_not_an_error() {
    let p = yaml(
        "output: \"{input}.mp4\"\njobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: [Tokyo Billboard, Phone App]\n",
    )
    .unwrap();
    assert_eq!(
        files(&p),
        ["videos/shoe-tokyo-billboard.mp4", "videos/shoe-phone-app.mp4"]
    );
}

#[test]
fn an_empty_value_takes_the_separators_it_leaves_with_it() {
    for (pattern, expected) in [
        // magic/image-to-video has no prompt: no trailing space before `.mp4`.
        ("{input} {prompt}.mp4", "videos/shoe.mp4"),
        ("{input}-{prompt}-{template}.mp4", "videos/shoe-tokyo-billboard.mp4"),
        ("{prompt}_{input}.mp4", "videos/shoe.mp4"),
        ("{input}.{prompt}.mp4", "videos/shoe.mp4"),
        ("{prompt}/{input} .mp4", "videos/shoe.mp4"),
        // Separators the pattern writes between values are kept.
        ("{template} - {input}.mp4", "videos/tokyo-billboard - shoe.mp4"),
        ("hero_{input}", "videos/hero_shoe.mp4"),
    ] {
        let p = yaml(&format!(
            "output: \"{pattern}\"\njobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    template: Tokyo Billboard\n"
        ))
        .unwrap();
        assert_eq!(files(&p), [expected], "{pattern}");
    }
}

#[test]
fn a_job_may_have_its_own_output_in_yaml_and_in_a_table() {
    let p = yaml(
        "output: \"{template}/{input}.mp4\"
jobs:
  - model: magic/image-to-video
    input: assets/shoe.jpg
    template: Tokyo Billboard
  - model: magic/image-to-video
    input: assets/bag.png
    template: Tokyo Billboard
    output: hero/{input}-final.mp4
",
    )
    .unwrap();
    assert_eq!(
        files(&p),
        ["videos/tokyo-billboard/shoe.mp4", "videos/hero/bag-final.mp4"]
    );
    let (_dir, p) = load(
        "m.csv",
        "model,input,template,output\nmagic/image-to-video,assets/shoe.jpg,Tokyo Billboard,\nmagic/image-to-video,assets/bag.png,Tokyo Billboard,Bag Hero.mp4\n",
    );
    assert_eq!(
        files(&p.unwrap()),
        [
            "videos/magic-image-to-video/tokyo-billboard/shoe.mp4",
            "videos/Bag Hero.mp4"
        ]
    );
    // A job's own pattern is checked like the manifest's, at its line.
    assert_eq!(
        first_error("jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    output: ../{input}.mp4\n"),
        "4: `output: ../{input}.mp4` must stay inside the output folder (no leading `/`, no `..`) (write a path \
         relative to the output folder (`{template}/{input}.mp4`); `--out DIR` chooses the folder itself)"
    );
    // Two jobs given one literal name are told apart like any others.
    let p = yaml(
        "jobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png]\n    output: hero.mp4\n",
    )
    .unwrap();
    assert_eq!(files(&p), ["videos/hero-shoe.mp4", "videos/hero-bag.mp4"]);
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
