//! The bad-manifest corpus: every manifest in `tests/bad_manifests/` is validated by the real
//! binary, its stderr compared with the `NN-name.expected` file beside it and its exit code with
//! the table below; and every error it reports is checked for what a person needs to fix it: the
//! file, line and column, the offending line with the problem underlined, and a `help:` line, all
//! the manifest's errors in one run, counted.
//!
//! Each fixture is run as `vidbatch validate NN-name.yaml` from inside `tests/bad_manifests/`
//! (so the paths printed are the same on every machine), with `NO_COLOR=1`.
//!
//! After a deliberate change of wording, regenerate the expected files and review the diff by eye:
//!
//! ```sh
//! BLESS=1 cargo test --test bad_manifests
//! git diff tests/bad_manifests/
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use vidbatch::exit_code::{INVALID, OK};

/// How a fixture's diagnostics are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Every error drawn: `[file:line:col]`, the line with the problem underlined, `help:`.
    Drawn,
    /// `error: file…: message` and a `help:` line: there is no text to show (an empty file, UTF-16
    /// text, a folder).
    Plain,
    /// `error: file: message` without a help: the manifest cannot be read at all, which
    /// `src/manifest.rs` reports with the system's words only.
    PlainNoHelp,
    /// The manifest is valid: no error (there may be warnings).
    Accepted,
}

use Shown::{Accepted, Drawn, Plain, PlainNoHelp};

