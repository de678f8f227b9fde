//! The marketer's round trip, run against the simulator: a sheet goes in (a French Excel's `;`
//! CSV, an `.xlsx` workbook) with columns of the team's own, and comes back as a sheet in the same
//! dialect, with those columns, the prompt and a stable key (`custom_id`) on every row; as JSON
//! lines for scripts; in the JSON events; and through `--adopt` and `report`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use calamine::{Data, Reader as _, Xlsx};
use common::*;
use serde_json::Value;
use vidbatch::exit_code;
use vidbatch::results::COLUMNS;

const PROMPT: &str = "Une présentatrice sourit, -20%";

/// A sheet as a French Excel saves it ("CSV UTF-8", `;`), with the team's own `#` columns.
fn french_sheet(h: &Harness) -> std::path::PathBuf {
    h.write(
        "campagne.csv",
        &format!(
            "\u{feff}#SKU;Model;Input;Prompt;Template;Label;#Notes\r\n\
             S-1;magic/image-to-video;assets/shoe.jpg;;Tokyo Billboard|Phone Social;Chaussure;=ok FR\r\n\
             S-2;pixverse/v5/image-to-video;assets/presenter.jpg;{PROMPT};;Présentatrice;\r\n\
             S-3;magic/text-to-video;;Soldes d’été;;Bannière;headline\r\n"
        ),
    )
}

/// The lines of `results.jsonl`.
fn jsonl(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The JSON events of a run's stderr, by name.
fn events(stderr: &str, name: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == name)
        .collect()
}

