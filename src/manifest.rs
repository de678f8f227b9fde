//! Reading a manifest (YAML, CSV, or a workbook: `.xlsx`, `.xls`, `.ods`, …) into raw entries that
//! remember the line (or sheet row) they came from.
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

mod csv;
mod encoding;
mod load;
mod ods;
mod sheet;
mod table;
mod yaml;

use self::csv::parse_csv;
use load::Unreadable;
pub use load::{MAX_MANIFEST_BYTES, load, load_bytes, parse};
pub use table::fold_header;
use yaml::parse_yaml;

#[cfg(test)]
mod tests {
    use super::*;

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
