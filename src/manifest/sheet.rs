//! Spreadsheet manifests (`.xlsx`, `.xlsm`, `.xls`, `.ods`), read directly: the sheet named
//! `jobs` or `manifest` if there is one, else the first; its first non-empty row is the header,
//! and the columns mean what they mean in a CSV manifest ([`super::table`]). Places are cells,
//! written as the spreadsheet shows them: `campaign.xlsx: sheet Sheet1, cell C7`.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use calamine::{Data, Reader as _};

use super::table::{self, COLUMNS_HELP};
use super::{Diagnostics, Manifest, Pos};

/// What a spreadsheet's file name ends with.
const EXTENSIONS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// A spreadsheet by its name, or by its content (a zip or an OLE file: no text manifest starts
/// with those bytes), so a workbook saved as `jobs.csv` by mistake is still read for what it is.
pub(super) fn is_spreadsheet(path: &Path, bytes: &[u8]) -> bool {
    let named = path
        .extension()
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
    named || bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// A cell's text as the user sees it: whole numbers without `.0`.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

pub(super) fn parse_sheet(path: &Path, bytes: &[u8]) -> Result<Manifest, Diagnostics> {
    let mut manifest = Manifest::new(path, Arc::from(""));
    let refuse = |manifest: &Manifest, message: String, help: &str| {
        let mut d = manifest.diagnostic(None, message);
        d.help = Some(help.into());
        Diagnostics(vec![d])
    };
    let mut workbook = match calamine::open_workbook_auto_from_rs(Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => {
            return Err(refuse(
                &manifest,
                format!("cannot read this spreadsheet: {e}"),
                "open it in Excel or LibreOffice and save it again (.xlsx or .ods), or export the sheet as \
                 \"CSV UTF-8\"",
            ));
        }
    };
    let names = workbook.sheet_names();
    let chosen = names
        .iter()
        .find(|n| ["jobs", "manifest"].iter().any(|w| n.trim().eq_ignore_ascii_case(w)))
        .or(names.first())
        .cloned();
    let Some(sheet) = chosen else {
        return Err(refuse(&manifest, "the workbook has no sheet".into(), COLUMNS_HELP));
    };
    manifest.sheet = Some(sheet.as_str().into());
    let range = match workbook.worksheet_range(&sheet) {
        Ok(r) => r,
        Err(e) => {
            return Err(refuse(
                &manifest,
                format!("cannot read sheet `{sheet}`: {e}"),
                "open it in Excel or LibreOffice and save it again (.xlsx or .ods)",
            ));
        }
    };
    let (top, left) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
    // 1-based row and column of the sheet.
    let at = |row: usize, col: usize| Pos {
        line: top + row + 1,
        column: left + col + 1,
        offset: 0,
        len: 0,
    };
    let rows: Vec<&[Data]> = range.rows().collect();
    let Some(header_row) = rows
        .iter()
        .position(|r| r.iter().any(|c| !cell_text(c).trim().is_empty()))
    else {
        return Err(refuse(
            &manifest,
            format!("sheet `{sheet}` is empty"),
            "put the header in the first row, then one row per job; the sheet read is the one named `jobs` or \
             `manifest`, else the first",
        ));
    };
    // Columns past the header's last name hold nothing of ours unless a row fills them.
    let width = rows[header_row]
        .iter()
        .rposition(|c| !cell_text(c).trim().is_empty())
        .map_or(0, |i| i + 1);
    let names: Vec<(String, Pos)> = (0..width)
        .map(|c| (cell_text(&rows[header_row][c]), at(header_row, c)))
        .collect();
    let mut problems = Vec::new();
    let columns = table::read_header(&manifest, &names, at(header_row, 0))?;
    let filled: Vec<bool> = (0..width)
        .map(|c| {
            rows.iter()
                .skip(header_row + 1)
                .any(|row| row.get(c).is_some_and(|cell| !cell_text(cell).trim().is_empty()))
        })
        .collect();
    problems.extend(table::unnamed_but_filled(&manifest, &columns, &filled));
    // A cell holding a formula's error (`#REF!`) would be sent as text: each is refused.
    for (r, row) in rows.iter().enumerate().skip(header_row) {
        for (c, cell) in row.iter().enumerate() {
            if let Data::Error(e) = cell {
                let mut d = manifest.diagnostic(Some(at(r, c)), format!("this cell holds the error `{e}`"));
                d.help = Some("fix the formula there, or type the value".into());
                problems.push(d);
            }
        }
        // A filled cell right of the header's names: a column without a name.
        if r > header_row
            && let Some(c) = (width..row.len()).find(|&c| !cell_text(&row[c]).trim().is_empty())
        {
            let mut d = manifest.diagnostic(Some(at(r, c)), "this cell is in a column without a name");
            d.help = Some(format!(
                "name its column in row {} or empty the cell",
                at(header_row, 0).line
            ));
            problems.push(d);
        }
    }
    for (r, row) in rows.iter().enumerate().skip(header_row + 1) {
        let text = |c: usize| match row.get(c) {
            Some(Data::Error(_)) | None => Cow::Borrowed(""),
            Some(cell) => Cow::Owned(cell_text(cell)),
        };
        manifest
            .entries
            .extend(table::entry(&columns, at(r, 0), text, |c| at(r, c)));
    }
    if manifest.entries.is_empty() && problems.is_empty() {
        let mut d = manifest.diagnostic(
            Some(at(header_row, 0)),
            "the sheet has a header but no rows: nothing to do",
        );
        d.help = Some("add one row per job under the header".into());
        problems.push(d);
    }
    problems.sort_by_key(|d| d.at.map(|p| (p.line, p.column)));
    manifest.problems = problems;
    Ok(manifest)
}
