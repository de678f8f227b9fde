//! Manifests and results as marketing teams meet them, run against the simulator: a `;`
//! spreadsheet export with a byte-order mark, labels and columns of their own; two names for one
//! photo; `results.csv` opened in a spreadsheet; a lost state adopted from it.

mod common;

use std::path::Path;

use common::*;
use vidbatch::exit_code;

/// The raw text of `results.csv`.
fn results_text(h: &Harness) -> String {
    std::fs::read_to_string(h.out().join("results.csv")).unwrap()
}

#[test]
fn a_spreadsheet_export_runs_with_labels_kept_and_own_columns_never_sent() {
    let h = Harness::fast();
    let manifest = h.path("nightly.csv");
    std::fs::write(
        &manifest,
        "\u{feff}#SKU;Model;Prompt;Label;#Notes\r\n\
         1002;magic/text-to-video;SALE -20%;Café -20% 🎉;call Ann\r\n\
         1003;magic/text-to-video;NEW SEASON;=HYPERLINK(\"x\");\r\n",
    )
    .unwrap();
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));

    let text = results_text(&h);
    assert!(
        text.starts_with("\u{feff}job_id,"),
        "a byte-order mark for spreadsheets"
    );
    let header = text.lines().next().unwrap();
    assert!(header.ends_with(",error,label,params"), "{header}");
    let rows = h.results();
    let labels: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["input"].as_str(), r["label"].as_str()))
        .collect();
    assert_eq!(
        labels,
        [("SALE -20%", "Café -20% 🎉"), ("NEW SEASON", "'=HYPERLINK(\"x\")")],
        "accents and emoji intact; a label that is a formula is neutralised like any cell"
    );

    // Nothing of the user's reached the service.
    let log = h.log();
    assert_eq!(log.submits.len(), 2);
    for submit in &log.submits {
        let body = submit.body.to_string();
        for never in ["Café", "HYPERLINK", "1002", "1003", "Ann", "SKU", "label", "Notes"] {
            assert!(!body.contains(never), "`{never}` was sent: {body}");
        }
    }
}

#[test]
fn two_names_for_one_photo_pay_once_and_each_gets_its_row_and_file() {
    let h = Harness::fast();
    std::fs::create_dir(h.path("photos")).unwrap();
    for name in ["photos/red.jpg", "photos/red-copy.jpg"] {
        std::fs::copy(h.path("assets/shoe.jpg"), h.path(name)).unwrap();
    }
    std::fs::copy(h.path("assets/bag.png"), h.path("photos/blue.png")).unwrap();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: magic/image-to-video\n    inputs: photos/\n    template: Tokyo Billboard\n    label: spring\n",
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    assert_said(&output, "has the same content as");

    assert_eq!(h.log().submits.len(), 2, "one paid generation for the two copies");
    let rows = h.results();
    let inputs: Vec<&str> = rows.iter().map(|r| r["input"].as_str()).collect();
    assert_eq!(inputs, ["photos/blue.png", "photos/red-copy.jpg", "photos/red.jpg"]);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "completed" && r["label"] == "spring")
    );
    let (first, copy) = (&rows[1], &rows[2]);
    assert_eq!(first["job_id"], copy["job_id"]);
    assert_eq!(first["generation_id"], copy["generation_id"]);
    assert_ne!(first["file"], copy["file"]);
    // Paid once: the credits are on the first row only, so the column sums right.
    assert!(!first["credits"].is_empty());
    assert_eq!(copy["credits"], "");
    assert_files_match_results(&h.out(), &rows);

    // A copy that goes missing is made again by the next run, which pays for nothing.
    std::fs::remove_file(h.out().join(&copy["file"])).unwrap();
    let again = h.run(&manifest, &[]);
    assert_eq!(again.status.code(), Some(exit_code::OK), "{}", stderr(&again));
    assert_eq!(h.log().submits.len(), 2);
    assert_files_match_results(&h.out(), &h.results());

    // A lost state is adopted from the new results.csv (mark, label, alias rows) for free.
    std::fs::remove_file(h.out().join("state.db")).unwrap();
    let adopted = h.run(&manifest, &["--adopt"]);
    assert_eq!(adopted.status.code(), Some(exit_code::OK), "{}", stderr(&adopted));
    assert_said(&adopted, "adopted 2 finished video(s)");
    assert_eq!(h.log().submits.len(), 2, "adopting pays for nothing");
    assert_eq!(h.results().len(), 3);
    assert_files_match_results(&h.out(), &h.results());
}

/// Whether a spreadsheet reads these hex digits as a number (`325635679e10`, `000123456789`).
fn reads_as_a_number(id: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('e') {
        Some((m, e)) => digits(m) && digits(e),
        None => digits(id),
    }
}

/// A prompt whose job id, cut at 12 hex digits, a spreadsheet would read as a number.
fn prompt_with_a_numeric_looking_id() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/ids.yaml");
    let prompts: Vec<String> = (0..3000).map(|i| format!("p{i}")).collect();
    let text = format!(
        "jobs:\n  - model: magic/text-to-video\n    prompts: [{}]\n",
        prompts.join(", ")
    );
    let plan = vidbatch::manifest::parse(&path, text.into())
        .and_then(|m| vidbatch::plan::plan(&m))
        .unwrap();
    plan.jobs
        .iter()
        .find(|j| reads_as_a_number(&j.key.0[..12]))
        .map(|j| j.input_label.clone())
        .expect("one id in 3,000 looks like a number")
}

#[test]
fn a_job_id_that_would_read_as_a_number_is_written_longer_and_stays_text() {
    let h = Harness::fast();
    let prompt = prompt_with_a_numeric_looking_id();
    let manifest = h.write(
        "m.yaml",
        &format!("jobs:\n  - model: magic/text-to-video\n    prompt: {prompt}\n"),
    );
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    let id = h.results()[0]["job_id"].clone();
    assert!(id.len() > 12, "`{id}`");
    assert!(!reads_as_a_number(&id), "`{id}` still reads as a number");
    // The same id everywhere: the request id the service saw.
    assert_eq!(h.log().creates_for(&request_id(&id)).len(), 1);
}

/// The three example manifests of `manifests/` (see README) stay valid, with what they show.
#[test]
fn the_example_manifests_validate() {
    for (name, jobs, said) in [
        (
            "campaign-variants.yaml",
            21,
            Some("`products/shoe.jpg` has the same content as `products/shoe-side.jpg`"),
        ),
        ("nightly.csv", 4, None),
        (
            "bulk-render.yaml",
            3,
            Some("1 file left out, not images: `shots/teaser.mp4` (a video)"),
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_vidbatch"))
            .args(["validate", &format!("manifests/{name}")])
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(exit_code::OK), "{name}: {}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&match jobs {
                1 => ": 1 job valid".to_string(),
                n => format!(": {n} jobs valid"),
            }),
            "{name}: {stdout}"
        );
        match said {
            Some(said) => assert_said(&output, said),
            None => assert_eq!(stderr(&output), "", "{name}"),
        }
    }
}
