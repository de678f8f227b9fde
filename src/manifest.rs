//! Reading a manifest (YAML or CSV) into raw entries that remember the line they came from.
//!
//! Nothing here knows about models: an entry is what the user wrote, with lines attached, so that
//! `plan` can say "campaign.yaml:14: unknown template" about any field.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

mod report;

/// Where something is written in a manifest: 1-based line and column (in characters), and the
/// bytes it covers in the text, for showing it underlined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub len: usize,
}

impl Pos {
    /// The start of a line, when nothing more precise is known.
    pub fn line(line: usize) -> Pos {
        Pos {
            line,
            column: 1,
            offset: 0,
            len: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a manifest, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub at: Option<Pos>,
    pub message: String,
    pub help: Option<String>,
    /// The manifest's text, to show the offending line.
    pub source: Option<Arc<str>>,
    /// In a spreadsheet: the sheet, and `at` is a cell (line = row, column = column), written
    /// `sheet Sheet1, cell C7` as people find it in their spreadsheet program.
    pub sheet: Option<Arc<str>>,
}

impl Diagnostic {
    pub fn line(&self) -> Option<usize> {
        self.at.map(|p| p.line)
    }
}

/// One line (and a `help:` line): `m.yaml:4:5: unknown job field …`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        match (&self.sheet, self.at) {
            (Some(sheet), Some(at)) => write!(f, ": sheet {sheet}, cell {}{}", column_letters(at.column), at.line)?,
            (Some(sheet), None) => write!(f, ": sheet {sheet}")?,
            (None, Some(at)) => write!(f, ":{}:{}", at.line, at.column)?,
            (None, None) => {}
        }
        write!(f, ": {}", report::shorten_values(&self.message))?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {}", report::shorten_values(help))?;
        }
        Ok(())
    }
}

/// A spreadsheet's name for 1-based column `n`: `A`, …, `Z`, `AA`, ….
pub fn column_letters(mut n: usize) -> String {
    let mut letters = Vec::new();
    while n > 0 {
        n -= 1;
        letters.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
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
    pub at: Pos,
}

/// A manifest entry as written: each expands to (inputs or prompts) × templates jobs.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub at: Pos,
    pub model: Option<Spanned<String>>,
    pub inputs: Vec<Spanned<String>>,
    pub prompts: Vec<Spanned<String>>,
    /// Names as written; `all` is kept literally and expanded by the planner.
    pub templates: Vec<Spanned<String>>,
    /// Parameter name (with its line) and value.
    pub params: Vec<(Spanned<String>, Spanned<Value>)>,
    /// CSV cells are all text: the planner turns them into numbers where the model wants one.
    /// A parameter's name is then placed on its header cell, so that one column's problem is
    /// reported once for all the rows it affects.
    pub params_are_text: bool,
    /// Free text of the user's, carried to `results.csv`, never sent.
    pub label: Option<Spanned<String>>,
    /// The user's own columns (`#SKU`, `#Notes`) that this entry fills: name (as in
    /// [`Manifest::own_columns`]) and value. Carried to the results, never sent.
    pub own: Vec<(String, Spanned<String>)>,
    /// This entry's own naming pattern (`output:` in a job, or an `output` column), over the
    /// manifest's.
    pub output: Option<Spanned<String>>,
}

/// How the manifest was written, so that results come back the same way: a `;` CSV gives a
/// `;` `results.csv`, a workbook a `results.xlsx` beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The CSV separator: the manifest's, for a CSV; `,` otherwise.
    pub delimiter: u8,
    /// The manifest was a spreadsheet (`.xlsx`, `.ods`, …).
    pub workbook: bool,
}

impl Default for Dialect {
    fn default() -> Dialect {
        Dialect {
            delimiter: b',',
            workbook: false,
        }
    }
}

/// What keys the results (`custom_id`): `label` or a column of the user's (`#SKU`), named by
/// the manifest's `key:` (`at` is where) or by `--key` (`at` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChoice {
    pub name: String,
    pub at: Option<Pos>,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    pub text: Arc<str>,
    /// Problems found while reading; the planner adds its own and reports them all at once.
    pub problems: Vec<Diagnostic>,
    /// Local inputs are relative to this folder.
    pub dir: PathBuf,
    pub name: String,
    pub output: Option<Spanned<String>>,
    pub entries: Vec<Entry>,
    /// Things worth saying that do not stop the run (the encoding guessed, say).
    pub warnings: Vec<Diagnostic>,
    /// The sheet read, for a spreadsheet: positions are then its cells, and `text` is empty.
    pub sheet: Option<Arc<str>>,
    /// The user's own columns (`#…`), named as written, in the order of the header (of first
    /// use, in YAML): the results' last columns.
    pub own_columns: Vec<String>,
    pub dialect: Dialect,
    pub key: Option<KeyChoice>,
}

