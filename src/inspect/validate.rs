//! `vidbatch validate`: the jobs of this run (the plan cut by `--shard`, `--limit`, `--sample`),
//! each with what tells it apart and, with a folder or a cap, what a run would do with it; then
//! what the jobs to submit should cost, per model and price, and what `--max-credits` does to
//! them; as a table for people, or one JSON document. The decision is
//! [`crate::selection::sending`]'s, as `run`'s is: [`Validation::refusal`] says whether `run`
//! with the same options would refuse to start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::{Credits, InspectError, Problem, SCHEMA_VERSION};
use crate::plan::{Job, Plan};
use crate::pricing::PriceList;
use crate::selection::{LeftOut, Options, OverCap, Sending};
use crate::sinks::thousands;
use crate::state::{StateError, StateReader};
use crate::wording::count;

/// What a run would do with a plan's jobs, and what it should cost.
pub struct Validation<'p> {
    plan: &'p Plan,
    folder: Option<&'p Path>,
    /// The jobs of the plan this run leaves out (`--shard`, `--sample`, `--limit`).
    left_out: LeftOut,
    /// What a run sends, and what the cap does to it.
    sending: Sending,
    /// Per job of the plan (same order): what a run would do with it (`over cap` for a job the
    /// cap leaves), and its place in the order the run submits (`None` for a job not submitted).
    jobs: Vec<(&'static str, Option<usize>)>,
    /// Jobs per state.
    states: BTreeMap<&'static str, usize>,
    /// Jobs to submit under the cap, per model, price and what the price is based on.
    to_pay: BTreeMap<(&'p str, u64, &'static str), usize>,
    /// Where the prices come from, in words.
    prices: Option<String>,
}

