//! `vidbatch validate`: the plan's jobs, each with what a run into a folder would do with it
//! when a folder is given, then what the jobs to submit should cost, per model and price; as a
//! table for people, or one JSON document.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::{Credits, InspectError, Problem, SCHEMA_VERSION, job_state};
use crate::plan::{Job, Plan};
use crate::pricing::PriceList;
use crate::sinks::thousands;
use crate::state::{StateError, StateReader};
use crate::wording::count;

/// What a run would do with a plan's jobs, and what it should cost.
pub struct Validation<'p> {
    plan: &'p Plan,
    folder: Option<&'p Path>,
    /// Per job of the plan (same order): what a run would do with it, and, for a job it would
    /// submit, what that should cost.
    jobs: Vec<(&'static str, Option<u64>)>,
    /// Jobs per state.
    states: BTreeMap<&'static str, usize>,
    /// Jobs to submit per model, price and what the price is based on.
    to_pay: BTreeMap<(&'p str, u64, &'static str), usize>,
    /// Where the prices come from, in words.
    prices: Option<String>,
}

impl<'p> Validation<'p> {
    /// Reads what `folder` already holds (when given) and prices the jobs a run would submit.
    pub fn of(
        plan: &'p Plan,
        folder: Option<&'p Path>,
        price_list: Option<Arc<PriceList>>,
        price_note: Option<String>,
    ) -> Result<Validation<'p>, StateError> {
        let listed = price_list.as_ref().map(|l| l.len());
        let reader = match folder {
            Some(dir) => match StateReader::open(dir) {
                Ok(reader) => Some(reader),
                Err(StateError::Missing { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let records = match &reader {
            Some(r) => r.records()?,
            None => Default::default(),
        };
        let prices = crate::cost::Prices::new(match &reader {
            Some(r) => r.charges_by_model()?,
            None => Default::default(),
        })
        .with_list(price_list);
        let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut to_pay: BTreeMap<(&str, u64, &'static str), usize> = BTreeMap::new();
        let jobs = plan
            .jobs
            .iter()
            .map(|job: &'p Job| {
                let state = folder.map_or("new", |dir| job_state(dir, records.get(&job.key)));
                *states.entry(state).or_default() += 1;
                let each = (state == "new").then(|| {
                    let estimate = prices.estimate_job(job);
                    let each = estimate.credits.round() as u64;
                    *to_pay
                        .entry((job.model.as_str(), each, estimate.basis.as_str()))
                        .or_default() += 1;
                    each
                });
                (state, each)
            })
            .collect();
        let prices = match (listed, price_note) {
            (_, Some(note)) => Some(note),
            (Some(n), None) => Some(format!("the API's price list ({n} models), fetched now")),
            (None, None) => None,
        };
        Ok(Validation {
            plan,
            folder,
            jobs,
            states,
            to_pay,
            prices,
        })
    }

    fn to_submit(&self) -> usize {
        self.to_pay.values().sum()
    }

    fn total(&self) -> f64 {
        self.to_pay
            .iter()
            .map(|((_, each, _), n)| *each as f64 * *n as f64)
            .sum()
    }

    /// The table, the folder's counts, the cost per model and price.
    pub fn write_text(&self, out: &mut impl Write, path: &Path) -> Result<(), InspectError> {
        let with_state = self.folder.is_some();
        if with_state {
            writeln!(
                out,
                "job_id        state    model                       template                    input -> file"
            )?;
        } else {
            writeln!(
                out,
                "job_id        model                       template                    input -> file"
            )?;
        }
        for (job, (state, _)) in self.plan.jobs.iter().zip(&self.jobs) {
            let state_cell = if with_state {
                format!("{state:<8} ")
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:<13} {state_cell}{:<27} {:<27} {} -> {}",
                job.key.short(),
                job.model,
                job.template.as_deref().unwrap_or("-"),
                crate::api::truncate(&job.input_label, 48),
                job.file
            )?;
        }
        writeln!(out)?;
        if let Some(dir) = &self.folder {
            let summary: Vec<String> = self.states.iter().map(|(state, n)| format!("{n} {state}")).collect();
            writeln!(out, "in `{}`: {}", dir.display(), summary.join(", "))?;
        }
        let new_jobs = self.to_submit();
        if new_jobs == 0 {
            writeln!(out, "nothing to submit: no credits to spend")?;
        } else {
            writeln!(out, "expected cost of the {} to submit:", count(new_jobs, "job"))?;
            let width = self.to_pay.keys().map(|(m, ..)| m.len()).max().unwrap_or(0);
            for ((model, each, basis), n) in &self.to_pay {
                writeln!(
                    out,
                    "  {model:<width$}  {n:>5} × {:>11} = {:>14}  ({basis})",
                    thousands(*each as f64),
                    thousands(*each as f64 * *n as f64),
                )?;
            }
            writeln!(
                out,
                "  {:<width$}  {new_jobs:>5}   {:>11}   {:>14}",
                "total",
                "",
                thousands(self.total())
            )?;
            if let Some(prices) = &self.prices {
                writeln!(out, "  prices: {prices}")?;
            }
        }
        writeln!(
            out,
            "{}: {} valid; nothing was sent",
            path.display(),
            count(self.plan.jobs.len(), "job")
        )?;
        out.flush()?;
        Ok(())
    }

    /// The JSON document of `validate --json` for a valid manifest.
    pub fn write_json(&self, out: &mut impl Write, path: &Path) -> Result<(), InspectError> {
        let plan = self
            .plan
            .jobs
            .iter()
            .zip(&self.jobs)
            .map(|(job, (state, each))| PlannedJob {
                job_id: job.key.short(),
                state,
                model: &job.model,
                template: job.template.as_deref(),
                input: &job.input_label,
                label: job.user_label.as_deref(),
                file: &job.file,
                credits: each.map(|c| Credits(c as f64)),
            })
            .collect();
        let document = Document {
            schema_version: SCHEMA_VERSION,
            command: "validate",
            manifest: path.display().to_string(),
            valid: true,
            exit_code: crate::exit_code::OK,
            errors: Vec::new(),
            warnings: super::problems(&self.plan.warnings).1,
            jobs: Some(self.plan.jobs.len()),
            folder: self.folder.map(|d| d.display().to_string()),
            states: self.folder.map(|_| &self.states),
            estimate: Some(Estimate {
                jobs: self.to_submit(),
                credits: Credits(self.total()),
                prices: self.prices.as_deref(),
                lines: self
                    .to_pay
                    .iter()
                    .map(|((model, each, basis), n)| EstimateLine {
                        model,
                        jobs: *n,
                        each: Credits(*each as f64),
                        credits: Credits(*each as f64 * *n as f64),
                        basis,
                    })
                    .collect(),
            }),
            plan: Some(plan),
        };
        write_document(out, &document)
    }
}

/// The JSON document of `validate --json` for a manifest with errors (or a command that could
/// not look at its folder): every problem with its file, line and column, and no plan.
pub fn write_json_invalid(
    out: &mut impl Write,
    path: &Path,
    exit_code: i32,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
) -> Result<(), InspectError> {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        command: "validate",
        manifest: path.display().to_string(),
        valid: false,
        exit_code,
        errors,
        warnings,
        jobs: None,
        folder: None,
        states: None,
        estimate: None,
        plan: None,
    };
    write_document(out, &document)
}

fn write_document(out: &mut impl Write, document: &Document<'_>) -> Result<(), InspectError> {
    serde_json::to_writer(&mut *out, document).map_err(std::io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    command: &'static str,
    manifest: String,
    valid: bool,
    exit_code: i32,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    jobs: Option<usize>,
    folder: Option<String>,
    states: Option<&'a BTreeMap<&'static str, usize>>,
    estimate: Option<Estimate<'a>>,
    plan: Option<Vec<PlannedJob<'a>>>,
}

#[derive(Serialize)]
struct Estimate<'a> {
    /// Jobs a run would submit (and pay for).
    jobs: usize,
    credits: Credits,
    prices: Option<&'a str>,
    lines: Vec<EstimateLine<'a>>,
}

#[derive(Serialize)]
struct EstimateLine<'a> {
    model: &'a str,
    jobs: usize,
    each: Credits,
    credits: Credits,
    basis: &'static str,
}

