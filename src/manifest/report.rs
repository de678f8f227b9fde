//! Showing diagnostics as a compiler does: the file, line and column, the offending line with the
//! problem underlined, and the help. The drawing is miette's; this hands it our positions and only
//! the lines around the problem, each cut to a width a person reads.

use std::borrow::Cow;
use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan,
    SpanContents,
};

use super::{Diagnostic, Diagnostics, Pos, Severity};

/// The most characters of a line drawn: past it, the line is cut around the problem. miette pads
/// with a formatting width, which panics past 65,535 columns, and no one reads a line of 100,000
/// characters.
const SHOWN_CHARS: usize = 160;
/// Characters kept before the problem on a line that is cut.
const BEFORE_CHARS: usize = 60;
/// The farthest a line's ends are looked for from the problem, in bytes (four per character at
/// most): drawing stays as cheap on a line of 10 MB as on a short one, and so does drawing each
/// of 40,000 diagnostics, where reading from the top of the text for each was quadratic.
const SCAN_BYTES: usize = 4 * SHOWN_CHARS;
/// A value quoted in a message (`` `…` ``) longer than this is cut (a 100,000-digit number).
const SHOWN_VALUE_CHARS: usize = 80;

/// The lines around a problem, as miette draws them: the text it is given, and the line and
/// column of the text's start it reports, so that the header names the place in the file.
struct Excerpt {
    name: String,
    text: String,
    /// 0-based line of the excerpt's first line in the file.
    first_line: usize,
    /// The problem, in `text`.
    span: SourceSpan,
    /// 0-based column of the problem in the file, when its line was cut on the left (miette would
    /// count from the cut).
    column: Option<usize>,
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let column = match self.column {
            Some(column) if span == &self.span => column,
            _ => inner.column(),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
    }
}

/// Where the line holding byte `offset` starts, if within [`SCAN_BYTES`].
fn line_start(bytes: &[u8], offset: usize) -> Option<usize> {
    let from = offset.saturating_sub(SCAN_BYTES);
    match bytes[from..offset].iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(from + i + 1),
        None => (from == 0).then_some(0),
    }
}

/// Where the line holding byte `offset` ends (its `\n`, or the end of the text), if within
/// [`SCAN_BYTES`].
fn line_end(bytes: &[u8], offset: usize) -> Option<usize> {
    let to = (offset + SCAN_BYTES).min(bytes.len());
    match bytes[offset..to].iter().position(|&b| b == b'\n') {
        Some(i) => Some(offset + i),
        None => (to == bytes.len()).then_some(to),
    }
}

/// The byte `n` characters before `offset`, not before `floor`.
fn chars_back(text: &str, offset: usize, n: usize, floor: usize) -> usize {
    // A floor found by counting bytes back may fall inside a character: the next one starts it.
    let mut floor = floor.min(offset);
    while !text.is_char_boundary(floor) {
        floor += 1;
    }
    text[floor..offset]
        .char_indices()
        .rev()
        .take(n)
        .last()
        .map_or(offset, |(i, _)| floor + i)
}

/// The byte `n` characters after `offset`, not past `ceil`.
fn chars_on(text: &str, offset: usize, n: usize, ceil: usize) -> usize {
    let mut ceil = ceil.clamp(offset, text.len());
    while !text.is_char_boundary(ceil) {
        ceil -= 1;
    }
    text[offset..ceil]
        .char_indices()
        .nth(n)
        .map_or(ceil, |(i, _)| offset + i)
}

/// A line (`start..end`, without its line break) as drawn: cut after [`SHOWN_CHARS`].
fn context_line(text: &str, start: usize, end: usize) -> String {
    let line = text[start..end].trim_end_matches('\r');
    let cut = chars_on(line, 0, SHOWN_CHARS, line.len());
    if cut < line.len() {
        format!("{}…", &line[..cut])
    } else {
        line.to_string()
    }
}

