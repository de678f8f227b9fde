//! YAML manifests: a located tree built from yaml-rust2's marked events (serde readers drop
//! positions), then read field by field so every problem carries its line.

use yaml_rust2::parser::Parser;

use super::{Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

mod syntax;
mod tree;

use syntax::yaml_syntax_help;
use tree::{Node, NodeKind, TreeBuilder, is_null, node_to_json, scalar_text};

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

#[cfg(test)]
mod tests;
