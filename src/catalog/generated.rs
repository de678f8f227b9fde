//! The generated catalog (`catalog/models.json`, made by `tools/catalog/generate.py` from the
//! vendor's docs), read once into the same [`ModelSpec`]s the hand-written models use, so that
//! every model is checked by one code path. The specs live as long as the process: their strings
//! and lists are leaked once, at the first look-up.

use serde::Deserialize;
use serde_json::Value;

use super::{DefaultValue, InputSlot, MediaKind, ModelSpec, ParamKind, ParamSpec};

/// The embedded catalog file, as generated.
const CATALOG: &str = include_str!("../../catalog/models.json");

/// Which snapshot of the vendor's docs the catalog was made from (`aimlapi/api-docs@<commit>`),
/// read when the catalog is.
pub fn catalog_source() -> &'static str {
    super::models();
    SOURCE.get().map_or("", String::as_str)
}

static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[derive(Deserialize)]
struct CatalogFile {
    #[serde(default)]
    source: Source,
    models: Vec<Entry>,
}

#[derive(Deserialize, Default)]
struct Source {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    commit: String,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    task: String,
    input: Option<Input>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    media: Vec<Media>,
    render_seconds: Option<Seconds>,
    #[serde(default)]
    deprecated: bool,
}

#[derive(Deserialize)]
struct Input {
    field: String,
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    list: bool,
}

#[derive(Deserialize)]
struct Seconds {
    min: f64,
    max: f64,
}

#[derive(Deserialize)]
struct Param {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
    #[serde(rename = "enum")]
    choices: Option<Vec<Value>>,
    default: Option<Value>,
    min: Option<f64>,
    max: Option<f64>,
    max_length: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    #[serde(default)]
    alt_types: Vec<String>,
    /// An object's fields, in the same shape.
    #[serde(default)]
    fields: Vec<Param>,
}

#[derive(Deserialize)]
struct Media {
    field: String,
    kind: String,
    #[serde(default)]
    list: bool,
    data_uri: Option<bool>,
}

/// The hand-written `seeds`, then every other model of the generated catalog.
pub(super) fn with_seeds(seeds: &'static [ModelSpec]) -> Vec<ModelSpec> {
    let file: CatalogFile = serde_json::from_str(CATALOG).expect("the embedded catalog is valid (a test reads it)");
    let commit: String = file.source.commit.chars().take(8).collect();
    let _ = SOURCE.set(format!("{}@{commit}", file.source.repository));
    let mut all: Vec<ModelSpec> = Vec::with_capacity(seeds.len() + file.models.len());
    for seed in seeds {
        // The docs' other spellings of a seed model resolve to it too.
        let aliases = file
            .models
            .iter()
            .find(|e| e.id == seed.id)
            .map_or(seed.aliases, |e| leak_strs(&e.aliases));
        all.push(ModelSpec { aliases, ..copy(seed) });
    }
    for entry in file.models {
        if seeds.iter().any(|s| s.id == entry.id) {
            continue;
        }
        all.push(spec(entry));
    }
    all
}

