//! The located tree: yaml-rust2's marked events built into nodes that know where they are
//! written, with the limits that keep aliases and nesting from growing without end.

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::manifest::{LineIndex, Pos};

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) at: Pos,
    pub(super) kind: NodeKind,
    /// Nodes in this subtree, itself included: what one more alias to it would add.
    size: usize,
}

/// The most nodes a manifest may expand to, aliases followed. A 100,000-job manifest stays well
/// below; nine levels of nested aliases (a few hundred bytes) would otherwise ask for a billion.
const MAX_NODES: usize = 2_000_000;
/// Deeper nesting than any manifest needs, and than recursion over the tree can afford.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
pub(super) enum NodeKind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

pub(super) struct TreeBuilder<'t> {
    text: &'t str,
    /// Where each line starts, to place yaml-rust2's (line, column) marks.
    lines: LineIndex<'t>,
    stack: Vec<(Node, usize)>,
    pending_key: Vec<Option<Node>>,
    anchors: std::collections::HashMap<usize, Node>,
    pub(super) root: Option<Node>,
    /// The first problem: where, what, and what to do.
    pub(super) error: Option<(Pos, String, String)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
    /// The last mark placed (line, character column, byte in its line): a flow list of 80,000
    /// items on one line was quadratic when each mark was counted from its line's start.
    last_mark: std::cell::Cell<(usize, usize, usize)>,
}

impl<'t> TreeBuilder<'t> {
    pub(super) fn new(text: &'t str) -> TreeBuilder<'t> {
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
    pub(super) fn pos(&self, mark: Marker, scalar: Option<&str>) -> Pos {
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

pub(super) fn node_to_json(node: &Node) -> Value {
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

pub(super) fn scalar_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    }
}

pub(super) fn is_null(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null"))
}
