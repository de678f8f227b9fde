//! YAML manifests: a located tree built from yaml-rust2's marked events (serde readers drop
//! positions), then read field by field so every problem carries its line.

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Diagnostic, Diagnostics, Entry, LineIndex, Manifest, Pos, Spanned};

#[derive(Debug, Clone)]
struct Node {
    at: Pos,
    kind: NodeKind,
    /// Nodes in this subtree, itself included: what one more alias to it would add.
    size: usize,
}

/// The most nodes a manifest may expand to, aliases followed. A 100,000-job manifest stays well
/// below; nine levels of nested aliases (a few hundred bytes) would otherwise ask for a billion.
const MAX_NODES: usize = 2_000_000;
/// Deeper nesting than any manifest needs, and than recursion over the tree can afford.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
enum NodeKind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

struct TreeBuilder<'t> {
    text: &'t str,
    /// Where each line starts, to place yaml-rust2's (line, column) marks.
    lines: LineIndex<'t>,
    stack: Vec<(Node, usize)>,
    pending_key: Vec<Option<Node>>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    /// The first problem: where, what, and what to do.
    error: Option<(Pos, String, String)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
    /// The last mark placed (line, character column, byte in its line): a flow list of 80,000
    /// items on one line was quadratic when each mark was counted from its line's start.
    last_mark: std::cell::Cell<(usize, usize, usize)>,
}

impl<'t> TreeBuilder<'t> {
    fn new(text: &'t str) -> TreeBuilder<'t> {
        TreeBuilder {
            text,
            lines: LineIndex::new(text),
            stack: Vec::new(),
            pending_key: Vec::new(),
            anchors: Default::default(),
            root: None,
            error: None,
            nodes: 0,
            last_mark: Default::default(),
        }
    }

    /// Where a mark points, and how far the token there goes (`scalar`: its text, when known).
    fn pos(&self, mark: Marker, scalar: Option<&str>) -> Pos {
        let line = mark.line().max(1);
        let start = self.lines.line_start(line);
        let rest = &self.text[start..self.lines.line_start(line + 1)];
        let rest = rest.strip_suffix('\n').unwrap_or(rest);
        // Marks count characters: walk on from the last one on this line, not from its start.
        let (last_line, last_col, last_in_line) = self.last_mark.get();
        let (col, from) = match mark.col().checked_sub(last_col) {
            Some(col) if last_line == line => (col, last_in_line),
            _ => (mark.col(), 0),
        };
        let in_line = rest[from..]
            .char_indices()
            .nth(col)
            .map_or(rest.len(), |(i, _)| from + i);
        self.last_mark.set((line, mark.col(), in_line));
        let offset = start + in_line;
        Pos {
            line,
            column: mark.col() + 1,
            offset,
            // A mark past the end (an empty value at the end of the file) covers nothing.
            len: token_len(&rest[in_line..], scalar).min(self.text.len() - offset),
        }
    }

    /// Starts a sequence or mapping: it collects children until its end event.
    fn open(&mut self, at: Pos, kind: NodeKind, anchor: usize) {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some((
                at,
                format!("the manifest nests deeper than {MAX_DEPTH} levels"),
                "no manifest needs this: look for a `[` or `{` that is repeated or not closed".into(),
            ));
            return;
        }
        self.stack.push((Node { at, kind, size: 1 }, anchor));
        self.pending_key.push(None);
    }

    /// Counts `size` more nodes; false (and an error) past the limit.
    fn grow(&mut self, at: Pos, size: usize) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.error = Some((
                at,
                format!("the manifest expands to more than {MAX_NODES} values once its aliases (`*name`) are followed"),
                "an alias repeated inside another one multiplies at each level: write the lists out, or use each \
                 alias once"
                    .into(),
            ));
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node) {
        let Some((parent, _)) = self.stack.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
        parent.size += node.size;
        match &mut parent.kind {
            NodeKind::Seq(items) => items.push(node),
            NodeKind::Map(pairs) => {
                let slot = self.pending_key.last_mut().expect("a map has a key slot");
                match slot.take() {
                    None => *slot = Some(node),
                    Some(key) => pairs.push((key, node)),
                }
            }
            NodeKind::Scalar { .. } => unreachable!("scalars hold no children"),
        }
    }
}

