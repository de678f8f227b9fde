//! The end-of-run summary: what happened, per model and status; what it cost beside what was
//! expected (and what a stop left unspent); how long it took, what the videos weigh and how fast
//! they came; the slowest jobs; where the files are; each failure with its reason (saying which
//! are old news from earlier runs); and the exact command that resumes or retries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::tally::Heard;
use super::{short_duration, thousands};
use crate::results::Status;
use crate::wording::{count, timing};

/// One job's line in the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLine {
    pub job_id: String,
    pub model: String,
    pub name: String,
    pub status: Status,
    pub error: Option<String>,
    /// Its failure was recorded by an earlier run.
    pub earlier: bool,
    /// A paid generation failed: only `--paid-retries` submits it again.
    pub paid_failure: bool,
    /// Generations created for it so far.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub jobs: Vec<JobLine>,
    /// Charges the service reported in this run.
    pub credits_now: f64,
    /// What this run's submits were expected to cost.
    pub estimate: Option<f64>,
    /// Every charge recorded for the plan's jobs, all runs.
    pub credits_total: f64,
    /// The jobs `--max-credits` left unsent, and the cap that would let them go.
    pub cap_left: Option<crate::selection::CapLeft>,
    pub max_credits: Option<f64>,
    /// The jobs of the plan this run left out (`--sample`, `--limit`, a shard), said.
    pub not_run: Option<String>,
    pub elapsed: Duration,
    pub api_requests: u64,
    pub out: std::path::PathBuf,
    /// Rows of `results.csv`: more than jobs when inputs of the same content share a generation.
    pub rows: usize,
    /// `report.html`, when it was written.
    pub report: Option<std::path::PathBuf>,
    /// The command as it was given, ready to paste.
    pub command: Vec<String>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// What the run's events said: downloads, timings, generations created and jobs not sent.
    pub heard: Heard,
}

/// How many of the slowest jobs are named.
pub(crate) const SLOWEST: usize = 3;

