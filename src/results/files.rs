//! The results files, each written to a hidden temporary file, synced, then renamed over the
//! last whole one: a full disk or a crash never leaves half a file where a script or a
//! spreadsheet reads.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::{COLUMNS, ResultRow, jsonl, xlsx};
use crate::plan::Plan;

/// The results' file names, in the output folder.
pub const CSV: &str = "results.csv";
pub const JSONL: &str = "results.jsonl";
pub const XLSX: &str = "results.xlsx";

/// Written first in `results.csv`: Excel reads a CSV file as UTF-8 only with it (without, it
/// shows `Café` as `CafÃ©`); CSV readers of programs skip it, as [`super::read_rows`] does.
/// There is no `sep=;` line for the `;` dialect: with one, Excel ignores the mark and shows
/// accents wrong, and a `;` file is what a French or German Excel opens as columns anyway.
pub const BOM: &str = "\u{feff}";

#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A file being written under a temporary name: removed when dropped before [`Pending::done`].
struct Pending {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl Pending {
    fn new(out: &Path, name: &str) -> Pending {
        Pending {
            tmp: out.join(format!(".{name}.tmp")),
            path: out.join(name),
            done: false,
        }
    }

    fn err(&self) -> impl Fn(std::io::Error) -> WriteError + '_ {
        |source| WriteError {
            path: self.path.clone(),
            source,
        }
    }

    /// Syncs `file` (the temporary file, written whole) and puts it in place.
    fn finish(mut self, file: File) -> Result<(), WriteError> {
        file.sync_all().map_err(self.err())?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(self.err())?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            // The last whole file stays; the half-written one goes.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The files of one write, rows pushed one at a time.
pub(super) struct Files {
    csv: (Pending, csv::Writer<File>),
    jsonl: (Pending, BufWriter<File>),
    xlsx: Option<(Pending, xlsx::Sheet)>,
}

impl Files {
    /// Starts the files: the CSV with its mark and header (in the plan's dialect), the workbook
    /// only when `workbook`.
    pub(super) fn create(out: &Path, plan: &Plan, workbook: bool) -> Result<Files, WriteError> {
        let header: Vec<&str> = COLUMNS
            .iter()
            .copied()
            .chain(plan.columns.iter().map(String::as_str))
            .collect();

        let pending = Pending::new(out, CSV);
        let mut file = File::create(&pending.tmp).map_err(pending.err())?;
        file.write_all(BOM.as_bytes()).map_err(pending.err())?;
        // The header is written by hand: serde writes one only with a first row, and without
        // the user's columns.
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(plan.dialect.delimiter)
            .from_writer(file);
        writer.write_record(&header).map_err(|e| pending.err()(e.into()))?;
        let csv = (pending, writer);

        let pending = Pending::new(out, JSONL);
        let file = File::create(&pending.tmp).map_err(pending.err())?;
        let jsonl = (pending, BufWriter::new(file));

        let xlsx = workbook.then(|| (Pending::new(out, XLSX), xlsx::Sheet::new(&header)));
        Ok(Files { csv, jsonl, xlsx })
    }

    pub(super) fn push(&mut self, row: &ResultRow) -> Result<(), WriteError> {
        let (pending, writer) = &mut self.csv;
        writer.serialize(row).map_err(|e| pending.err()(e.into()))?;
        let (pending, writer) = &mut self.jsonl;
        serde_json::to_writer(&mut *writer, &jsonl::Line::of(row)).map_err(|e| pending.err()(e.into()))?;
        writer.write_all(b"\n").map_err(pending.err())?;
        if let Some((_, sheet)) = &mut self.xlsx {
            sheet.push(row);
        }
        Ok(())
    }

    /// Puts every file in place, `results.csv` first: it is what a rerun and the report read.
    pub(super) fn finish(self) -> Result<(), WriteError> {
        let Files { csv, jsonl, xlsx } = self;
        let (pending, writer) = csv;
        let mut file = writer.into_inner().map_err(|e| pending.err()(e.into_error()))?;
        file.flush().map_err(pending.err())?;
        pending.finish(file)?;

        let (pending, writer) = jsonl;
        let file = writer.into_inner().map_err(|e| pending.err()(e.into_error()))?;
        pending.finish(file)?;

        if let Some((pending, sheet)) = xlsx {
            let bytes = sheet.save().map_err(|e| pending.err()(std::io::Error::other(e)))?;
            let mut file = File::create(&pending.tmp).map_err(pending.err())?;
            file.write_all(&bytes).map_err(pending.err())?;
            pending.finish(file)?;
        }
        Ok(())
    }
}
