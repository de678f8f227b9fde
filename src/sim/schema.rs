//! Request validation from the vendor's OpenAPI documents, kept as JSON fixtures beside this
//! file. The simulator answers 400 for what these schemas refuse; it never consults the client's
//! catalog, so a mistake there cannot hide behind the same mistake here.

use serde_json::Value;

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

/// Model ids the simulator accepts without a schema, as the service accepts its ~140 other
/// models: their parameters are not checked here.
pub const UNCHECKED_MODELS: &[&str] = &[
    "kling-video/v1.6/standard/image-to-video",
    "kling-video/v1.6/standard/text-to-video",
    "google/veo3",
    "minimax/hailuo-02",
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
    /// No schema for this model: accepted unchecked.
    Unchecked,
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
        let Some(op) = self.operations.iter().find(|o| o.path == path && o.model == model) else {
            if path == crate::api::GENERATIONS_PATH && UNCHECKED_MODELS.contains(&model) {
                return Verdict::Unchecked;
            }
            let known = self.models(path).join(", ");
            return Verdict::Invalid(vec![format!(
                "model: `{model}` is not a model of this endpoint (known here: {known})"
            )]);
        };
        let errors: Vec<String> = op
            .validator
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
