//! Manifests shaped to make `validate` slow: each once took minutes (quadratic work), and each
//! is read here at a size where quadratic work would not finish in the time the test suite
//! takes, while linear work takes well under a second (debug build). Nothing is timed.

use std::path::Path;
use std::sync::Arc;

use vidbatch::manifest;
use vidbatch::plan;

/// The plan of `text`, read as if from `name`; panics with the diagnostics if refused.
fn planned(name: &str, text: String) -> plan::Plan {
    let manifest = manifest::parse(Path::new(name), Arc::from(text)).unwrap_or_else(|e| panic!("{e}"));
    plan::plan(&manifest).unwrap_or_else(|e| panic!("{e}"))
}

/// Columns of one's own by the hundred thousand: each placed by counting from the line's start,
/// 100,000 took 24 s, and 300,000 take nine times that.
#[test]
fn three_hundred_thousand_own_columns() {
    let names: Vec<String> = (0..300_000).map(|i| format!("#c{i}")).collect();
    let p = planned(
        "m.csv",
        format!("model,prompt,{}\nmagic/text-to-video,hi\n", names.join(",")),
    );
    assert_eq!(p.jobs.len(), 1);
}

/// The same prompt 80,000 times in a flow list (one line): more than 120 s.
#[test]
fn one_prompt_eighty_thousand_times_on_one_line() {
    let p = planned(
        "m.yaml",
        format!(
            "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
            vec!["hi"; 80_000].join(", ")
        ),
    );
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.warnings.len(), 1, "one warning for all the repeats");
    assert!(
        p.warnings[0].message.contains("so do 79998 more (line 2)"),
        "{}",
        p.warnings[0].message
    );
}

/// 20,000 identical CSV rows: 22.7 s.
#[test]
fn twenty_thousand_identical_rows() {
    let p = planned(
        "m.csv",
        format!("model,prompt\n{}", "magic/text-to-video,hi\n".repeat(20_000)),
    );
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.warnings.len(), 1);
}

/// An anchor followed 50,000 times on one line (500,000 in 1.5 MB took more than 120 s).
#[test]
fn an_alias_fan_on_one_line() {
    let p = planned(
        "m.yaml",
        format!(
            "defaults:\n  prompt: &p hi\njobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
            vec!["*p"; 50_000].join(", ")
        ),
    );
    assert_eq!(p.jobs.len(), 1);
}
