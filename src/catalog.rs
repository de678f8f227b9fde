//! What the client knows about the models it validates: required fields, enums, defaults, lengths,
//! and the tolerant template matching that maps a gallery spelling to the one value the API wants.
//!
//! This is the client's own reading of the vendor's documentation. The simulator deliberately does
//! not use it (it validates with the vendor's OpenAPI JSON), so a mistake here shows up as a 400.

use std::fmt::Write as _;

/// What kind of media a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    /// An image or a video (the model works from either).
    ImageOrVideo,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::ImageOrVideo => "image or video",
        }
    }

    /// Whether a file whose mime family (`image`, `video`, `audio`) is `family` fits.
    pub fn takes(self, family: &str) -> bool {
        match self {
            MediaKind::Image => family == "image",
            MediaKind::Video => family == "video",
            MediaKind::Audio => family == "audio",
            MediaKind::ImageOrVideo => family == "image" || family == "video",
        }
    }

    fn parse(word: &str) -> Option<MediaKind> {
        match word {
            "image" => Some(MediaKind::Image),
            "video" => Some(MediaKind::Video),
            "audio" => Some(MediaKind::Audio),
            "image_or_video" => Some(MediaKind::ImageOrVideo),
            _ => None,
        }
    }
}

/// Where a job's `input` goes in the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSlot {
    /// The model takes no input file (text-to-video: the prompt is the input).
    None,
    /// An image, sent in the named field.
    Image(&'static str),
    /// A video, sent in the named field.
    Video(&'static str),
    /// Another kind of media (audio; an image or a video), sent in the named field.
    Media(&'static str, MediaKind),
}

impl InputSlot {
    pub fn field(self) -> Option<&'static str> {
        match self {
            InputSlot::None => None,
            InputSlot::Image(f) | InputSlot::Video(f) | InputSlot::Media(f, _) => Some(f),
        }
    }

    /// The kind of media the slot accepts.
    pub fn kind(self) -> Option<MediaKind> {
        match self {
            InputSlot::None => None,
            InputSlot::Image(_) => Some(MediaKind::Image),
            InputSlot::Video(_) => Some(MediaKind::Video),
            InputSlot::Media(_, kind) => Some(kind),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    Text {
        max_chars: Option<usize>,
    },
    Choice(&'static [&'static str]),
    IntChoice(&'static [i64]),
    /// A whole number within these bounds (`i64::MIN`/`MAX` where the docs give none).
    IntRange(i64, i64),
    /// Any number within these bounds.
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Bool,
    /// A file or URL of this kind (a list of them when `list`); `data_uri`: whether the docs say
    /// the field takes a base64 `data:` URI (`None`: they do not say).
    Media {
        kind: MediaKind,
        list: bool,
        data_uri: Option<bool>,
        /// For a list: how many it takes.
        items: (Option<usize>, Option<usize>),
    },
    /// A list of values (checked for its length; its items are the service's to judge).
    List {
        min: Option<usize>,
        max: Option<usize>,
    },
    /// A JSON object: its documented fields are checked (required ones present, each one's
    /// kind); others are the service's to judge. A media field inside it takes URLs only (files
    /// are read for the request's own fields, not inside mappings).
    Object {
        fields: &'static [ParamSpec],
    },
    /// The docs allow several types: sent as written.
    Any,
}

impl ParamKind {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ParamKind::IntChoice(_) | ParamKind::IntRange(..) | ParamKind::Number { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    /// Filled in when the manifest leaves it out, so that "omitted" and "the default" are one job.
    pub default: Option<DefaultValue>,
    /// The request is refused without it.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Str(&'static str),
    Int(i64),
    Num(f64),
    Bool(bool),
}

impl DefaultValue {
    pub fn to_json(self) -> serde_json::Value {
        match self {
            DefaultValue::Str(s) => s.into(),
            DefaultValue::Int(i) => i.into(),
            DefaultValue::Num(n) => n.into(),
            DefaultValue::Bool(b) => b.into(),
        }
    }

    /// Whether `value` (as coerced for its parameter) is this default.
    pub fn is(self, value: &serde_json::Value) -> bool {
        match self {
            DefaultValue::Str(s) => value.as_str() == Some(s),
            DefaultValue::Int(i) => value.as_i64() == Some(i) || value.as_f64() == Some(i as f64),
            DefaultValue::Num(n) => value.as_f64() == Some(n),
            DefaultValue::Bool(b) => value.as_bool() == Some(b),
        }
    }
}

#[derive(Debug)]
pub struct ModelSpec {
    pub id: &'static str,
    pub input: InputSlot,
    /// Whether a job needs an input for `input` (some models work from a prompt or an input).
    pub input_required: bool,
    /// The main field takes a list (`image_urls`): the input is sent as a list of one.
    pub input_list: bool,
    /// Whether the request takes a `prompt` (and so whether the manifest may give prompts); its
    /// `required` says whether it needs one.
    pub prompt: Option<ParamSpec>,
    /// The `template` enum; empty when the model has no templates.
    pub templates: &'static [&'static str],
    pub default_template: Option<&'static str>,
    /// Optional parameters besides input, prompt and template.
    pub params: &'static [ParamSpec],
    /// Other spellings of the id seen in the docs: a manifest may write any; `id` is sent.
    pub aliases: &'static [&'static str],
    /// What the model does (`image-to-video`, …), as the catalog says.
    pub task: &'static str,
    /// The docs say the model is deprecated: it runs, with a warning.
    pub deprecated: bool,
    /// How long a render takes by the docs (seconds, least and most): the first polls' prior.
    pub render_seconds: Option<(f64, f64)>,
    /// From the generated catalog (`catalog/models.json`), not hand-written: defaults are not
    /// sent (the service applies its own), and a value written equal to its default is dropped,
    /// so that "omitted" and "the default" are one job.
    pub generated: bool,
}

mod describe;
mod generated;
mod seeds;

pub use describe::describe;
pub use generated::catalog_source;
use seeds::SEEDS;

/// Every model the client validates: the hand-written four, then the generated catalog's others.
pub fn models() -> &'static [ModelSpec] {
    static ALL: std::sync::OnceLock<Vec<ModelSpec>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| generated::with_seeds(SEEDS))
}

