//! What an output folder holds, read from its state alone: no network, no lock taken, so it works
//! beside a run. `vidbatch status` prints it; `vidbatch validate --out` says per job what a run
//! would do with it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::plan::{Job, Plan};
use crate::results::Status;
use crate::selection::{LeftOut, Options};
use crate::sinks::thousands;
use crate::state::{Phase, StateError, StateReader};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    State(#[from] StateError),
    /// stdout could not be written (a closed pipe, say).
    #[error(transparent)]
    Output(#[from] std::io::Error),
}

/// What `vidbatch validate` is asked about besides the plan: the options of `run` that change
/// what is sent, and the jobs of the plan they leave out.
pub struct Preview<'a> {
    pub options: &'a Options,
    pub left_out: &'a LeftOut,
}

/// `vidbatch validate`: the jobs of this run (the plan cut by `--shard`, `--limit`,
/// `--sample`), each with what tells it apart and, with a folder or a cap, what a run would do
/// with it; then what the jobs to submit should cost, per model, and what `--max-credits` does
/// to them. The decision is [`crate::selection::sending`]'s, as `run`'s is, and is returned:
/// [`crate::selection::Sending::check`] says whether `run` would refuse to start.
pub fn validate(
    out: &mut impl Write,
    path: &Path,
    plan: &mut Plan,
    folder: Option<&Path>,
    price_list: Option<std::sync::Arc<crate::pricing::PriceList>>,
    price_note: Option<String>,
    preview: Preview<'_>,
) -> Result<crate::selection::Sending, InspectError> {
    let options = preview.options;
    let listed = price_list.as_ref().map(|l| l.len());
    let reader = match &folder {
        Some(dir) => match StateReader::open(dir) {
            Ok(reader) => Some(reader),
            Err(StateError::Missing { .. }) => None,
            Err(e) => return Err(e.into()),
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
    let sending = crate::selection::sending(folder.unwrap_or(Path::new("")), &plan.jobs, &records, &prices, options);

    let with_state = folder.is_some() || options.max_credits.is_some();
    let state_head = if with_state { "state    " } else { "" };
    writeln!(
        out,
        "job_id        {state_head}model                       template                    input · prompt [label] -> file"
    )?;
    // Per model and price: jobs a run would submit (and pay for), and what each is expected to
    // cost (jobs of one model differ by duration and resolution).
    let mut to_pay: std::collections::BTreeMap<(&str, u64, &'static str), usize> = Default::default();
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for (i, job) in plan.jobs.iter().enumerate() {
        let state = match sending.is_left(i) {
            true => "over cap",
            false => sending.fates[i].as_str(),
        };
        *counts.entry(state).or_default() += 1;
        if let Some(estimate) = sending.estimates[i].filter(|_| !sending.is_left(i)) {
            *to_pay
                .entry((&job.model, estimate.credits.round() as u64, estimate.basis.as_str()))
                .or_default() += 1;
        }
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
        let summary: Vec<String> = counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
        match &folder {
            Some(dir) => writeln!(out, "in `{}`: {}", dir.display(), summary.join(", "))?,
            None => writeln!(out, "jobs: {}", summary.join(", "))?,
        }
    }
    let new_jobs: usize = to_pay.values().sum();
    if new_jobs == 0 {
        writeln!(out, "nothing to submit: no credits to spend")?;
    } else {
        writeln!(out, "expected cost of the {new_jobs} job(s) to submit:")?;
        let width = to_pay.keys().map(|(m, ..)| m.len()).max().unwrap_or(0);
        let mut total = 0.0;
        for ((model, each, basis), n) in &to_pay {
            let credits = *each as f64 * *n as f64;
            total += credits;
            writeln!(
                out,
                "  {model:<width$}  {n:>5} × {:>11} = {:>14}  ({basis})",
                thousands(*each as f64),
                thousands(credits),
            )?;
        }
        writeln!(
            out,
            "  {:<width$}  {new_jobs:>5}   {:>11}   {:>14}",
            "total",
            "",
            thousands(total)
        )?;
        match (listed, price_note) {
            (_, Some(note)) => writeln!(out, "  prices: {note}")?,
            (Some(n), None) => writeln!(out, "  prices: the API's price list ({n} models), fetched now")?,
            (None, None) => {}
        }
    }
    if let Some(cap) = sending.cap {
        let estimate = sending.estimate();
        let committed = thousands(sending.committed);
        match (sending.within_cap_line(), sending.left.is_empty()) {
            (Some(within), _) => writeln!(out, "{within}")?,
            (None, fits) => writeln!(
                out,
                "--max-credits {}: {committed} committed in the folder + {} to submit = {}: {}",
                thousands(cap),
                thousands(estimate),
                thousands(sending.committed + estimate),
                if fits { "within the cap" } else { "over the cap" }
            )?,
        }
    }
    if let Some(left_out) = preview.left_out.sentence() {
        writeln!(out, "{left_out}")?;
    }
    writeln!(
        out,
        "{}: {} job(s) valid; nothing was sent",
        path.display(),
        plan.jobs.len() + preview.left_out.jobs
    )?;
    out.flush()?;
    Ok(sending)
}

/// A job's input, with what else tells it apart from its neighbours: the prompt (when it is not
/// the input itself) and the label.
fn told_apart_by(job: &Job) -> String {
    // One line per job: a prompt's line breaks are shown as spaces.
    let one_line = |text: &str, max| crate::api::truncate(text, max).replace(['\n', '\r', '\t'], " ");
    let mut cell = one_line(&job.input_label, 48);
    if let Some(prompt) = job.params().get("prompt").and_then(serde_json::Value::as_str)
        && prompt != job.input_label
    {
        cell.push_str(&format!(" · \"{}\"", one_line(prompt, 40)));
    }
    if let Some(label) = &job.user_label {
        cell.push_str(&format!(" [{}]", one_line(label, 32)));
    }
    cell
}

/// `vidbatch status OUT…`: from each folder's state alone, without the network or its lock. A
/// folder that cannot be read is said among the others, then returned as the error.
pub fn status(out: &mut impl Write, folders: &[PathBuf]) -> Result<(), InspectError> {
    let mut totals = [0usize; 6];
    let mut credits_total = 0.0;
    let mut unreadable = None;
    for dir in folders {
        // One folder that cannot be read does not hide the others.
        let records = match StateReader::open(dir).and_then(|reader| reader.records()) {
            Ok(records) => records,
            Err(e) if folders.len() > 1 => {
                writeln!(out, "{}: {}", dir.display(), crate::api::error_chain(&e))?;
                unreadable = Some(e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut counts = [0usize; 6];
        let mut credits = 0.0;
        let mut failures = Vec::new();
        let mut running = Vec::new();
        for r in records.values() {
            credits += r.credits.unwrap_or(0.0);
            // The statuses of `results.csv`, with its pending ones split: still running
            // remotely, or waiting for a run.
            let column = match Status::of(Some(r)) {
                Status::Completed => 0,
                Status::Failed => 1,
                Status::Unknown => 2,
                Status::Pending if r.phase == Phase::Generating => 3,
                Status::Pending => 4,
                Status::AwaitingDownload => 5,
            };
            counts[column] += 1;
            if column == 1 {
                failures.push(r);
            }
            if column == 3 {
                running.push(r);
            }
        }
        let busy = match folder_in_use(dir) {
            true => "a run is going",
            false => "no run is going",
        };
        writeln!(out, "{} ({busy}):", dir.display())?;
        writeln!(
            out,
            "  {}; {} credits recorded",
            counts_text(&counts),
            thousands(credits)
        )?;
        if !running.is_empty() {
            running.sort_by(|a, b| a.file.cmp(&b.file));
            writeln!(out, "  still running remotely ({}):", running.len())?;
            for r in running.iter().take(20) {
                writeln!(
                    out,
                    "    {} {} generation {}",
                    r.key.short(),
                    crate::plan::file_label(&r.file),
                    r.generation_id.as_deref().unwrap_or("-")
                )?;
            }
        }
        if !failures.is_empty() {
            failures.sort_by(|a, b| a.file.cmp(&b.file));
            writeln!(out, "  failed ({}):", failures.len())?;
            for r in failures.iter().take(20) {
                writeln!(
                    out,
                    "    {} {}: {}",
                    r.key.short(),
                    crate::plan::file_label(&r.file),
                    r.error.as_deref().unwrap_or("no reason recorded")
                )?;
            }
            if failures.len() > 20 {
                writeln!(out, "    … and {} more (see results.csv)", failures.len() - 20)?;
            }
        }
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        credits_total += credits;
    }
    if folders.len() > 1 {
        writeln!(
            out,
            "all {} folders: {}; {} credits recorded",
            folders.len(),
            counts_text(&totals),
            thousands(credits_total)
        )?;
    }
    out.flush()?;
    match unreadable {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The counts of `status`, in its columns' order; videos paid for and not saved yet are said only
/// when there are some.
fn counts_text(c: &[usize; 6]) -> String {
    let mut text = format!(
        "{} completed, {} failed, {} unknown, {} running, {} pending",
        c[0], c[1], c[2], c[3], c[4]
    );
    if c[5] > 0 {
        text.push_str(&format!(
            ", {} paid and awaiting download (a rerun fetches them free)",
            c[5]
        ));
    }
    text
}

/// Whether a run holds the folder's lock now: asked with a shared lock, without waiting, and let
/// go at once (a run starting meanwhile waits that instant out). Read-only, so it works on a
/// folder the user may only read.
pub fn folder_in_use(dir: &Path) -> bool {
    match std::fs::File::open(dir.join("state.lock")) {
        Ok(file) => matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}
