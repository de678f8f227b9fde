//! A job and what it is made of: its content key (the SHA-256 of what is sent), its input, its
//! other media and its aliases. Apart from the planning, which only builds them.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::manifest::Pos;

/// A job's identity: the SHA-256 of what is sent (model, parameters, input content or URL), so
/// that reordering or adding manifest lines never changes another job's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(pub String);

impl JobKey {
    /// The short form shown to people and written as `job_id`: 12 hex digits, or as many more
    /// as it takes not to read as a number (`325635679e10`, `000123456789`), which spreadsheets
    /// would turn into one (3.26E+18) when they open `results.csv`.
    pub fn short(&self) -> &str {
        let mut n = self.0.len().min(12);
        while n < self.0.len() && looks_like_a_number(&self.0[..n]) {
            n += 1;
        }
        &self.0[..n]
    }
}

/// Whether a spreadsheet reads hex digits as a number: all digits, or digits, `e`, digits.
fn looks_like_a_number(hex: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match hex.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => digits(mantissa) && digits(exponent),
        None => digits(hex),
    }
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.short())
    }
}

/// A local file read once and shared by every job that uses it.
#[derive(Debug)]
pub struct LocalInput {
    pub path: PathBuf,
    pub sha256: String,
    pub data_url: String,
}

impl LocalInput {
    /// Its content's type, as sniffed: `image/jpeg`.
    pub fn mime(&self) -> &str {
        self.data_url["data:".len()..].split(';').next().unwrap_or("")
    }

    /// `image` or `video`.
    pub fn family(&self) -> &str {
        self.mime().split('/').next().unwrap_or("")
    }
}

/// An input sent as written rather than read from a file.
pub(super) fn is_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:")
}

#[derive(Debug, Clone)]
pub enum InputValue {
    /// Sent as written (an http(s) or data URL).
    Url(String),
    Local(Arc<LocalInput>),
}

impl InputValue {
    fn wire(&self) -> &str {
        match self {
            InputValue::Url(u) => u,
            InputValue::Local(l) => &l.data_url,
        }
    }

    fn identity(&self) -> String {
        match self {
            InputValue::Url(u) => u.clone(),
            InputValue::Local(l) => format!("sha256:{}", l.sha256),
        }
    }
}

/// Another name for a job's input: its own row in `results.csv` and its own file, which is a
/// copy of the job's video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub input_label: String,
    pub user_label: Option<String>,
    /// Its entry's own columns, like [`Job::own`].
    pub own: Arc<[(String, String)]>,
    /// Its row's key, like [`Job::custom_id`].
    pub custom_id: String,
    /// Relative to the output folder (`videos/…`), like [`Job::file`].
    pub file: String,
    pub at: Pos,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub key: JobKey,
    /// The model id and parameters as written, when the model is one an earlier vidbatch sent
    /// unchecked (before the catalog): [`Job::legacy_key`] is made from them on demand (a run
    /// needs it once; `validate` of 100,000 rows not at all).
    pub(super) legacy: Option<Arc<(String, Map<String, Value>)>>,
    pub model: String,
    /// The exact template name sent to the API.
    pub template: Option<String>,
    /// The input as written in the manifest (the prompt for text-to-video).
    pub input_label: String,
    /// Where the video goes, relative to the output folder (`videos/…`), with `/` separators.
    pub file: String,
    /// Where its entry is written in the manifest.
    pub at: Pos,
    /// The manifest's `label`: free text of the user's, carried to `results.csv`, never sent.
    pub user_label: Option<String>,
    /// The user's own columns its entry fills (`#SKU`, …; [`Plan::columns`](super::Plan::columns) names them all):
    /// carried to the results, never sent. Shared by the jobs of one entry.
    pub own: Arc<[(String, String)]>,
    /// The key of its row in the results (`custom_id`): its label, or the column the manifest's
    /// `key` names, else its id (`plan::keys` says how it is made unique).
    pub custom_id: String,
    /// Other names of the same content (another file with the same bytes): one generation, paid
    /// once, and a row and a copy of the video for each name.
    pub aliases: Vec<Alias>,
    pub(super) params: Map<String, Value>,
    pub(super) input: Option<(&'static str, InputValue)>,
    /// Files and URLs given for the model's other media fields (`last_image_url`,
    /// `image_urls`, …), shared by the jobs of one entry.
    pub(super) media: Arc<Vec<NamedMedia>>,
    /// The model's main field takes a list: the input goes as a list of one.
    pub(super) input_list: bool,
    /// The naming pattern its file is made from: its entry's `output:`, else the manifest's.
    pub(super) pattern: Arc<str>,
}

