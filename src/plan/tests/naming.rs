//! File names: the one rule for names that collide (the same with the pattern written out or
//! left implicit), readable names for prompt variants, separators an empty value leaves, and a
//! job's own `output:`.

use super::{first_error, load, yaml};
use crate::plan::Plan;

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
