//! YAML manifests: a located tree built from yaml-rust2's marked events (serde readers drop
//! positions), then read field by field so every problem carries its line.

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Diagnostic, Diagnostics, Entry, Manifest, Spanned};

#[derive(Debug, Clone)]
struct Node {
    line: usize,
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

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<(Node, usize)>,
    pending_key: Vec<Option<Node>>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<(usize, String)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
}

impl TreeBuilder {
    /// Starts a sequence or mapping: it collects children until its end event.
    fn open(&mut self, line: usize, kind: NodeKind, anchor: usize) {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some((line, format!("the manifest nests deeper than {MAX_DEPTH} levels")));
            return;
        }
        self.stack.push((Node { line, kind, size: 1 }, anchor));
        self.pending_key.push(None);
    }

    /// Counts `size` more nodes; false (and an error) past the limit.
    fn grow(&mut self, line: usize, size: usize) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.error = Some((
                line,
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

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // After the first error the rest is skipped: the tree is not used.
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                if !self.grow(line, 1) {
                    return;
                }
                let node = Node {
                    line,
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
            Event::SequenceStart(anchor, _) if self.grow(line, 1) => self.open(line, NodeKind::Seq(Vec::new()), anchor),
            Event::MappingStart(anchor, _) if self.grow(line, 1) => self.open(line, NodeKind::Map(Vec::new()), anchor),
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
                    if self.grow(line, size) {
                        let node = self.anchors[&id].clone();
                        self.push_value(node);
                    }
                }
                None => {
                    self.error.get_or_insert((line, "alias to an unknown anchor".into()));
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
    fn error(&mut self, line: usize, message: impl Into<String>, help: Option<String>) {
        let mut d = self.manifest.diagnostic(Some(line), message);
        d.help = help;
        self.errors.push(d);
    }

    fn text(&mut self, node: &Node, field: &str) -> Option<Spanned<String>> {
        match &node.kind {
            NodeKind::Scalar { .. } if is_null(node) => {
                self.error(node.line, format!("`{field}` is empty"), None);
                None
            }
            NodeKind::Scalar { text, .. } => Some(Spanned {
                value: text.clone(),
                line: node.line,
            }),
            _ => {
                self.error(
                    node.line,
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
                    self.error(node.line, format!("`{field}` is an empty list"), None);
                }
                items.iter().filter_map(|n| self.text(n, field)).collect()
            }
            _ => self.text(node, field).into_iter().collect(),
        }
    }

    fn entry(&mut self, node: &Node, defaults: Option<&Entry>) -> Option<Entry> {
        let NodeKind::Map(pairs) = &node.kind else {
            self.error(
                node.line,
                "a job must be a mapping (`- model: …`)",
                Some("each item under `jobs:` starts with `- ` followed by `model:`, `inputs:`, …".into()),
            );
            return None;
        };
        let mut entry = defaults.cloned().unwrap_or_default();
        entry.line = node.line;
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(key.line, "a key must be text", None);
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
                    key.line,
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
                    self.error(key.line, format!("unknown job field `{other}`"), Some(help));
                }
            }
        }
        Some(entry)
    }

    fn params(&mut self, node: &Node, entry: &mut Entry) {
        let NodeKind::Map(pairs) = &node.kind else {
            if !is_null(node) {
                self.error(node.line, "`params` must be a mapping of parameter: value", None);
            }
            return;
        };
        for (key, value) in pairs {
            let Some(name) = scalar_text(key) else {
                self.error(key.line, "a parameter name must be text", None);
                continue;
            };
            // A job's params override the defaults' one by one.
            entry.params.retain(|(n, _)| n.value != name);
            entry.params.push((
                Spanned {
                    value: name,
                    line: key.line,
                },
                Spanned {
                    value: node_to_json(value),
                    line: value.line,
                },
            ));
        }
    }
}

pub(super) fn parse_yaml(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
    // Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = TreeBuilder::default();
    let one = |line, message: String| Diagnostics(vec![manifest.diagnostic(Some(line), message)]);
    if let Err(e) = Parser::new_from_str(text).load(&mut builder, false) {
        return Err(one(e.marker().line(), format!("invalid YAML: {}", e.info())));
    }
    if let Some((line, message)) = builder.error {
        return Err(one(line, message));
    }
    let Some(root) = builder.root else {
        return Err(Diagnostics(vec![manifest.diagnostic(None, "the manifest is empty")]));
    };
    let NodeKind::Map(pairs) = &root.kind else {
        return Err(one(
            root.line,
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
                reader.error(key.line, format!("unknown top-level field `{other}`"), Some(help));
            }
        }
    }
    let defaults = defaults.and_then(|d| reader.entry(d, None));
    let mut entries = Vec::new();
    match jobs {
        None => reader.error(root.line, "the manifest has no `jobs:` list", None),
        Some(Node {
            kind: NodeKind::Seq(items),
            line,
            ..
        }) => {
            if items.is_empty() {
                reader.error(*line, "`jobs` is empty: nothing to do", None);
            }
            entries.extend(items.iter().filter_map(|item| reader.entry(item, defaults.as_ref())));
        }
        Some(other) => reader.error(other.line, "`jobs` must be a list (`- model: …` items)", None),
    }
    let errors = reader.errors;
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    if let Some(name) = name {
        manifest.name = name.value;
    }
    manifest.output = output;
    manifest.entries = entries;
    Ok(())
}