/// The model a manifest names, by its id or by another spelling the docs use. (Looked up for
/// every poll the coordinator plans: a map, not a scan of the catalog.)
pub fn model(id: &str) -> Option<&'static ModelSpec> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static ModelSpec>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for m in models() {
            for alias in m.aliases {
                map.entry(*alias).or_insert(m);
            }
        }
        // An id wins over another model's alias of the same spelling.
        for m in models() {
            map.insert(m.id, m);
        }
        map
    });
    by_name.get(id).copied()
}

/// A model id that is not known but is suspiciously close to one that is (`magic/image-to-vidoe`,
/// `Magic/Image-To-Video`): such a typo would otherwise be sent unvalidated and refused remotely,
/// or worse, accepted as some other model. Ids whose numbers differ (`pixverse/v4.5/…`) are other
/// versions, real models of their own, and pass.
pub fn near_miss_model(id: &str) -> Option<&'static str> {
    let lower = id.trim().to_lowercase();
    // A catalogued name without its family (`image-to-video` for `magic/image-to-video`): the
    // service refuses it at run time, job after job. When several families share the name, the
    // first catalogued one is suggested.
    if !lower.is_empty()
        && let Some(m) = models().iter().find(|m| m.id.ends_with(&format!("/{lower}")))
    {
        return Some(m.id);
    }
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    models()
        .iter()
        .filter(|m| m.id != id && digits(m.id) == digits(&lower))
        .map(|m| (m.id, strsim::osa_distance(&lower, m.id)))
        .filter(|&(_, d)| d <= 2)
        .min_by_key(|&(_, d)| d)
        .map(|(known, _)| known)
}

