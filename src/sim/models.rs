//! The catalogued models as the simulator knows them (`catalog/models.json`): which names the
//! service takes (ids and aliases), the spec file that checks each, and the few facts its prices
//! read (the `duration` and `resolution` a request may omit). Read with its own serde types, not
//! the client's catalog, so a mistake there cannot hide behind the same mistake here.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

const MODELS_JSON: &str = include_str!("../../catalog/models.json");

#[derive(Deserialize)]
struct CatalogFile {
    models: Vec<Model>,
}

#[derive(Debug, Deserialize)]
pub struct Model {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub task: String,
    /// The file under `catalog/vendor/specs/`.
    pub spec: String,
    params: Vec<Param>,
}

#[derive(Debug, Deserialize)]
struct Param {
    name: String,
    #[serde(default, rename = "enum")]
    values: Option<Vec<Value>>,
    default: Option<Value>,
    min: Option<f64>,
}

impl Model {
    /// Whether the body takes this parameter at the top level.
    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// The values a parameter allows, when it has an enum.
    pub fn allowed(&self, name: &str) -> Option<&[Value]> {
        self.param(name)?.values.as_deref()
    }

    /// What an omitted parameter counts as: its default, else its enum's first value, else its
    /// minimum.
    pub fn assumed(&self, name: &str) -> Option<Value> {
        let p = self.param(name)?;
        p.default
            .clone()
            .or_else(|| p.values.as_ref()?.first().cloned())
            .or_else(|| p.min.map(Value::from))
    }

    fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

pub struct Catalog {
    models: Vec<Model>,
    /// Every id and alias, to its model's index.
    by_name: HashMap<String, usize>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let file: CatalogFile = serde_json::from_str(MODELS_JSON).expect("catalog/models.json is embedded and tested");
    let mut by_name = HashMap::new();
    for (i, m) in file.models.iter().enumerate() {
        by_name.insert(m.id.clone(), i);
        for alias in &m.aliases {
            by_name.entry(alias.clone()).or_insert(i);
        }
    }
    Catalog {
        models: file.models,
        by_name,
    }
});

/// The catalog, parsed once per process.
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

impl Catalog {
    /// The model a request names, by id or alias.
    pub fn resolve(&self, name: &str) -> Option<&Model> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Every model, sorted by id.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// The catalogued names nearest a misspelt one, for the error that refuses it.
    pub fn nearest(&self, name: &str) -> Vec<&str> {
        let mut scored: Vec<(f64, &str)> = self
            .by_name
            .keys()
            .map(|k| (strsim::normalized_levenshtein(name, k), k.as_str()))
            .filter(|(score, _)| *score > 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored.into_iter().take(3).map(|(_, k)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_aliases_resolve_to_one_model() {
        let c = catalog();
        assert!(c.models().len() >= 142);
        for m in c.models() {
            assert_eq!(c.resolve(&m.id).unwrap().id, m.id);
            for a in &m.aliases {
                assert_eq!(c.resolve(a).unwrap().id, m.id, "{a}");
            }
        }
        assert_eq!(c.nearest("magic/image-to-vidoe"), ["magic/image-to-video"]);
    }

    #[test]
    fn omitted_parameters_count_as_their_default_else_their_first_value() {
        let c = catalog();
        let veo = c.resolve("google/veo3").unwrap();
        assert_eq!(veo.assumed("duration"), Some(Value::from(8)));
        assert_eq!(veo.assumed("nope"), None);
    }
}
