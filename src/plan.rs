//! Turning manifest entries into validated, content-keyed jobs. Nothing is submitted until this
//! has succeeded for every entry: a single problem anywhere stops the whole run before any credit
//! is spent.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::catalog::{self, ModelSpec, ParamKind};
use crate::manifest::{self, Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

/// The default naming pattern under `<out>/videos/`; empty components are dropped.
pub const DEFAULT_OUTPUT: &str = "{model}/{template}/{input}.mp4";
const PLACEHOLDERS: &[&str] = &["model", "template", "input", "prompt", "job_id"];
/// The columns of a CSV manifest that are job fields, not model parameters.
const CSV_JOB_COLUMNS: &[&str] = &["model", "input", "prompt", "template", "label", "output"];

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
fn is_url(text: &str) -> bool {
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
    legacy: Option<Arc<(String, Map<String, Value>)>>,
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
    /// The user's own columns its entry fills (`#SKU`, …; [`Plan::columns`] names them all):
    /// carried to the results, never sent. Shared by the jobs of one entry.
    pub own: Arc<[(String, String)]>,
    /// The key of its row in the results (`custom_id`): its label, or the column the manifest's
    /// `key` names, else its id (`plan::keys` says how it is made unique).
    pub custom_id: String,
    /// Other names of the same content (another file with the same bytes): one generation, paid
    /// once, and a row and a copy of the video for each name.
    pub aliases: Vec<Alias>,
    params: Map<String, Value>,
    input: Option<(&'static str, InputValue)>,
    /// Files and URLs given for the model's other media fields (`last_image_url`,
    /// `image_urls`, …), shared by the jobs of one entry.
    media: Arc<Vec<NamedMedia>>,
    /// The model's main field takes a list: the input goes as a list of one.
    input_list: bool,
    /// The naming pattern its file is made from: its entry's `output:`, else the manifest's.
    pattern: Arc<str>,
}

/// What a manifest gave for one of a model's media fields besides the main input.
#[derive(Debug, Clone)]
pub struct NamedMedia {
    pub field: &'static str,
    /// As written: a path or URL (a list for a field that takes several).
    pub written: Value,
    values: Vec<InputValue>,
    list: bool,
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

#[derive(Debug, Default)]
pub struct Plan {
    pub name: String,
    pub jobs: Vec<Job>,
    /// Things worth saying that do not stop the run (duplicates, unvalidated models).
    pub warnings: Vec<Diagnostic>,
    /// The user's own columns (`#SKU`, …), as the manifest names them: the results' last columns.
    pub columns: Vec<String>,
    /// How the manifest was written: results are written the same way.
    pub dialect: manifest::Dialect,
}

pub fn plan(manifest: &Manifest) -> Result<Plan, Diagnostics> {
    let mut planner = Planner {
        manifest,
        // What reading found; planning goes on, so that every problem is reported in one run.
        errors: manifest.problems.clone(),
        warnings: manifest.warnings.clone(),
        inputs: HashMap::new(),
        warned_models: Vec::new(),
        column_errors: BTreeMap::new(),
    };
    let pattern = manifest.output.clone().unwrap_or(Spanned {
        value: DEFAULT_OUTPUT.into(),
        at: Pos::default(),
    });
    planner.check_pattern(&pattern);
    let pattern: Arc<str> = pattern.value.into();
    // A job's own `output:` (or a row's `output` cell), each text checked once.
    let mut own_patterns: HashMap<String, Arc<str>> = HashMap::new();
    let mut jobs = Vec::new();
    for entry in &manifest.entries {
        let pattern = match &entry.output {
            Some(own) => own_patterns
                .entry(own.value.clone())
                .or_insert_with(|| {
                    planner.check_pattern(own);
                    own.value.as_str().into()
                })
                .clone(),
            None => pattern.clone(),
        };
        planner.expand(entry, &pattern, &mut jobs);
    }
    planner.report_column_errors();
    planner.errors.extend(keys::assign(manifest, &mut jobs));
    if !planner.errors.is_empty() {
        planner.errors.sort_by_key(|d| d.at.map(|p| (p.line, p.column)));
        return Err(Diagnostics(planner.errors));
    }

    // Identical jobs run once; the same content under another name runs once too, and keeps
    // its own row and file as an alias.
    let unique = aliases::merge_duplicates(manifest, jobs, &mut planner.warnings);
    let primaries = unique.len();
    let mut unique = aliases::with_stand_ins(unique);
    name_files(&mut unique);
    aliases::separate_files(&mut unique, primaries);
    Ok(Plan {
        name: manifest.name.clone(),
        jobs: aliases::fold_back(unique, primaries),
        warnings: planner.warnings,
        columns: manifest.own_columns.clone(),
        dialect: manifest.dialect,
    })
}

struct Planner<'m> {
    manifest: &'m Manifest,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Each local file is read and encoded once, however many jobs use it.
    inputs: HashMap<PathBuf, Arc<LocalInput>>,
    warned_models: Vec<String>,
    /// Problems of table columns, by (header line, column, message).
    column_errors: BTreeMap<(usize, usize, String), ColumnError>,
}

/// One problem of a table's column: where its name is, the help, and the rows (lines) it
/// affects.
struct ColumnError {
    at: Pos,
    help: String,
    rows: Vec<usize>,
}

/// What one entry resolved to, before the cross product.
struct Resolved {
    model: String,
    spec: Option<&'static ModelSpec>,
    inputs: Vec<Option<(String, (&'static str, InputValue))>>,
    prompts: Vec<Option<String>>,
    templates: Vec<Option<String>>,
    params: Map<String, Value>,
    media: Arc<Vec<NamedMedia>>,
    /// The model id and parameters as written, for [`Job::legacy_key`].
    legacy: Option<Arc<(String, Map<String, Value>)>>,
}

impl Planner<'_> {
    /// A problem of a table's column (its name is placed on the header cell): reported once,
    /// with every row it affects, rather than once a row.
    fn column_error(&mut self, entry: &Entry, name: &Spanned<String>, message: String, help: String) {
        let error = self
            .column_errors
            .entry((name.at.line, name.at.column, message))
            .or_insert_with(|| ColumnError {
                at: name.at,
                help,
                rows: Vec::new(),
            });
        error.rows.push(entry.at.line);
    }

    /// The column problems, each made one diagnostic listing its rows.
    fn report_column_errors(&mut self) {
        for ((_, _, message), mut error) in std::mem::take(&mut self.column_errors) {
            error.rows.dedup();
            let message = format!("{message} ({})", self.manifest.rows(&error.rows));
            self.error(error.at, message, Some(error.help));
        }
    }

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

    fn expand(&mut self, entry: &Entry, pattern: &Arc<str>, jobs: &mut Vec<Job>) {
        let errors_before = self.errors.len();
        let Some(resolved) = self.resolve(entry) else {
            return;
        };
        if self.errors.len() > errors_before {
            return;
        }
        let own: Arc<[(String, String)]> = entry.own.iter().map(|(n, v)| (n.clone(), v.value.clone())).collect();
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
                    let key = job_key(&resolved.model, &params, input.as_ref(), &resolved.media);
                    jobs.push(Job {
                        legacy: resolved.legacy.clone(),
                        key,
                        model: resolved.model.clone(),
                        template: template.clone(),
                        input_label,
                        file: String::new(),
                        at: entry.at,
                        user_label: entry.label.as_ref().map(|l| l.value.clone()),
                        own: own.clone(),
                        // Given with the other jobs' in view: [`keys::assign`].
                        custom_id: String::new(),
                        aliases: Vec::new(),
                        params,
                        input,
                        media: resolved.media.clone(),
                        input_list: resolved.spec.is_some_and(|s| s.input_list),
                        pattern: pattern.clone(),
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
        // An unknown id is compared with every catalogued one once, not once a row (100,000 rows
        // of one unknown model spent 2 of their 2.8 s on it).
        if spec.is_none() && !self.warned_models.contains(&model.value) {
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
                        "model `{}` is not one vidbatch knows: its parameters are sent unchecked and the service \
                         will judge them (the catalog is of {}; `vidbatch models` lists it)",
                        model.value,
                        catalog::catalog_source()
                    ),
                ));
            }
        }
        if let Some(spec) = spec
            && spec.deprecated
            && !self.warned_models.contains(&model.value)
        {
            self.warned_models.push(model.value.clone());
            self.warnings.push(self.manifest.warning(
                Some(model.at),
                format!(
                    "model `{}` is deprecated by the vendor: it may stop working; `vidbatch models {}` lists \
                     the models of its task",
                    spec.id, spec.task
                ),
            ));
        }
        let inputs = self.inputs(entry, spec);
        let prompts = self.prompts(entry, spec);
        let templates = self.templates(entry, spec);
        let (params, media) = self.params(entry, spec);
        // Before the catalog, a model of it was sent unchecked: its jobs were keyed by the id and
        // the parameters as written. Kept, so that a folder such a run left is picked up, not
        // paid for again.
        let legacy = spec.filter(|s| s.generated).map(|_| {
            let raw: Map<String, Value> = entry
                .params
                .iter()
                .filter(|(_, v)| !v.value.is_null())
                .map(|(n, v)| {
                    let v = if entry.params_are_text {
                        text_cell_value(&v.value)
                    } else {
                        v.value.clone()
                    };
                    (n.value.clone(), v)
                })
                .collect();
            Arc::new((model.value.clone(), raw))
        });
        Some(Resolved {
            // Another spelling the docs use is sent as the id the API takes.
            model: spec.map_or_else(|| model.value.clone(), |s| s.id.to_string()),
            spec,
            inputs,
            prompts,
            templates,
            params,
            media: Arc::new(media),
            legacy,
        })
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
                (Some(p), true) if p.required => {
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
                Err(e) => match joined_templates(spec, &t.value) {
                    // `Tokyo Billboard, Phone Social`: names that exist, joined as a sentence.
                    Some(names) => {
                        let help = match entry.params_are_text {
                            true => format!("separate templates with `|` in a cell: `{}`", names.join(" | ")),
                            false => format!("write a list: `templates: [{}]`", names.join(", ")),
                        };
                        self.error(
                            t.at,
                            format!("`{}` names {} templates in one", t.value, names.len()),
                            Some(help),
                        );
                    }
                    None => self.error(t.at, e.to_string(), Some(e.help())),
                },
            }
        }
        out
    }

    fn params(&mut self, entry: &Entry, spec: Option<&ModelSpec>) -> (Map<String, Value>, Vec<NamedMedia>) {
        let mut out = Map::new();
        let mut media = Vec::new();
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
            // A column header is matched as written in a spreadsheet: `Negative Prompt`.
            let folded = entry.params_are_text.then(|| manifest::fold_header(&name.value));
            let written = folded.as_deref().unwrap_or(&name.value);
            if matches!(written, "prompt" | "template" | "model") || spec.input.field() == Some(written) {
                if entry.params_are_text {
                    self.column_error(
                        entry,
                        name,
                        format!("the column `{}` is a job field, not a parameter", name.value),
                        "the input's column is named `input`".into(),
                    );
                } else {
                    self.error(
                        name.at,
                        format!("`{}` is a job field, not a parameter", name.value),
                        Some("write it beside `model:` (for the input: `input:`), not under `params:`".into()),
                    );
                }
                continue;
            }
            let Some(param) = spec.param(written) else {
                let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                // A CSV column that is none of the job's: a misspelt job column, most likely.
                let column = entry
                    .params_are_text
                    .then(|| catalog::closest(&name.value, CSV_JOB_COLUMNS.iter().copied()))
                    .flatten();
                let near = catalog::closest(written, known.iter().copied());
                if entry.params_are_text {
                    // A column of the user's, most often: one diagnostic for the column.
                    let own = format!(
                        "rename it `#{}`: a column whose name starts with `#` is yours, never sent",
                        name.value.trim()
                    );
                    let help = match (near, column) {
                        (Some(k), _) => format!("did you mean `{k}`? If the column is yours, {own}"),
                        (None, Some(c)) => format!("did you mean the `{c}` column? If the column is yours, {own}"),
                        (None, None) if known.is_empty() => format!("`{}` takes no parameters; {own}", spec.id),
                        (None, None) => format!("`{}` takes {}; {own}", spec.id, catalog::quoted_list(&known)),
                    };
                    self.column_error(
                        entry,
                        name,
                        format!("unknown column `{}`: not a parameter of `{}`", name.value, spec.id),
                        help,
                    );
                    continue;
                }
                let help = match near {
                    Some(k) => format!("did you mean `{k}`?"),
                    None if known.is_empty() => format!("`{}` takes no parameters: remove `{}`", spec.id, name.value),
                    None => format!("`{}` takes {}", spec.id, catalog::quoted_list(&known)),
                };
                self.error(
                    name.at,
                    format!("unknown parameter `{}` for `{}`", name.value, spec.id),
                    Some(help),
                );
                continue;
            };
            match coerce(param.kind, &value.value) {
                Ok(v) => match param.kind {
                    ParamKind::Media { .. } => {
                        if let Some(m) = self.named_media(param.name, param.kind, &v, value.at) {
                            media.push(m);
                        }
                    }
                    // The generated catalog's defaults are the service's: one written as is
                    // is the job without it (and is not sent).
                    _ if spec.generated && param.default.is_some_and(|d| d.is(&v)) => {}
                    _ => {
                        out.insert(param.name.to_string(), v);
                    }
                },
                Err(refused) => self.error(
                    value.at,
                    format!("`{}` {}", name.value, refused.message),
                    Some(refused.help),
                ),
            }
        }
        if let Some(spec) = spec {
            for p in spec.params {
                if spec.generated {
                    let given = out.contains_key(p.name) || media.iter().any(|m| m.field == p.name);
                    if p.required && !given {
                        let (how, example) = match p.kind {
                            ParamKind::Media { .. } => ("a file or URL", "assets/end.png"),
                            _ => ("a value", "…"),
                        };
                        let help = if entry.params_are_text {
                            format!("add a `{}` column with {how} for each row", p.name)
                        } else {
                            format!("add `{}: {example}` ({how}) to the job or under `defaults:`", p.name)
                        };
                        self.error(entry.at, format!("`{}` needs `{}`", spec.id, p.name), Some(help));
                    }
                } else if let Some(d) = p.default {
                    out.entry(p.name).or_insert_with(|| d.to_json());
                }
            }
        }
        (out, media)
    }
}

fn job_key(
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

mod aliases;
mod inputs;
mod keys;
mod naming;
mod sample;
mod values;

use naming::name_files;
pub use naming::{keep_clear_of, linked_folder, slug};
pub use sample::{sample, spread_order};
use values::{check_value, coerce, text_cell_value};

/// The templates of `written` when it joins several of `spec`'s names with `,` or `;` (as a
/// sentence or a spreadsheet's list would), each one known; `None` otherwise.
fn joined_templates(spec: &ModelSpec, written: &str) -> Option<Vec<&'static str>> {
    let parts: Vec<&str> = written
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 2 {
        return None;
    }
    parts.iter().map(|p| spec.resolve_template(p).ok()).collect()
}

#[cfg(test)]
mod tests;
