//! YAML manifests: a located tree built from yaml-rust2's marked events (serde readers drop
//! positions), then read field by field so every problem carries its line.

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

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
    /// Byte offset of each line's start, to place yaml-rust2's (line, column) marks.
    line_starts: Vec<usize>,
    stack: Vec<(Node, usize)>,
    pending_key: Vec<Option<Node>>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<(Pos, String)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
}

impl<'t> TreeBuilder<'t> {
    fn new(text: &'t str) -> TreeBuilder<'t> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        TreeBuilder {
            text,
            line_starts,
            stack: Vec::new(),
            pending_key: Vec::new(),
            anchors: Default::default(),
            root: None,
            error: None,
            nodes: 0,
        }
    }

    /// Where a mark points, and how far the token there goes (`scalar`: its text, when known).
    fn pos(&self, mark: Marker, scalar: Option<&str>) -> Pos {
        let line = mark.line().max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(self.text.len());
        let rest = &self.text[start..];
        let rest = rest.split('\n').next().unwrap_or("");
        let in_line = rest.char_indices().nth(mark.col()).map_or(rest.len(), |(i, _)| i);
        let offset = start + in_line;
        Pos {
            line,
            column: mark.col() + 1,
            offset,
            len: token_len(&rest[in_line..], scalar),
        }
    }

    /// Starts a sequence or mapping: it collects children until its end event.
    fn open(&mut self, at: Pos, kind: NodeKind, anchor: usize) {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some((at, format!("the manifest nests deeper than {MAX_DEPTH} levels")));
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
                format!(
                    "the manifest expands to more than {MAX_NODES} values once its aliases (`*name`) are \
                     followed; is an alias repeated inside another one?"
                ),
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
                    self.error.get_or_insert((at, "alias to an unknown anchor".into()));
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

const TOP_KEYS: &[&str] = &["name", "output", "defaults", "jobs"];
const JOB_KEYS: &[&str] = &[
    "model",
    "input",
    "inputs",
    "prompt",
    "prompts",
    "template",
    "templates",
    "params",
];

struct YamlReader<'m> {
    manifest: &'m Manifest,
    errors: Vec<Diagnostic>,
}

impl YamlReader<'_> {
    fn error(&mut self, at: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.manifest.diagnostic(Some(at), message);
        d.help = help;
        self.errors.push(d);
    }

    fn text(&mut self, node: &Node, field: &str) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Scalar { .. } if is_null(node) => {
                self.error(node.at, format!("`{field}` is empty"), None);
                None
            }
            NodeKind::Scalar { text, .. } => Some(Spanned {
                value: text.clone(),
                at: node.at,
            }),
            _ => {
                self.error(
                    node.at,
                    format!("`{field}` must be text, not a list or a mapping"),
                    None,
                );
                None
            }
        }
    }

    /// `one: x` or `many: [x, y]`: both spellings of a job field that can hold several values.
    fn one_or_many(&mut self, node: &Node, field: &str) -> Vec<Spanned<String>> {
        match &node.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    self.error(node.at, format!("`{field}` is an empty list"), None);
                }
                items.iter().filter_map(|n| self.text(n, field)).collect()
            }
            _ => self.text(node, field).into_iter().collect(),
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
        entry.at = node.at;
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(key.at, "a key must be text", None);
                continue;
            };
            let canonical = match name.as_str() {
                "input" | "inputs" => "input",
                "prompt" | "prompts" => "prompt",
                "template" | "templates" => "template",
                other => other,
            };
            if seen.contains(&canonical) {
                self.error(
                    key.at,
                    format!("`{name}` is given twice in this job (singular and plural count as one)"),
                    None,
                );
                continue;
            }
            match name.as_str() {
                "model" => {
                    seen.push("model");
                    entry.model = self.text(value, "model");
                }
                "input" | "inputs" => {
                    seen.push("input");
                    entry.inputs = self.one_or_many(value, &name);
                }
                "prompt" | "prompts" => {
                    seen.push("prompt");
                    entry.prompts = self.one_or_many(value, &name);
                }
                "template" | "templates" => {
                    seen.push("template");
                    entry.templates = self.one_or_many(value, &name);
                }
                "params" => {
                    seen.push("params");
                    self.params(value, &mut entry);
                }
                other => {
                    let help = match crate::catalog::closest(other, JOB_KEYS.iter().copied()) {
                        Some(k) => format!("did you mean `{k}`? model parameters go under `params:`"),
                        None => format!(
                            "a job takes {}; model parameters go under `params:`",
                            crate::catalog::quoted_list(JOB_KEYS)
                        ),
                    };
                    self.error(key.at, format!("unknown job field `{other}`"), Some(help));
                }
            }
        }
        Some(entry)
    }

    fn params(&mut self, node: &Node, entry: &mut Entry) {
        let NodeKind::Map(pairs) = &node.kind else {
            if !is_null(node) {
                self.error(node.at, "`params` must be a mapping of parameter: value", None);
            }
            return;
        };
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(key.at, "a parameter name must be text", None);
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
                    at: value.at,
                },
            ));
        }
    }
}

