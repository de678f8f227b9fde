//! The extent of an `.ods` workbook's tables, measured from its XML before calamine reads it:
//! calamine builds every table of an `.ods` whole, as a box from its first used cell to its last,
//! when the workbook is opened. One cell at `ZZ100000` is then 70 million cells, gigabytes of
//! memory; one at `XFD1048576`, an allocation that aborts the process.

use std::io::{BufReader, Cursor};

use quick_xml::events::{BytesStart, Event};

/// The most cells a table's box may hold: 100,000 jobs of 50 cells.
const MAX_BOX_CELLS: u64 = 5_000_000;

/// A table whose cells are few but far apart.
#[derive(Debug, thiserror::Error)]
#[error(
    "its cells reach as far as {last}: read whole, as `.ods` sheets are, its {rows} rows of {columns} columns \
     would take more memory than any manifest needs"
)]
pub(super) struct FarCells {
    pub sheet: String,
    last: String,
    rows: u64,
    columns: u64,
}

/// Where a table's filled cells lie: 0-based first and last row and column.
#[derive(Default)]
struct Extent {
    rows: Option<(u64, u64)>,
    columns: Option<(u64, u64)>,
}

impl Extent {
    fn add(&mut self, rows: (u64, u64), columns: (u64, u64)) {
        let widen = |span: Option<(u64, u64)>, (lo, hi): (u64, u64)| {
            Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
        };
        self.rows = widen(self.rows, rows);
        self.columns = widen(self.columns, columns);
    }
}

/// A repeat count (`table:number-rows-repeated`), 1 when absent or unreadable.
fn repeated(element: &BytesStart, name: &str) -> u64 {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.value.trim().parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Checks every table of an `.ods` workbook; anything else (or a workbook calamine will refuse)
/// passes, to be read or refused by calamine.
pub(super) fn measure(bytes: &[u8]) -> Result<(), FarCells> {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let Ok(content) = zip.by_name("content.xml") else {
        return Ok(());
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(content));
    let mut buf = Vec::new();
    let (mut sheet, mut extent) = (String::new(), Extent::default());
    // The next row's index, the current row's repeats, the next cell's column.
    let (mut row, mut row_repeats, mut column) = (0u64, 1u64, 0u64);
    loop {
        let event = match xml.read_event_into(&mut buf) {
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(event) => event,
        };
        let (element, has_content) = match &event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    "table-row" => row = row.saturating_add(row_repeats),
                    "table" => check(&sheet, &extent)?,
                    _ => {}
                }
                buf.clear();
                continue;
            }
            _ => {
                buf.clear();
                continue;
            }
        };
        match element.local_name().as_ref() {
            "table" => {
                sheet = element
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == "name")
                    .map(|a| a.value.into_owned())
                    .unwrap_or_default();
                (extent, row) = (Extent::default(), 0);
            }
            "table-row" => {
                (row_repeats, column) = (repeated(element, "number-rows-repeated"), 0);
                if !has_content {
                    row = row.saturating_add(row_repeats);
                }
            }
            "table-cell" | "covered-table-cell" => {
                let repeats = repeated(element, "number-columns-repeated");
                let valued = element
                    .attributes()
                    .flatten()
                    .any(|a| a.key.local_name().as_ref() == "value-type");
                if has_content || valued {
                    let last = |from: u64, n: u64| from.saturating_add(n - 1);
                    extent.add((row, last(row, row_repeats)), (column, last(column, repeats)));
                }
                column = column.saturating_add(repeats);
            }
            _ => {}
        }
        buf.clear();
    }
}

/// Refuses a table whose box is too large to build.
fn check(sheet: &str, extent: &Extent) -> Result<(), FarCells> {
    let (Some((top, bottom)), Some((left, right))) = (extent.rows, extent.columns) else {
        return Ok(());
    };
    let (rows, columns) = (bottom - top + 1, right - left + 1);
    if rows.saturating_mul(columns) <= MAX_BOX_CELLS {
        return Ok(());
    }
    Err(FarCells {
        sheet: sheet.to_string(),
        last: format!("{}{}", super::column_letters(right as usize + 1), bottom + 1),
        rows,
        columns,
    })
}
