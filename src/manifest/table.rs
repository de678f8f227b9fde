//! What the columns of a table manifest — a CSV file or a spreadsheet — mean, and a row made an
//! entry. Both readers only find the cells and where they are; the meaning is the same.
//!
//! - `model`, `input`, `prompt`, `template` (or `templates`) are job fields, `label` is free text
//!   carried to `results.csv`, `output` the row's own naming pattern. Header names are matched
//!   as spreadsheets write them: case, spaces around, and spaces or underscores inside do not
//!   matter (`Model`, ` model `, `Negative Prompt`).
//! - A column whose name starts with `#` is the user's own (`#sku`, `#notes`): never sent, as a
//!   line that starts with `#` is a comment, and carried to the results under its name, so that
//!   they join back to the sheet. It is the one way to keep such a column.
//! - Every other column is a model parameter.

use std::borrow::Cow;

use serde_json::Value;

use super::{Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Column {
    Model,
    Input,
    Prompt,
    Template,
    Label,
    /// The user's own (`#…`), named as written (trimmed; a second column of the same name gets
    /// ` (2)`): never sent, carried to the results.
    Own(String),
    /// The row's own naming pattern (`output:` of a YAML job).
    Output,
    /// A model parameter, named as written (trimmed): an unknown model gets it as is.
    Param(String),
    /// No name in the header: reported there; its cells are skipped.
    Unnamed,
}

/// A header name folded as people mean it: lowercase, with runs of spaces or underscores as one
/// `_` and none around (`Negative Prompt` is `negative_prompt`).
pub fn fold_header(name: &str) -> String {
    // A header already in its folded form (`negative_prompt`) is itself.
    let folded = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.chars().all(folded) && !name.starts_with('_') && !name.ends_with('_') && !name.contains("__") {
        return name.to_string();
    }
    name.split(|c: char| c.is_whitespace() || c == '_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

pub(super) fn column(header: &str) -> Column {
    let name = header.trim();
    if name.is_empty() {
        return Column::Unnamed;
    }
    if name.starts_with('#') {
        return Column::Own(name.to_string());
    }
    match fold_header(name).as_str() {
        "model" => Column::Model,
        "input" => Column::Input,
        "prompt" => Column::Prompt,
        "template" | "templates" => Column::Template,
        "label" => Column::Label,
        "output" => Column::Output,
        _ => Column::Param(name.to_string()),
    }
}

/// The columns of a table manifest, for its helps.
pub(super) const COLUMNS_HELP: &str = "the first row names the columns: model, input, prompt, template, label, then any \
                                       model parameter; a column of your own starts with `#` (`#sku`)";

/// The header's columns, each with where its name is. Refused whole without a `model` column.
pub(super) fn read_header(
    manifest: &Manifest,
    names: &[(String, Pos)],
    header_at: Pos,
) -> Result<Vec<(Column, Pos)>, Diagnostics> {
    let mut columns: Vec<(Column, Pos)> = names.iter().map(|(name, at)| (column(name), *at)).collect();
    // Results name a column of the user's by its name: two of one name (`#notes` twice, as
    // sheets pasted together have) would be one there.
    let mut seen = std::collections::HashSet::new();
    for (c, _) in &mut columns {
        if let Column::Own(name) = c {
            let mut n = 1;
            let base = name.clone();
            while !seen.insert(name.to_lowercase()) {
                n += 1;
                *name = format!("{base} ({n})");
            }
        }
    }
    if !columns.iter().any(|(c, _)| *c == Column::Model) {
        // A misspelt `model` is shown alone; else the whole header.
        let near = names
            .iter()
            .position(|(h, _)| crate::catalog::closest(&fold_header(h), ["model"]).is_some());
        let mut d = manifest.diagnostic(
            Some(near.map_or(header_at, |i| names[i].1)),
            "the header has no `model` column",
        );
        d.help = Some(match near {
            Some(i) => format!("rename `{}` to `model`; {COLUMNS_HELP}", names[i].0.trim()),
            None => COLUMNS_HELP.into(),
        });
        return Err(Diagnostics(vec![d]));
    }
    Ok(columns)
}

/// The user's own columns, in the header's order: what [`Manifest::own_columns`] holds.
pub(super) fn own_columns(columns: &[(Column, Pos)]) -> Vec<String> {
    columns
        .iter()
        .filter_map(|(c, _)| match c {
            Column::Own(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The columns without a name that some row fills (`filled[i]`): each is reported on the
/// header. Empty ones are what spreadsheets export past the last column used, and harmless.
pub(super) fn unnamed_but_filled(manifest: &Manifest, columns: &[(Column, Pos)], filled: &[bool]) -> Vec<Diagnostic> {
    columns
        .iter()
        .enumerate()
        .filter(|&(i, (c, _))| *c == Column::Unnamed && filled.get(i).copied().unwrap_or(false))
        .map(|(i, (_, at))| {
            let mut d = manifest.diagnostic(Some(*at), format!("column {} has no name in the header", i + 1));
            d.help = Some("name every column, or delete the empty one".into());
            d
        })
        .collect()
}

/// One row made an entry; `None` for a row without any cell filled in a column of ours.
/// `cells` are the row's cells by column index, in column order (a spreadsheet's filled ones
/// only: a row is read in the time of its cells, not of its header's columns); `at(i)` is where
/// column `i`'s cell is, asked only of filled cells, as placing one costs more than reading it.
pub(super) fn entry<'r>(
    columns: &[(Column, Pos)],
    row_at: Pos,
    cells: impl IntoIterator<Item = (usize, Cow<'r, str>)>,
    at: impl Fn(usize) -> Pos,
) -> Option<Entry> {
    let mut entry = Entry {
        at: row_at,
        params_are_text: true,
        ..Entry::default()
    };
    let mut filled = false;
    for (i, text) in cells {
        let Some((column, header_at)) = columns.get(i) else {
            continue;
        };
        let text = text.trim();
        // Cells under no name are reported with the header.
        if text.is_empty() || *column == Column::Unnamed {
            continue;
        }
        let at = at(i);
        // The user's own columns are kept, but do not make a row a job.
        if let Column::Own(name) = column {
            entry.own.push((
                name.clone(),
                Spanned {
                    value: text.to_string(),
                    at,
                },
            ));
            continue;
        }
        filled = true;
        let spanned = |value: &str| Spanned {
            value: value.to_string(),
            at,
        };
        match column {
            Column::Model => entry.model = Some(spanned(text)),
            Column::Input => entry.inputs = vec![spanned(text)],
            Column::Prompt => entry.prompts = vec![spanned(text)],
            Column::Label => entry.label = Some(spanned(text)),
            Column::Output => entry.output = Some(spanned(text)),
            Column::Template => {
                entry.templates = text
                    .split('|')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(spanned)
                    .collect()
            }
            Column::Param(name) => entry.params.push((
                // Placed on the header: a column's problem is one problem, however many rows.
                Spanned {
                    value: name.clone(),
                    at: *header_at,
                },
                Spanned {
                    value: Value::String(text.to_string()),
                    at,
                },
            )),
            Column::Own(_) | Column::Unnamed => {}
        }
    }
    filled.then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_matched_as_spreadsheets_write_them() {
        for (header, meant) in [
            ("model", Column::Model),
            ("Model", Column::Model),
            ("  MODEL ", Column::Model),
            ("Input", Column::Input),
            ("prompt", Column::Prompt),
            ("Templates", Column::Template),
            ("Label", Column::Label),
            ("Output", Column::Output),
            ("#sku", Column::Own("#sku".into())),
            (" # notes", Column::Own("# notes".into())),
            ("", Column::Unnamed),
            ("   ", Column::Unnamed),
            ("Negative Prompt", Column::Param("Negative Prompt".into())),
            ("inputs", Column::Param("inputs".into())),
            ("sku", Column::Param("sku".into())),
        ] {
            assert_eq!(column(header), meant, "{header:?}");
        }
        assert_eq!(fold_header(" Lip  Sync_TTS content "), "lip_sync_tts_content");
    }
}
