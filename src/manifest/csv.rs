//! CSV manifests: one row, one entry. Known columns are job fields; every other column is a
//! parameter.

use serde_json::Value;

use super::{Diagnostics, Entry, LineIndex, Manifest, Pos, Spanned};

/// The byte offset of the CSV record that starts at `offset`, past blank and comment lines (the
/// csv crate reports where it started reading, which may be one of those).
fn record_start(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while offset < text.len() {
        let rest = &text[offset..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let content = rest[..end].trim();
        if !(content.is_empty() || content.starts_with('#')) {
            break;
        }
        offset += end;
    }
    offset
}

/// Where each field of the record starting at `start` lies: (byte offset, byte length), quotes
/// included, and where a quote opens that the text never closes. The csv crate has read the
/// record already; this only finds its fields again, reading quotes as it does: a quote opens a
/// quoted cell only as its first character.
fn field_spans(text: &str, start: usize) -> (Vec<(usize, usize)>, Option<usize>) {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = start;
    let mut field_start = start;
    let mut quoted = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if quoted.is_some() && bytes.get(i + 1) == Some(&b'"') => i += 1,
            b'"' if quoted.is_some() => quoted = None,
            b'"' if i == field_start => quoted = Some(i),
            b',' if quoted.is_none() => {
                spans.push((field_start, i - field_start));
                field_start = i + 1;
            }
            b'\n' | b'\r' if quoted.is_none() => break,
            _ => {}
        }
        i += 1;
    }
    spans.push((field_start, i - field_start));
    (spans, quoted)
}

/// The columns of a CSV manifest, for its helps.
const COLUMNS_HELP: &str = "the first row names the columns: model,input,prompt,template, then any model parameter";

pub(super) fn parse_csv(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    let lines = LineIndex::new(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        // Row lengths are checked here, to say which cells are extra.
        .flexible(true)
        .from_reader(text.as_bytes());
    let header_start = record_start(text, 0);
    if header_start == text.len() {
        let mut d = manifest.diagnostic(None, "the manifest is empty");
        d.help = Some(COLUMNS_HELP.into());
        return Err(Diagnostics(vec![d]));
    }
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let mut d = manifest.diagnostic(Some(Pos::line(1)), format!("cannot read the CSV header: {e}"));
            d.help = Some(COLUMNS_HELP.into());
            return Err(Diagnostics(vec![d]));
        }
    };
    let (header_spans, _) = field_spans(text, header_start);
    let header_at = |column: usize| {
        let (mut offset, mut len) = header_spans.get(column).copied().unwrap_or((header_start, 0));
        // A column without a name is shown by the commas around it.
        if len == 0 {
            if text[..offset].ends_with(',') {
                offset -= 1;
                len += 1;
            }
            if text[offset + len..].starts_with(',') {
                len += 1;
            }
        }
        lines.pos(offset, len)
    };
    let header_line = || {
        let line = text[header_start..].split('\n').next().unwrap_or("");
        lines.pos(header_start, line.trim_end().len())
    };
    if !headers.iter().any(|h| h == "model") {
        // A misspelt `model` is shown alone; else the whole header.
        let near = headers
            .iter()
            .position(|h| crate::catalog::closest(h, ["model"]).is_some());
        let mut d = manifest.diagnostic(
            Some(near.map_or_else(header_line, header_at)),
            "the CSV header has no `model` column",
        );
        d.help = Some(match near {
            Some(i) => format!("rename `{}` to `model`; {COLUMNS_HELP}", &headers[i]),
            None => COLUMNS_HELP.into(),
        });
        return Err(Diagnostics(vec![d]));
    }
    let mut problems = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            let mut d = manifest.diagnostic(
                Some(header_at(i)),
                format!("column {} has no name in the header", i + 1),
            );
            d.help = Some("name every column, or delete the empty one".into());
            problems.push(d);
        }
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let at = e.position().map(|p| {
                    let start = record_start(text, p.byte() as usize);
                    lines.pos(start, text[start..].find('\n').unwrap_or(text.len() - start))
                });
                let mut d = manifest.diagnostic(at, format!("malformed CSV row: {e}"));
                d.help = Some("a cell that holds a comma, a quote or a line break is quoted: \"Sale, 30% off\"".into());
                problems.push(d);
                continue;
            }
        };
        let start = record.position().map_or(0, |p| record_start(text, p.byte() as usize));
        let (spans, unclosed) = field_spans(text, start);
        if let Some(quote) = unclosed {
            let mut d = manifest.diagnostic(
                Some(lines.pos(quote, 1)),
                "this quote is never closed: the rest of the file was read as one cell",
            );
            let cell = text[quote..].split(['\n', '\r']).next().unwrap_or("\"").trim_end();
            d.help = Some(format!(
                "end the cell with a quote (`{cell}\"`); a quote inside a quoted cell is written twice (`\"\"`)"
            ));
            problems.push(d);
            continue;
        }
        let cell_at = |i: usize| {
            let (offset, len) = spans.get(i).copied().unwrap_or((start, 0));
            lines.pos(offset, len)
        };
        // A row is shown by its first cell, or whole when that is empty.
        let row_at = match cell_at(0) {
            at if at.len > 0 => at,
            _ => {
                let line = text[start..].split('\n').next().unwrap_or("");
                lines.pos(start, line.trim_end().len())
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() > headers.len() {
            let extra = cell_at(headers.len());
            let mut d = manifest.diagnostic(
                Some(extra),
                format!(
                    "this row has {} cells, but the header names {} columns",
                    record.len(),
                    headers.len()
                ),
            );
            d.help = Some(
                "a cell that holds a comma is quoted (\"Sale, 30% off\"); or name the extra column in the header"
                    .into(),
            );
            problems.push(d);
            continue;
        }
        let mut entry = Entry {
            at: row_at,
            params_are_text: true,
            ..Entry::default()
        };
        for (i, (column, cell)) in headers.iter().zip(record.iter()).enumerate() {
            // A column without a name was reported with the header.
            if cell.is_empty() || column.is_empty() {
                continue;
            }
            let at = cell_at(i);
            let spanned = |value: &str| Spanned {
                value: value.to_string(),
                at,
            };
            match column {
                "model" => entry.model = Some(spanned(cell)),
                "input" => entry.inputs = vec![spanned(cell)],
                "prompt" => entry.prompts = vec![spanned(cell)],
                "template" | "templates" => {
                    entry.templates = cell
                        .split('|')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(spanned)
                        .collect()
                }
                param => entry.params.push((
                    Spanned {
                        value: param.to_string(),
                        at,
                    },
                    Spanned {
                        value: Value::String(cell.to_string()),
                        at,
                    },
                )),
            }
        }
        manifest.entries.push(entry);
    }
    if manifest.entries.is_empty() && problems.is_empty() {
        let mut d = manifest.diagnostic(Some(header_line()), "the CSV has a header but no rows: nothing to do");
        d.help = Some("add one row per job under the header".into());
        problems.push(d);
    }
    manifest.problems.extend(problems);
    Ok(())
}
