//! Reading a manifest (YAML or CSV) into raw entries that remember the line they came from.
//!
//! Nothing here knows about models: an entry is what the user wrote, with lines attached, so that
//! `plan` can say "campaign.yaml:14: unknown template" about any field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One problem in a manifest, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found; nothing is submitted while this is non-empty.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub line: usize,
}

/// A manifest entry as written: each expands to (inputs or prompts) × templates jobs.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub line: usize,
    pub model: Option<Spanned<String>>,
    pub inputs: Vec<Spanned<String>>,
    pub prompts: Vec<Spanned<String>>,
    /// Names as written; `all` is kept literally and expanded by the planner.
    pub templates: Vec<Spanned<String>>,
    /// Parameter name (with its line) and value.
    pub params: Vec<(Spanned<String>, Spanned<Value>)>,
    /// CSV cells are all text: the planner turns them into numbers where the model wants one.
    pub params_are_text: bool,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    /// Local inputs are relative to this folder.
    pub dir: PathBuf,
    pub name: String,
    pub output: Option<Spanned<String>>,
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn diagnostic(&self, line: Option<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line,
            message: message.into(),
            help: None,
        }
    }
}

/// Reads and parses a manifest; the format follows the extension (`.csv`, else YAML).
pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
    let fail = |line, message: String| {
        Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line,
            message,
            help: None,
        }])
    };
    let text = read_text(path).map_err(|(line, message)| fail(line, message))?;
    let dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".into());
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut manifest = Manifest {
        file: path.to_path_buf(),
        dir,
        name: stem,
        output: None,
        entries: Vec::new(),
    };
    if is_csv {
        parse_csv(&text, &mut manifest)?;
    } else {
        parse_yaml(&text, &mut manifest)?;
    }
    Ok(manifest)
}

/// The largest manifest read: a 100,000-row CSV weighs about 10 MB. Anything larger (or endless,
/// such as `/dev/zero`) is refused before memory runs out.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Reads a manifest's text: bounded in size, UTF-8 (a byte-order mark is dropped), with the line
/// and column of the first byte that is not UTF-8 and a way to fix it.
fn read_text(path: &Path) -> Result<String, (Option<usize>, String)> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| (None, format!("cannot read the manifest: {e}"));
    if path.is_dir() {
        return Err((None, "this is a folder, not a manifest file".into()));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err((
            None,
            format!(
                "the manifest is larger than {} MiB; split it into several files",
                MAX_MANIFEST_BYTES >> 20
            ),
        ));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err((
            Some(1),
            "the manifest is UTF-16 text; vidbatch reads UTF-8 (in Excel: Save As → \"CSV UTF-8\"; \
             in an editor: save with the UTF-8 encoding)"
                .into(),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let good = e.utf8_error().valid_up_to();
        let before = &bytes[..good];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        (
            Some(line),
            format!(
                "column {column}: byte 0x{:02X} is not UTF-8 text; the file was probably saved as \
                 Windows-1252 or Latin-1: save it as UTF-8 (in Excel: Save As → \"CSV UTF-8\")",
                bytes[good]
            ),
        )
    })
}

mod csv;
mod yaml;