impl Manifest {
    /// An empty manifest read from `path`: its folder, and its name from the file's.
    pub fn new(path: &Path, text: Arc<str>) -> Manifest {
        let dir = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "manifest".into());
        Manifest {
            file: path.to_path_buf(),
            text,
            problems: Vec::new(),
            dir,
            name,
            output: None,
            entries: Vec::new(),
            warnings: Vec::new(),
            sheet: None,
            own_columns: Vec::new(),
            dialect: Dialect::default(),
            key: None,
        }
    }

    pub fn diagnostic(&self, at: Option<Pos>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            at,
            message: message.into(),
            help: None,
            source: self.sheet.is_none().then(|| self.text.clone()),
            sheet: self.sheet.clone(),
        }
    }

    /// Rows named by where they start, for a message about many: `lines 2, 3 and 4` (`rows …` in
    /// a spreadsheet); past five, `lines 2, 3, 4, 5, 6 and 195 more`.
    pub fn rows(&self, lines: &[usize]) -> String {
        const SHOWN: usize = 5;
        let word = if self.sheet.is_some() { "row" } else { "line" };
        let listed: Vec<String> = lines.iter().take(SHOWN).map(|l| l.to_string()).collect();
        match lines.len() {
            0 => String::new(),
            1 => format!("{word} {}", listed[0]),
            n if n <= SHOWN => format!("{word}s {} and {}", listed[..n - 1].join(", "), listed[n - 1]),
            n => format!("{word}s {} and {} more", listed.join(", "), n - SHOWN),
        }
    }

    pub fn warning(&self, at: Option<Pos>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..self.diagnostic(at, message)
        }
    }

    /// The position of byte range `offset..offset + len` of the text.
    pub fn pos(&self, offset: usize, len: usize) -> Pos {
        pos_in(&self.text, offset, len)
    }
}

/// Where each line of a text starts, so that positions are found in logarithmic time: a reader
/// that located each of 100,000 rows by counting lines from the top would take quadratic time.
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
    /// The last position placed (byte offset, 1-based column): readers place cells left to
    /// right, and counting each cell's column from its line's start was quadratic on a line of
    /// 100,000 cells.
    last: Cell<(usize, usize)>,
}

/// Characters in `bytes` of UTF-8 text, a character cut at either end counted where it starts.
fn chars_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> LineIndex<'t> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            starts,
            last: Cell::new((0, 1)),
        }
    }

    /// The position of byte range `offset..offset + len`.
    pub fn pos(&self, offset: usize, len: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = self.starts[line - 1];
        let bytes = self.text.as_bytes();
        let (last_offset, last_column) = self.last.get();
        let column = if (line_start..=offset).contains(&last_offset) {
            last_column + chars_in(&bytes[last_offset..offset])
        } else {
            1 + chars_in(&bytes[line_start..offset])
        };
        self.last.set((offset, column));
        Pos {
            line,
            column,
            offset,
            len: len.min(self.text.len() - offset),
        }
    }

    /// Where 1-based line `line` starts (the end of the text past its last line).
    pub fn line_start(&self, line: usize) -> usize {
        line.checked_sub(1)
            .and_then(|i| self.starts.get(i))
            .copied()
            .unwrap_or(self.text.len())
    }
}

/// Line and column (1-based, in characters) of a byte offset.
/// For one position (an error): a reader placing many builds a [`LineIndex`] once.
pub fn pos_in(text: &str, offset: usize, len: usize) -> Pos {
    LineIndex::new(text).pos(offset, len)
}

/// Reads and parses a manifest: a spreadsheet (`.xlsx`, `.ods`, … or any file that is one by its
/// content), else text in UTF-8, UTF-16 or Windows-1252, read as CSV (`.csv`, `.tsv`, `.txt`) or
/// YAML (anything else).
pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
    let bytes = read_bytes(path).map_err(|u| u.refused(path))?;
    load_bytes(path, bytes)
}