impl ModelSpec {
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Rules between parameters that no single enum expresses: what is wrong, and what to do.
    pub fn check_combination(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), (String, String)> {
        if self.id == "pixverse/v5/image-to-video"
            && params.get("resolution").and_then(|v| v.as_str()) == Some("1080p")
            && params.get("duration").and_then(|v| v.as_i64()) == Some(8)
        {
            return Err((
                "`resolution: 1080p` does not allow `duration: 8`".into(),
                "use `duration: 5`, or a lower resolution (`720p`, `540p` or `360p`) for 8 seconds".into(),
            ));
        }
        Ok(())
    }

    /// Maps a template name as a person wrote it to the exact value the API wants.
    pub fn resolve_template(&self, written: &str) -> Result<&'static str, TemplateError> {
        if self.templates.is_empty() {
            return Err(TemplateError::NoTemplates { model: self.id });
        }
        let folded = fold_name(written);
        let matches: Vec<&'static str> = self
            .templates
            .iter()
            .copied()
            .filter(|t| fold_name(t) == folded)
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(TemplateError::Unknown {
                model: self.id,
                written: written.to_string(),
                suggestions: suggest(&folded, self.templates),
            }),
            many => Err(TemplateError::Ambiguous {
                model: self.id,
                written: written.to_string(),
                candidates: many.to_vec(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    NoTemplates {
        model: &'static str,
    },
    Unknown {
        model: &'static str,
        written: String,
        suggestions: Vec<&'static str>,
    },
    Ambiguous {
        model: &'static str,
        written: String,
        candidates: Vec<&'static str>,
    },
}

/// What is wrong; [`TemplateError::help`] says what to do.
impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::NoTemplates { model } => write!(f, "`{model}` takes no template"),
            TemplateError::Unknown { model, written, .. } => write!(f, "unknown template `{written}` for `{model}`"),
            TemplateError::Ambiguous {
                model,
                written,
                candidates,
            } => write!(
                f,
                "template `{written}` for `{model}` could be any of {}",
                quoted_list(candidates)
            ),
        }
    }
}

impl TemplateError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            TemplateError::NoTemplates { .. } => "remove `template:` (in a CSV, leave the cell empty)".into(),
            TemplateError::Unknown { model, suggestions, .. } => {
                let list = format!("`vidbatch templates {model}` lists them all");
                if suggestions.is_empty() {
                    list
                } else {
                    format!("did you mean {}? ({list})", quoted_list(suggestions))
                }
            }
            TemplateError::Ambiguous { .. } => "write one of them exactly".into(),
        }
    }
}

pub fn quoted_list(names: &[&str]) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == names.len() { " or " } else { ", " });
        }
        let _ = write!(out, "`{n}`");
    }
    out
}