/// The problem's line with a line of context on each side, each cut to a readable width.
fn excerpt(name: String, text: &str, at: Pos) -> Excerpt {
    let bytes = text.as_bytes();
    let mut offset = at.offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let mut end = (offset + at.len).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let (start_known, end_known) = (line_start(bytes, offset), line_end(bytes, offset));
    let start = start_known.unwrap_or_else(|| chars_back(text, offset, BEFORE_CHARS, offset - SCAN_BYTES.min(offset)));
    let stop = end_known.unwrap_or(text.len());
    // The window drawn of the problem's line: all of it when short, else around the problem.
    let whole = start_known.is_some() && end_known.is_some() && chars_on(text, start, SHOWN_CHARS, stop) == stop;
    // A problem near the line's start is drawn from the start.
    let near_start = start_known.is_some() && chars_on(text, start, 2 * BEFORE_CHARS, offset) == offset;
    let (from, to) = if whole {
        (start, stop)
    } else {
        let from = if near_start {
            start
        } else {
            chars_back(text, offset, BEFORE_CHARS, start)
        };
        (from, chars_on(text, from, SHOWN_CHARS, stop))
    };
    let cut_left = start_known != Some(from);
    let mut drawn = String::new();
    let mut first_line = at.line.saturating_sub(1);
    // Context lines only beside a line drawn from its start: above a cut one they would not
    // line up.
    if !cut_left
        && from > 0
        && let Some(above) = line_start(bytes, from - 1)
    {
        drawn.push_str(&context_line(text, above, from - 1));
        drawn.push('\n');
        first_line = first_line.saturating_sub(1);
    }
    if cut_left {
        drawn.push('…');
    }
    // The span stays on the line as drawn: a `\r` at its end is not drawn, and a problem
    // placed on it is underlined at the line's end.
    let line = text[from..to].trim_end_matches('\r');
    let into = (offset - from).min(line.len());
    let span_start = drawn.len() + into;
    let span_len = (end.min(to).max(offset) - offset).min(line.len() - into);
    drawn.push_str(line);
    if to < stop {
        drawn.push('…');
    } else if to < text.len() {
        let below = to + 1;
        if let Some(below_end) = line_end(bytes, below) {
            drawn.push('\n');
            drawn.push_str(&context_line(text, below, below_end));
        }
    }
    Excerpt {
        name,
        text: drawn,
        first_line,
        span: SourceSpan::new(span_start.into(), span_len),
        column: cut_left.then(|| at.column.saturating_sub(1)),
    }
}

/// Values quoted in a message (`` `…` ``) cut to [`SHOWN_VALUE_CHARS`]: a message that echoes a
/// 100,000-digit number is still one line a person reads.
pub(super) fn shorten_values(message: &str) -> Cow<'_, str> {
    let long = message
        .split('`')
        .skip(1)
        .step_by(2)
        .any(|value| value.chars().nth(SHOWN_VALUE_CHARS).is_some());
    if !long {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(SHOWN_VALUE_CHARS * 8);
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        let cut = chars_on(part, 0, SHOWN_VALUE_CHARS, part.len());
        if i % 2 == 1 && cut < part.len() {
            let more = part[cut..].chars().count();
            out.push_str(&format!("{}… ({more} more characters)", &part[..cut]));
        } else {
            out.push_str(part);
        }
    }
    Cow::Owned(out)
}

/// One diagnostic as miette sees it.
struct Shown<'d> {
    diagnostic: &'d Diagnostic,
    source: Excerpt,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shorten_values(&self.diagnostic.message))
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(shorten_values(h)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            None,
            self.source.span,
        ))))
    }
}

