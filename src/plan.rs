//! Turning manifest entries into validated, content-keyed jobs. Nothing is submitted until this
//! has succeeded for every entry: a single problem anywhere stops the whole run before any credit
//! is spent.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::catalog;
use crate::manifest::{self, Diagnostic, Diagnostics, Entry, Manifest, Pos, Spanned};

/// The default naming pattern under `<out>/videos/`; empty components are dropped.
pub const DEFAULT_OUTPUT: &str = "{model}/{template}/{input}.mp4";
const PLACEHOLDERS: &[&str] = &["model", "template", "input", "prompt", "job_id"];
/// The columns of a CSV manifest that are job fields, not model parameters.
const CSV_JOB_COLUMNS: &[&str] = &["model", "input", "prompt", "template", "label", "output"];

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
}

mod aliases;
mod inputs;
mod job;
mod keys;
mod naming;
mod resolve;
mod sample;
mod values;

pub use job::{Alias, InputValue, Job, JobKey, LocalInput, NamedMedia, file_label};
use job::{is_url, job_key};
use naming::name_files;
pub use naming::{keep_clear_of, linked_folder, slug};
pub use sample::{sample, spread_order};

#[cfg(test)]
mod tests;
