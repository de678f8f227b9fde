//! CSV manifests: one row, one entry (see [`super::table`] for what the columns mean).
//!
//! Read as spreadsheets export them: the separator (`,`, `;` or a tab) is found from the header
//! line, an Excel `sep=;` first line is obeyed, and lines starting with `#` before the header
//! are comments unless they are the header itself (`#sku;model;…`).

use std::borrow::Cow;

use super::table::{self, COLUMNS_HELP};
use super::{Diagnostic, Diagnostics, LineIndex, Manifest, Pos};

/// The separators a spreadsheet exports with: `,` (English locales), `;` (where `,` is the
/// decimal point), tab ("Text (Tab delimited)").
const SEPARATORS: [u8; 3] = [b',', b';', b'\t'];

/// The text of each line from `offset`: (start, line without its line break).
fn lines_from(text: &str, offset: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut start = offset.min(text.len());
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let rest = &text[start..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = (start, rest[..end].trim_end_matches(['\n', '\r']));
        start += end;
        Some(line)
    })
}

/// The byte offset of the CSV record that starts at `offset`, past blank and comment lines (the
/// csv crate reports where it started reading, which may be one of those).
fn record_start(text: &str, offset: usize) -> usize {
    lines_from(text, offset)
        .find(|(_, line)| !(line.trim().is_empty() || line.trim_start().starts_with('#')))
        .map_or(text.len(), |(start, _)| start)
}

/// A header's cells split by `sep`, unquoted and trimmed.
fn header_names(text: &str, start: usize, sep: u8) -> Vec<(String, (usize, usize))> {
    let (spans, _, _) = field_spans(text, start, sep);
    spans
        .into_iter()
        .map(|(offset, len)| {
            let raw = text[offset..offset + len].trim();
            let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(inner) => inner.replace("\"\"", "\""),
                None => raw.to_string(),
            };
            (name.trim().to_string(), (offset, len))
        })
        .collect()
}

/// The separator of a header line: the one that splits it into the most names we know, then into
/// the most columns; `,` when nothing tells. Counting alone could be fooled by a `;` inside one
/// header name; the known names are what a manifest's header must hold.
fn separator(text: &str, start: usize) -> u8 {
    let score = |sep: u8| {
        let names = header_names(text, start, sep);
        let known = names
            .iter()
            .filter(|(n, _)| !matches!(table::column(n), table::Column::Param(_) | table::Column::Unnamed))
            .count();
        (known, names.len())
    };
    // On a tie the earlier separator wins (`max_by_key` keeps the last of equals: reversed).
    SEPARATORS
        .iter()
        .rev()
        .copied()
        .max_by_key(|&sep| score(sep))
        .unwrap_or(b',')
}

/// Whether a line that starts with `#` is the header rather than a comment: it has a `model`
/// column under some separator.
fn is_header(text: &str, start: usize) -> bool {
    SEPARATORS.iter().any(|&sep| {
        let names = header_names(text, start, sep);
        names.len() > 1 && names.iter().any(|(n, _)| table::column(n) == table::Column::Model)
    })
}

/// Where each field of the record starting at `start` lies: (byte offset, byte length), quotes
/// included; where a quote opens that the text never closes; and where the record ends. The csv
/// crate has read the record already; this only finds its fields again, reading quotes as it
/// does: a quote opens a quoted cell only as its first character.
fn field_spans(text: &str, start: usize, sep: u8) -> (Vec<(usize, usize)>, Option<usize>, usize) {
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
            b if b == sep && quoted.is_none() => {
                spans.push((field_start, i - field_start));
                field_start = i + 1;
            }
            b'\n' | b'\r' if quoted.is_none() => break,
            _ => {}
        }
        i += 1;
    }
    spans.push((field_start, i - field_start));
    (spans, quoted, i)
}

/// Rows with the same problem, reported once: the first drawn, the others listed by line.
#[derive(Default)]
struct Grouped {
    first: Option<Diagnostic>,
    lines: Vec<usize>,
}

impl Grouped {
    fn add(&mut self, line: usize, d: impl FnOnce() -> Diagnostic) {
        if self.first.is_none() {
            self.first = Some(d());
        }
        self.lines.push(line);
    }

    /// The diagnostic, saying which other rows have the same problem.
    fn finish(self, manifest: &Manifest, same: (&str, &str)) -> Option<Diagnostic> {
        let mut d = self.first?;
        let more = match self.lines.len() {
            0 | 1 => return Some(d),
            2 => format!("1 more row {}", same.0),
            n => format!("{} more rows {}", n - 1, same.1),
        };
        d.message = format!("{}; {more} ({})", d.message, manifest.rows(&self.lines[1..]));
        Some(d)
    }
}