impl Diagnostic {
    /// The diagnostic drawn for people: `file:line:column`, the line underlined, the help.
    /// Without the text (or a position) it is the one-line form.
    pub fn render(&self, color: bool) -> String {
        let source = match (&self.source, self.at) {
            (Some(text), Some(at)) if at.line > 0 => Some(excerpt(self.file.display().to_string(), text, at)),
            _ => None,
        };
        let Some(source) = source else {
            let word = match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            return format!("{word}: {self}\n");
        };
        let shown = Shown {
            diagnostic: self,
            source,
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        let drawn = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            // Unwrapped: a message stays one line, for people searching and for grep.
            .with_wrap_lines(false)
            .with_context_lines(1)
            .render_report(&mut out, &shown);
        match drawn {
            Ok(()) => out,
            Err(_) => format!("error: {self}\n"),
        }
    }
}

impl Diagnostics {
    /// Every diagnostic drawn, then a count.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&d.render(color));
            out.push('\n');
        }
        let errors = self.0.iter().filter(|d| d.severity == Severity::Error).count();
        out.push_str(&match errors {
            1 => "1 error in the manifest".to_string(),
            n => format!("{n} errors in the manifest"),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Manifest;

    /// A diagnostic on the `needle` of `text`, drawn without colour.
    fn drawn(name: &str, text: &str, needle: &str, message: &str) -> String {
        let m = Manifest::new(name.as_ref(), text.into());
        let offset = text.find(needle).unwrap();
        m.diagnostic(Some(m.pos(offset, needle.len())), message).render(false)
    }

    /// Found by `any_bytes_as_yaml_or_csv`: counting bytes back from a problem on a long line of
    /// multi-byte characters landed inside one.
    #[test]
    fn a_long_line_of_wide_characters_is_drawn_cut_on_character_boundaries() {
        for pad in 0..3 {
            let text = format!("{}{}X€€€", "a".repeat(pad), "€".repeat(2000));
            let drawn = drawn("m.yaml", &text, "X", "here");
            assert!(drawn.contains('X'), "{drawn}");
            assert_narrow(&drawn);
        }
    }

    /// Each drawn line is short, whatever the line of the file was.
    fn assert_narrow(drawn: &str) {
        for line in drawn.lines() {
            assert!(
                line.chars().count() < 300,
                "a line of {} characters",
                line.chars().count()
            );
        }
    }

    #[test]
    fn a_problem_past_column_65535_is_drawn_cut_with_its_place() {
        // miette panicked here ("Formatting argument out of range").
        let text = format!("model,#n,duration\nm,{},seven\nm,x,8\n", "x".repeat(70_000));
        let out = drawn(
            "m.csv",
            &text,
            "seven",
            "`duration` must be a whole number, not `seven`",
        );
        assert!(out.contains("[m.csv:2:70004]"), "{out}");
        assert!(out.contains("…xxxx"), "cut on the left: {out}");
        assert!(out.contains("x,seven"), "{out}");
        assert_narrow(&out);
    }

    #[test]
    fn a_huge_value_is_cut_in_the_message_and_the_line() {
        let digits = "9".repeat(100_000);
        let text = format!("jobs:\n  - model: m\n    params: {{duration: {digits}, seed: x}}\n");
        let message = format!("`duration` must be a whole number, not `{digits}`");
        let out = drawn("m.yaml", &text, &digits, &message);
        assert!(out.contains("[m.yaml:3:24]"), "{out}");
        assert!(out.contains("(99920 more characters)"), "{out}");
        assert_narrow(&out);
        // The label after it, at column 100,032, is drawn too.
        let out = drawn("m.yaml", &text, "x}", "`seed` must be a whole number, not `x`");
        assert!(out.contains("[m.yaml:3:100032]"), "{out}");
        assert_narrow(&out);
        let one_line = Manifest::new("m.yaml".as_ref(), text.as_str().into())
            .diagnostic(None, message)
            .to_string();
        assert!(one_line.len() < 300, "{one_line}");
    }

    #[test]
    fn short_lines_are_drawn_whole_with_their_neighbours() {
        let text = "a,b\nmodel,input\nm,x\n";
        let out = drawn("m.csv", text, "input", "no");
        for line in ["1 │ a,b", "2 │ model,input", "3 │ m,x", "[m.csv:2:7]"] {
            assert!(out.contains(line), "{line}: {out}");
        }
    }
}
