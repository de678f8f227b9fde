//! Request validation with the vendor's schemas: the four seed models with the OpenAPI documents
//! kept as JSON fixtures beside this file (on their paths, with their template spellings), every
//! other catalogued model with its reduced spec ([`super::specs`]). The simulator answers 400 for
//! what these schemas refuse; it never consults the client's catalog code, so a mistake there
//! cannot hide behind the same mistake here.

use serde_json::Value;

use super::models::catalog;
use super::specs;

/// The vendor's documents: (file name, JSON). Pixverse's page ships no JSON block; its document
/// was written from the page's values (see its `info.description`).
pub const DOCUMENTS: &[(&str, &str)] = &[
    (
        "magic-image-to-video.post.json",
        include_str!("openapi/magic-image-to-video.post.json"),
    ),
    (
        "magic-video-to-video.post.json",
        include_str!("openapi/magic-video-to-video.post.json"),
    ),
    (
        "magic-text-to-video.post.json",
        include_str!("openapi/magic-text-to-video.post.json"),
    ),
    (
        "pixverse-v5-image-to-video.post.json",
        include_str!("openapi/pixverse-v5-image-to-video.post.json"),
    ),
];

struct Operation {
    path: String,
    model: String,
    validator: jsonschema::Validator,
}

pub struct Schemas {
    operations: Vec<Operation>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(Vec<String>),
}

impl Schemas {
    /// Compiles every request schema of the fixtures. Panics on a broken fixture: it is part of
    /// the binary, and a test loads it.
    pub fn load() -> Schemas {
        let mut operations = Vec::new();
        for (name, text) in DOCUMENTS {
            let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
            let paths = doc["paths"]
                .as_object()
                .unwrap_or_else(|| panic!("fixture {name}: no paths"));
            for (path, item) in paths {
                let Some(schema) = item.pointer("/post/requestBody/content/application~1json/schema") else {
                    continue;
                };
                let model = schema
                    .pointer("/properties/model/enum/0")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("fixture {name}: no model enum"))
                    .to_string();
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(schema)
                    .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
                operations.push(Operation {
                    path: path.clone(),
                    model,
                    validator,
                });
            }
        }
        Schemas { operations }
    }

    /// Models that have a schema on `path`.
    pub fn models(&self, path: &str) -> Vec<&str> {
        self.operations
            .iter()
            .filter(|o| o.path == path)
            .map(|o| o.model.as_str())
            .collect()
    }

    pub fn validate(&self, path: &str, body: &Value) -> Verdict {
        let model = body.get("model").and_then(Value::as_str).unwrap_or("");
        let validator = match self.operations.iter().find(|o| o.path == path && o.model == model) {
            Some(op) => &op.validator,
            None => {
                let spec = (path == crate::api::GENERATIONS_PATH)
                    .then(|| catalog().resolve(model))
                    .flatten()
                    .and_then(|m| specs::validator(&m.spec));
                match spec {
                    Some(v) => v,
                    None => return Verdict::Invalid(vec![unknown_model(path, model, self.models(path))]),
                }
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "body".to_string() } else { at };
                // Data URLs are long: keep messages readable.
                format!("{at}: {}", crate::api::truncate(&e.to_string(), 200))
            })
            .collect();
        if errors.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid(errors)
        }
    }
}

/// The refusal of a model this path does not serve: the nearest catalogued names, or on a
/// legacy path the models it serves.
fn unknown_model(path: &str, model: &str, served: Vec<&str>) -> String {
    let mut message = format!("model: `{model}` is not a model of this endpoint");
    if path != crate::api::GENERATIONS_PATH {
        message.push_str(&format!(" (known here: {})", served.join(", ")));
    } else if let near @ [_, ..] = catalog().nearest(model).as_slice() {
        message.push_str(&format!(" (did you mean `{}`?)", near.join("`, `")));
    }
    message
}