/// What a manifest gave for one of a model's media fields besides the main input.
#[derive(Debug, Clone)]
pub struct NamedMedia {
    pub field: &'static str,
    /// As written: a path or URL (a list for a field that takes several).
    pub written: Value,
    pub(super) values: Vec<InputValue>,
    pub(super) list: bool,
}

impl NamedMedia {
    fn wire(&self) -> Value {
        let mut each = self.values.iter().map(|v| Value::String(v.wire().to_string()));
        match self.list {
            true => Value::Array(each.collect()),
            false => each.next().unwrap_or_default(),
        }
    }

    fn identity(&self) -> Value {
        Value::Array(self.values.iter().map(|v| v.identity().into()).collect())
    }
}

impl Job {
    /// The JSON body of the submit request.
    pub fn body(&self) -> Value {
        let mut body = self.params.clone();
        body.insert("model".into(), self.model.clone().into());
        if let Some((field, value)) = &self.input {
            let wire = Value::from(value.wire());
            body.insert(
                (*field).into(),
                if self.input_list {
                    Value::Array(vec![wire])
                } else {
                    wire
                },
            );
        }
        for m in self.media.iter() {
            body.insert(m.field.into(), m.wire());
        }
        Value::Object(body)
    }

    /// The key an earlier vidbatch gave this job, when it sent the model unchecked (before the
    /// catalog), and that key is not [`Job::key`]: a record under it is this job's
    /// ([`crate::state::RunState::rekey`]).
    pub fn legacy_key(&self) -> Option<JobKey> {
        let (model, raw) = self.legacy.as_deref()?;
        let mut raw = raw.clone();
        if let Some(p) = self.params.get("prompt") {
            raw.insert("prompt".into(), p.clone());
        }
        if let Some(t) = &self.template {
            raw.insert("template".into(), t.clone().into());
        }
        Some(job_key(model, &raw, self.input.as_ref(), &[])).filter(|k| *k != self.key)
    }

    /// The request fields that carry a local file (sent as a `data:` URI).
    pub fn local_fields(&self) -> Vec<&'static str> {
        let main = match &self.input {
            Some((field, InputValue::Local(_))) => Some(*field),
            _ => None,
        };
        main.into_iter()
            .chain(
                self.media
                    .iter()
                    .filter(|m| m.values.iter().any(|v| matches!(v, InputValue::Local(_))))
                    .map(|m| m.field),
            )
            .collect()
    }

    /// The media given for the model's other media fields.
    pub fn media(&self) -> &[NamedMedia] {
        &self.media
    }

    /// The parameters sent besides the model and the input.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The local file the input was read from; `None` for a URL or no input.
    pub fn local_input(&self) -> Option<&std::path::Path> {
        match &self.input {
            Some((_, InputValue::Local(local))) => Some(&local.path),
            _ => None,
        }
    }

    /// The prompt sent, if any.
    pub fn prompt(&self) -> Option<&str> {
        self.params.get("prompt").and_then(Value::as_str)
    }

    /// A short human name for logs: the file without `videos/` and extension.
    pub fn label(&self) -> &str {
        file_label(&self.file)
    }
}

/// A job's name from its file (`videos/a/b.mp4` → `a/b`): what logs, the summary and `status`
/// call it.
pub fn file_label(file: &str) -> &str {
    let f = file.strip_prefix("videos/").unwrap_or(file);
    f.rsplit_once('.').map_or(f, |(stem, _)| stem)
}

pub(super) fn job_key(
    model: &str,
    params: &Map<String, Value>,
    input: Option<&(&'static str, InputValue)>,
    media: &[NamedMedia],
) -> JobKey {
    let mut identity = params.clone();
    if let Some((field, value)) = input {
        identity.insert((*field).into(), value.identity().into());
    }
    for m in media {
        identity.insert(m.field.into(), m.identity());
    }
    let mut hasher = Sha256::new();
    hasher.update(model.as_bytes());
    hasher.update([0]);
    canonical_json(&Value::Object(identity), &mut hasher);
    JobKey(format!("{:x}", hasher.finalize()))
}

/// Hashes JSON with object keys sorted, whatever map order serde_json was built with.
fn canonical_json(v: &Value, hasher: &mut Sha256) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for k in keys {
                hasher.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical_json(&map[k], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for i in items {
                canonical_json(i, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}