/// The length in bytes of the token that starts `rest` (the rest of its line): a quoted scalar up
/// to its closing quote, a plain one as far as its text, anything else one character.
fn token_len(rest: &str, scalar: Option<&str>) -> usize {
    let first = rest.chars().next();
    match (first, scalar) {
        (Some(q @ ('"' | '\'')), _) => {
            let mut escaped = false;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if q == '"' && !escaped => escaped = true,
                    c if c == q && !escaped => return i + 1,
                    _ => escaped = false,
                }
            }
            rest.len()
        }
        (_, Some(text)) if !text.is_empty() && rest.starts_with(text) => text.len(),
        (_, Some(_)) => {
            let end = rest.find(" #").unwrap_or(rest.len());
            rest[..end].trim_end().len().max(1)
        }
        (Some(c), None) => c.len_utf8(),
        (None, _) => 0,
    }
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // After the first error the rest is skipped: the tree is not used.
        if self.error.is_some() {
            return;
        }
        let at = self.pos(mark, None);
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                if !self.grow(at, 1) {
                    return;
                }
                let node = Node {
                    at: self.pos(mark, Some(&text)),
                    kind: NodeKind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                    size: 1,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) if self.grow(at, 1) => self.open(at, NodeKind::Seq(Vec::new()), anchor),
            Event::MappingStart(anchor, _) if self.grow(at, 1) => self.open(at, NodeKind::Map(Vec::new()), anchor),
            Event::SequenceStart(..) | Event::MappingStart(..) => {}
            Event::SequenceEnd | Event::MappingEnd => {
                self.pending_key.pop();
                if let Some((node, anchor)) = self.stack.pop() {
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_value(node);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    // Counted before it is copied: the copy is what a bomb would blow up.
                    let size = node.size;
                    if self.grow(at, size) {
                        let node = self.anchors[&id].clone();
                        self.push_value(node);
                    }
                }
                None => {
                    self.error.get_or_insert((
                        at,
                        "alias to an unknown anchor".into(),
                        "an alias `*name` repeats what an anchor `&name` marks earlier in the file".into(),
                    ));
                }
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// The YAML 1.2 core schema's reading of a plain scalar.
fn plain_scalar_value(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return i.into();
    }
    if text.contains(['.', 'e', 'E'])
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || "+-.".contains(c))
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn node_to_json(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Scalar { text, plain: true } => plain_scalar_value(text),
        NodeKind::Scalar { text, plain: false } => Value::String(text.clone()),
        NodeKind::Seq(items) => Value::Array(items.iter().map(node_to_json).collect()),
        NodeKind::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (scalar_text(k).unwrap_or_default(), node_to_json(v)))
                .collect(),
        ),
    }
}

fn scalar_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn is_null(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null"))
}

const TOP_KEYS: &[&str] = &["name", "output", "key", "defaults", "jobs"];
const JOB_KEYS: &[&str] = &[
    "model",
    "input",
    "inputs",
    "prompt",
    "prompts",
    "template",
    "templates",
    "label",
    "output",
    "params",
];

/// A job field written right, to show in a help.
fn example(field: &str) -> &'static str {
    match field {
        "name" => "name: spring-sale",
        "output" => "output: \"{template}/{input}.mp4\"",
        "model" => "model: magic/image-to-video",
        "input" | "inputs" => "inputs: [assets/shoe.jpg, assets/bag.png]",
        "prompt" | "prompts" => "prompts: [\"SALE -30%\", NEW SEASON]",
        "label" => "label: spring hero, variant B",
        "key" => "key: \"#sku\"",
        own if own.starts_with('#') => "\"#sku\": S-1042",
        _ => "templates: [Tokyo Billboard, Phone App]",
    }
}