impl<'p> Validation<'p> {
    /// Reads what `folder` already holds (when given) and decides, as `run` with `options`
    /// would, which jobs are submitted and what they should cost. `plan` is already cut to this
    /// run's part (`left_out` says what was cut); its completed jobs take the file their video
    /// was saved under, as in a run.
    pub fn of(
        plan: &'p mut Plan,
        folder: Option<&'p Path>,
        price_list: Option<Arc<PriceList>>,
        price_note: Option<String>,
        options: &Options,
        left_out: LeftOut,
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
        crate::selection::keep_recorded_files(&mut plan.jobs, &records);
        let plan: &'p Plan = plan;
        let sending =
            crate::selection::sending(folder.unwrap_or(Path::new("")), &plan.jobs, &records, &prices, options);
        let mut place = vec![None; plan.jobs.len()];
        for (n, &i) in sending.order.iter().filter(|&&i| !sending.is_left(i)).enumerate() {
            place[i] = Some(n + 1);
        }
        let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut to_pay: BTreeMap<(&str, u64, &'static str), usize> = BTreeMap::new();
        let jobs = plan
            .jobs
            .iter()
            .enumerate()
            .map(|(i, job): (usize, &'p Job)| {
                let state = match sending.is_left(i) {
                    true => "over cap",
                    false => sending.fates[i].as_str(),
                };
                *states.entry(state).or_default() += 1;
                if let Some(estimate) = sending.estimates[i].filter(|_| !sending.is_left(i)) {
                    *to_pay
                        .entry((
                            job.model.as_str(),
                            estimate.credits.round() as u64,
                            estimate.basis.as_str(),
                        ))
                        .or_default() += 1;
                }
                (state, place[i])
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
            left_out,
            sending,
            jobs,
            states,
            to_pay,
            prices,
        })
    }

    /// Why `run` with the same options would refuse to start: the jobs to submit pass
    /// `--max-credits` and no `--within-cap` says which go.
    pub fn refusal(&self) -> Option<OverCap> {
        self.sending.check().err()
    }

    /// The refusal as `run` says it, with what to do.
    fn refusal_problem(&self) -> Option<Problem> {
        self.refusal().map(|over| {
            Problem::of_message(
                format!("`run` with these options would refuse to start: {over}"),
                Some(over.help()),
            )
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

    /// Whether the table has a state column: a folder or a cap decides something per job.
    fn with_state(&self) -> bool {
        self.folder.is_some() || self.sending.cap.is_some()
    }

    /// The table, the folder's counts, the cost per model and price, and what the cap does.
    pub fn write_text(&self, out: &mut impl Write, path: &Path) -> Result<(), InspectError> {
        let with_state = self.with_state();
        let state_head = if with_state { "state    " } else { "" };
        writeln!(
            out,
            "job_id        {state_head}model                       template                    input · prompt [label] -> file"
        )?;
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
                told_apart_by(job),
                job.file
            )?;
        }
        writeln!(out)?;
        if with_state {
            let summary: Vec<String> = self.states.iter().map(|(state, n)| format!("{n} {state}")).collect();
            match &self.folder {
                Some(dir) => writeln!(out, "in `{}`: {}", dir.display(), summary.join(", "))?,
                None => writeln!(out, "jobs: {}", summary.join(", "))?,
            }
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
        let sending = &self.sending;
        if let Some(cap) = sending.cap {
            let estimate = sending.estimate();
            match (sending.within_cap_line(), sending.left.is_empty()) {
                (Some(within), _) => writeln!(out, "{within}")?,
                (None, fits) => writeln!(
                    out,
                    "--max-credits {}: {} committed in the folder + {} to submit = {}: {}",
                    thousands(cap),
                    thousands(sending.committed),
                    thousands(estimate),
                    thousands(sending.committed + estimate),
                    if fits { "within the cap" } else { "over the cap" }
                )?,
            }
        }
        if let Some(left_out) = self.left_out.sentence() {
            writeln!(out, "{left_out}")?;
        }
        writeln!(
            out,
            "{}: {} valid; nothing was sent",
            path.display(),
            count(self.plan.jobs.len() + self.left_out.jobs, "job")
        )?;
        out.flush()?;
        Ok(())
    }

    /// The JSON document of `validate --json` for a valid manifest: the plan with what a run
    /// would do with each job, the estimate, and what `run` with the same options would do (a
    /// refusal is also one of `errors`, and the document's exit code is `run`'s).
    pub fn write_json(&self, out: &mut impl Write, path: &Path) -> Result<(), InspectError> {
        let plan = self
            .plan
            .jobs
            .iter()
            .enumerate()
            .zip(&self.jobs)
            .map(|((i, job), (state, place))| PlannedJob {
                job_id: job.key.short(),
                state,
                submit: place.is_some(),
                submit_order: *place,
                model: &job.model,
                template: job.template.as_deref(),
                input: &job.input_label,
                prompt: prompt_of(job),
                label: job.user_label.as_deref(),
                file: &job.file,
                credits: self.sending.estimates[i].map(|e| Credits(e.credits.round())),
            })
            .collect();
        let refusal = self.refusal_problem();
        let sending = &self.sending;
        let document = Document {
            schema_version: SCHEMA_VERSION,
            command: "validate",
            manifest: path.display().to_string(),
            valid: true,
            exit_code: match refusal {
                Some(_) => crate::exit_code::INVALID,
                None => crate::exit_code::OK,
            },
            warnings: super::problems(&self.plan.warnings).1,
            jobs: Some(self.plan.jobs.len()),
            folder: self.folder.map(|d| d.display().to_string()),
            states: self.with_state().then_some(&self.states),
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
            run: Some(RunPreview {
                refuses: refusal.is_some(),
                max_credits: sending.cap.map(Credits),
                within_cap: sending.within_cap.map(|w| w.as_str()),
                committed: Credits(sending.committed.round()),
                over_cap_jobs: sending.left.len(),
                over_cap_credits: Credits(sending.left_estimate().round()),
                not_run_jobs: self.left_out.jobs,
                not_run_by: &self.left_out.by,
            }),
            errors: refusal.into_iter().collect(),
            plan: Some(plan),
        };
        write_document(out, &document)
    }
}

/// The prompt of a job, when it is not its input itself (a text-to-video job's input is its
/// prompt).
fn prompt_of(job: &Job) -> Option<&str> {
    job.params()
        .get("prompt")
        .and_then(serde_json::Value::as_str)
        .filter(|prompt| *prompt != job.input_label)
}

/// A job's input, with what else tells it apart from its neighbours: the prompt (when it is not
/// the input itself) and the label.
fn told_apart_by(job: &Job) -> String {
    // One line per job: a prompt's line breaks are shown as spaces.
    let one_line = |text: &str, max| crate::api::truncate(text, max).replace(['\n', '\r', '\t'], " ");
    let mut cell = one_line(&job.input_label, 48);
    if let Some(prompt) = prompt_of(job) {
        cell.push_str(&format!(" · \"{}\"", one_line(prompt, 40)));
    }
    if let Some(label) = &job.user_label {
        cell.push_str(&format!(" [{}]", one_line(label, 32)));
    }
    cell
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
        run: None,
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
    /// What `run` with the same options would do.
    run: Option<RunPreview<'a>>,
    plan: Option<Vec<PlannedJob<'a>>>,
}

#[derive(Serialize)]
struct RunPreview<'a> {
    /// The jobs to submit pass `--max-credits` and no `--within-cap` says which go: `run`
    /// sends nothing (the reason is in `errors`).
    refuses: bool,
    max_credits: Option<Credits>,
    within_cap: Option<&'static str>,
    /// Credits the folder has already committed: charges, and generations not priced yet.
    committed: Credits,
    /// Jobs to submit that the cap leaves unsent (state `over cap`), and what they should cost.
    over_cap_jobs: usize,
    over_cap_credits: Credits,
    /// Jobs of the plan this run leaves out, and the options that do (`shard 2/3`, `--sample 5`).
    not_run_jobs: usize,
    not_run_by: &'a [String],
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
    /// Whether a run with these options submits it (and pays), unless it refuses to start.
    submit: bool,
    /// Its place (from 1) in the order the run submits: the manifest's, or `--within-cap
    /// spread`'s.
    submit_order: Option<usize>,
    model: &'a str,
    template: Option<&'a str>,
    input: &'a str,
    /// The prompt, when it is not the input itself.
    prompt: Option<&'a str>,
    label: Option<&'a str>,
    file: &'a str,
    /// What submitting it should cost, for a job a run would submit (or the cap leaves).
    credits: Option<Credits>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_plan_prices_each_job_to_submit() {
        let text = "jobs:\n  - model: magic/text-to-video\n    prompts: [\"one\", \"two\"]\n    label: promo\n";
        let manifest = crate::manifest::parse(Path::new("m.yaml"), text.into()).unwrap();
        let mut plan = crate::plan::plan(&manifest).unwrap();
        let validation = Validation::of(&mut plan, None, None, None, &Options::default(), LeftOut::default()).unwrap();
        let mut json = Vec::new();
        validation.write_json(&mut json, Path::new("m.yaml")).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!((doc["valid"].as_bool(), doc["jobs"].as_u64()), (Some(true), Some(2)));
        assert_eq!(
            (doc["exit_code"].as_i64(), doc["run"]["refuses"].as_bool()),
            (Some(0), Some(false))
        );
        assert_eq!(
            (
                doc["plan"][1]["submit"].as_bool(),
                doc["plan"][1]["submit_order"].as_u64()
            ),
            (Some(true), Some(2))
        );
        // A text-to-video job's prompt is its input: not said twice.
        assert!(doc["plan"][1]["prompt"].is_null());
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

    #[test]
    fn the_json_document_says_which_jobs_the_cap_leaves_and_that_run_would_refuse() {
        let text = "jobs:\n  - model: magic/text-to-video\n    prompts: [\"one\", \"two\", \"three\"]\n";
        let manifest = crate::manifest::parse(Path::new("m.yaml"), text.into()).unwrap();
        let document = |options: &Options| {
            let mut plan = crate::plan::plan(&manifest).unwrap();
            let left_out = crate::selection::narrow(&mut plan, options);
            let validation = Validation::of(&mut plan, None, None, None, options, left_out).unwrap();
            let mut json = Vec::new();
            validation.write_json(&mut json, Path::new("m.yaml")).unwrap();
            serde_json::from_slice::<serde_json::Value>(&json).unwrap()
        };
        // Room for one of the three jobs, and no `--within-cap`: `run` would refuse.
        let mut options = Options {
            max_credits: Some(1_500_000.0),
            ..Options::default()
        };
        let doc = document(&options);
        assert_eq!(
            (doc["valid"].as_bool(), doc["exit_code"].as_i64()),
            (Some(true), Some(2))
        );
        assert_eq!(doc["run"]["refuses"], true);
        assert_eq!(
            (
                doc["run"]["over_cap_jobs"].as_u64(),
                doc["run"]["over_cap_credits"].as_u64()
            ),
            (Some(2), Some(2_100_000))
        );
        let message = doc["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("`run` with these options would refuse to start: the 3 jobs"),
            "{message}"
        );
        let states: Vec<&str> = doc["plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["new", "over cap", "over cap"]);
        assert_eq!(doc["plan"][2]["submit"], false);
        assert_eq!(doc["plan"][2]["credits"], 1_050_000, "what it would cost is said");
        assert_eq!(doc["states"]["over cap"], 2);
        // `--within-cap order` sends the one that fits: no refusal.
        options.within_cap = Some(crate::selection::WithinCap::Order);
        let doc = document(&options);
        assert_eq!(
            (doc["exit_code"].as_i64(), doc["run"]["refuses"].as_bool()),
            (Some(0), Some(false))
        );
        assert_eq!(doc["run"]["within_cap"], "order");
        assert!(doc["errors"].as_array().unwrap().is_empty());
        assert_eq!(
            (
                doc["estimate"]["jobs"].as_u64(),
                doc["plan"][0]["submit_order"].as_u64()
            ),
            (Some(1), Some(1))
        );
        // A sample leaves jobs out of the run, said with the option.
        let doc = document(&Options {
            sample: Some(2),
            ..Options::default()
        });
        assert_eq!(
            (doc["jobs"].as_u64(), doc["run"]["not_run_jobs"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(doc["run"]["not_run_by"][0], "--sample 2");
    }
}