/// Parses a manifest's bytes as [`load`] does, as if read from `path`.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<Manifest, Diagnostics> {
    let refused = |unreadable: Unreadable| unreadable.refused(path);
    if sheet::is_spreadsheet(path, &bytes) {
        return sheet::parse_sheet(path, &bytes);
    }
    // A picture, a video or a PDF given by mistake (the input in place of the manifest) says
    // what it is, rather than "mixes two encodings".
    if let Some(kind) = infer::get(&bytes).filter(|k| {
        matches!(
            k.matcher_type(),
            infer::MatcherType::Image
                | infer::MatcherType::Video
                | infer::MatcherType::Audio
                | infer::MatcherType::Doc
                | infer::MatcherType::Archive
        )
    }) {
        return Err(refused(Unreadable::new(
            format!(
                "this file holds {} (a .{}), not a manifest",
                kind.mime_type(),
                kind.extension()
            ),
            Some(
                "give the YAML, CSV or spreadsheet that lists the jobs (`vidbatch run jobs.yaml`); images and videos \
                 are named inside it, as `input:`",
            ),
        )));
    }
    let decoded = encoding::decode(bytes).map_err(refused)?;
    let mut manifest = parse(path, decoded.text.into())?;
    if let Some(offset) = decoded.windows_1252_at {
        let text = manifest.text.clone();
        let len = text[offset..].chars().next().map_or(0, char::len_utf8);
        let mut d = manifest.warning(
            Some(manifest.pos(offset, len)),
            "this file is not UTF-8: it was read as Windows-1252 (what Excel saves as \"CSV\")",
        );
        d.help = Some("check that this text reads right; saving as \"CSV UTF-8\" removes the doubt".into());
        manifest.warnings.push(d);
    }
    Ok(manifest)
}

/// Parses a manifest's text as if read from `path` (the format follows its extension). Problems
/// in fields are kept in [`Manifest::problems`] for the planner to report with its own.
pub fn parse(path: &Path, text: Arc<str>) -> Result<Manifest, Diagnostics> {
    let is_csv = path
        .extension()
        .is_some_and(|e| ["csv", "tsv", "txt"].iter().any(|c| e.eq_ignore_ascii_case(c)));
    let mut manifest = Manifest::new(path, text.clone());
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

/// Why a manifest could not be read.
struct Unreadable {
    at: Option<Pos>,
    message: String,
    help: Option<String>,
    /// The text before the problem, when there is one to show.
    readable: Option<String>,
}

impl Unreadable {
    /// The diagnostic for `path`: the text up to the first bad byte is shown, as far as it goes.
    fn refused(self, path: &Path) -> Diagnostics {
        Diagnostics(vec![Diagnostic {
            severity: Severity::Error,
            file: path.to_path_buf(),
            at: self.at,
            message: self.message,
            help: self.help,
            source: self.readable.map(Into::into),
            sheet: None,
        }])
    }

    fn new(message: impl Into<String>, help: Option<&str>) -> Unreadable {
        Unreadable {
            at: None,
            message: message.into(),
            help: help.map(String::from),
            readable: None,
        }
    }
}

/// Reads a manifest's bytes, bounded in size.
fn read_bytes(path: &Path) -> Result<Vec<u8>, Unreadable> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| Unreadable::new(format!("cannot read the manifest: {e}"), None);
    if path.is_dir() {
        return Err(Unreadable::new(
            "this is a folder, not a manifest file",
            Some("give the path of a `.yaml`, `.csv`, `.xlsx` or `.ods` file"),
        ));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(Unreadable::new(
            format!("the manifest is larger than {} MiB", MAX_MANIFEST_BYTES >> 20),
            Some("split it into several manifests, each with its own `--out` or run one after another"),
        ));
    }
    Ok(bytes)
}

mod csv;
mod encoding;
mod ods;
mod sheet;
mod table;
mod yaml;