/// Every fixture, with the exit code of `vidbatch validate` and how its diagnostics are shown.
const CASES: &[(&str, i32, Shown)] = &[
    // YAML that would blow up: aliases multiplied, nesting without end.
    ("01-alias-bomb.yaml", INVALID, Drawn),
    ("02-alias-unknown-anchor.yaml", INVALID, Drawn),
    ("03-deep-nesting.yaml", INVALID, Drawn),
    // Encodings: a byte-order mark is fine, UTF-16 with its mark too; Windows-1252 is read with
    // a warning to check it.
    ("04-bom-is-fine.yaml", OK, Accepted),
    ("05-bom-is-fine.csv", OK, Accepted),
    ("06-windows-1252.csv", OK, Accepted),
    ("07-windows-1252.yaml", OK, Accepted),
    ("08-utf16le.csv", OK, Accepted),
    ("09-utf16be.yaml", OK, Accepted),
    // Wrong types, unknown fields and parameters, values outside their enums.
    ("10-wrong-types-params.yaml", INVALID, Drawn),
    ("11-wrong-types-fields.yaml", INVALID, Drawn),
    ("12-params-not-a-mapping.yaml", INVALID, Drawn),
    ("13-unknown-job-field.yaml", INVALID, Drawn),
    ("14-unknown-top-field.yaml", INVALID, Drawn),
    ("15-unknown-param.yaml", INVALID, Drawn),
    ("16-param-on-magic.yaml", INVALID, Drawn),
    ("17-enum-values.yaml", INVALID, Drawn),
    ("18-1080p-duration-8.yaml", INVALID, Drawn),
    ("19-1080p-duration-8.csv", INVALID, Drawn),
    ("20-prompt-too-long.yaml", INVALID, Drawn),
    ("21-negative-prompt-too-long.csv", INVALID, Drawn),
    ("22-empty-prompt.yaml", INVALID, Drawn),
    // Inputs: missing, empty, a folder, not an image, the wrong media, an unknown scheme.
    ("23-missing-input.yaml", INVALID, Drawn),
    ("24-empty-input.yaml", INVALID, Drawn),
    ("25-input-is-folder.yaml", INVALID, Drawn),
    ("26-text-as-image.yaml", INVALID, Drawn),
    ("27-video-as-image.yaml", INVALID, Drawn),
    ("28-image-as-video.csv", INVALID, Drawn),
    ("29-pdf-as-image.yaml", INVALID, Drawn),
    ("30-unsupported-url-scheme.yaml", INVALID, Drawn),
    // Duplicate jobs run once, with a warning.
    ("31-duplicate-jobs.yaml", OK, Accepted),
    ("32-duplicate-jobs.csv", OK, Accepted),
    ("33-ragged-rows.csv", INVALID, Drawn),
    // Output patterns. Jobs a pattern names alike are told apart by what differs (here the
    // template): the same rule as the pattern left implicit, not an error.
    ("34-output-collision.yaml", OK, Accepted),
    ("35-output-outside.yaml", INVALID, Drawn),
    ("36-output-placeholder.yaml", INVALID, Drawn),
    // Models: unknown ones pass with a warning; near misses are refused.
    ("37-unknown-model.yaml", OK, Accepted),
    ("38-model-without-family.yaml", INVALID, Drawn),
    ("39-model-typo.csv", INVALID, Drawn),
    ("40-missing-model.yaml", INVALID, Drawn),
    ("41-unknown-template.yaml", INVALID, Drawn),
    ("42-input-and-prompt-rules.yaml", INVALID, Drawn),
    // Several errors at once: all are reported.
    ("43-several-errors.yaml", INVALID, Drawn),
    ("44-several-errors.csv", INVALID, Drawn),
    // YAML syntax.
    ("45-unclosed-bracket.yaml", INVALID, Drawn),
    ("46-tabs.yaml", INVALID, Drawn),
    ("47-bad-indentation.yaml", INVALID, Drawn),
    ("48-unquoted-colon.yaml", INVALID, Drawn),
    // CSV structure, empty manifests.
    ("49-no-model-column.csv", INVALID, Drawn),
    ("50-header-only.csv", INVALID, Drawn),
    ("51-empty.yaml", INVALID, Plain),
    ("52-empty.csv", INVALID, Plain),
    ("53-comments-only.yaml", INVALID, Plain),
    ("54-no-jobs.yaml", INVALID, Drawn),
    ("55-jobs-empty-list.yaml", INVALID, Drawn),
    ("56-top-level-list.yaml", INVALID, Drawn),
    ("57-job-not-a-mapping.yaml", INVALID, Drawn),
    ("58-input-twice.yaml", INVALID, Drawn),
    ("59-csv-unnamed-column.csv", INVALID, Drawn),
    ("60-job-field-in-params.yaml", INVALID, Drawn),
    ("61-empty-values.yaml", INVALID, Drawn),
    // A folder given as the manifest.
    ("62-folder.yaml", INVALID, Plain),
    ("63-crlf-excel.csv", INVALID, Drawn),
    ("64-unclosed-quote.csv", INVALID, Drawn),
    ("65-defaults.yaml", INVALID, Drawn),
    ("66-model-column-misspelt.csv", INVALID, Drawn),
    ("67-unclosed-quote.yaml", INVALID, Drawn),
    ("68-dedented-field.yaml", INVALID, Drawn),
    ("69-plural-column.csv", INVALID, Drawn),
    // No such file: the only fixture that does not exist (its `.expected` does).
    ("70-no-such-manifest.yaml", INVALID, PlainNoHelp),
    // Spreadsheet exports: a column of the user's named once with its rows; 200 rows with an
    // unquoted comma, one error; bytes that are no text; a spreadsheet's cells.
    ("71-unknown-column-many-rows.csv", INVALID, Drawn),
    ("72-unquoted-commas.csv", INVALID, Drawn),
    ("73-not-text.csv", INVALID, Drawn),
    ("74-bad-cell.xlsx", INVALID, Plain),
    // Globs and folders: one that matches nothing, one with files that are not images.
    ("75-glob-matches-nothing.yaml", INVALID, Drawn),
    ("76-folder-of-mixed-files.yaml", OK, Accepted),
    ("77-excel-semicolons-capitals.csv", OK, Accepted),
    // UTF-8 with a line pasted from a Windows-1252 file: neither reading is right.
    ("78-mixed-encodings.csv", INVALID, Drawn),
    // Hostile files: each once crashed or hung `validate`.
    ("79-sep-names-nothing.csv", INVALID, Drawn),
    // A cell at XFD1048576 (an abort on a 550 GB allocation); one at ZZ100000 of an `.ods`
    // (2.2 GB, 6.6 s).
    ("80-far-cell.xlsx", INVALID, Plain),
    ("81-far-cell.ods", INVALID, Plain),
];

/// The line every refused manifest ends with.
const NOTHING_SUBMITTED: &str = "nothing was submitted: fix the manifest and run again";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_manifests")
}

fn bless() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `vidbatch validate FILE` from inside `dir`, colourless.
fn validate(dir: &Path, file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidbatch"))
        .arg("validate")
        .arg(file)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("the vidbatch binary runs")
}