/// What usually causes each of yaml-rust2's syntax errors.
fn yaml_syntax_help(info: &str) -> &'static str {
    if info.contains("mapping values are not allowed") {
        "a value that holds `: ` must be quoted: `prompt: \"Sale: 30% off\"`"
    } else if info.contains("did not find expected") || info.contains("while parsing a flow") {
        "a `[` or `{` is not closed, or a list item is not indented like the others"
    } else if info.contains("tab") {
        "YAML indents with spaces, not tabs"
    } else if info.contains("recursion limit") {
        "the manifest nests far deeper than any manifest needs"
    } else {
        "check the indentation and quoting around this place"
    }
}

pub(super) fn parse_yaml(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    let mut builder = TreeBuilder::new(text);
    let one = |at, message: String| Diagnostics(vec![manifest.diagnostic(Some(at), message)]);
    if let Err(e) = Parser::new_from_str(text).load(&mut builder, false) {
        let at = builder.pos(*e.marker(), None);
        let mut d = manifest.diagnostic(Some(at), format!("invalid YAML: {}", e.info()));
        d.help = Some(yaml_syntax_help(e.info()).into());
        return Err(Diagnostics(vec![d]));
    }
    if let Some((at, message)) = builder.error {
        return Err(one(at, message));
    }
    let Some(root) = builder.root else {
        return Err(Diagnostics(vec![manifest.diagnostic(None, "the manifest is empty")]));
    };
    let NodeKind::Map(pairs) = &root.kind else {
        return Err(one(
            root.at,
            "a manifest is a mapping with `jobs:` (and optional `name`, `output`, `defaults`)".into(),
        ));
    };

    let mut reader = YamlReader {
        manifest,
        errors: Vec::new(),
    };
    let mut name = None;
    let mut output = None;
    let mut defaults = None;
    let mut jobs = None;
    for (key, value) in pairs {
        match scalar_text(key).as_deref() {
            Some("name") => name = reader.text(value, "name"),
            Some("output") => output = reader.text(value, "output"),
            Some("defaults") => defaults = Some(value),
            Some("jobs") => jobs = Some(value),
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
        None => reader.error(root.at, "the manifest has no `jobs:` list", None),
        Some(Node {
            kind: NodeKind::Seq(items),
            at,
            ..
        }) => {
            if items.is_empty() {
                reader.error(*at, "`jobs` is empty: nothing to do", None);
            }
            entries.extend(items.iter().filter_map(|item| reader.entry(item, defaults.as_ref())));
        }
        Some(other) => reader.error(other.at, "`jobs` must be a list (`- model: …` items)", None),
    }
    // Field problems do not stop the reading: the planner goes on with what could be read, so
    // that every problem of the manifest is reported in one run.
    manifest.problems.extend(reader.errors);
    if let Some(name) = name {
        manifest.name = name.value;
    }
    manifest.output = output;
    manifest.entries = entries;
    Ok(())
}