use self::csv::parse_csv;
use yaml::parse_yaml;

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Manifest, Diagnostics> {
        let mut m = Manifest {
            file: "m.yaml".into(),
            dir: ".".into(),
            name: "m".into(),
            output: None,
            entries: Vec::new(),
        };
        parse_yaml(text, &mut m).map(|_| m)
    }

    #[test]
    fn yaml_entries_remember_their_lines() {
        let m = yaml(
            "name: spring\njobs:\n  - model: magic/image-to-video\n    inputs: [a.jpg, b.png]\n    template: Tokyo Billboard\n  - model: pixverse/v5/image-to-video\n    input: p.jpg\n    prompt: hi\n    params: {duration: 5, resolution: 720p, seed: '7'}\n",
        )
        .unwrap();
        assert_eq!(m.name, "spring");
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].line, 3);
        assert_eq!(m.entries[0].inputs[1].value, "b.png");
        assert_eq!(m.entries[0].inputs[1].line, 4);
        assert_eq!(m.entries[1].templates.len(), 0);
        let params: Vec<_> = m.entries[1]
            .params
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            params,
            vec![
                ("duration", 5.into()),
                ("resolution", "720p".into()),
                ("seed", "7".into())
            ]
        );
        assert_eq!(m.entries[1].params[0].0.line, 9);
    }

    #[test]
    fn defaults_apply_and_params_merge() {
        let m = yaml(
            "defaults:\n  model: pixverse/v5/image-to-video\n  params: {duration: 8, resolution: 540p}\njobs:\n  - input: a.jpg\n    prompt: x\n    params: {duration: 5}\n",
        )
        .unwrap();
        let e = &m.entries[0];
        assert_eq!(e.model.as_ref().unwrap().value, "pixverse/v5/image-to-video");
        let mut params: Vec<_> = e
            .params
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            params,
            vec![("duration".into(), 5.into()), ("resolution".into(), "540p".into())]
        );
    }

    #[test]
    fn unknown_fields_are_located_with_a_suggestion() {
        let err = yaml("jobs:\n  - model: magic/image-to-video\n    input: a.jpg\n    tempates: [Tokyo Billboard]\n")
            .unwrap_err();
        let d = &err.0[0];
        assert_eq!(d.line, Some(4));
        assert!(d.message.contains("`tempates`"), "{d}");
        assert!(d.help.as_deref().unwrap().contains("`templates`"), "{d}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = yaml("jobs:\n  - model: x\n    inputs: [a.jpg\n").unwrap_err();
        assert!(err.0[0].line.is_some());
        assert!(err.0[0].message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn singular_and_plural_together_are_refused() {
        let err = yaml("jobs:\n  - model: m\n    input: a\n    inputs: [b]\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(4));
    }

    #[test]
    fn anchors_and_aliases_are_followed() {
        let m = yaml("x: &imgs [a.jpg, b.jpg]\njobs:\n  - model: m\n    inputs: *imgs\n");
        // `x` is not a manifest field, but the alias itself must resolve.
        assert!(m.unwrap_err().0.iter().all(|d| !d.message.contains("alias")));
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly_and_small() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..=9 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                vec![format!("*a{prev}"); 9].join(",")
            ));
        }
        text.push_str("jobs:\n  - model: magic/text-to-video\n    prompts: *a9\n");
        let err = yaml(&text).unwrap_err();
        assert!(err.0[0].message.contains("aliases"), "{err}");
        // An anchor reused a few times is fine.
        let ok = yaml("x: &p [a, b]\njobs:\n  - model: m\n    prompts: *p\n  - model: m\n    prompts: *p\n");
        assert!(ok.unwrap_err().0.iter().all(|d| !d.message.contains("aliases")));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("jobs: {}{}\n", "[".repeat(70), "]".repeat(70));
        let err = yaml(&text).unwrap_err();
        assert!(err.0[0].message.contains("deeper than 64"), "{err}");
        // Deeper still, the YAML reader's own limit answers first.
        let text = format!("jobs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(yaml(&text).is_err());
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let m = yaml("\u{feff}jobs:\n  - model: magic/text-to-video\n    prompt: hi\n").unwrap();
        assert_eq!(m.entries.len(), 1);
    }

    #[test]
    fn unreadable_text_says_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let latin1 = dir.path().join("m.csv");
        std::fs::write(&latin1, b"model,prompt\nmagic/text-to-video,Caf\xE9 -20%\n").unwrap();
        let err = load(&latin1).unwrap_err();
        assert_eq!(err.0[0].line, Some(2));
        assert!(err.0[0].message.contains("column 24: byte 0xE9"), "{err}");
        assert!(err.0[0].message.contains("UTF-8"), "{err}");
        let utf16 = dir.path().join("u.csv");
        std::fs::write(&utf16, b"\xFF\xFEm\x00").unwrap();
        assert!(load(&utf16).unwrap_err().0[0].message.contains("UTF-16"));
        let bom = dir.path().join("b.yaml");
        std::fs::write(
            &bom,
            b"\xEF\xBB\xBFjobs:\n  - model: magic/text-to-video\n    prompt: hi\n",
        )
        .unwrap();
        assert_eq!(load(&bom).unwrap().entries.len(), 1);
        assert!(load(dir.path()).unwrap_err().0[0].message.contains("folder"));
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_manifest_is_refused_at_the_size_limit() {
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert!(err.0[0].message.contains("larger than"), "{err}");
    }

    #[test]
    fn csv_rows_become_entries_with_lines() {
        let mut m = Manifest {
            file: "m.csv".into(),
            dir: ".".into(),
            name: "m".into(),
            output: None,
            entries: Vec::new(),
        };
        parse_csv(
            "model,input,prompt,template,duration\n# a comment\nmagic/image-to-video,a.jpg,,Tokyo Billboard|Phone App,\n\npixverse/v5/image-to-video,b.jpg,hello,,8\n",
            &mut m,
        )
        .unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].templates.len(), 2);
        assert_eq!(m.entries[1].line, 5);
        assert_eq!(m.entries[1].params[0].1.value, Value::String("8".into()));
        assert!(m.entries[1].params_are_text);
    }
}