/// A field-by-field copy of a static spec (its lists are `'static` already).
fn copy(s: &ModelSpec) -> ModelSpec {
    ModelSpec {
        id: s.id,
        input: s.input,
        input_required: s.input_required,
        input_list: s.input_list,
        prompt: s.prompt,
        templates: s.templates,
        default_template: s.default_template,
        params: s.params,
        aliases: s.aliases,
        task: s.task,
        deprecated: s.deprecated,
        render_seconds: s.render_seconds,
        generated: s.generated,
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn leak_strs(list: &[String]) -> &'static [&'static str] {
    Box::leak(list.iter().map(|s| leak(s)).collect::<Vec<_>>().into_boxed_slice())
}

fn spec(entry: Entry) -> ModelSpec {
    let param = |name: &str| entry.params.iter().find(|p| p.name == name);
    // A main field that takes several at once (`image_list`, at least two) is no place for one
    // input per job: it is a named media field, given as a list.
    let several = |i: &Input| i.list && param(&i.field).and_then(|p| p.min_items).is_some_and(|n| n > 1);
    let main = entry.input.as_ref().filter(|i| !several(i));
    let input = match main {
        Some(i) => match MediaKind::parse(&i.kind) {
            Some(MediaKind::Image) => InputSlot::Image(leak(&i.field)),
            Some(MediaKind::Video) => InputSlot::Video(leak(&i.field)),
            Some(kind) => InputSlot::Media(leak(&i.field), kind),
            None => InputSlot::None,
        },
        None => InputSlot::None,
    };
    let media = |name: &str| entry.media.iter().find(|m| m.field == name);
    let mut prompt = None;
    let mut params = Vec::new();
    for p in &entry.params {
        if p.name == "model" || Some(p.name.as_str()) == input.field() {
            continue;
        }
        let param = ParamSpec {
            name: leak(&p.name),
            kind: match media(&p.name).and_then(|m| Some((m, MediaKind::parse(&m.kind)?))) {
                Some((m, kind)) => ParamKind::Media {
                    kind,
                    list: m.list,
                    data_uri: m.data_uri,
                    items: (p.min_items, p.max_items),
                },
                None => kind_of(p),
            },
            default: p.default.as_ref().and_then(|d| default_of(p, d)),
            required: p.required,
        };
        if p.name == "prompt" {
            prompt = Some(param);
        } else {
            params.push(param);
        }
    }
    ModelSpec {
        id: leak(&entry.id),
        input,
        input_required: main.is_some_and(|i| i.required),
        input_list: main.is_some_and(|i| i.list),
        prompt,
        templates: &[],
        default_template: None,
        params: Box::leak(params.into_boxed_slice()),
        aliases: leak_strs(&entry.aliases),
        task: leak(&entry.task),
        deprecated: entry.deprecated,
        render_seconds: entry.render_seconds.map(|s| (s.min, s.max)),
        generated: true,
    }
}

/// What a parameter takes, by its documented type, enum and bounds.
fn kind_of(p: &Param) -> ParamKind {
    if !p.alt_types.is_empty() {
        return ParamKind::Any;
    }
    match (p.kind.as_str(), &p.choices) {
        ("string", Some(choices)) => {
            let words: Vec<&'static str> = choices.iter().filter_map(Value::as_str).map(leak).collect();
            ParamKind::Choice(Box::leak(words.into_boxed_slice()))
        }
        ("string", None) => ParamKind::Text {
            max_chars: p.max_length,
        },
        ("integer", Some(choices)) => {
            let numbers: Vec<i64> = choices.iter().filter_map(as_int).collect();
            ParamKind::IntChoice(Box::leak(numbers.into_boxed_slice()))
        }
        ("integer", None) => ParamKind::IntRange(
            p.min.map_or(i64::MIN, |m| m.ceil() as i64),
            p.max.map_or(i64::MAX, |m| m.floor() as i64),
        ),
        // A number enum of whole numbers (`duration: [5]`) is a choice; another is a range.
        ("number", Some(choices))
            if choices
                .iter()
                .all(|c| as_int(c).is_some_and(|i| c.as_f64() == Some(i as f64) || c.is_string())) =>
        {
            let numbers: Vec<i64> = choices.iter().filter_map(as_int).collect();
            ParamKind::IntChoice(Box::leak(numbers.into_boxed_slice()))
        }
        ("number", _) => ParamKind::Number { min: p.min, max: p.max },
        ("boolean", _) => ParamKind::Bool,
        ("array", _) => ParamKind::List {
            min: p.min_items,
            max: p.max_items,
        },
        ("object", _) => ParamKind::Object {
            fields: Box::leak(p.fields.iter().map(nested).collect::<Vec<_>>().into_boxed_slice()),
        },
        _ => ParamKind::Any,
    }
}

/// A field of an object: its kind by the same rules; one that takes media (`format: uri`, a
/// `url` or `…_url` name) takes a URL.
fn nested(p: &Param) -> ParamSpec {
    let media = p.kind == "string" && (p.name == "url" || p.name.ends_with("_url"));
    ParamSpec {
        name: leak(&p.name),
        kind: if media {
            ParamKind::Media {
                kind: MediaKind::ImageOrVideo,
                list: false,
                data_uri: Some(false),
                items: (None, None),
            }
        } else {
            kind_of(p)
        },
        default: None,
        required: p.required,
    }
}

/// A whole number, also when the docs write it as text (`"5"`).
fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn default_of(p: &Param, d: &Value) -> Option<DefaultValue> {
    match p.kind.as_str() {
        "integer" => as_int(d).map(DefaultValue::Int),
        "number" => d
            .as_f64()
            .or_else(|| d.as_str().and_then(|s| s.trim().parse().ok()))
            .map(DefaultValue::Num),
        "boolean" => d.as_bool().map(DefaultValue::Bool),
        "string" => d.as_str().map(|s| DefaultValue::Str(leak(s))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_model_is_read_and_the_seeds_keep_their_own_specs() {
        let file: CatalogFile = serde_json::from_str(CATALOG).unwrap();
        let all = super::super::models();
        assert_eq!(all.len(), file.models.len(), "the four seeds are in the catalog too");
        let ids: std::collections::HashSet<&str> = all.iter().map(|m| m.id).collect();
        assert_eq!(ids.len(), all.len(), "one spec per id");
        let pixverse = super::super::model("pixverse/v5/image-to-video").unwrap();
        assert!(!pixverse.generated, "the hand-written checks stay");
        let kling = super::super::model("klingai/v2.1-master-image-to-video").unwrap();
        assert!(kling.generated);
        assert_eq!(kling.input, InputSlot::Image("image_url"));
        assert!(matches!(
            kling.param("duration").map(|p| p.kind),
            Some(ParamKind::IntChoice([5, 10]))
        ));
        // Another spelling the docs use resolves to the id the API takes.
        let with_alias = all.iter().find(|m| !m.aliases.is_empty()).unwrap();
        assert_eq!(super::super::model(with_alias.aliases[0]).unwrap().id, with_alias.id);
        assert!(catalog_source().contains("api-docs@"), "{}", catalog_source());
    }
}