use self::csv::parse_csv;
pub use table::fold_header;
use yaml::parse_yaml;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_or_a_video_given_as_the_manifest_says_what_it_is() {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets");
        for (file, holds) in [("bag.png", "image/png (a .png)"), ("teaser.mp4", "video/mp4 (a .mp4)")] {
            let bytes = std::fs::read(assets.join(file)).unwrap();
            let err = load_bytes(Path::new("jobs.csv"), bytes).unwrap_err().to_string();
            assert!(
                err.contains(&format!("this file holds {holds}, not a manifest")),
                "{err}"
            );
        }
    }

    fn yaml(text: &str) -> Result<Manifest, Diagnostics> {
        let mut m = Manifest::new("m.yaml".as_ref(), text.into());
        parse_yaml(text, &mut m)?;
        if m.problems.is_empty() {
            Ok(m)
        } else {
            Err(Diagnostics(m.problems))
        }
    }

    #[test]
    fn yaml_entries_remember_their_lines() {
        let m = yaml(
            "name: spring\njobs:\n  - model: magic/image-to-video\n    inputs: [a.jpg, b.png]\n    template: Tokyo Billboard\n  - model: pixverse/v5/image-to-video\n    input: p.jpg\n    prompt: hi\n    params: {duration: 5, resolution: 720p, seed: '7'}\n",
        )
        .unwrap();
        assert_eq!(m.name, "spring");
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].at.line, 3);
        assert_eq!(m.entries[0].inputs[1].value, "b.png");
        assert_eq!(m.entries[0].inputs[1].at.line, 4);
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
        assert_eq!(m.entries[1].params[0].0.at.line, 9);
    }

    #[test]
    fn yaml_fields_of_the_users_own_and_the_key_are_read() {
        let m = yaml(
            "key: \"#sku\"\ndefaults:\n  \"#notes\": shared\njobs:\n  - model: m\n    prompt: a\n    \"#SKU\": 1042\n  - model: m\n    prompt: b\n    \"#sku\": S-2\n    \"#notes\": own\n",
        )
        .unwrap();
        assert_eq!(
            m.key.as_ref().map(|k| (k.name.as_str(), k.at.map(|a| a.line))),
            Some(("#sku", Some(1)))
        );
        assert_eq!(
            m.own_columns,
            ["#notes", "#SKU"],
            "in the order first written, as first written"
        );
        let own = |i: usize| -> Vec<(String, String)> {
            m.entries[i]
                .own
                .iter()
                .map(|(n, v)| (n.clone(), v.value.clone()))
                .collect()
        };
        assert_eq!(
            own(0),
            [("#notes".into(), "shared".into()), ("#SKU".into(), "1042".into())]
        );
        assert_eq!(own(1), [("#SKU".into(), "S-2".into()), ("#notes".into(), "own".into())]);
        let err = yaml("jobs:\n  - model: m\n    \"#sku\": [a, b]\n").unwrap_err();
        assert!(err.0[0].help.as_deref().unwrap().contains("\"#sku\": S-1042"), "{err}");
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
        assert_eq!(d.line(), Some(4));
        assert!(d.message.contains("`tempates`"), "{d}");
        assert!(d.help.as_deref().unwrap().contains("`templates`"), "{d}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = yaml("jobs:\n  - model: x\n    inputs: [a.jpg\n").unwrap_err();
        assert!(err.0[0].line().is_some());
        assert!(err.0[0].message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn singular_and_plural_together_are_refused() {
        let err = yaml("jobs:\n  - model: m\n    input: a\n    inputs: [b]\n").unwrap_err();
        assert_eq!(err.0[0].line(), Some(4));
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "\u{feff}jobs:\n  - model: magic/text-to-video\n    prompt: hi\n").unwrap();
        assert_eq!(load(&path).unwrap().entries.len(), 1);
    }

    #[test]
    fn text_in_other_encodings_is_read_and_what_is_no_text_says_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let latin1 = dir.path().join("m.csv");
        std::fs::write(&latin1, b"model,prompt\nmagic/text-to-video,Caf\xE9 -20%\n").unwrap();
        let m = load(&latin1).unwrap();
        assert_eq!(m.entries[0].prompts[0].value, "Café -20%");
        // The guess is shown where it matters, to be checked.
        assert_eq!(m.warnings[0].at.map(|p| (p.line, p.column)), Some((2, 24)));
        assert!(
            m.warnings[0].message.contains("read as Windows-1252"),
            "{}",
            m.warnings[0]
        );
        let binary = dir.path().join("b.csv");
        std::fs::write(&binary, b"model,prompt\nmagic/text-to-video,Caf\xE9\x01\n").unwrap();
        let err = load(&binary).unwrap_err();
        assert_eq!(err.0[0].at.map(|p| (p.line, p.column)), Some((2, 25)));
        assert!(err.0[0].message.contains("byte 0x01 is not text"), "{err}");
        assert!(err.0[0].help.as_deref().unwrap().contains("CSV UTF-8"), "{err}");
        // The line is shown, the bad byte as `�`, underlined.
        let drawn = err.0[0].render(false);
        assert!(drawn.contains("magic/text-to-video,Café\u{fffd}"), "{drawn}");
        let utf16 = dir.path().join("u.csv");
        std::fs::write(&utf16, b"\xFF\xFEm\x00").unwrap();
        assert!(load(&utf16).unwrap_err().0[0].message.contains("no `model` column"));
        let bom = dir.path().join("b.yaml");
        std::fs::write(
            &bom,
            b"\xEF\xBB\xBFjobs:\n  - model: magic/text-to-video\n    prompt: hi\n",
        )
        .unwrap();
        assert_eq!(load(&bom).unwrap().entries.len(), 1);
        assert!(load(dir.path()).unwrap_err().0[0].message.contains("folder"));
    }

    #[test]
    fn places_are_named_as_spreadsheets_name_them() {
        for (n, letters) in [
            (1, "A"),
            (3, "C"),
            (26, "Z"),
            (27, "AA"),
            (52, "AZ"),
            (53, "BA"),
            (703, "AAA"),
        ] {
            assert_eq!(column_letters(n), letters, "{n}");
        }
        let mut m = Manifest::new("m.csv".as_ref(), "".into());
        for (lines, said) in [
            (vec![2], "line 2"),
            (vec![2, 3, 4], "lines 2, 3 and 4"),
            ((2..=6).collect(), "lines 2, 3, 4, 5 and 6"),
            ((2..=201).collect(), "lines 2, 3, 4, 5, 6 and 195 more"),
        ] {
            assert_eq!(m.rows(&lines), said);
        }
        m.sheet = Some("jobs".into());
        assert_eq!(m.rows(&[7, 9]), "rows 7 and 9");
        let d = m.diagnostic(Some(Pos::line(7)), "x");
        assert_eq!(d.to_string(), "m.csv: sheet jobs, cell A7: x");
        assert!(d.source.is_none(), "a sheet has no text to draw");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_manifest_is_refused_at_the_size_limit() {
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert!(err.0[0].message.contains("larger than"), "{err}");
    }

    /// Columns are counted on from the last position placed: any order must give the count
    /// from the line's start, characters cut in the middle included.
    #[test]
    fn positions_placed_in_any_order_count_the_same_columns() {
        let text = "é,ab\n🎉x,y\n\nlast é";
        let from_start = |offset: usize| {
            let start = text.as_bytes()[..offset]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            String::from_utf8_lossy(&text.as_bytes()[start..offset]).chars().count() + 1
        };
        let lines = LineIndex::new(text);
        let offsets = (0..=text.len())
            .chain((0..=text.len()).rev())
            .chain([9, 2, 14, 1, 0, 7]);
        for offset in offsets {
            assert_eq!(lines.pos(offset, 0).column, from_start(offset), "{offset}");
        }
    }

    #[test]
    fn csv_rows_become_entries_with_lines() {
        let text = "model,input,prompt,template,duration\n# a comment\nmagic/image-to-video,a.jpg,,Tokyo Billboard|Phone App,\n\npixverse/v5/image-to-video,b.jpg,hello,,8\n";
        let mut m = Manifest::new("m.csv".as_ref(), text.into());
        parse_csv(text, &mut m).unwrap();
        assert!(m.problems.is_empty());
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].templates.len(), 2);
        assert_eq!(m.entries[1].at.line, 5);
        // Each cell knows its column: `8` is the fifth cell of line 5.
        let lines = LineIndex::new(text);
        for offset in [0, 5, 37, text.len() - 1, text.len()] {
            assert_eq!(lines.pos(offset, 1), pos_in(text, offset, 1), "{offset}");
        }
        assert_eq!(
            (m.entries[1].params[0].1.at.line, m.entries[1].params[0].1.at.column),
            (5, 41)
        );
        assert_eq!(
            &text[m.entries[0].templates[0].at.offset..][..26],
            "Tokyo Billboard|Phone App,"
        );
        assert_eq!(m.entries[1].params[0].1.value, Value::String("8".into()));
        assert!(m.entries[1].params_are_text);
    }
}