#[test]
fn a_semicolon_sheet_comes_back_as_a_semicolon_sheet_with_its_columns_and_keys() {
    let h = Harness::fast();
    let manifest = french_sheet(&h);
    let output = h.run(&manifest, &["--key", "#SKU", "--log-format", "json"]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));

    // The manifest's separator, the mark Excel needs, the fixed columns then the team's own.
    let text = std::fs::read_to_string(h.out().join("results.csv")).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(header, format!("\u{feff}{};#SKU;#Notes", COLUMNS.join(";")));
    assert!(
        text.lines().any(|l| l.ends_with(&format!(";{PROMPT};S-2;S-2;"))),
        "a `,` needs no quotes in a `;` file: {text}"
    );

    let rows = h.results();
    let seen: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["custom_id"].as_str(),
                r["#SKU"].as_str(),
                r["prompt"].as_str(),
                r["#Notes"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("S-1 / Tokyo Billboard", "S-1", "", "'=ok FR"),
            ("S-1 / Phone Social", "S-1", "", "'=ok FR"),
            ("S-2", "S-2", PROMPT, ""),
            ("S-3", "S-3", "Soldes d’été", "headline"),
        ],
        "a note that reads as a formula is neutralised like any cell"
    );
    assert!(rows.iter().all(|r| r["status"] == "completed"));
    assert!(
        !h.out().join("results.xlsx").exists(),
        "a CSV manifest gets no workbook"
    );

    // The same rows for programs: typed, keyed, nothing neutralised.
    let lines = jsonl(&h.out());
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["custom_id"], row["custom_id"].as_str());
        assert_eq!(line["job_id"], row["job_id"].as_str());
        assert_eq!(line["file"], row["file"].as_str());
        assert!(line["credits"].is_u64(), "credits are whole numbers: {line}");
        assert_eq!(line["credits"].to_string(), row["credits"]);
        assert_eq!(line["bytes"].as_u64().unwrap().to_string(), row["bytes"]);
        assert!(line["params"].is_object(), "{line}");
    }
    assert_eq!(
        lines[0]["columns"],
        serde_json::json!({"#SKU": "S-1", "#Notes": "=ok FR"})
    );
    assert_eq!(lines[2]["columns"], serde_json::json!({"#SKU": "S-2", "#Notes": null}));
    assert_eq!(lines[2]["prompt"], PROMPT);
    assert_eq!(lines[2]["params"]["prompt"], PROMPT);
    assert_eq!(lines[0]["prompt"], Value::Null);

    // The events say which row of the sheet each job is.
    let said = stderr(&output);
    let completed = events(&said, "job_completed");
    assert_eq!(completed.len(), 4, "{said}");
    let by_key: HashMap<&str, &Value> = completed
        .iter()
        .map(|e| (e["custom_id"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_key["S-2"]["prompt"], PROMPT);
    assert_eq!(by_key["S-2"]["label"], "Présentatrice");
    assert_eq!(by_key["S-1 / Phone Social"]["label"], "Chaussure");
    assert_eq!(by_key["S-1 / Phone Social"]["prompt"], Value::Null);
    let submitted = events(&said, "job_submitted");
    assert!(submitted.iter().all(|e| e["custom_id"].is_string()), "{said}");

    // The report reads the `;` file.
    let report = h.finish(h.command(&["report", "out"]));
    assert_eq!(report.status.code(), Some(exit_code::OK), "{}", stderr(&report));

    // A lost state is adopted from it, for free, and the sheet comes back the same.
    std::fs::remove_file(h.out().join("state.db")).unwrap();
    let adopted = h.run(&manifest, &["--key", "#SKU", "--adopt"]);
    assert_eq!(adopted.status.code(), Some(exit_code::OK), "{}", stderr(&adopted));
    assert_said(&adopted, "adopted 4 finished video(s)");
    assert_eq!(h.log().submits.len(), 4, "adopting pays for nothing");
    // (The state lost held when each was submitted and finished: adopted, a job is finished when
    // adopted. The rest is all there.)
    let kept = |rows: Vec<HashMap<String, String>>| {
        rows.into_iter()
            .map(|mut r| {
                r.remove("submitted_at");
                r.remove("finished_at");
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(h.results()), kept(rows.clone()));

    // `--results-delimiter` says otherwise; what reads results follows.
    let comma = h.run(&manifest, &["--key", "#SKU", "--results-delimiter", ","]);
    assert_eq!(comma.status.code(), Some(exit_code::OK), "{}", stderr(&comma));
    let text = std::fs::read_to_string(h.out().join("results.csv")).unwrap();
    assert!(text.starts_with("\u{feff}job_id,model,"), "{text}");
    assert_eq!(kept(h.results()), kept(rows));
    assert_eq!(h.log().submits.len(), 4);
}

/// An `.xlsx` manifest of two products, written as a spreadsheet program would.
fn workbook(path: &Path) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("jobs").unwrap();
    let rows = [
        ["Model", "Input", "Template", "Label", "#SKU", "#Product name"],
        [
            "magic/image-to-video",
            "assets/shoe.jpg",
            "Tokyo Billboard",
            "hero",
            "S-10",
            "Chaussure",
        ],
        [
            "magic/image-to-video",
            "assets/bag.png",
            "Phone Social",
            "hero",
            "S-11",
            "Sac",
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).unwrap();
        }
    }
    book.save(path).unwrap();
}

#[test]
fn a_workbook_manifest_gets_a_results_workbook_with_links_to_its_videos() {
    let h = Harness::fast();
    let manifest = h.path("campaign.xlsx");
    workbook(&manifest);
    let output = h.run(&manifest, &[]);
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
    let rows = h.results();
    assert_eq!(rows.len(), 2);
    // A label shared by two rows keys neither: each is keyed by its job id.
    assert!(rows.iter().all(|r| r["custom_id"] == r["job_id"]), "{rows:?}");

    let path = h.out().join("results.xlsx");
    let mut book: Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let range = book.worksheet_range("results").unwrap();
    let cells: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
    let header: Vec<String> = cells[0].iter().map(ToString::to_string).collect();
    let mut expected: Vec<String> = COLUMNS.iter().map(ToString::to_string).collect();
    expected.extend(["#SKU".into(), "#Product name".into()]);
    assert_eq!(header, expected);
    assert_eq!(cells.len(), 3);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for (cells, row) in cells[1..].iter().zip(&rows) {
        for text in ["job_id", "status", "file", "custom_id", "#SKU", "#Product name"] {
            assert_eq!(cells[column(text)].to_string(), row[text], "{text}");
        }
        // Numbers are numbers, as the sheet's sums need.
        for number in ["bytes", "credits", "attempts"] {
            assert_eq!(
                cells[column(number)],
                Data::Float(row[number].parse().unwrap()),
                "{number}"
            );
        }
    }
    assert_eq!(cells[2][column("#Product name")].to_string(), "Sac");

    // Each video's file is a link to it, relative to the workbook.
    let links = book.hyperlinks_by_sheet_name("results").unwrap();
    assert_eq!(links.len(), 2);
    for (link, row) in links.iter().zip(&rows) {
        let (r, c) = link.range.start;
        assert_eq!((c as usize), column("file"));
        let file = &rows[r as usize - 1]["file"];
        assert_eq!(&row["file"], file);
        assert_eq!(link.target.as_deref(), Some(file.as_str()));
        assert!(h.out().join(file).is_file(), "{file}");
    }

    // The header stays in view and filters.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(), &mut xml).unwrap();
    assert!(
        xml.contains(r#"ySplit="1""#) && xml.contains(r#"state="frozen""#),
        "{xml}"
    );
    assert!(xml.contains("<autoFilter"), "{xml}");
    assert!(xml.contains("<cols>"), "columns are sized: {xml}");
    let leftovers: Vec<_> = std::fs::read_dir(h.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_key_that_does_not_tell_the_rows_apart_is_refused_before_anything_is_sent() {
    let h = Harness::fast();
    let sheet = h.write(
        "m.csv",
        "#SKU;model;prompt\nS-1;magic/text-to-video;SALE\nS-1;magic/text-to-video;NEW\nS-2;magic/text-to-video;LAST\n",
    );
    let output = h.run(&sheet, &["--key", "#sku"]);
    assert_eq!(output.status.code(), Some(exit_code::INVALID), "{}", stderr(&output));
    assert_said(
        &output,
        "`#SKU` is `S-1` on lines 2 and 3: `--key` keys the results by it, so it must tell the rows apart",
    );
    assert_eq!(h.log().submits.len(), 0);

    // In YAML the key is the manifest's own setting; `validate` checks it.
    let yaml = h.write(
        "m.yaml",
        "key: \"#sku\"\njobs:\n  - model: magic/text-to-video\n    prompt: SALE\n    \"#sku\": S-1\n  \
         - model: magic/text-to-video\n    prompt: NEW\n",
    );
    let output = h.finish(h.command(&["validate", yaml.to_str().unwrap()]));
    assert_eq!(output.status.code(), Some(exit_code::INVALID));
    assert_said(&output, "m.yaml:6:5");
    assert_said(
        &output,
        "this job has no `#sku`: the manifest's `key` keys the results by it",
    );
    let fixed = h.write(
        "fixed.yaml",
        "key: \"#sku\"\njobs:\n  - model: magic/text-to-video\n    prompt: SALE\n    \"#sku\": S-1\n  \
         - model: magic/text-to-video\n    prompt: NEW\n    \"#sku\": S-2\n",
    );
    let output = h.finish(h.command(&["validate", fixed.to_str().unwrap()]));
    assert_eq!(output.status.code(), Some(exit_code::OK), "{}", stderr(&output));
}
