//! One row of `results.csv`, the one schema its writer, `--adopt` and the report share: cells
//! are neutralised on the way out (a spreadsheet must not run them) and given back on the way in.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The contract's column order; tools read these by name and position.
pub const COLUMNS: &[&str] = &[
    "job_id",
    "model",
    "template",
    "input",
    "status",
    "generation_id",
    "file",
    "bytes",
    "sha256",
    "credits",
    "attempts",
    "submitted_at",
    "finished_at",
    "error",
    // Added last, so that every earlier column keeps its position for the tools that read by
    // position.
    "label",
    // What tells a job's variant apart besides model, template and input (the report's columns).
    "params",
];

/// A job's status as results report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    Completed,
    Failed,
    /// Submitted but the answer was lost: a generation may or may not exist remotely.
    Unknown,
    /// Generated and paid for; its video is not saved yet (the file host kept failing, or the
    /// run ended first): a rerun fetches it, for free.
    AwaitingDownload,
    /// Not finished when the run stopped.
    #[default]
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::AwaitingDownload => "awaiting_download",
            Status::Pending => "pending",
        }
    }

    /// The status a word names; a word this version does not know (a newer vidbatch wrote it)
    /// reads as `pending`: nothing is taken as done or paid on its strength.
    pub fn parse(word: &str) -> Status {
        match word.trim() {
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            "unknown" => Status::Unknown,
            "awaiting_download" => Status::AwaitingDownload,
            _ => Status::Pending,
        }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Status::parse(super::original(&word)))
    }
}

/// One row; every column of [`COLUMNS`], in its order (a test checks). Missing columns read as
/// empty: a spreadsheet that saved the file may have dropped the last ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultRow {
    #[serde(with = "cell")]
    pub job_id: String,
    #[serde(with = "cell")]
    pub model: String,
    #[serde(with = "cell")]
    pub template: String,
    #[serde(with = "cell")]
    pub input: String,
    pub status: Status,
    #[serde(with = "cell")]
    pub generation_id: String,
    #[serde(with = "cell")]
    pub file: String,
    #[serde(with = "number")]
    pub bytes: Option<u64>,
    #[serde(with = "cell")]
    pub sha256: String,
    #[serde(with = "credits")]
    pub credits: Option<f64>,
    #[serde(with = "number")]
    pub attempts: Option<u32>,
    #[serde(with = "cell")]
    pub submitted_at: String,
    #[serde(with = "cell")]
    pub finished_at: String,
    #[serde(with = "cell")]
    pub error: String,
    #[serde(with = "cell")]
    pub label: String,
    #[serde(with = "cell")]
    pub params: String,
}

/// Text cells: neutralised when written, given back when read.
mod cell {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<str>>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::results::neutralise(value.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(crate::results::original(&text).to_string())
    }
}

/// Whole numbers: blank when absent; a cell that is not one (edited by hand) reads as absent.
mod number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, N: std::fmt::Display>(value: &Option<N>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(n) => s.collect_str(n),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, N: std::str::FromStr>(d: D) -> Result<Option<N>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(text.trim().parse().ok())
    }
}

/// Credits: whole numbers without a decimal point (`1050000`, as people write them).
mod credits {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(c) if c.fract() == 0.0 && c.abs() < 1e15 => s.collect_str(&format_args!("{c:.0}")),
            Some(c) => s.collect_str(c),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        super::number::deserialize::<D, f64>(d).map(|c| c.filter(|c| c.is_finite()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("`{path}` has no `{column}` column: is it a vidbatch results file?")]
    MissingColumn { path: PathBuf, column: &'static str },
}

/// The columns a file must have to be read as results at all.
const REQUIRED: &[&str] = &["job_id", "model", "input", "status"];

/// Reads `results.csv` text (with or without Excel's BOM) by column names. A row that cannot be
/// read is an error naming its line: every reader of results wants all of them.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<ResultRow>, ReadError> {
    let bytes = bytes.strip_prefix(super::BOM.as_bytes()).unwrap_or(bytes);
    // A spreadsheet may have saved it in its own code page (`Café` in Windows-1252): every row
    // is still read (`--adopt` must not pay again for a file a spreadsheet touched), the odd
    // bytes of its text cells shown as `�`.
    let text = String::from_utf8_lossy(bytes);
    let bytes = text.as_bytes();
    let read_err = |source| ReadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(bytes);
    // A column named twice (a sheet edited by hand) is read from its first place, as people
    // read it: the later ones are renamed out of the way.
    let mut seen = std::collections::HashSet::new();
    let headers: csv::StringRecord = reader
        .headers()
        .map_err(read_err)?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if seen.insert(h.to_string()) {
                h.to_string()
            } else {
                format!("#{i}")
            }
        })
        .collect();
    if let Some(column) = REQUIRED.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        return Err(ReadError::MissingColumn {
            path: path.to_path_buf(),
            column,
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let mut record = record.map_err(read_err)?;
        // A spreadsheet may have dropped the empty cells at the end of a row.
        while record.len() < headers.len() {
            record.push_field("");
        }
        rows.push(record.deserialize(Some(&headers)).map_err(read_err)?);
    }
    Ok(rows)
}

/// Reads `<out>/results.csv`; `None` when there is none.
pub fn read(out: &Path) -> Result<Option<Vec<ResultRow>>, ReadError> {
    let path = out.join("results.csv");
    match std::fs::read(&path) {
        Ok(bytes) => parse(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReadError::Read { path, source: e.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_schema_is_the_columns_in_their_order() {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(ResultRow::default()).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), COLUMNS.join(","));
    }

    #[test]
    fn a_row_written_is_read_back_whole() {
        let row = ResultRow {
            job_id: "-23456789abc".into(),
            model: "magic/text-to-video".into(),
            input: "=1+1".into(),
            status: Status::AwaitingDownload,
            generation_id: "g:1/2".into(),
            bytes: Some(12),
            credits: Some(1_050_000.0),
            attempts: Some(2),
            error: "'quoted".into(),
            label: "Café 🎉".into(),
            params: r#"{"duration":5}"#.into(),
            ..ResultRow::default()
        };
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&row).unwrap();
        let bytes = writer.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(",'=1+1,awaiting_download,"), "{text}");
        assert!(text.contains(",1050000,2,"), "{text}");
        assert_eq!(parse(Path::new("r.csv"), &bytes).unwrap(), [row]);
    }

    #[test]
    fn a_file_a_spreadsheet_saved_in_its_code_page_is_read_whole() {
        let text = b"job_id,model,input,status,generation_id\na,m,Caf\xe9,completed,g1\nb,m,x,pending,g2\n";
        let rows = parse(Path::new("r.csv"), text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].generation_id, "g2");
    }

    #[test]
    fn short_rows_odd_cells_and_unknown_words_read_tolerantly() {
        let text = "\u{feff}job_id , model,input,status,credits,bytes\n\
                    a,m,i,completed,12.5,x\n\
                    b,m,i,finished?\n";
        let rows = parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        assert_eq!(rows[0].credits, Some(12.5));
        assert_eq!(rows[0].bytes, None);
        assert_eq!(rows[1].status, Status::Pending);
        assert!(matches!(
            parse(Path::new("r.csv"), b"job_id,model\n"),
            Err(ReadError::MissingColumn { column: "input", .. })
        ));
    }
}
