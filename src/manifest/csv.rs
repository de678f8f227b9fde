//! CSV manifests: one row, one entry. Known columns are job fields; every other column is a
//! parameter.

use serde_json::Value;

use super::{Diagnostics, Entry, Manifest, Spanned};

/// The 1-based line of the CSV record that starts at byte `offset`. The csv crate reports where
/// it started reading, which may be a blank or comment line before the record itself.
fn line_of(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    let mut line = text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    while offset < text.len() {
        let rest = &text[offset..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let content = rest[..end].trim();
        if !(content.is_empty() || content.starts_with('#')) {
            break;
        }
        offset += end;
        line += 1;
    }
    line
}

pub(super) fn parse_csv(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let fail = |line: Option<usize>, message: String| Diagnostics(vec![manifest.diagnostic(line, message)]);
    let headers = reader
        .headers()
        .map_err(|e| fail(Some(1), format!("cannot read the CSV header: {e}")))?
        .clone();
    if !headers.iter().any(|h| h == "model") {
        let mut d = manifest.diagnostic(Some(1), "the CSV header has no `model` column");
        d.help = Some("the first row names the columns: model,input,prompt,template, then any model parameter".into());
        return Err(Diagnostics(vec![d]));
    }
    let mut errors = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            errors.push(manifest.diagnostic(Some(1), format!("column {} has no name in the header", i + 1)));
        }
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_of(text, p.byte() as usize));
                errors.push(manifest.diagnostic(line, format!("malformed CSV row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_of(text, p.byte() as usize));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut entry = Entry {
            line,
            params_are_text: true,
            ..Entry::default()
        };
        let at = |value: &str| Spanned {
            value: value.to_string(),
            line,
        };
        for (column, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            match column {
                "model" => entry.model = Some(at(cell)),
                "input" => entry.inputs = vec![at(cell)],
                "prompt" => entry.prompts = vec![at(cell)],
                "template" | "templates" => {
                    entry.templates = cell
                        .split('|')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(at)
                        .collect()
                }
                param => entry.params.push((
                    at(param),
                    Spanned {
                        value: Value::String(cell.to_string()),
                        line,
                    },
                )),
            }
        }
        manifest.entries.push(entry);
    }
    if manifest.entries.is_empty() && errors.is_empty() {
        errors.push(manifest.diagnostic(None, "the CSV has a header but no rows: nothing to do"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}
