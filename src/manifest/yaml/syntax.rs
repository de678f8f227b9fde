//! Help for YAML syntax errors: what usually causes each of the parser's, and where to point.
//! Apart from the reading of fields, as it runs only when the text is not YAML at all.

use crate::manifest::Pos;

/// Where each `[` or `{` still open at byte `end` of `text` was opened (a scan that follows YAML
/// closely enough for a help: quotes, comments, and brackets only where a value may start).
fn open_brackets(text: &str, end: usize) -> Vec<(usize, char)> {
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut token_start = true;
    let mut chars = text[..end.min(text.len())].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            match c {
                '\\' if q == '"' => {
                    chars.next();
                }
                '\'' if q == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                    chars.next();
                }
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '#' if token_start || text[..i].ends_with([' ', '\t']) => {
                // A comment: skip to the end of the line.
                while chars.peek().is_some_and(|&(_, n)| n != '\n') {
                    chars.next();
                }
            }
            '"' | '\'' if token_start => quote = Some(c),
            '[' | '{' if token_start => open.push((i, c)),
            ']' | '}' if !open.is_empty() => {
                open.pop();
            }
            _ => {}
        }
        token_start = match c {
            ' ' | '\t' | '\n' | '\r' | '[' | '{' | ',' => true,
            ':' | '-' => token_start || chars.peek().is_some_and(|&(_, n)| n == ' '),
            _ => false,
        };
    }
    open
}

/// What usually causes each of yaml-rust2's syntax errors, and where to point: the parser's place,
/// or a better one (the tab it tripped on).
pub(super) fn yaml_syntax_help(text: &str, info: &str, at: Pos) -> (Pos, String) {
    let line_text = |at: Pos| {
        let start = text[..at.offset].rfind('\n').map_or(0, |i| i + 1);
        (start, text[start..].split('\n').next().unwrap_or(""))
    };
    if info.contains("tab") {
        // yaml-rust2 marks the token before the tab; show the tab.
        let tab = text[at.offset..]
            .find('\t')
            .map(|i| at.offset + i)
            .or_else(|| text[line_text(at).0..at.offset].find('\t').map(|i| line_text(at).0 + i));
        let at = tab.map_or(at, |i| crate::manifest::pos_in(text, i, 1));
        return (
            at,
            "YAML indents with spaces, not tabs: replace the tab with spaces".into(),
        );
    }
    if info.contains("unknown anchor") {
        let name_len = text[at.offset..]
            .find(|c: char| c.is_whitespace() || ",]}".contains(c))
            .unwrap_or(text.len() - at.offset);
        let at = Pos { len: name_len, ..at };
        return (
            at,
            "an alias `*name` repeats what an anchor `&name` marks earlier in the file: define the anchor \
             before it, or check the spelling"
                .into(),
        );
    }
    if let Some(&(offset, bracket)) = open_brackets(text, at.offset).last() {
        let opened = crate::manifest::pos_in(text, offset, 1);
        let (kind, close) = if bracket == '[' {
            ("list", ']')
        } else {
            ("mapping", '}')
        };
        return (
            at,
            format!(
                "the `{bracket}` on line {}, column {}, is not closed: end the {kind} with `{close}`",
                opened.line, opened.column
            ),
        );
    }
    let help = if info.contains("mapping values are not allowed") {
        let (start, line) = line_text(at);
        let before = line[..(at.offset - start).min(line.len())].trim_start();
        let before = before.strip_prefix("- ").unwrap_or(before);
        if before.contains(": ") {
            "a value that holds `: ` must be quoted: `prompt: \"Sale: 30% off\"`"
        } else {
            "this line is indented more than the field above it: the fields of one job start in the same column"
        }
    } else if info.contains("did not find expected key") || info.contains("did not find expected '-'") {
        "this line is indented less than the ones above it: the fields of one job start in the same column, \
         and each job with `- `"
    } else if info.contains("quoted scalar") {
        "a quoted value is not closed: end it with the same quote it starts with"
    } else if info.contains("recursion limit") {
        "the manifest nests far deeper than any manifest needs"
    } else if info.contains("cannot start any token") || info.contains("unexpected character") {
        "a value that starts with `@`, `` ` ``, `%` or `|` must be quoted"
    } else {
        "check the indentation and quoting around this place"
    };
    (at, help.into())
}
