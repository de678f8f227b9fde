//! One manifest entry resolved against its model's spec (model, prompts, templates, parameters,
//! each checked) and expanded into the cross product of its jobs.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::values::{check_value, coerce, text_cell_value};
use super::{CSV_JOB_COLUMNS, InputValue, Job, NamedMedia, Planner, job_key};
use crate::catalog::{self, ModelSpec, ParamKind};
use crate::manifest::{self, Entry};

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
    pub(super) fn expand(&mut self, entry: &Entry, pattern: &Arc<str>, jobs: &mut Vec<Job>) {
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
