//! Turning manifest entries into validated, content-keyed jobs. Nothing is submitted until this
//! has succeeded for every entry: a single problem anywhere stops the whole run before any credit
//! is spent.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::catalog::{self, InputSlot, ModelSpec};
use crate::manifest::{Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

/// The default naming pattern under `<out>/videos/`; empty components are dropped.
pub const DEFAULT_OUTPUT: &str = "{model}/{template}/{input}.mp4";
const PLACEHOLDERS: &[&str] = &["model", "template", "input", "prompt", "job_id"];
/// The columns of a CSV manifest that are job fields, not model parameters.
const CSV_JOB_COLUMNS: &[&str] = &["model", "input", "prompt", "template"];

/// A job's identity: the SHA-256 of what is sent (model, parameters, input content or URL), so
/// that reordering or adding manifest lines never changes another job's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey(pub String);

impl JobKey {
    /// The short form shown to people and written as `job_id`.
    pub fn short(&self) -> &str {
        &self.0[..12]
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

#[derive(Debug, Clone)]
pub struct Job {
    pub key: JobKey,
    pub model: String,
    /// The exact template name sent to the API.
    pub template: Option<String>,
    /// The input as written in the manifest (the prompt for text-to-video).
    pub input_label: String,
    /// Where the video goes, relative to the output folder (`videos/…`), with `/` separators.
    pub file: String,
    /// Where its entry is written in the manifest.
    pub at: Pos,
    params: Map<String, Value>,
    input: Option<(&'static str, InputValue)>,
}

impl Job {
    /// The JSON body of the submit request.
    pub fn body(&self) -> Value {
        let mut body = self.params.clone();
        body.insert("model".into(), self.model.clone().into());
        if let Some((field, value)) = &self.input {
            body.insert((*field).into(), value.wire().into());
        }
        Value::Object(body)
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

    /// A short human name for logs: the file without `videos/` and extension.
    pub fn label(&self) -> &str {
        let f = self.file.strip_prefix("videos/").unwrap_or(&self.file);
        f.rsplit_once('.').map_or(f, |(stem, _)| stem)
    }
}

#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub jobs: Vec<Job>,
    /// Things worth saying that do not stop the run (duplicates, unvalidated models).
    pub warnings: Vec<Diagnostic>,
}

pub fn plan(manifest: &Manifest) -> Result<Plan, Diagnostics> {
    let mut planner = Planner {
        manifest,
        // What reading found; planning goes on, so that every problem is reported in one run.
        errors: manifest.problems.clone(),
        warnings: Vec::new(),
        inputs: HashMap::new(),
        warned_models: Vec::new(),
    };
    let pattern = manifest.output.clone().unwrap_or(Spanned {
        value: DEFAULT_OUTPUT.into(),
        at: Pos::default(),
    });
    let user_pattern = manifest.output.is_some();
    planner.check_pattern(&pattern);
    let mut jobs = Vec::new();
    for entry in &manifest.entries {
        planner.expand(entry, &mut jobs);
    }
    if !planner.errors.is_empty() {
        planner.errors.sort_by_key(|d| d.at.map(|p| (p.line, p.column)));
        return Err(Diagnostics(planner.errors));
    }

    // Identical jobs run once.
    let mut first_line: HashMap<JobKey, usize> = HashMap::new();
    let mut unique = Vec::with_capacity(jobs.len());
    for job in jobs {
        match first_line.entry(job.key.clone()) {
            MapEntry::Occupied(o) => planner.warnings.push(manifest.warning(
                Some(job.at),
                format!(
                    "this job ({} · {}) repeats the one of line {}: it runs once",
                    job.model,
                    job.input_label,
                    o.get()
                ),
            )),
            MapEntry::Vacant(v) => {
                v.insert(job.at.line);
                unique.push(job);
            }
        }
    }
    let collisions = name_files(&pattern.value, &mut unique);
    // Jobs that a pattern of the user's names alike because it lacks a placeholder: a mistake
    // (the job ids appended would hide it). Alike by chance, the job ids settle it.
    if user_pattern {
        for group in &collisions {
            let (first, second) = (&unique[group[0]], &unique[group[1]]);
            let Some(missing) = naming::missing_placeholder(&pattern.value, first, second) else {
                continue;
            };
            let whose = match (group.len(), first.at.line == second.at.line) {
                (2, true) => format!("2 jobs of line {}", first.at.line),
                (2, false) => format!("the jobs of lines {} and {}", first.at.line, second.at.line),
                (n, true) => format!("{n} jobs (of line {}, among others)", first.at.line),
                (n, false) => format!(
                    "{n} jobs (of lines {} and {}, among others)",
                    first.at.line, second.at.line
                ),
            };
            let mut d = manifest.diagnostic(
                Some(pattern.at),
                format!(
                    "`output` gives {whose} one file name: they differ by `{missing}`, which the pattern does not use"
                ),
            );
            d.help = Some(format!("add `{missing}` (or `{{job_id}}`) to the pattern"));
            planner.errors.push(d);
            break;
        }
        if !planner.errors.is_empty() {
            return Err(Diagnostics(planner.errors));
        }
    }
    Ok(Plan {
        name: manifest.name.clone(),
        jobs: unique,
        warnings: planner.warnings,
    })
}

struct Planner<'m> {
    manifest: &'m Manifest,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Each local file is read and encoded once, however many jobs use it.
    inputs: HashMap<PathBuf, Arc<LocalInput>>,
    warned_models: Vec<String>,
}

/// What one entry resolved to, before the cross product.
struct Resolved {
    model: String,
    spec: Option<&'static ModelSpec>,
    inputs: Vec<Option<(String, (&'static str, InputValue))>>,
    prompts: Vec<Option<String>>,
    templates: Vec<Option<String>>,
    params: Map<String, Value>,
}

impl Planner<'_> {
    fn error(&mut self, at: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.manifest.diagnostic(Some(at), message);
        d.help = help;
        self.errors.push(d);
    }

    /// The place of `part` inside the text at `at`, to underline it alone; `at` if not found there
    /// (an escape in a quoted value, say).
    fn within(&self, at: Pos, part: &str) -> Pos {
        let text = &self.manifest.text;
        let end = (at.offset + at.len).min(text.len());
        match text.get(at.offset..end).and_then(|shown| shown.find(part)) {
            Some(i) if !part.is_empty() => self.manifest.pos(at.offset + i, part.len()),
            _ => at,
        }
    }

    fn check_pattern(&mut self, pattern: &Spanned<String>) {
        let p = &pattern.value;
        let line = pattern.at;
        if p.starts_with('/') || p.starts_with('\\') || p.split(['/', '\\']).any(|c| c == "..") {
            self.error(
                line,
                format!("`output: {p}` must stay inside the output folder (no leading `/`, no `..`)"),
                Some("write a path relative to the output folder (`{template}/{input}.mp4`); `--out DIR` chooses the folder itself".into()),
            );
        }
        let mut rest = p.as_str();
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                self.error(
                    self.within(line, &rest[start..]),
                    format!("`output: {p}` has a `{{` without `}}`"),
                    Some(format!(
                        "close the placeholder, as in `{{input}}`; placeholders are {}",
                        catalog::quoted_list(PLACEHOLDERS)
                    )),
                );
                return;
            };
            let name = &rest[start + 1..start + len];
            if !PLACEHOLDERS.contains(&name) {
                let list = format!("placeholders are {}", catalog::quoted_list(PLACEHOLDERS));
                let help = match catalog::closest(name, PLACEHOLDERS.iter().copied()) {
                    Some(near) => format!("did you mean `{{{near}}}`? {list}"),
                    None => list,
                };
                self.error(
                    self.within(line, &rest[start..=start + len]),
                    format!("`output` uses an unknown placeholder `{{{name}}}`"),
                    Some(help),
                );
            }
            rest = &rest[start + len + 1..];
        }
    }

    fn expand(&mut self, entry: &Entry, jobs: &mut Vec<Job>) {
        let errors_before = self.errors.len();
        let Some(resolved) = self.resolve(entry) else {
            return;
        };
        if self.errors.len() > errors_before {
            return;
        }
        for input in &resolved.inputs {
            for prompt in &resolved.prompts {
                for template in &resolved.templates {
                    let mut params = resolved.params.clone();
                    if let Some(p) = prompt {
                        params.insert("prompt".into(), p.clone().into());
                    }
                    if let Some(t) = template {
                        params.insert("template".into(), t.clone().into());
                    }
                    if let Some(spec) = resolved.spec
                        && let Err((message, help)) = spec.check_combination(&params)
                    {
                        // Underlined: the value of the two that was written last (a job's own
                        // over its defaults), the one that made the pair.
                        let at = entry
                            .params
                            .iter()
                            .filter(|(n, _)| n.value == "resolution" || n.value == "duration")
                            .map(|(_, v)| v.at)
                            .max_by_key(|at| at.offset)
                            .unwrap_or(entry.at);
                        self.error(at, message, Some(help));
                        return;
                    }
                    let input_label = match (input, prompt) {
                        (Some((written, _)), _) => written.clone(),
                        (None, Some(p)) => p.clone(),
                        (None, None) => String::new(),
                    };
                    let input = input.as_ref().map(|(_, i)| i.clone());
                    jobs.push(Job {
                        key: job_key(&resolved.model, &params, input.as_ref()),
                        model: resolved.model.clone(),
                        template: template.clone(),
                        input_label,
                        file: String::new(),
                        at: entry.at,
                        params,
                        input,
                    });
                }
            }
        }
    }

    fn resolve(&mut self, entry: &Entry) -> Option<Resolved> {
        let Some(model) = &entry.model else {
            let help = if entry.params_are_text {
                "fill the row's `model` cell: `magic/image-to-video` or another model id"
            } else {
                "add `model: magic/image-to-video` (or another id), or set it once under `defaults:`"
            };
            self.error(entry.at, "this job has no `model`", Some(help.into()));
            return None;
        };
        let spec = catalog::model(&model.value);
        if spec.is_none() {
            if let Some(known) = catalog::near_miss_model(&model.value) {
                self.error(
                    model.at,
                    format!("unknown model `{}`", model.value),
                    Some(format!("did you mean `{known}`?")),
                );
                return None;
            }
            if !self.warned_models.contains(&model.value) {
                self.warned_models.push(model.value.clone());
                self.warnings.push(self.manifest.warning(
                    Some(model.at),
                    format!(
                        "model `{}` is not one vidbatch knows: its parameters are sent unchecked and the service will judge them",
                        model.value
                    ),
                ));
            }
        }
        let inputs = self.inputs(entry, spec);
        let prompts = self.prompts(entry, spec);
        let templates = self.templates(entry, spec);
        let params = self.params(entry, spec);
        Some(Resolved {
            model: model.value.clone(),
            spec,
            inputs,
            prompts,
            templates,
            params,
        })
    }

    #[allow(clippy::type_complexity)]
    fn inputs(&mut self, entry: &Entry, spec: Option<&ModelSpec>) -> Vec<Option<(String, (&'static str, InputValue))>> {
        let slot = spec.map(|s| s.input);
        match slot {
            Some(InputSlot::None) if !entry.inputs.is_empty() => {
                let model = spec.map_or("", |s| s.id);
                let help = if entry.params_are_text {
                    "leave the `input` cell empty: the text shown in the video goes in the `prompt` column"
                } else {
                    "remove `input:`: the text shown in the video goes in `prompt:` (or `prompts:`)"
                };
                self.error(
                    entry.inputs[0].at,
                    format!("`{model}` takes no input file"),
                    Some(help.into()),
                );
                return vec![None];
            }
            Some(s) if s != InputSlot::None && entry.inputs.is_empty() => {
                let media = s.media().unwrap_or("file");
                self.error(
                    entry.at,
                    format!("`{}` needs an input {media}", spec.map_or("", |s| s.id)),
                    Some(if entry.params_are_text {
                        format!("fill the row's `input` cell with the {media}'s path or URL")
                    } else {
                        format!("add `input:` with the {media}'s path or URL (or `inputs:` with a list of them)")
                    }),
                );
                return vec![None];
            }
            _ => {}
        }
        if entry.inputs.is_empty() {
            return vec![None];
        }
        entry
            .inputs
            .iter()
            .filter_map(|written| {
                let value = self.input_value(written, slot)?;
                Some(Some((written.value.clone(), value)))
            })
            .collect()
    }

    /// Reads a local input (or checks a URL) and decides which request field carries it.
    fn input_value(
        &mut self,
        written: &Spanned<String>,
        slot: Option<InputSlot>,
    ) -> Option<(&'static str, InputValue)> {
        let text = written.value.as_str();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:") {
            let field = match slot {
                Some(s) => s.field()?,
                // An unknown model: the extension is the best guess we have.
                None => guess_field_from_name(&lower),
            };
            return Some((field, InputValue::Url(text.to_string())));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            self.error(
                written.at,
                format!("input `{text}`: `{scheme}://` URLs are not supported"),
                Some("use an http(s) URL or a path relative to the manifest".into()),
            );
            return None;
        }
        let path = self.manifest.dir.join(text);
        let local = match self.inputs.get(&path) {
            Some(l) => l.clone(),
            None => match read_local(&path) {
                Ok(l) => {
                    let l = Arc::new(l);
                    self.inputs.insert(path.clone(), l.clone());
                    l
                }
                Err(refused) => {
                    self.error(
                        written.at,
                        format!("input `{text}`: {}", refused.message),
                        Some(refused.help),
                    );
                    return None;
                }
            },
        };
        let mime = local.data_url["data:".len()..].split(';').next().unwrap_or("");
        let family = mime.split('/').next().unwrap_or("");
        let field = match slot {
            Some(s) => {
                let want = s.media()?;
                if family != want {
                    // A model that takes what was given, if one is known.
                    let other = catalog::MODELS
                        .iter()
                        .find(|m| m.input.media() == Some(family))
                        .map(|m| format!("; for {family} input, use a model such as `{}`", m.id))
                        .unwrap_or_default();
                    let article = |media: &str| if media == "image" { "an" } else { "a" };
                    self.error(
                        written.at,
                        format!(
                            "input `{text}` is {mime}, but this model needs {} {want}",
                            article(want)
                        ),
                        Some(format!("give {} {want} file{other}", article(want))),
                    );
                    return None;
                }
                s.field()?
            }
            None if family == "video" => "video_url",
            None => "image_url",
        };
        Some((field, InputValue::Local(local)))
    }

    fn prompts(&mut self, entry: &Entry, spec: Option<&ModelSpec>) -> Vec<Option<String>> {
        if let Some(spec) = spec {
            match (&spec.prompt, entry.prompts.is_empty()) {
                (None, false) => {
                    let remove = if entry.params_are_text {
                        "leave the `prompt` cell empty"
                    } else {
                        "remove `prompt:`"
                    };
                    self.error(
                        entry.prompts[0].at,
                        format!("`{}` takes no prompt", spec.id),
                        Some(format!(
                            "{remove}: what this model's video shows is set by its template (`vidbatch templates {}`)",
                            spec.id
                        )),
                    );
                    return vec![None];
                }
                (Some(_), true) => {
                    let help = if entry.params_are_text {
                        "fill the row's `prompt` cell with the text that describes the video"
                    } else {
                        "add `prompt:` with the text that describes the video (or `prompts:` with a list)"
                    };
                    self.error(
                        entry.at,
                        format!("`{}` needs `prompt:` (or `prompts:`)", spec.id),
                        Some(help.into()),
                    );
                    return vec![None];
                }
                _ => {}
            }
            if let Some(p) = &spec.prompt {
                for prompt in &entry.prompts {
                    if let Err(refused) = check_value(p.kind, &Value::String(prompt.value.clone())) {
                        let help = if prompt.value.trim().is_empty() {
                            "write the text that describes the video".into()
                        } else {
                            refused.help
                        };
                        self.error(prompt.at, format!("`prompt` {}", refused.message), Some(help));
                    }
                }
            }
        }
        if entry.prompts.is_empty() {
            return vec![None];
        }
        entry.prompts.iter().map(|p| Some(p.value.clone())).collect()
    }

    fn templates(&mut self, entry: &Entry, spec: Option<&ModelSpec>) -> Vec<Option<String>> {
        let Some(spec) = spec else {
            if entry.templates.is_empty() {
                return vec![None];
            }
            return entry.templates.iter().map(|t| Some(t.value.clone())).collect();
        };
        if entry.templates.is_empty() {
            return vec![spec.default_template.map(String::from)];
        }
        if let Some(all) = entry.templates.iter().find(|t| t.value.eq_ignore_ascii_case("all")) {
            if spec.templates.is_empty() {
                self.error(
                    all.at,
                    format!("`{}` takes no template", spec.id),
                    Some("remove `template:` (in a CSV, leave the cell empty)".into()),
                );
                return vec![None];
            }
            if entry.templates.len() > 1 {
                self.error(
                    all.at,
                    "`all` already names every template",
                    Some("give `all` alone, or list only the templates you want".into()),
                );
            }
            return spec.templates.iter().map(|t| Some((*t).to_string())).collect();
        }
        let mut out = Vec::new();
        for t in &entry.templates {
            match spec.resolve_template(&t.value) {
                Ok(exact) if out.contains(&Some(exact.to_string())) => {}
                Ok(exact) => out.push(Some(exact.to_string())),
                Err(e) => self.error(t.at, e.to_string(), Some(e.help())),
            }
        }
        out
    }

    fn params(&mut self, entry: &Entry, spec: Option<&ModelSpec>) -> Map<String, Value> {
        let mut out = Map::new();
        for (name, value) in &entry.params {
            if value.value.is_null() {
                continue;
            }
            let Some(spec) = spec else {
                let v = if entry.params_are_text {
                    text_cell_value(&value.value)
                } else {
                    value.value.clone()
                };
                out.insert(name.value.clone(), v);
                continue;
            };
            if matches!(name.value.as_str(), "prompt" | "template" | "model")
                || spec.input.field() == Some(name.value.as_str())
            {
                let help = if entry.params_are_text {
                    "the input's column is named `input`".into()
                } else {
                    "write it beside `model:` (for the input: `input:`), not under `params:`".into()
                };
                self.error(
                    name.at,
                    format!("`{}` is a job field, not a parameter", name.value),
                    Some(help),
                );
                continue;
            }
            let Some(param) = spec.param(&name.value) else {
                let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                // A CSV column that is none of the job's: a misspelt job column, most likely.
                let column = entry
                    .params_are_text
                    .then(|| catalog::closest(&name.value, CSV_JOB_COLUMNS.iter().copied()))
                    .flatten();
                let help = match (catalog::closest(&name.value, known.iter().copied()), column) {
                    (Some(k), _) => Some(format!("did you mean `{k}`?")),
                    (None, Some(c)) => Some(format!("did you mean the `{c}` column?")),
                    (None, None) if known.is_empty() && entry.params_are_text => Some(format!(
                        "`{}` takes no parameters: leave this cell empty, or give the row to a model that takes `{}`",
                        spec.id, name.value
                    )),
                    (None, None) if known.is_empty() => {
                        Some(format!("`{}` takes no parameters: remove `{}`", spec.id, name.value))
                    }
                    (None, None) => Some(format!("`{}` takes {}", spec.id, catalog::quoted_list(&known))),
                };
                self.error(
                    name.at,
                    format!("unknown parameter `{}` for `{}`", name.value, spec.id),
                    help,
                );
                continue;
            };
            match coerce(param.kind, &value.value) {
                Ok(v) => {
                    out.insert(name.value.clone(), v);
                }
                Err(refused) => self.error(
                    value.at,
                    format!("`{}` {}", name.value, refused.message),
                    Some(refused.help),
                ),
            }
        }
        if let Some(spec) = spec {
            for p in spec.params {
                if let Some(d) = p.default {
                    out.entry(p.name).or_insert_with(|| d.to_json());
                }
            }
        }
        out
    }
}

fn job_key(model: &str, params: &Map<String, Value>, input: Option<&(&'static str, InputValue)>) -> JobKey {
    let mut identity = params.clone();
    if let Some((field, value)) = input {
        identity.insert((*field).into(), value.identity().into());
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

mod inputs;
mod naming;
mod values;

use inputs::{guess_field_from_name, read_local};

use naming::name_files;
pub use naming::{keep_clear_of, slug};
use values::{check_value, coerce, text_cell_value};

#[cfg(test)]
mod tests;