pub(super) fn parse_csv(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    let lines = LineIndex::new(text);
    // Excel writes `sep=;` as a first line when asked to say its separator. A quote, `#` or
    // line break would be read as itself: such a line is not a separator's.
    let first = lines_from(text, 0).next().map_or("", |(_, line)| line);
    let declared = match first.trim_start().strip_prefix("sep=") {
        None => None,
        Some(rest) => match rest.trim_end_matches(' ').as_bytes() {
            &[sep] if sep.is_ascii() && !matches!(sep, b'"' | b'#' | b'\r' | b'\n') => Some(sep),
            _ => {
                let mut d = manifest.diagnostic(
                    Some(lines.pos(0, first.len())),
                    "this `sep=` line does not name one separator",
                );
                d.help = Some("write the separator after `sep=` (`sep=;`), or delete the line".into());
                return Err(Diagnostics(vec![d]));
            }
        },
    };
    let from = match declared {
        Some(_) => lines_from(text, 0).nth(1).map_or(text.len(), |(start, _)| start),
        None => 0,
    };
    let header_start = lines_from(text, from)
        .find(|&(start, line)| {
            let content = line.trim();
            !content.is_empty() && (!content.starts_with('#') || is_header(text, start))
        })
        .map_or(text.len(), |(start, _)| start);
    if header_start == text.len() {
        let mut d = manifest.diagnostic(None, "the manifest is empty");
        d.help = Some(COLUMNS_HELP.into());
        return Err(Diagnostics(vec![d]));
    }
    let sep = declared.unwrap_or_else(|| separator(text, header_start));
    let (_, _, header_end) = field_spans(text, header_start, sep);
    let names: Vec<(String, Pos)> = header_names(text, header_start, sep)
        .into_iter()
        .map(|(name, (mut offset, mut len))| {
            // A column without a name is shown by the separators around it.
            if len == 0 {
                if offset > 0 && text.as_bytes()[offset - 1] == sep {
                    offset -= 1;
                    len += 1;
                }
                if text.as_bytes().get(offset + len) == Some(&sep) {
                    len += 1;
                }
            }
            (name, lines.pos(offset, len))
        })
        .collect();
    let header_line = lines.pos(header_start, text[header_start..header_end].trim_end().len());
    let mut problems = Vec::new();
    let columns = table::read_header(manifest, &names, header_line)?;
    manifest.own_columns = table::own_columns(&columns);
    // Results are written with the manifest's separator: a `;` export is opened again by the
    // same spreadsheet, in the same locale.
    manifest.dialect.delimiter = sep;
    let mut filled = vec![false; columns.len()];

    let body_start = text[header_end..].find('\n').map_or(text.len(), |i| header_end + i + 1);
    // A body line that starts with `#` is a comment: said once, with every such line, in case it
    // was a row whose first cell starts with `#` (a SKU, say).
    let comments: Vec<(usize, usize)> = lines_from(text, body_start)
        .filter(|(_, line)| line.trim_start().starts_with('#'))
        .map(|(start, line)| (start, line.len()))
        .collect();
    if let Some(&(start, len)) = comments.first() {
        let numbers: Vec<usize> = comments.iter().map(|&(at, _)| lines.pos(at, 0).line).collect();
        let mut d = manifest.warning(
            Some(lines.pos(start, len)),
            match numbers.len() {
                1 => "this line starts with `#`: it is read as a comment, not a job".to_string(),
                n => format!(
                    "{n} lines start with `#` and are read as comments, not jobs ({})",
                    manifest.rows(&numbers)
                ),
            },
        );
        d.help = Some("if a row's first cell really starts with `#`, quote it: \"#1042\"".into());
        manifest.warnings.push(d);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(sep)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        // Row lengths are checked here, to say which cells are extra.
        .flexible(true)
        .from_reader(&text.as_bytes()[body_start..]);
    let mut malformed = Grouped::default();
    let mut too_long = Grouped::default();
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let at = e.position().map(|p| {
                    let start = record_start(text, body_start + p.byte() as usize);
                    lines.pos(start, text[start..].find('\n').unwrap_or(text.len() - start))
                });
                let line = at.map_or(0, |a| a.line);
                malformed.add(line, || {
                    let mut d = manifest.diagnostic(at, format!("malformed CSV row: {e}"));
                    d.help = Some(
                        "a cell that holds a separator, a quote or a line break is quoted: \"Sale, 30% off\"".into(),
                    );
                    d
                });
                continue;
            }
        };
        let start = record
            .position()
            .map_or(body_start, |p| record_start(text, body_start + p.byte() as usize));
        let (spans, unclosed, _) = field_spans(text, start, sep);
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
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        for (i, cell) in record.iter().enumerate().take(columns.len()) {
            filled[i] |= !cell.is_empty();
        }
        // Cells past the header's columns count only when filled: spreadsheets export empty ones.
        let last_filled = (0..record.len()).rev().find(|&i| !record[i].is_empty()).unwrap_or(0);
        if last_filled >= columns.len() {
            let first_extra = (columns.len()..=last_filled)
                .find(|&i| !record[i].is_empty())
                .unwrap_or(last_filled);
            let extra = cell_at(first_extra);
            too_long.add(extra.line, || {
                let mut d = manifest.diagnostic(
                    Some(extra),
                    format!(
                        "this row has {} cells, but the header names {} columns",
                        last_filled + 1,
                        columns.len()
                    ),
                );
                let shown = if sep == b'\t' {
                    "a tab".into()
                } else {
                    format!("`{}`", sep as char)
                };
                d.help = Some(format!(
                    "a cell that holds {shown} is quoted (\"Sale{} 30% off\"); or name the extra column in the header",
                    sep as char
                ));
                d
            });
            continue;
        }
        // A row is shown by its first cell, or whole when that is empty.
        let row_at = match cell_at(0) {
            at if at.len > 0 => at,
            _ => {
                let line = text[start..].split('\n').next().unwrap_or("");
                lines.pos(start, line.trim_end().len())
            }
        };
        let cells = record.iter().map(Cow::Borrowed).enumerate();
        entries.extend(table::entry(&columns, row_at, cells, cell_at));
    }
    problems.extend(table::unnamed_but_filled(manifest, &columns, &filled));
    problems.extend(malformed.finish(manifest, ("is malformed", "are malformed")));
    problems.extend(too_long.finish(manifest, ("has too many cells", "have too many cells")));
    if entries.is_empty() && problems.is_empty() {
        let mut d = manifest.diagnostic(Some(header_line), "the CSV has a header but no rows: nothing to do");
        d.help = Some("add one row per job under the header".into());
        problems.push(d);
    }
    problems.sort_by_key(|d| d.at.map(|p| (p.line, p.column)));
    manifest.entries = entries;
    manifest.problems.extend(problems);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Manifest {
        let mut m = Manifest::new("m.csv".as_ref(), text.into());
        parse_csv(text, &mut m).unwrap_or_else(|e| panic!("{e}"));
        m
    }

    /// (model, input, template count, prompt, params) of each entry.
    type Row = (String, String, usize, String, Vec<(String, String)>);

    fn rows(m: &Manifest) -> Vec<Row> {
        m.entries
            .iter()
            .map(|e| {
                (
                    e.model.as_ref().map(|s| s.value.clone()).unwrap_or_default(),
                    e.inputs.first().map(|s| s.value.clone()).unwrap_or_default(),
                    e.templates.len(),
                    e.prompts.first().map(|s| s.value.clone()).unwrap_or_default(),
                    e.params
                        .iter()
                        .map(|(k, v)| (k.value.clone(), v.value.as_str().unwrap_or_default().to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    /// The dialects spreadsheets export: each reads as the same two entries.
    #[test]
    fn separators_and_header_spellings_read_alike() {
        let expected = vec![
            (
                "magic/image-to-video".to_string(),
                "a.jpg".to_string(),
                2,
                String::new(),
                vec![],
            ),
            (
                "pixverse/v5/image-to-video".to_string(),
                "b.jpg".to_string(),
                0,
                "hi, there".to_string(),
                vec![("duration".to_string(), "8".to_string())],
            ),
        ];
        for (name, text) in [
            (
                "commas",
                "model,input,prompt,template,duration\nmagic/image-to-video,a.jpg,,T1|T2,\npixverse/v5/image-to-video,b.jpg,\"hi, there\",,8\n",
            ),
            (
                "semicolons, capitals, spaces",
                " Model ;INPUT; Prompt ;Templates;duration\r\nmagic/image-to-video;a.jpg;;T1|T2;\r\npixverse/v5/image-to-video;b.jpg;hi, there;;8\r\n",
            ),
            (
                "tabs",
                "model\tinput\tprompt\ttemplate\tduration\nmagic/image-to-video\ta.jpg\t\tT1|T2\t\npixverse/v5/image-to-video\tb.jpg\thi, there\t\t8\n",
            ),
            (
                "Excel's sep= line",
                "sep=;\nmodel;input;prompt;template;duration\nmagic/image-to-video;a.jpg;;T1|T2;\npixverse/v5/image-to-video;b.jpg;hi, there;;8\n",
            ),
            (
                "a `;` in a header name does not make `;` the separator",
                "model,input,prompt,template,duration,#a;b;c;d;e;f\nmagic/image-to-video,a.jpg,,T1|T2,,\npixverse/v5/image-to-video,b.jpg,\"hi, there\",,8,x\n",
            ),
            (
                "empty columns past the last one used, as spreadsheets export them",
                "model,input,prompt,template,duration,,\nmagic/image-to-video,a.jpg,,T1|T2,,,\npixverse/v5/image-to-video,b.jpg,\"hi, there\",,8,,,,\n",
            ),
            (
                "own columns first, comments before the header",
                "# nightly export, do not edit\n#sku;model;input;prompt;template;duration;#notes\n;magic/image-to-video;a.jpg;;T1|T2;;\nS-2;pixverse/v5/image-to-video;b.jpg;hi, there;;8;call Ann\n;;;;;;only a note\n",
            ),
        ] {
            let m = read(text);
            assert!(m.problems.is_empty(), "{name}: {}", Diagnostics(m.problems.clone()));
            assert_eq!(rows(&m), expected, "{name}");
        }
    }

    #[test]
    fn labels_are_read_and_own_columns_are_not_parameters() {
        let m = read("model,Label,#sku,prompt\nmagic/text-to-video,Spring hero,S-1,SALE\n");
        let e = &m.entries[0];
        assert_eq!(e.label.as_ref().unwrap().value, "Spring hero");
        assert!(e.params.is_empty());
    }

    #[test]
    fn own_columns_are_kept_with_their_names_places_and_the_separator() {
        let m = read(
            "#SKU;model;prompt;# Notes;#sku
S-1;magic/text-to-video;SALE;;x
;;;only a note;
S-2;magic/text-to-video;NEW;hi;
",
        );
        assert_eq!(
            m.own_columns,
            ["#SKU", "# Notes", "#sku (2)"],
            "a name given twice is told apart"
        );
        assert_eq!(m.dialect.delimiter, b';');
        assert!(!m.dialect.workbook);
        assert_eq!(m.entries.len(), 2, "a row with only a note of yours is no job");
        let own: Vec<(&str, &str, usize)> = m.entries[0]
            .own
            .iter()
            .map(|(n, v)| (n.as_str(), v.value.as_str(), v.at.column))
            .collect();
        assert_eq!(own, [("#SKU", "S-1", 1), ("#sku (2)", "x", 31)]);
        assert_eq!(m.entries[1].own[1].0, "# Notes");
    }

    #[test]
    fn a_parameter_is_placed_on_its_header_and_its_value_on_its_cell() {
        let m = read("model;input;seed\nm;a.jpg;7\n");
        let (name, value) = &m.entries[0].params[0];
        assert_eq!((name.at.line, name.at.column), (1, 13));
        assert_eq!((value.at.line, value.at.column), (2, 9));
    }

    /// A 4-byte `sep=` once panicked; any first line that names no separator is refused on it.
    #[test]
    fn a_sep_line_that_names_no_separator_is_refused() {
        for text in [
            "sep=",
            "sep=\n",
            "sep=;;\nmodel;prompt\n",
            "sep=\"\nmodel,prompt\n",
            "sep=é\nmodel\n",
        ] {
            let mut m = Manifest::new("m.csv".as_ref(), text.into());
            let err = parse_csv(text, &mut m).expect_err(text);
            assert_eq!(err.0.len(), 1, "{text:?}: {err}");
            assert!(err.0[0].message.contains("`sep=`"), "{text:?}: {err}");
            assert_eq!(err.0[0].line(), Some(1), "{text:?}");
        }
        // Trailing spaces after the separator are Excel's, not a second character.
        let m = read("sep=; \nmodel;prompt\nmagic/text-to-video;hi, there\n");
        assert_eq!(m.entries[0].prompts[0].value, "hi, there");
    }

    #[test]
    fn one_cause_in_many_rows_is_one_diagnostic() {
        let mut text = String::from("model,input,prompt\n");
        for i in 0..200 {
            text.push_str(&format!("magic/text-to-video,,Sale, {i}% off\n"));
        }
        let m = read(&text);
        assert_eq!(m.problems.len(), 1, "{}", Diagnostics(m.problems.clone()));
        let d = &m.problems[0];
        assert_eq!(d.line(), Some(2));
        assert_eq!(
            d.message,
            "this row has 4 cells, but the header names 3 columns; 199 more rows have too many cells \
             (lines 3, 4, 5, 6, 7 and 194 more)"
        );
    }
}
