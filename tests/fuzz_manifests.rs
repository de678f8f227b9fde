//! Property tests of both manifest readers and the planner: whatever the text, no panic, no hang,
//! and every diagnostic points inside the text it came from. A short run is part of `cargo test`;
//! a long one is `PROPTEST_CASES=200000 cargo test --release --test fuzz_manifests` (see
//! BENCHMARKS.md for what was run). `fuzz/` holds libFuzzer targets of the same readers.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vidbatch::manifest::{self, Diagnostics};

/// A manifest path beside the shipped assets, so that inputs such as `assets/shoe.jpg` resolve.
fn manifest_path(ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("manifests/fuzzed.{ext}"))
}

/// Parses and plans `text`; checks what any outcome must satisfy.
fn check(ext: &str, text: &str) {
    let path = manifest_path(ext);
    let outcome = manifest::parse(&path, text.into()).and_then(|m| vidbatch::plan::plan(&m));
    match outcome {
        Ok(plan) => {
            for job in &plan.jobs {
                assert!(job.file.starts_with("videos/"), "{}", job.file);
                assert!(
                    !job.file.split('/').any(|c| c.starts_with('.') || c.is_empty()),
                    "{}",
                    job.file
                );
            }
            diagnostics_point_inside(text, &Diagnostics(plan.warnings));
        }
        Err(diagnostics) => {
            assert!(!diagnostics.0.is_empty(), "a refusal says why");
            diagnostics_point_inside(text, &diagnostics);
        }
    }
}

fn diagnostics_point_inside(text: &str, diagnostics: &Diagnostics) {
    for d in &diagnostics.0 {
        if let Some(at) = d.at {
            assert!(at.line >= 1 && at.column >= 1, "{d:?}");
            assert!(at.offset + at.len <= text.len(), "{d:?} in {} bytes", text.len());
            assert!(text.is_char_boundary(at.offset), "{d:?}");
        }
        // Drawing never panics, whatever the span.
        let _ = d.render(false);
    }
    let _ = diagnostics.render(false);
}

/// Pieces of YAML manifests, good and bad, for lines that reach past the syntax into the reader
/// and the planner.
fn yaml_line() -> impl Strategy<Value = String> {
    let indent = prop::sample::select(vec!["", "  ", "    ", "      ", "\t", "   "]);
    let dash = prop::sample::select(vec!["", "- "]);
    let key = prop::sample::select(vec![
        "jobs",
        "model",
        "input",
        "inputs",
        "prompt",
        "prompts",
        "template",
        "templates",
        "params",
        "defaults",
        "name",
        "output",
        "duration",
        "resolution",
        "seed",
        "tempates",
        "&a x",
        "? complex",
        "",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "magic/text-to-video",
            "magic/image-to-video",
            "magic/video-to-video",
            "pixverse/v5/image-to-video",
            "image-to-video",
            "[assets/shoe.jpg, assets/bag.png]",
            "assets/teaser.mp4",
            "assets/nope.jpg",
            "https://example.com/a.png",
            "all",
            "Tokyo Billboard",
            "\"{template}/{input}.mp4\"",
            "{model}.mp4",
            "../x",
            "{resolution: 1080p, duration: 8}",
            "&p [a, b]",
            "*p",
            "*a",
            "[*p, *p, *p]",
            "'=HYPERLINK(1)'",
            "\"unterminated",
            "[unclosed",
            "{",
            "|",
            ">-",
            "~",
            "",
            "8",
            "-1",
            "1e400",
            "0x1F",
            "!!binary aGk=",
        ])
        .prop_map(String::from),
        "[ -~é日\u{feff}]{0,20}",
    ];
    (indent, dash, key, value).prop_map(|(i, d, k, v)| {
        if k.is_empty() {
            format!("{i}{d}{v}")
        } else {
            format!("{i}{d}{k}: {v}")
        }
    })
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "model",
            "input",
            "prompt",
            "template",
            "duration",
            "resolution",
            "magic/text-to-video",
            "pixverse/v5/image-to-video",
            "assets/shoe.jpg",
            "Tokyo Billboard|Phone App",
            "all",
            "\"quoted, with comma\"",
            "\"unterminated",
            "\"\"",
            "#comment",
            "1080p",
            "8",
            "=1+1",
            "",
            // Spreadsheet exports: spellings of headers, own columns, labels, globs, folders.
            " Model ",
            "#sku",
            "label",
            "sep=;",
            "assets/*.jpg",
            "assets/",
            "assets/[",
        ])
        .prop_map(String::from),
        "[ -~é\"]{0,12}",
    ]
}