/// Folds a name so that the spellings people copy from the galleries compare equal: case, spaces
/// and punctuation are ignored, and look-alike letters (the Cyrillic `С` of `Rotating Сards`) are
/// mapped to their Latin twins by the Unicode confusables skeleton. Digits are kept, so `(66)`
/// never matches `(67)`.
pub fn fold_name(name: &str) -> String {
    let lower = name.to_lowercase();
    unicode_security::skeleton(&lower)
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Names close to `folded`, best first; all of a short list when nothing is close, so the user
/// always sees what exists.
fn suggest(folded: &str, names: &'static [&'static str]) -> Vec<&'static str> {
    let mut scored: Vec<(f64, &'static str)> = names
        .iter()
        .map(|n| (strsim::normalized_levenshtein(folded, &fold_name(n)), *n))
        .filter(|(s, _)| *s >= 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<&'static str> = scored.into_iter().take(4).map(|(_, n)| n).collect();
    if close.is_empty() && names.len() <= 8 {
        return names.to_vec();
    }
    close
}

/// The closest of `candidates` to `written`, for "did you mean" on field and parameter names.
pub fn closest<'a>(written: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_levenshtein(&written.to_lowercase(), c), c))
        .filter(|(s, _)| *s >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i2v() -> &'static ModelSpec {
        model("magic/image-to-video").unwrap()
    }
    fn v2v() -> &'static ModelSpec {
        model("magic/video-to-video").unwrap()
    }

    #[test]
    fn gallery_spellings_resolve_to_the_enum_value() {
        // The gallery's `Rotating Сards` has a Cyrillic С (U+0421).
        assert_eq!(i2v().resolve_template("Rotating \u{0421}ards"), Ok("Rotating Cards"));
        assert_eq!(
            i2v().resolve_template("New York Times Square(66)"),
            Ok("New York Times Square (66)")
        );
        assert_eq!(i2v().resolve_template("tokyo   BILLBOARD"), Ok("Tokyo Billboard"));
        assert_eq!(i2v().resolve_template("las-vegas-led"), Ok("Las Vegas LED"));
        assert_eq!(
            v2v().resolve_template("New York Times Square(78)"),
            Ok("New York Times Square (78)")
        );
    }

    #[test]
    fn a_gallery_name_the_model_lacks_is_refused_not_mapped_to_a_neighbour() {
        let err = v2v().resolve_template("New York Times Square(66)").unwrap_err();
        let TemplateError::Unknown { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(suggestions.contains(&"New York Times Square (67)"), "{suggestions:?}");
        assert!(suggestions.contains(&"New York Times Square (78)"), "{suggestions:?}");
        // Digital Float and Frames Drop exist only for image-to-video.
        assert!(v2v().resolve_template("Digital Float").is_err());
    }

    #[test]
    fn unknown_template_suggests_close_names() {
        let err = i2v().resolve_template("Tokio Bilboard").unwrap_err();
        assert!(err.help().contains("did you mean `Tokyo Billboard`"), "{err}");
    }

    #[test]
    fn template_on_a_model_without_templates_is_refused() {
        let pix = model("pixverse/v5/image-to-video").unwrap();
        assert_eq!(
            pix.resolve_template("Thailand Street"),
            Err(TemplateError::NoTemplates { model: pix.id })
        );
    }

    #[test]
    fn near_miss_model_ids_are_caught() {
        assert_eq!(near_miss_model("magic/image-to-vidoe"), Some("magic/image-to-video"));
        assert_eq!(near_miss_model("Magic/Image-To-Video"), Some("magic/image-to-video"));
        assert_eq!(
            near_miss_model("pixverse/v5/image-to-vide"),
            Some("pixverse/v5/image-to-video")
        );
        assert_eq!(near_miss_model("kling-video/v1.6/standard/text-to-video"), None);
        // Other versions are other models, not typos.
        assert_eq!(near_miss_model("pixverse/v4.5/image-to-video"), None);
        assert_eq!(near_miss_model("pixverse/v5.5/image-to-video"), None);
        assert_eq!(
            near_miss_model("pixverse/v5/image-to-vidoe"),
            Some("pixverse/v5/image-to-video")
        );
        assert_eq!(near_miss_model("magic/image-to-image"), None);
        // The family forgotten.
        assert_eq!(near_miss_model("image-to-video"), Some("magic/image-to-video"));
        assert_eq!(near_miss_model("text-to-video"), Some("magic/text-to-video"));
        assert_eq!(near_miss_model("v5/image-to-video"), Some("pixverse/v5/image-to-video"));
        assert_eq!(near_miss_model("to-video"), None);
        assert_eq!(near_miss_model("magic/image-to-video"), None);
    }

    #[test]
    fn pixverse_1080p_with_eight_seconds_is_refused() {
        let pix = model("pixverse/v5/image-to-video").unwrap();
        let mut p = serde_json::Map::new();
        p.insert("resolution".into(), "1080p".into());
        p.insert("duration".into(), 8.into());
        assert!(pix.check_combination(&p).is_err());
        p.insert("duration".into(), 5.into());
        assert!(pix.check_combination(&p).is_ok());
    }
}
