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
    // The prompt sent (also in `params`), and the row's key: added last again.
    "prompt",
    "custom_id",
    // Then the manifest's own columns (`#SKU`, …), under their names.
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
    #[serde(with = "cell")]
    pub prompt: String,
    /// The row's key: its label, the manifest's `key` column, or its job id (see `plan::keys`).
    #[serde(with = "cell")]
    pub custom_id: String,
    /// The manifest's own columns (`#SKU`, …): name and value, in the manifest's order. Written
    /// after the others (the writer gives every row every column); read back from every column
    /// whose name starts with `#`.
    #[serde(
        skip_deserializing,
        serialize_with = "own_cells",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub columns: Vec<(String, String)>,
}

/// The own columns' values, neutralised as every text cell is: a header names them.
fn own_cells<S: serde::Serializer>(columns: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(columns.iter().map(|(_, v)| crate::results::neutralise(v)))
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

/// The separators results are written with (`--results-delimiter`, or the manifest's).
const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// The separator of results text: the one whose first line holds the columns every results file
/// has; `,` when none does (the missing column is then reported).
fn delimiter(text: &[u8]) -> u8 {
    let header_has_all = |sep: u8| {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .from_reader(text);
        let mut first = csv::StringRecord::new();
        matches!(reader.read_record(&mut first), Ok(true))
            && REQUIRED.iter().all(|c| first.iter().any(|h| h.trim() == *c))
    };
    DELIMITERS.into_iter().find(|&sep| header_has_all(sep)).unwrap_or(b',')
}

/// Reads `results.csv` text (with or without Excel's BOM, separated by `,`, `;` or a tab) by
/// column names. A row that cannot be read is an error naming its line: every reader of results
/// wants all of them.
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
        .delimiter(delimiter(bytes))
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(bytes);
    // A column named twice (a sheet edited by hand) is read from its first place, as people
    // read it: the later ones are renamed out of the way (to a name no column can have).
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
                format!("\n{i}")
            }
        })
        .collect();
    // The user's own columns, by their place.
    let own: Vec<(usize, &str)> = headers.iter().enumerate().filter(|(_, h)| h.starts_with('#')).collect();
    if let Some(column) = REQUIRED.iter().find(|c| !headers.iter().any(|h| h == **c)) {
        return Err(ReadError::MissingColumn {
            path: path.to_path_buf(),
            column,
        });
    }
    // Room for as many rows as there are lines (a cell may hold a line break: a bound, never
    // short by much): grown by doubling, 10,000 rows took room for 16,384.
    let mut rows = Vec::with_capacity(bytes.iter().filter(|&&b| b == b'\n').count());
    for record in reader.records() {
        let mut record = record.map_err(read_err)?;
        // A spreadsheet may have dropped the empty cells at the end of a row.
        while record.len() < headers.len() {
            record.push_field("");
        }
        let mut row: ResultRow = record.deserialize(Some(&headers)).map_err(read_err)?;
        row.columns = own
            .iter()
            .map(|&(i, name)| (name.to_string(), super::original(&record[i]).to_string()))
            .collect();
        rows.push(row);
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

    #[test]
    fn semicolon_results_are_read_with_the_users_columns_and_unknown_ones_ignored() {
        let text = "\u{feff}job_id;model;input;status;credits;later;#SKU;#Notes;#SKU\n\
                    a;m;Caf\u{e9}, -20%;completed;12;x;S-1;'=note;dup\n\
                    b;m;i;failed\n";
        let rows = parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        assert_eq!(rows[0].input, "Café, -20%");
        assert_eq!(rows[0].credits, Some(12.0));
        assert_eq!(
            rows[0].columns,
            [
                ("#SKU".to_string(), "S-1".to_string()),
                ("#Notes".to_string(), "=note".to_string())
            ],
            "a column named twice is read from its first place"
        );
        assert_eq!(rows[1].status, Status::Failed);
        assert_eq!(rows[1].columns[0], ("#SKU".to_string(), String::new()));
        let tabs = "job_id\tmodel\tinput\tstatus\na\tm\ti,j;k\tcompleted\n";
        assert_eq!(parse(Path::new("r.csv"), tabs.as_bytes()).unwrap()[0].input, "i,j;k");
    }
}
