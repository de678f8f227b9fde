//! The columns of `results.csv` that belong to the user rather than to vidbatch: the sheet's own
//! `#` columns (`#SKU`, `#Notes`, carried from the manifest) and `custom_id`, the key that joins a
//! row back to the sheet. The report shows them with the row they describe.
//!
//! They are read by name from the file itself, whatever else its rows hold: the columns are the
//! user's, so no fixed schema can name them, and a results file without them gives no notes.

use serde::Serialize;

/// The column that names a row for the user's own tools.
const CUSTOM_ID: &str = "custom_id";

/// One of the user's own cells: `SKU` = `SKU-1002`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The column's name, without its leading `#`.
    pub name: String,
    pub value: String,
}

/// The notes of each row of `results.csv` (text as read from disk), in the order of its rows;
/// empty when the file has none of these columns. A row that cannot be read has none: the rows
/// themselves are read (and their errors reported) by [`crate::results::parse_rows`].
pub fn read(bytes: &[u8]) -> Vec<Vec<Note>> {
    let bytes = bytes.strip_prefix(crate::results::BOM.as_bytes()).unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let header = text.lines().next().unwrap_or("");
    // The separator is the one that makes `job_id` a column: a file saved by a spreadsheet of
    // another locale may use `;` or a tab.
    let Some(separator) = [b',', b';', b'\t']
        .into_iter()
        .find(|&sep| header.split(sep as char).any(|h| h.trim() == "job_id"))
    else {
        return Vec::new();
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let Ok(headers) = reader.headers() else {
        return Vec::new();
    };
    let columns: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let name = if h == CUSTOM_ID { h } else { h.strip_prefix('#')?.trim() };
            (!name.is_empty()).then(|| (i, name.to_string()))
        })
        .collect();
    if columns.is_empty() {
        return Vec::new();
    }
    reader
        .records()
        .map(|record| {
            let Ok(record) = record else { return Vec::new() };
            columns
                .iter()
                .filter_map(|(i, name)| {
                    let value = crate::results::original(record.get(*i)?.trim());
                    (!value.is_empty()).then(|| Note {
                        name: name.clone(),
                        value: value.to_string(),
                    })
                })
                .collect()
        })
        .collect()
}

/// The notes worth showing beside a row labelled `label`: a `custom_id` that only repeats the
/// label or one of the `#` columns (it is often made from one of them) says nothing new.
pub fn worth_showing(notes: &[Note], label: &str) -> Vec<Note> {
    notes
        .iter()
        .filter(|n| {
            n.name != CUSTOM_ID
                || !(n.value == label || notes.iter().any(|o| o.name != CUSTOM_ID && o.value == n.value))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &str, value: &str) -> Note {
        Note {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn the_users_columns_are_read_by_name_in_any_dialect() {
        let text = "\u{feff}job_id;status;#SKU;label;custom_id;# Notes\n\
                    a;completed;SKU-1;hero;k-1;'=not a formula\n\
                    b;failed;;;;\n";
        assert_eq!(
            read(text.as_bytes()),
            [
                vec![
                    note("SKU", "SKU-1"),
                    note("custom_id", "k-1"),
                    note("Notes", "=not a formula")
                ],
                vec![]
            ]
        );
    }

    #[test]
    fn a_file_without_them_has_no_notes() {
        assert!(read(b"job_id,status,label\na,completed,x\n").is_empty());
        assert!(read(b"not,a,results,file\n").is_empty());
        assert!(read(b"").is_empty());
    }

    #[test]
    fn a_custom_id_that_repeats_the_label_or_a_column_is_left_out() {
        let notes = [note("SKU", "SKU-1"), note("custom_id", "SKU-1")];
        assert_eq!(worth_showing(&notes, ""), [note("SKU", "SKU-1")]);
        let notes = [note("custom_id", "hero")];
        assert!(worth_showing(&notes, "hero").is_empty());
        let notes = [note("SKU", "SKU-1"), note("custom_id", "spring-7")];
        assert_eq!(worth_showing(&notes, "hero"), notes);
    }
}