/// How many failures are listed one by one; the rest are in `results.csv`.
const LISTED: usize = 20;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let statuses = [Status::Completed, Status::Failed, Status::Unknown, Status::Pending];
    let mut by_model: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for job in &s.jobs {
        // A video paid for and not saved yet is pending: the next run fetches it.
        let column = statuses.iter().position(|st| *st == job.status).unwrap_or(3);
        by_model.entry(&job.model).or_default()[column] += 1;
    }
    let completed = s.jobs.iter().filter(|j| j.status == Status::Completed).count();
    let _ = write!(out, "finished: {completed} of {} completed", count(s.jobs.len(), "job"));
    if s.rows > s.jobs.len() {
        let _ = write!(
            out,
            " ({} rows in results.csv: inputs of the same content share a generation, and each has its row)",
            s.rows
        );
    }
    if let Some(not_run) = &s.not_run {
        let _ = write!(out, " · {not_run}");
    }
    let _ = writeln!(out);
    let width = by_model.keys().map(|m| m.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(out, "  {:<width$}  completed  failed  unknown  pending", "model");
    let mut totals = [0usize; 4];
    for (model, counts) in &by_model {
        let _ = writeln!(
            out,
            "  {model:<width$}  {:>9}  {:>6}  {:>7}  {:>7}",
            counts[0], counts[1], counts[2], counts[3]
        );
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
    }
    if by_model.len() > 1 {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>9}  {:>6}  {:>7}  {:>7}",
            "total", totals[0], totals[1], totals[2], totals[3]
        );
    }
    let _ = writeln!(out, "{}", credits_line(s));
    let mut time = format!(
        "time: {} · {}",
        short_duration(s.elapsed),
        count(s.api_requests as usize, "API request")
    );
    if let Some(downloaded) = s.heard.downloads.describe() {
        let _ = write!(
            time,
            " · downloaded {}, {downloaded}",
            count(s.heard.downloads.videos, "video")
        );
    }
    let _ = writeln!(out, "{time}");
    slowest(&mut out, &s.heard);
    let _ = write!(
        out,
        "videos: {}  results: {}",
        display(&s.out.join("videos")),
        display(&s.out.join("results.csv"))
    );
    match &s.report {
        Some(page) => {
            let _ = writeln!(out, "  report: {}", display(page));
        }
        None => {
            let _ = writeln!(out);
        }
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(out, "stopped early: {why}");
    }

    let failed: Vec<&JobLine> = s.jobs.iter().filter(|j| j.status == Status::Failed).collect();
    if !failed.is_empty() {
        let earlier = failed.iter().filter(|j| j.earlier).count();
        let _ = write!(out, "failed ({}", failed.len());
        if earlier > 0 {
            let _ = write!(out, ", {earlier} of them from earlier runs");
        }
        let _ = writeln!(out, "):");
        // This run's failures first: they are the news.
        let mut ordered = failed.clone();
        ordered.sort_by_key(|j| j.earlier);
        for job in ordered.iter().take(LISTED) {
            let _ = writeln!(
                out,
                "  {} {}{}: {}",
                job.job_id,
                job.name,
                if job.earlier { " (earlier run)" } else { "" },
                job.error.as_deref().unwrap_or("no reason recorded")
            );
        }
        if ordered.len() > LISTED {
            let _ = writeln!(out, "  … and {} more in results.csv", ordered.len() - LISTED);
        }
    }
    let unknown = totals[2];
    let pending = totals[3];
    let mut next = Vec::new();
    let unfetched = s.jobs.iter().filter(|j| j.status == Status::AwaitingDownload).count();
    if unfetched > 0 {
        let (are, them) = if unfetched == 1 { ("is", "it") } else { ("are", "them") };
        next.push(format!(
            "{} generated and paid for {are} not saved yet; the same command fetches {them} at no cost: {}",
            count(unfetched, "video"),
            command(&s.command, &[])
        ));
    }
    // The jobs the cap left go with a cap that lets them: the same cap again would send none.
    let left_by_cap = s.cap_left.map_or(0, |left| left.jobs);
    if let Some(left) = &s.cap_left {
        next.push(format!(
            "send the {} the cap left (or drop --max-credits): {}",
            count(left.jobs, "job"),
            command(&s.command, &["--max-credits", &format!("{}", left.needed as u64)])
        ));
    }
    if pending > left_by_cap {
        next.push(format!(
            "resume the {}: {}",
            count(pending - left_by_cap, "pending job"),
            command(&s.command, &[])
        ));
    }
    let paid_failures: Vec<&JobLine> = s
        .jobs
        .iter()
        .filter(|j| j.status == Status::Failed && j.paid_failure)
        .collect();
    if !paid_failures.is_empty() {
        // `--paid-retries N` allows N generations after the first: enough for the most tried.
        let most = paid_failures.iter().map(|j| j.attempts).max().unwrap_or(1).max(1);
        next.push(format!(
            "submit the {} again (paid again): {}",
            count(paid_failures.len(), "failed generation"),
            command(&s.command, &["--paid-retries", &most.to_string()])
        ));
    }
    if unknown > 0 {
        next.push(format!(
            "{} may have created a generation: check the account's history, then if none exists: {}",
            count(unknown, "submit"),
            command(&s.command, &["--resubmit-unknown"])
        ));
    }
    if !next.is_empty() {
        let _ = writeln!(out, "next:");
        for line in next {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// What was spent in this run beside what the generations it created were expected to cost, and
/// after a stop (Ctrl-C, `--max-credits`, a refused key, a full disk) how much of the estimate
/// was not spent because its jobs were not submitted, and how many of them `--max-credits` left
/// (they go with the cap the next line of the summary gives): nothing spent then is no error.
fn credits_line(s: &Summary) -> String {
    let h = &s.heard;
    let mut line = format!("credits: {} spent in this run", thousands(s.credits_now));
    if h.generations > 0 {
        let _ = write!(
            line,
            " on {} (expected {})",
            count(h.generations, "generation"),
            thousands(h.expected)
        );
    }
    // The cap is named once: with the jobs it left, else at the end.
    let mut cap_said = false;
    match (h.not_submitted, &s.cap_left) {
        (0, None) => {}
        // Heard nothing of them (the state says the cap left them): what they should cost.
        (0, Some(left)) => {
            let _ = write!(line, "; {}", left.line());
            cap_said = true;
        }
        (n, left) => {
            let estimate = s.estimate.unwrap_or(0.0).max(h.not_spent);
            let unspent = if h.not_spent + 0.5 >= estimate {
                format!("the {} estimate", thousands(estimate))
            } else {
                format!("{} of the {} estimate", thousands(h.not_spent), thousands(estimate))
            };
            let by_cap = match left.map(|l| (l.jobs.min(n), l.cap)) {
                Some((k, cap)) if k == n => {
                    cap_said = true;
                    let they = if n == 1 { "it" } else { "they" };
                    format!(", as {they} would pass --max-credits {}", thousands(cap))
                }
                Some((k, cap)) if k > 0 => {
                    cap_said = true;
                    format!(" ({k} of them would pass --max-credits {})", thousands(cap))
                }
                _ => String::new(),
            };
            let _ = write!(line, "; {} not submitted{by_cap}: {unspent} not spent", count(n, "job"));
        }
    }
    let _ = write!(line, "; {} recorded for these jobs", thousands(s.credits_total));
    if let Some(cap) = s.max_credits.filter(|_| !cap_said) {
        let _ = write!(line, "; --max-credits {}", thousands(cap));
    }
    line
}

/// The jobs that took longest from their submit to their saved video, beside the median: where
/// an operator looks first when a run is slow (a model, a template, a file host).
fn slowest(out: &mut String, heard: &Heard) {
    let took = &heard.took;
    // Among as few jobs as are named, none stands out.
    if took.len() <= SLOWEST {
        return;
    }
    // Sorted slowest first.
    let median = took[took.len() / 2];
    let _ = writeln!(
        out,
        "slowest, submit to saved video (median {} over {}):",
        timing(median),
        count(took.len(), "job")
    );
    for t in &heard.slowest {
        let label = t.label.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
        let _ = writeln!(out, "  {} {}{label}: {}", t.job_id, t.name, timing(t.took));
    }
}

/// The command as given plus `extra`, ready to paste; a flag of `extra` that the command already
/// has is replaced (clap refuses one given twice).
fn command(args: &[String], extra: &[&str]) -> String {
    let sets = |flag: &str| extra.contains(&flag);
    let mut kept: Vec<&str> = Vec::with_capacity(args.len() + extra.len());
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
        match arg.as_str() {
            "--paid-retries" | "--max-credits" if sets(arg.as_str()) => skip_value = true,
            _ if flag != arg && matches!(flag, "--paid-retries" | "--max-credits") && sets(flag) => {}
            "--resubmit-unknown" if sets("--resubmit-unknown") => {}
            a => kept.push(a),
        }
    }
    kept.extend_from_slice(extra);
    kept.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// An argument as a POSIX shell reads it back: bare when safe, else in single quotes.
pub fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests;
