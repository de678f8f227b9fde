//! `results.xlsx`, beside `results.csv` when the manifest was a workbook: the same rows, for the
//! people who gave a workbook and open one. Numbers are numbers, each video's file is a link to
//! it (relative: the folder can be moved or zipped whole), the header stays in view and filters.

use rust_xlsxwriter::{Format, Url, Workbook, Worksheet, XlsxError};

use super::ResultRow;

/// Excel refuses a sheet with more links than this: the rows past it show their file as text.
const MAX_LINKS: usize = 65_530;
/// The most characters an Excel cell holds (in UTF-16 units).
const MAX_CELL: usize = 32_767;
/// The widest a column is fitted to its content, in pixels: an error or `params` cell stays
/// readable without filling the screen.
const MAX_WIDTH: u32 = 300;

/// A cell of a row.
enum Cell<'r> {
    Text(&'r str),
    Number(f64),
    /// A file under the output folder, linked.
    File(&'r str),
}

/// A row's cells, in the order of [`super::COLUMNS`] then its own columns.
fn cells(row: &ResultRow) -> Vec<Cell<'_>> {
    let number = |n: Option<f64>| n.map_or(Cell::Text(""), Cell::Number);
    let mut cells = vec![
        Cell::Text(&row.job_id),
        Cell::Text(&row.model),
        Cell::Text(&row.template),
        Cell::Text(&row.input),
        Cell::Text(row.status.as_str()),
        Cell::Text(&row.generation_id),
        Cell::File(&row.file),
        number(row.bytes.map(|b| b as f64)),
        Cell::Text(&row.sha256),
        number(row.credits),
        number(row.attempts.map(f64::from)),
        Cell::Text(&row.submitted_at),
        Cell::Text(&row.finished_at),
        Cell::Text(&row.error),
        Cell::Text(&row.label),
        Cell::Text(&row.params),
        Cell::Text(&row.prompt),
        Cell::Text(&row.custom_id),
    ];
    cells.extend(row.columns.iter().map(|(_, v)| Cell::Text(v)));
    cells
}

/// The first `MAX_CELL` UTF-16 units of `text`: Excel holds no more in a cell.
fn fitted(text: &str) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > MAX_CELL {
            return &text[..i];
        }
    }
    text
}

pub(super) struct Sheet {
    sheet: Worksheet,
    /// The next row to write (0 is the header).
    next: u32,
    links: usize,
    columns: u16,
    /// The first problem met (none is expected: cells are fitted to Excel's limits), reported
    /// when the workbook is saved.
    error: Option<XlsxError>,
}

impl Sheet {
    pub(super) fn new(header: &[&str]) -> Sheet {
        let mut sheet = Worksheet::new();
        let bold = Format::new().set_bold();
        let mut error = sheet.set_name("results").err();
        for (col, name) in header.iter().enumerate() {
            if let Err(e) = sheet.write_string_with_format(0, col as u16, *name, &bold) {
                error.get_or_insert(e);
            }
        }
        if let Err(e) = sheet.set_freeze_panes(1, 0) {
            error.get_or_insert(e);
        }
        Sheet {
            sheet,
            next: 1,
            links: 0,
            columns: header.len() as u16,
            error,
        }
    }

    pub(super) fn push(&mut self, row: &ResultRow) {
        let r = self.next;
        self.next += 1;
        for (col, cell) in cells(row).into_iter().enumerate() {
            let col = col as u16;
            let written = match cell {
                Cell::Text("") | Cell::File("") => continue,
                Cell::Text(text) => self.sheet.write_string(r, col, fitted(text)).map(drop),
                Cell::Number(n) => self.sheet.write_number(r, col, n).map(drop),
                Cell::File(file) if self.links < MAX_LINKS => {
                    self.links += 1;
                    // `file:///` + a relative path: Excel resolves it from the workbook's folder.
                    let link = Url::new(format!("file:///{file}")).set_text(file);
                    match self.sheet.write_url(r, col, link) {
                        Ok(_) => Ok(()),
                        // A path Excel cannot link (too long): shown as text.
                        Err(_) => self.sheet.write_string(r, col, fitted(file)).map(drop),
                    }
                }
                Cell::File(file) => self.sheet.write_string(r, col, fitted(file)).map(drop),
            };
            if let Err(e) = written {
                self.error.get_or_insert(e);
            }
        }
    }

    /// The workbook's bytes.
    pub(super) fn save(mut self) -> Result<Vec<u8>, XlsxError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let last_row = self.next.saturating_sub(1);
        self.sheet.autofilter(0, 0, last_row, self.columns.saturating_sub(1))?;
        self.sheet.set_autofit_max_width(MAX_WIDTH).autofit();
        let mut workbook = Workbook::new();
        workbook.push_worksheet(self.sheet);
        workbook.save_to_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cells_follow_the_columns() {
        let row = ResultRow {
            columns: vec![("#SKU".into(), "S-1".into())],
            ..ResultRow::default()
        };
        assert_eq!(cells(&row).len(), super::super::COLUMNS.len() + 1);
    }

    #[test]
    fn a_cell_past_excels_limit_is_cut_on_a_character() {
        let long = "é".repeat(MAX_CELL + 5);
        assert_eq!(fitted(&long).chars().count(), MAX_CELL);
        let emoji = "🎉".repeat(MAX_CELL);
        assert_eq!(fitted(&emoji).chars().count(), MAX_CELL / 2);
        assert_eq!(fitted("short"), "short");
    }
}