/// Where to point at a key's value: the value, or the key when the value is empty (an empty value
/// has no text of its own: yaml-rust2 marks the token after it, on another line).
fn value_at(key: &Node, value: &Node) -> Pos {
    match &value.kind {
        NodeKind::Scalar { text, plain: true } if text.is_empty() => key.at,
        _ => value.at,
    }
}

/// Where a mapping starts: its first key (yaml-rust2 marks a block mapping at its first `:`).
fn map_at(node: &Node) -> Pos {
    match &node.kind {
        NodeKind::Map(pairs) => pairs.first().map_or(node.at, |(key, _)| key.at),
        _ => node.at,
    }
}

struct YamlReader<'m> {
    manifest: &'m Manifest,
    errors: Vec<Diagnostic>,
    /// The user's own fields (`"#sku": …`) in the order first seen: the results' last columns.
    own_columns: Vec<String>,
}

impl YamlReader<'_> {
    fn error(&mut self, at: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.manifest.diagnostic(Some(at), message);
        d.help = help;
        self.errors.push(d);
    }

    /// The text of a field that holds one value; `at` is where to point if it is empty, and
    /// `item` says it is one item of a list.
    fn text(&mut self, node: &Node, field: &str, at: Pos, item: bool) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Scalar { .. } if is_null(node) => {
                if item {
                    self.error(
                        at,
                        format!("an item of `{field}` is empty"),
                        Some("remove the empty item, or write its value".into()),
                    );
                } else {
                    self.error(
                        at,
                        format!("`{field}` is empty"),
                        Some(format!("write its value (`{}`), or remove the line", example(field))),
                    );
                }
                None
            }
            NodeKind::Scalar { text, .. } => Some(Spanned {
                value: text.clone(),
                at: node.at,
            }),
            _ if item => {
                self.error(
                    node.at,
                    format!("an item of `{field}` must be one value, not a list or a mapping"),
                    Some(format!("write the list flat: `{}`", example(field))),
                );
                None
            }
            _ if field == "model" => {
                self.error(
                    node.at,
                    "`model` must be one model id, not a list or a mapping",
                    Some("give each model its own job: `- model: magic/image-to-video`".into()),
                );
                None
            }
            _ => {
                self.error(
                    node.at,
                    format!("`{field}` must be text, not a list or a mapping"),
                    Some(format!(
                        "write one value (`{}`), quoted if it holds `: ` or starts with `[` or `{{`",
                        example(field)
                    )),
                );
                None
            }
        }
    }

    /// `one: x` or `many: [x, y]`: both spellings of a job field that can hold several values.
    fn one_or_many(&mut self, key: &Node, node: &Node, field: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    let help = if field.starts_with("template") {
                        format!("name at least one template, or remove `{field}:` to use the model's default")
                    } else {
                        format!("give at least one value, or remove `{field}:`")
                    };
                    self.error(node.at, format!("`{field}` is an empty list"), Some(help));
                }
                items.iter().filter_map(|n| self.text(n, field, n.at, true)).collect()
            }
            NodeKind::Map(_) => {
                self.error(
                    node.at,
                    format!("`{field}` must be one value or a list of values, not a mapping"),
                    Some(format!(
                        "write `{}`, or one `- value` per line under it",
                        example(field)
                    )),
                );
                Vec::new()
            }
            _ => self.text(node, field, value_at(key, node), false).into_iter().collect(),
        }
    }

    fn entry(&mut self, node: &Node, defaults: Option<&Entry>) -> Option<Entry> {
        let NodeKind::Map(pairs) = &node.kind else {
            self.error(
                node.at,
                "a job must be a mapping (`- model: …`)",
                Some("each item under `jobs:` starts with `- ` followed by `model:`, `inputs:`, …".into()),
            );
            return None;
        };
        let mut entry = defaults.cloned().unwrap_or_default();
        // The job is shown by its first line, from its first key to the end of that line.
        entry.at = match pairs.first() {
            Some((key, _)) => {
                let text = &self.manifest.text[key.at.offset.min(self.manifest.text.len())..];
                let line = text.split('\n').next().unwrap_or("").trim_end();
                Pos {
                    len: line.len().max(key.at.len),
                    ..key.at
                }
            }
            None => node.at,
        };
        // A `model` given but unusable was reported; "this job has no model" would only repeat it.
        let mut model_refused = false;
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(
                    key.at,
                    "a key must be text",
                    Some("write the field's name as plain text, as in `model:`".into()),
                );
                continue;
            };
            let canonical = match name.as_str() {
                "input" | "inputs" => "input",
                "prompt" | "prompts" => "prompt",
                "template" | "templates" => "template",
                other => other,
            };
            if seen.contains(&canonical) {
                let help = if matches!(canonical, "input" | "prompt" | "template") {
                    format!(
                        "keep one of them: `{canonical}s:` holds several values (`{}`)",
                        example(canonical)
                    )
                } else {
                    "keep one of them".into()
                };
                self.error(
                    key.at,
                    format!("`{name}` is given twice in this job (singular and plural count as one)"),
                    Some(help),
                );
                continue;
            }
            match name.as_str() {
                "model" => {
                    seen.push("model");
                    entry.model = self.text(value, "model", value_at(key, value), false);
                    model_refused = entry.model.is_none();
                }
                "input" | "inputs" => {
                    seen.push("input");
                    entry.inputs = self.one_or_many(key, value, &name);
                }
                "prompt" | "prompts" => {
                    seen.push("prompt");
                    entry.prompts = self.one_or_many(key, value, &name);
                }
                "template" | "templates" => {
                    seen.push("template");
                    entry.templates = self.one_or_many(key, value, &name);
                }
                // A field of the user's (`"#sku": S-1042`, quoted: YAML reads `#` as a comment),
                // as a `#` column of a sheet: carried to the results, never sent.
                own if own.trim_start().starts_with('#') => {
                    let Some(value) = self.text(value, own.trim(), value_at(key, value), false) else {
                        continue;
                    };
                    let name = self.own_column(own.trim());
                    entry.own.retain(|(n, _)| *n != name);
                    entry.own.push((name, value));
                }
                // Free text of the user's, carried to `results.csv`, never sent.
                "label" => {
                    seen.push("label");
                    entry.label = self.text(value, "label", value_at(key, value), false);
                }
                // This job's own naming pattern, over the manifest's.
                "output" => {
                    seen.push("output");
                    entry.output = self.text(value, "output", value_at(key, value), false);
                }
                "params" => {
                    seen.push("params");
                    self.params(value, &mut entry);
                }
                other => {
                    let help = match crate::catalog::closest(other, JOB_KEYS.iter().copied()) {
                        Some(k) => format!("did you mean `{k}`? model parameters go under `params:`"),
                        None => format!(
                            "a job takes {}; model parameters go under `params:`; a field of yours starts with \
                             `#` and is quoted (`\"#sku\": S-1042`)",
                            crate::catalog::quoted_list(JOB_KEYS)
                        ),
                    };
                    self.error(key.at, format!("unknown job field `{other}`"), Some(help));
                }
            }
        }
        if model_refused {
            return None;
        }
        Some(entry)
    }

    /// The name results give a field of the user's: as first written, whatever its case later.
    fn own_column(&mut self, name: &str) -> String {
        match self.own_columns.iter().find(|n| n.eq_ignore_ascii_case(name)) {
            Some(known) => known.clone(),
            None => {
                self.own_columns.push(name.to_string());
                name.to_string()
            }
        }
    }

    fn params(&mut self, node: &Node, entry: &mut Entry) {
        let NodeKind::Map(pairs) = &node.kind else {
            if !is_null(node) {
                self.error(
                    node.at,
                    "`params` must be a mapping of parameter: value",
                    Some(
                        "write `params: {resolution: 720p, duration: 5}`, or one `name: value` per line under it"
                            .into(),
                    ),
                );
            }
            return;
        };
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(
                    key.at,
                    "a parameter name must be text",
                    Some("write the parameter's name as plain text, as in `duration:`".into()),
                );
                continue;
            };
            // A job's params override the defaults' one by one.
            entry.params.retain(|(n, _)| n.value != name);
            entry.params.push((
                Spanned {
                    value: name,
                    at: key.at,
                },
                Spanned {
                    value: node_to_json(value),
                    at: value_at(key, value),
                },
            ));
        }
    }
}

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
fn yaml_syntax_help(text: &str, info: &str, at: Pos) -> (Pos, String) {
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

pub(super) fn parse_yaml(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    let mut builder = TreeBuilder::new(text);
    let one = |at: Option<Pos>, message: String, help: &str| {
        let mut d = manifest.diagnostic(at, message);
        d.help = Some(help.into());
        Diagnostics(vec![d])
    };
    if let Err(e) = Parser::new_from_str(text).load(&mut builder, false) {
        let (at, help) = yaml_syntax_help(text, e.info(), builder.pos(*e.marker(), None));
        return Err(one(Some(at), format!("invalid YAML: {}", e.info()), &help));
    }
    if let Some((at, message, help)) = builder.error {
        return Err(one(Some(at), message, &help));
    }
    let Some(root) = builder.root else {
        return Err(one(
            None,
            "the manifest is empty".into(),
            "write `jobs:`, and under it one `- model: …` item per job",
        ));
    };
    let NodeKind::Map(pairs) = &root.kind else {
        return Err(one(
            Some(root.at),
            "a manifest is a mapping with `jobs:` (and optional `name`, `output`, `defaults`)".into(),
            "start the file with `jobs:`, and indent the job items under it",
        ));
    };

    let mut reader = YamlReader {
        manifest,
        errors: Vec::new(),
        own_columns: Vec::new(),
    };
    let mut name = None;
    let mut output = None;
    let mut key_choice = None;
    let mut defaults = None;
    let mut jobs = None;
    for (key, value) in pairs {
        match scalar_text(key).as_deref() {
            Some("name") => name = reader.text(value, "name", value_at(key, value), false),
            Some("output") => output = reader.text(value, "output", value_at(key, value), false),
            Some("key") => key_choice = reader.text(value, "key", value_at(key, value), false),
            Some("defaults") => defaults = Some(value),
            Some("jobs") => jobs = Some((key, value)),
            other => {
                let other = other.unwrap_or("?");
                let help = crate::catalog::closest(other, TOP_KEYS.iter().copied())
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("the top level takes {}", crate::catalog::quoted_list(TOP_KEYS)));
                reader.error(key.at, format!("unknown top-level field `{other}`"), Some(help));
            }
        }
    }
    let defaults = defaults.and_then(|d| reader.entry(d, None));
    let mut entries = Vec::new();
    match jobs {
        None => reader.error(
            map_at(&root),
            "the manifest has no `jobs:` list",
            Some("add `jobs:`, and under it one `- model: …` item per job".into()),
        ),
        Some((
            _,
            Node {
                kind: NodeKind::Seq(items),
                at,
                ..
            },
        )) => {
            if items.is_empty() {
                reader.error(
                    *at,
                    "`jobs` is empty: nothing to do",
                    Some("add one `- model: …` item per job under `jobs:`".into()),
                );
            }
            entries.extend(items.iter().filter_map(|item| reader.entry(item, defaults.as_ref())));
        }
        Some((key, other)) => reader.error(
            value_at(key, other),
            "`jobs` must be a list (`- model: …` items)",
            Some("write each job as an item under `jobs:`, starting with `- model: …`".into()),
        ),
    }
    // Field problems do not stop the reading: the planner goes on with what could be read, so
    // that every problem of the manifest is reported in one run.
    let own_columns = reader.own_columns;
    manifest.problems.extend(reader.errors);
    manifest.own_columns = own_columns;
    manifest.key = key_choice.map(|k| super::KeyChoice {
        name: k.value,
        at: Some(k.at),
    });
    if let Some(name) = name {
        manifest.name = name.value;
    }
    manifest.output = output;
    manifest.entries = entries;
    Ok(())
}