fn csv_text() -> impl Strategy<Value = String> {
    // A separator per row: one file's rows agree, but the reader must survive when they do not.
    let separator = prop::sample::select(vec![",", ";", "\t"]);
    let row = (prop::collection::vec(csv_cell(), 0..7), separator).prop_map(|(cells, sep)| cells.join(sep));
    let sep = prop::sample::select(vec!["\n", "\r\n", "\n\n", "\r"]);
    prop::collection::vec((row, sep), 0..12)
        .prop_map(|rows| rows.into_iter().map(|(r, s)| format!("{r}{s}")).collect::<String>())
}

/// The shapes of issue 16's hostile files, mixed into CSV text: a first line `sep=…`, a cell of
/// 70,000 characters or a 100,000-digit number (miette panicked past column 65,535), and one row
/// repeated (identical rows were quadratic).
fn hostile_csv() -> impl Strategy<Value = String> {
    let first = prop::sample::select(vec![
        "", "sep=", "sep=\n", "sep=;\n", "sep=\"\n", "sep=;;\n", "sep=\t\n",
    ]);
    let huge = prop::sample::select(vec![String::new(), "x".repeat(70_000), "9".repeat(100_000)]);
    (
        first,
        csv_text(),
        huge,
        prop::sample::select(vec![",", ";"]),
        0..300usize,
    )
        .prop_map(|(first, text, huge, sep, repeats)| {
            let header = ["model", "prompt", "duration"].join(sep);
            let row = ["pixverse/v5/text-to-video", "hi", huge.as_str()].join(sep);
            format!(
                "{first}{header}\n{}{text}\n{}",
                format!("{row}\n").repeat(repeats.max(1)),
                huge
            )
        })
}

/// An anchor followed many times on one line, among YAML lines of the usual shapes.
fn alias_fan() -> impl Strategy<Value = String> {
    (
        1..3000usize,
        prop::collection::vec(yaml_line(), 0..6),
        prop::sample::select(vec!["hi", "'..'", "9999"]),
    )
        .prop_map(|(fan, lines, value)| {
            format!(
                "x: &p {value}\njobs:\n  - model: magic/text-to-video\n    output: a/{{prompt}}\n    prompts: [{}]\n{}",
                vec!["*p"; fan].join(", "),
                lines.join("\n")
            )
        })
}

/// Found by `yaml_shaped_text`: an empty list item at the very end of the file.
#[test]
fn an_empty_item_at_the_end_points_inside_the_text() {
    check("yaml", "jobs:\n- ");
    check("yaml", "jobs:\ndefaults: !a");
}

/// Found by `csv_shaped_text`: blank lines, then a header of one own column ending in `\r`.
#[test]
fn blank_lines_then_a_header_ending_in_a_carriage_return_draw_inside_the_text() {
    check("csv", "\n\n\t#sku\r");
    check("csv", "model\r\nx\r");
    check("csv", "model,input\r\nmagic/image-to-video,\r");
    check("yaml", "jobs:\r\n  - model: x\r");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_as_yaml_or_csv(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        check("yaml", &text);
        check("csv", &text);
    }

    #[test]
    fn yaml_shaped_text(lines in prop::collection::vec(yaml_line(), 0..24)) {
        let mut text = String::from("jobs:\n");
        text.push_str(&lines.join("\n"));
        check("yaml", &text);
        check("yaml", &lines.join("\n"));
    }

    #[test]
    fn csv_shaped_text(text in csv_text()) {
        check("csv", &text);
        check("csv", &format!("model,input,prompt,template,duration\n{text}"));
    }
}

// Large texts (a cell of 100,000 characters, thousands of aliases): fewer cases in `cargo test`.
proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_csv_shapes(text in hostile_csv()) {
        check("csv", &text);
    }

    #[test]
    fn alias_fans(text in alias_fan()) {
        check("yaml", &text);
    }
}