/// stderr with the log's timestamps (warnings) replaced by `<time>`, the one part that changes.
fn normalized_stderr(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let stamp = line.split(' ').next().unwrap_or("");
        let b = stamp.as_bytes();
        if b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && stamp.ends_with('Z') {
            out.push_str("<time>");
            out.push_str(&line[stamp.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Every fixture run once (in parallel), for all the tests below.
fn outcomes() -> &'static [Outcome] {
    static OUTCOMES: OnceLock<Vec<Outcome>> = OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let dir = corpus();
        std::thread::scope(|s| {
            let runs: Vec<_> = CASES
                .iter()
                .map(|&(name, ..)| {
                    let dir = &dir;
                    s.spawn(move || {
                        let output = validate(dir, name);
                        Outcome {
                            code: output.status.code(),
                            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                            stderr: normalized_stderr(&output),
                        }
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().expect("a fixture's run")).collect()
        })
    })
}

fn expected_path(name: &str) -> PathBuf {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    corpus().join(format!("{stem}.expected"))
}

/// A line diff (longest common subsequence): `-` expected, `+` got, two lines of context.
fn diff(expected: &str, got: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        lines[k.saturating_sub(2)..(k + 3).min(lines.len())]
            .iter()
            .any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in lines.iter().enumerate() {
        if near_change(k) {
            out.push_str(&format!("{c} {line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str("  …\n");
            skipped = true;
        }
    }
    if expected.ends_with('\n') != got.ends_with('\n') {
        out.push_str("(the final line break differs)\n");
    }
    out
}

#[test]
fn every_fixture_is_in_the_table_and_has_its_expected_output() {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "assets" || name.starts_with('.') {
            continue;
        }
        if let Some(stem) = name.strip_suffix(".expected") {
            if !CASES.iter().any(|(case, ..)| case.starts_with(&format!("{stem}."))) {
                problems.push(format!("{name}: no fixture of that name in CASES"));
            }
        } else if !CASES.iter().any(|(case, ..)| *case == name) {
            problems.push(format!("{name}: a fixture missing from CASES"));
        }
    }
    for (name, ..) in CASES {
        if !bless() && !expected_path(name).exists() {
            problems.push(format!("{name}: no .expected file (run with BLESS=1 to write it)"));
        }
    }
    let mut numbers: Vec<&str> = CASES.iter().map(|(name, ..)| &name[..2]).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), CASES.len(), "each case has its own number");
    assert!(CASES.len() >= 40, "the corpus has at least 40 manifests");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_fixture_prints_exactly_its_expected_diagnostics() {
    let mut failures = Vec::new();
    for (outcome, &(name, code, _)) in outcomes().iter().zip(CASES) {
        if outcome.code != Some(code) {
            failures.push(format!(
                "{name}: exit code {:?}, expected {code}\n{}",
                outcome.code, outcome.stderr
            ));
        }
        let path = expected_path(name);
        if bless() {
            std::fs::write(&path, &outcome.stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != outcome.stderr {
            failures.push(format!(
                "{name}: stderr differs from {} (- expected, + got):\n{}",
                path.file_name().unwrap().to_string_lossy(),
                diff(&expected, &outcome.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{} of {} fixtures differ; if the change is deliberate, rerun with BLESS=1 and review `git diff`",
        failures.join("\n\n"),
        failures.len(),
        CASES.len()
    );
}

/// The place a drawn diagnostic names: `╭─[file:line:col]`.
fn header(block: &str) -> Option<(String, usize, usize)> {
    let start = block.find("╭─[")? + "╭─[".len();
    let inner = &block[start..start + block[start..].find(']')?];
    let mut parts = inner.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?.to_string(), line, col))
}

/// Checks one drawn diagnostic: its place names the fixture, the underline is under the named
/// line (and, where the line is plain ASCII up to there, starts at the named column), and a help
/// says what to do.
fn check_drawn(name: &str, block: &str) -> Result<(), String> {
    let (file, line, col) = header(block).ok_or("no `╭─[file:line:col]` header")?;
    if file != name {
        return Err(format!("the header names `{file}`"));
    }
    if line == 0 || col == 0 {
        return Err(format!("line {line}, column {col}: both count from 1"));
    }
    let lines: Vec<&str> = block.lines().collect();
    let underline = lines
        .iter()
        .position(|l| l.trim_start().starts_with('·') && l.contains('─'))
        .ok_or("no underline (`·  ───`)")?;
    let shown = lines[underline - 1];
    let (number, source) = shown.split_once('│').ok_or("no source line above the underline")?;
    if number.trim() != line.to_string() {
        return Err(format!(
            "the underline is under line {}, the header says {line}",
            number.trim()
        ));
    }
    // Columns, where they can be counted without tabs and wide characters.
    let source = source.strip_prefix(' ').unwrap_or(source);
    let before: String = source.chars().take(col - 1).collect();
    if before.is_ascii() && !before.contains('\t') {
        let margin = shown.chars().count() - source.chars().count();
        let marks = lines[underline].chars().skip(margin).position(|c| c == '─' || c == '▲');
        if marks != Some(col - 1) {
            return Err(format!(
                "the underline starts at column {}, the header says {col}",
                marks.map_or(0, |m| m + 1)
            ));
        }
    }
    if !lines[underline + 1..].iter().any(|l| l.starts_with("  help: ")) {
        return Err("no `help:` line".into());
    }
    Ok(())
}

/// The error blocks of a drawn report: each starts with `  × `.
fn drawn_blocks(stderr: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("  × ") {
            blocks.push(String::new());
        } else if line.ends_with(" in the manifest") || line == NOTHING_SUBMITTED {
            break;
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

/// The properties every report has, whatever its words.
fn check_report(name: &str, shown: Shown, stderr: &str) -> Result<(), String> {
    let count_line = stderr
        .lines()
        .find(|l| l.ends_with(" error in the manifest") || l.ends_with(" errors in the manifest"));
    if shown == Accepted {
        if stderr.contains("  × ") || stderr.contains("error") || count_line.is_some() {
            return Err("an accepted manifest reports an error".into());
        }
        return Ok(());
    }
    let count_line = count_line.ok_or("no `N error(s) in the manifest` line")?;
    let counted: usize = count_line
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("the count is not a number")?;
    if !stderr.trim_end().ends_with(NOTHING_SUBMITTED) {
        return Err(format!("does not end with `{NOTHING_SUBMITTED}`"));
    }
    let errors = match shown {
        Drawn => {
            let blocks = drawn_blocks(stderr);
            for (i, block) in blocks.iter().enumerate() {
                check_drawn(name, block).map_err(|e| format!("error {} of {}: {e}\n{block}", i + 1, blocks.len()))?;
            }
            blocks.len()
        }
        Plain | PlainNoHelp => {
            let lines: Vec<&str> = stderr.lines().collect();
            let errors: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("error: ")).collect();
            for &i in &errors {
                if !lines[i].starts_with(&format!("error: {name}:")) {
                    return Err(format!("`{}` does not start with the file's name", lines[i]));
                }
                let helped = lines.get(i + 1).is_some_and(|l| l.starts_with("  help: "));
                if shown == Plain && !helped {
                    return Err(format!("`{}` has no `help:` line", lines[i]));
                }
            }
            errors.len()
        }
        Accepted => unreachable!(),
    };
    if errors == 0 {
        return Err("no error is shown".into());
    }
    if errors != counted {
        return Err(format!("{errors} errors shown, `{count_line}`"));
    }
    Ok(())
}

#[test]
fn every_error_names_its_place_shows_its_text_and_says_what_to_do() {
    let mut failures = Vec::new();
    for (outcome, &(name, _, shown)) in outcomes().iter().zip(CASES) {
        if let Err(e) = check_report(name, shown, &outcome.stderr) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The manifests that are valid: each plans its jobs; a duplicate, a model vidbatch does not know,
/// a guessed encoding and files left out of a folder are warned about.
#[test]
fn accepted_manifests_plan_their_jobs_with_warnings_where_due() {
    for (outcome, &(name, _, shown)) in outcomes().iter().zip(CASES) {
        if shown != Accepted {
            continue;
        }
        let jobs = match name {
            "76-folder-of-mixed-files.yaml" => 3,
            "34-output-collision.yaml" => 2,
            _ => 1,
        };
        if name == "34-output-collision.yaml" {
            assert!(
                outcome.stdout.contains("-> videos/shoe-tokyo-billboard.mp4")
                    && outcome.stdout.contains("-> videos/shoe-phone-app.mp4"),
                "{name}: the template tells the two apart: {}",
                outcome.stdout
            );
        }
        assert!(
            outcome.stdout.contains(&match jobs {
                1 => ": 1 job valid".to_string(),
                n => format!(": {n} jobs valid"),
            }),
            "{name}: {}",
            outcome.stdout
        );
        let warning = match name {
            "31-duplicate-jobs.yaml" | "32-duplicate-jobs.csv" => Some("repeats the one of line 2: it runs once"),
            "37-unknown-model.yaml" => Some("is not one vidbatch knows"),
            "06-windows-1252.csv" | "07-windows-1252.yaml" => Some("it was read as Windows-1252"),
            "76-folder-of-mixed-files.yaml" => Some("4 files left out, not images"),
            _ => None,
        };
        match warning {
            Some(w) => assert!(
                outcome.stderr.contains("⚠") && outcome.stderr.contains(w),
                "{name}: {}",
                outcome.stderr
            ),
            None => assert_eq!(outcome.stderr, "", "{name}"),
        }
    }
}

/// A manifest and an input that cannot be read (mode 000). They cannot live in git (it keeps no
/// such mode), so they are made here. Root reads them anyway (as CI does, running as root): the
/// case is then skipped, saying so.
#[cfg(unix)]
#[test]
fn unreadable_manifest_and_input_are_reported() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    let locked_input = dir.path().join("assets/locked.jpg");
    std::fs::copy(corpus().join("assets/shoe.jpg"), &locked_input).unwrap();
    let locked_manifest = dir.path().join("locked.yaml");
    std::fs::write(
        &locked_manifest,
        "jobs:\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("uses-locked.yaml"),
        "jobs:\n  - model: magic/image-to-video\n    input: assets/locked.jpg\n",
    )
    .unwrap();
    for path in [&locked_input, &locked_manifest] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    if std::fs::File::open(&locked_manifest).is_ok() {
        eprintln!("skipped: files of mode 000 are readable here (running as root)");
        return;
    }

    let output = validate(dir.path(), "locked.yaml");
    let stderr = normalized_stderr(&output);
    assert_eq!(output.status.code(), Some(INVALID), "{stderr}");
    assert!(
        stderr.starts_with("error: locked.yaml: cannot read the manifest: Permission denied"),
        "{stderr}"
    );
    check_report("locked.yaml", PlainNoHelp, &stderr).unwrap_or_else(|e| panic!("{e}\n{stderr}"));

    let output = validate(dir.path(), "uses-locked.yaml");
    let stderr = normalized_stderr(&output);
    assert_eq!(output.status.code(), Some(INVALID), "{stderr}");
    assert!(
        stderr.contains("input `assets/locked.jpg`: cannot read `./assets/locked.jpg`: Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains("[uses-locked.yaml:3:12]"), "{stderr}");
    assert!(stderr.contains("help: give this user read permission"), "{stderr}");
    check_report("uses-locked.yaml", Drawn, &stderr).unwrap_or_else(|e| panic!("{e}\n{stderr}"));
}

/// The checks above catch what they are meant to: a drawing that misplaces its underline, lacks
/// its help or miscounts is refused.
#[test]
fn the_property_checks_refuse_what_they_should() {
    let good = "  × `duration` cannot be `10`\n   ╭─[m.yaml:3:17]\n 2 │     params:\n 3 │       duration: 10\n   ·                 ──\n   ╰────\n  help: use one of `5` or `8`\n\n1 error in the manifest\nnothing was submitted: fix the manifest and run again\n";
    assert_eq!(check_report("m.yaml", Drawn, good), Ok(()));
    let refused = [
        (good.replace("m.yaml:3", "n.yaml:3"), "the header names `n.yaml`"),
        (good.replace(":3:17]", ":2:17]"), "the underline is under line 3"),
        (good.replace(":3:17]", ":3:16]"), "the underline starts at column 17"),
        (good.replace("  help: use one of `5` or `8`\n", ""), "no `help:` line"),
        (good.replace("   ·                 ──\n", ""), "no underline"),
        (good.replace("1 error in", "2 errors in"), "1 errors shown"),
        (good.replace("nothing was submitted", "nothing"), "does not end with"),
    ];
    for (drawn, why) in refused {
        let verdict = check_report("m.yaml", Drawn, &drawn);
        assert!(
            verdict.as_ref().is_err_and(|e| e.contains(why)),
            "{why}: {verdict:?}\n{drawn}"
        );
    }
    let plain = "error: m.yaml: the manifest is empty\n  help: write `jobs:`\n\n1 error in the manifest\nnothing was submitted: fix the manifest and run again\n";
    assert_eq!(check_report("m.yaml", Plain, plain), Ok(()));
    assert!(check_report("m.yaml", Plain, &plain.replace("  help: write `jobs:`\n", "")).is_err());
    assert!(check_report("m.yaml", Accepted, plain).is_err());
    assert_eq!(check_report("m.yaml", Accepted, ""), Ok(()));
}
