//! Reading a manifest (YAML or CSV) into raw entries that remember the line they came from.
//!
//! Nothing here knows about models: an entry is what the user wrote, with lines attached, so that
//! `plan` can say "campaign.yaml:14: unknown template" about any field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One problem in a manifest, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found; nothing is submitted while this is non-empty.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub line: usize,
}

/// A manifest entry as written: each expands to (inputs or prompts) × templates jobs.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub line: usize,
    pub model: Option<Spanned<String>>,
    pub inputs: Vec<Spanned<String>>,
    pub prompts: Vec<Spanned<String>>,
    /// Names as written; `all` is kept literally and expanded by the planner.
    pub templates: Vec<Spanned<String>>,
    /// Parameter name (with its line) and value.
    pub params: Vec<(Spanned<String>, Spanned<Value>)>,
    /// CSV cells are all text: the planner turns them into numbers where the model wants one.
    pub params_are_text: bool,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    /// Local inputs are relative to this folder.
    pub dir: PathBuf,
    pub name: String,
    pub output: Option<Spanned<String>>,
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn diagnostic(&self, line: Option<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line,
            message: message.into(),
            help: None,
        }
    }
}

/// Reads and parses a manifest; the format follows the extension (`.csv`, else YAML).
pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
    let fail = |line, message: String| {
        Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line,
            message,
            help: None,
        }])
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(None, format!("cannot read the manifest: {e}")))?;
    let dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".into());
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut manifest = Manifest {
        file: path.to_path_buf(),
        dir,
        name: stem,
        output: None,
        entries: Vec::new(),
    };
    if is_csv {
        parse_csv(&text, &mut manifest)?;
    } else {
        parse_yaml(&text, &mut manifest)?;
    }
    Ok(manifest)
}

// ---------------------------------------------------------------------------------------------
// YAML: a located tree built from yaml-rust2's marked events, then read field by field.

#[derive(Debug, Clone)]
struct Node {
    line: usize,
    kind: NodeKind,
}

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
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node) {
        let Some((parent, _)) = self.stack.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
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
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let node = Node {
                    line,
                    kind: NodeKind::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((
                    Node {
                        line,
                        kind: NodeKind::Seq(Vec::new()),
                    },
                    anchor,
                ));
                self.pending_key.push(None);
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((
                    Node {
                        line,
                        kind: NodeKind::Map(Vec::new()),
                    },
                    anchor,
                ));
                self.pending_key.push(None);
            }
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
                    let node = node.clone();
                    self.push_value(node);
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

fn parse_yaml(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
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

// ---------------------------------------------------------------------------------------------
// CSV: one row, one entry. Known columns are job fields; every other column is a parameter.

fn parse_csv(text: &str, manifest: &mut Manifest) -> Result<(), Diagnostics> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Manifest, Diagnostics> {
        let mut m = Manifest {
            file: "m.yaml".into(),
            dir: ".".into(),
            name: "m".into(),
            output: None,
            entries: Vec::new(),
        };
        parse_yaml(text, &mut m).map(|_| m)
    }

    #[test]
    fn yaml_entries_remember_their_lines() {
        let m = yaml(
            "name: spring\njobs:\n  - model: magic/image-to-video\n    inputs: [a.jpg, b.png]\n    template: Tokyo Billboard\n  - model: pixverse/v5/image-to-video\n    input: p.jpg\n    prompt: hi\n    params: {duration: 5, resolution: 720p, seed: '7'}\n",
        )
        .unwrap();
        assert_eq!(m.name, "spring");
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].line, 3);
        assert_eq!(m.entries[0].inputs[1].value, "b.png");
        assert_eq!(m.entries[0].inputs[1].line, 4);
        assert_eq!(m.entries[1].templates.len(), 0);
        let params: Vec<_> = m.entries[1]
            .params
            .iter()
            .map(|(k, v)| (k.value.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            params,
            vec![
                ("duration", 5.into()),
                ("resolution", "720p".into()),
                ("seed", "7".into())
            ]
        );
        assert_eq!(m.entries[1].params[0].0.line, 9);
    }

    #[test]
    fn defaults_apply_and_params_merge() {
        let m = yaml(
            "defaults:\n  model: pixverse/v5/image-to-video\n  params: {duration: 8, resolution: 540p}\njobs:\n  - input: a.jpg\n    prompt: x\n    params: {duration: 5}\n",
        )
        .unwrap();
        let e = &m.entries[0];
        assert_eq!(e.model.as_ref().unwrap().value, "pixverse/v5/image-to-video");
        let mut params: Vec<_> = e
            .params
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            params,
            vec![("duration".into(), 5.into()), ("resolution".into(), "540p".into())]
        );
    }

    #[test]
    fn unknown_fields_are_located_with_a_suggestion() {
        let err = yaml("jobs:\n  - model: magic/image-to-video\n    input: a.jpg\n    tempates: [Tokyo Billboard]\n")
            .unwrap_err();
        let d = &err.0[0];
        assert_eq!(d.line, Some(4));
        assert!(d.message.contains("`tempates`"), "{d}");
        assert!(d.help.as_deref().unwrap().contains("`templates`"), "{d}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = yaml("jobs:\n  - model: x\n    inputs: [a.jpg\n").unwrap_err();
        assert!(err.0[0].line.is_some());
        assert!(err.0[0].message.starts_with("invalid YAML"), "{err}");
    }

    #[test]
    fn singular_and_plural_together_are_refused() {
        let err = yaml("jobs:\n  - model: m\n    input: a\n    inputs: [b]\n").unwrap_err();
        assert_eq!(err.0[0].line, Some(4));
    }

    #[test]
    fn anchors_and_aliases_are_followed() {
        let m = yaml("x: &imgs [a.jpg, b.jpg]\njobs:\n  - model: m\n    inputs: *imgs\n");
        // `x` is not a manifest field, but the alias itself must resolve.
        assert!(m.unwrap_err().0.iter().all(|d| !d.message.contains("alias")));
    }

    #[test]
    fn csv_rows_become_entries_with_lines() {
        let mut m = Manifest {
            file: "m.csv".into(),
            dir: ".".into(),
            name: "m".into(),
            output: None,
            entries: Vec::new(),
        };
        parse_csv(
            "model,input,prompt,template,duration\n# a comment\nmagic/image-to-video,a.jpg,,Tokyo Billboard|Phone App,\n\npixverse/v5/image-to-video,b.jpg,hello,,8\n",
            &mut m,
        )
        .unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].templates.len(), 2);
        assert_eq!(m.entries[1].line, 5);
        assert_eq!(m.entries[1].params[0].1.value, Value::String("8".into()));
        assert!(m.entries[1].params_are_text);
    }
}