#[derive(Serialize)]
struct PlannedJob<'a> {
    job_id: &'a str,
    state: &'static str,
    model: &'a str,
    template: Option<&'a str>,
    input: &'a str,
    label: Option<&'a str>,
    file: &'a str,
    /// What submitting it should cost, for a job a run would submit.
    credits: Option<Credits>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_plan_prices_each_job_to_submit() {
        let text = "jobs:\n  - model: magic/text-to-video\n    prompts: [\"one\", \"two\"]\n    label: promo\n";
        let manifest = crate::manifest::parse(Path::new("m.yaml"), text.into()).unwrap();
        let plan = crate::plan::plan(&manifest).unwrap();
        let validation = Validation::of(&plan, None, None, None).unwrap();
        let mut json = Vec::new();
        validation.write_json(&mut json, Path::new("m.yaml")).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!((doc["valid"].as_bool(), doc["jobs"].as_u64()), (Some(true), Some(2)));
        assert_eq!(doc["estimate"]["credits"], serde_json::json!(2_100_000));
        assert_eq!(doc["estimate"]["lines"][0]["each"], serde_json::json!(1_050_000));
        assert_eq!(doc["plan"][1]["input"], "two");
        assert_eq!(doc["plan"][1]["label"], "promo");
        assert_eq!(doc["plan"][1]["state"], "new");
        assert_eq!(doc["plan"][1]["credits"], serde_json::json!(1_050_000));
        let mut table = Vec::new();
        validation.write_text(&mut table, Path::new("m.yaml")).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("expected cost of the 2 jobs to submit:"), "{table}");
        assert!(table.ends_with("m.yaml: 2 jobs valid; nothing was sent\n"), "{table}");
    }
}
