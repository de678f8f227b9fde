//! Spreadsheet manifests (`.xlsx`, `.xlsm`, `.xls`, `.ods`), read directly: the sheet named
//! `jobs` or `manifest` if there is one, else the first; its first non-empty row is the header,
//! and the columns mean what they mean in a CSV manifest ([`super::table`]). Places are cells,
//! written as the spreadsheet shows them: `campaign.xlsx: sheet Sheet1, cell C7`.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use calamine::{Data, Reader as _, Sheets};

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

/// The most filled cells a sheet may hold: 100,000 jobs of 50 cells. Past it, reading the sheet
/// would take more memory than any manifest needs.
const MAX_CELLS: usize = 5_000_000;

/// A filled cell: 0-based (row, column) and its value.
type Filled = ((u32, u32), Data);

/// Why the cells of a sheet could not be read.
#[derive(Debug, thiserror::Error)]
enum CellsError {
    #[error(transparent)]
    Sheet(#[from] calamine::Error),
    #[error(transparent)]
    Xlsx(#[from] calamine::XlsxError),
    #[error(transparent)]
    Xlsb(#[from] calamine::XlsbError),
    #[error("the sheet holds more than {MAX_CELLS} filled cells")]
    TooMany,
}

/// The sheet's filled cells in row order, read one by one where the format allows it: a sheet
/// whose only far cell is `XFD1048576` spans 17 billion cells, and building that box (what
/// calamine's `Range` is) aborted on a 550 GB allocation. `.xls` and `.ods` are only read whole
/// by calamine; `.ods` is measured first ([`super::ods`]) and `.xls` is at most 65,536 × 256.
fn filled_cells<RS: std::io::Read + std::io::Seek>(
    workbook: &mut Sheets<RS>,
    sheet: &str,
) -> Result<Vec<Filled>, CellsError> {
    let mut cells = Vec::new();
    let mut keep = |pos: (u32, u32), value: Data| {
        if !cell_text(&value).trim().is_empty() {
            if cells.len() == MAX_CELLS {
                return Err(CellsError::TooMany);
            }
            cells.push((pos, value));
        }
        Ok(())
    };
    match workbook {
        Sheets::Xlsx(x) => {
            let mut reader = x.worksheet_cells_reader(sheet)?;
            while let Some(cell) = reader.next_cell()? {
                keep(cell.get_position(), cell.get_value().clone().into())?;
            }
        }
        Sheets::Xlsb(x) => {
            let mut reader = x.worksheet_cells_reader(sheet)?;
            while let Some(cell) = reader.next_cell()? {
                keep(cell.get_position(), cell.get_value().clone().into())?;
            }
        }
        other => {
            let range = other.worksheet_range(sheet)?;
            let (top, left) = range.start().unwrap_or((0, 0));
            for (row, col, value) in range.used_cells() {
                keep((top + row as u32, left + col as u32), value.clone())?;
            }
        }
    }
    cells.sort_by_key(|&(pos, _)| pos);
    Ok(cells)
}

pub(super) fn parse_sheet(path: &Path, bytes: &[u8]) -> Result<Manifest, Diagnostics> {
    let mut manifest = Manifest::new(path, Arc::from(""));
    let refuse = |manifest: &Manifest, message: String, help: &str| {
        let mut d = manifest.diagnostic(None, message);
        d.help = Some(help.into());
        Diagnostics(vec![d])
    };
    if let Err(far) = super::ods::measure(bytes) {
        manifest.sheet = Some(far.sheet.as_str().into());
        return Err(refuse(&manifest, far.to_string(), FAR_CELLS_HELP));
    }
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
    let cells = match filled_cells(&mut workbook, &sheet) {
        Ok(cells) => cells,
        Err(CellsError::TooMany) => {
            return Err(refuse(&manifest, CellsError::TooMany.to_string(), FAR_CELLS_HELP));
        }
        Err(e) => {
            return Err(refuse(
                &manifest,
                format!("cannot read sheet `{sheet}`: {e}"),
                "open it in Excel or LibreOffice and save it again (.xlsx or .ods)",
            ));
        }
    };
    // 1-based row and column of the sheet.
    let at = |row: u32, col: u32| Pos {
        line: row as usize + 1,
        column: col as usize + 1,
        offset: 0,
        len: 0,
    };
    // The rows, each a run of `cells` (filled cells only, in column order).
    let rows: Vec<&[Filled]> = cells.chunk_by(|a, b| a.0.0 == b.0.0).collect();
    let Some(&header) = rows.first() else {
        return Err(refuse(
            &manifest,
            format!("sheet `{sheet}` is empty"),
            "put the header in the first row, then one row per job; the sheet read is the one named `jobs` or \
             `manifest`, else the first",
        ));
    };
    let header_row = header[0].0.0;
    // Columns are counted from the sheet's first used one; past the header's last name they
    // hold nothing of ours unless a row fills them.
    let left = cells.iter().map(|&((_, c), _)| c).min().unwrap_or(0);
    let right = header.last().map_or(left, |&((_, c), _)| c + 1);
    let width = (right - left) as usize;
    let mut names: Vec<(String, Pos)> = (left..right).map(|c| (String::new(), at(header_row, c))).collect();
    for ((_, c), cell) in header {
        names[(c - left) as usize].0 = cell_text(cell);
    }
    let mut problems = Vec::new();
    let columns = table::read_header(&manifest, &names, at(header_row, left))?;
    manifest.own_columns = table::own_columns(&columns);
    manifest.dialect.workbook = true;
    let mut filled = vec![false; width];
    for &((_, c), _) in rows[1..].iter().flat_map(|r| r.iter()) {
        if let Some(f) = filled.get_mut((c - left) as usize) {
            *f = true;
        }
    }
    problems.extend(table::unnamed_but_filled(&manifest, &columns, &filled));
    for (r, row) in rows.iter().enumerate() {
        // A cell holding a formula's error (`#REF!`) would be sent as text: each is refused.
        for &((line, c), ref cell) in row.iter() {
            if let Data::Error(e) = cell {
                let mut d = manifest.diagnostic(Some(at(line, c)), format!("this cell holds the error `{e}`"));
                d.help = Some("fix the formula there, or type the value".into());
                problems.push(d);
            }
        }
        // A filled cell right of the header's names: a column without a name.
        if r > 0
            && let Some(&((line, c), _)) = row.iter().find(|&&((_, c), _)| c >= right)
        {
            let mut d = manifest.diagnostic(Some(at(line, c)), "this cell is in a column without a name");
            d.help = Some(format!("name its column in row {} or empty the cell", header_row + 1));
            problems.push(d);
        }
    }
    for row in &rows[1..] {
        let line = row[0].0.0;
        let texts = row.iter().filter(|&&((_, c), _)| c < right).map(|((_, c), cell)| {
            let text = match cell {
                Data::Error(_) => Cow::Borrowed(""),
                cell => Cow::Owned(cell_text(cell)),
            };
            ((c - left) as usize, text)
        });
        manifest
            .entries
            .extend(table::entry(&columns, at(line, left), texts, |i| {
                at(line, left + i as u32)
            }));
    }
    if manifest.entries.is_empty() && problems.is_empty() {
        let mut d = manifest.diagnostic(
            Some(at(header_row, left)),
            "the sheet has a header but no rows: nothing to do",
        );
        d.help = Some("add one row per job under the header".into());
        problems.push(d);
    }
    problems.sort_by_key(|d| d.at.map(|p| (p.line, p.column)));
    manifest.problems = problems;
    Ok(manifest)
}

/// What to do about a sheet with cells far from its jobs.
const FAR_CELLS_HELP: &str = "delete the cells past the jobs (Ctrl+End shows the last one the sheet holds), or copy \
                              the jobs' rows to a new sheet named `jobs`";
