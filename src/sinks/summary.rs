//! The end-of-run summary: what happened, per model and status; what it cost beside what was
//! expected; how long it took; where the files are; each failure with its reason (saying which
//! are old news from earlier runs); and the exact command that resumes or retries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{short_duration, thousands};
use crate::results::Status;

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
}

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
    let _ = write!(out, "finished: {completed} of {} job(s) completed", s.jobs.len());
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
    let mut credits = format!("credits: {} spent in this run", thousands(s.credits_now));
    if let Some(estimate) = s.estimate.filter(|e| *e > 0.0) {
        let _ = write!(credits, " (expected {})", thousands(estimate));
    }
    let _ = write!(credits, "; {} recorded for these jobs", thousands(s.credits_total));
    if let Some(cap) = s.max_credits {
        let _ = write!(credits, "; --max-credits {}", thousands(cap));
    }
    let _ = writeln!(out, "{credits}");
    if let Some(left) = &s.cap_left {
        let _ = writeln!(out, "{}", left.line());
    }
    let _ = writeln!(
        out,
        "time: {} · {} API requests",
        short_duration(s.elapsed),
        s.api_requests
    );
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
        next.push(format!(
            "{unfetched} video(s) generated and paid for are not saved yet; the same command fetches them \
             at no cost: {}",
            command(&s.command, &[])
        ));
    }
    // The jobs the cap left go with a cap that lets them: the same cap again would send none.
    let left_by_cap = s.cap_left.map_or(0, |left| left.jobs);
    if let Some(left) = &s.cap_left {
        next.push(format!(
            "send the {} the cap left (or drop --max-credits): {}",
            crate::selection::jobs(left.jobs),
            command(&s.command, &["--max-credits", &format!("{}", left.needed as u64)])
        ));
    }
    if pending > left_by_cap {
        next.push(format!(
            "resume the {} pending job(s): {}",
            pending - left_by_cap,
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
            "submit the {} failed generation(s) again (paid again): {}",
            paid_failures.len(),
            command(&s.command, &["--paid-retries", &most.to_string()])
        ));
    }
    if unknown > 0 {
        next.push(format!(
            "{unknown} submit(s) may have created a generation: check the account's history, then if none exists: {}",
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
mod tests {
    use super::*;

    fn line(id: &str, model: &str, name: &str, status: Status, error: Option<&str>, earlier: bool) -> JobLine {
        JobLine {
            job_id: id.into(),
            model: model.into(),
            name: name.into(),
            status,
            error: error.map(Into::into),
            earlier,
            paid_failure: error.is_some_and(|e| e.starts_with("generation")),
            attempts: 1,
        }
    }

    fn summary(jobs: Vec<JobLine>) -> Summary {
        Summary {
            jobs,
            credits_now: 4_200_000.0,
            estimate: Some(5_250_000.0),
            credits_total: 9_450_000.0,
            cap_left: None,
            max_credits: None,
            not_run: None,
            elapsed: Duration::from_secs(754),
            api_requests: 118,
            out: "out/spring".into(),
            rows: 0,
            report: Some("out/spring/report.html".into()),
            command: [
                "vidbatch",
                "run",
                "spring.csv",
                "--out",
                "out/spring",
                "--paid-retries",
                "1",
            ]
            .map(String::from)
            .to_vec(),
            stopped: None,
        }
    }

    #[test]
    fn a_clean_run() {
        let s = summary(vec![
            line(
                "a1",
                "magic/image-to-video",
                "shoe/paris",
                Status::Completed,
                None,
                false,
            ),
            line(
                "a2",
                "magic/image-to-video",
                "bag/paris",
                Status::Completed,
                None,
                false,
            ),
            line("b1", "magic/text-to-video", "sale", Status::Completed, None, false),
        ]);
        insta::assert_snapshot!(render(&s));
    }

    #[test]
    fn failures_old_and_new_pending_over_budget_and_unknown() {
        let mut s = summary(vec![
            line(
                "a1",
                "magic/image-to-video",
                "shoe/paris",
                Status::Completed,
                None,
                false,
            ),
            line(
                "a2",
                "magic/image-to-video",
                "bag/paris",
                Status::Failed,
                Some("generation g-1 failed: the template renderer gave up"),
                true,
            ),
            line(
                "a3",
                "magic/image-to-video",
                "hat/paris",
                Status::Failed,
                Some("submit failed: HTTP 400: image too small"),
                false,
            ),
            line(
                "b1",
                "pixverse/v5/image-to-video",
                "presenter",
                Status::Unknown,
                None,
                false,
            ),
            line(
                "b2",
                "pixverse/v5/image-to-video",
                "presenter-2",
                Status::Pending,
                Some("budget reached"),
                false,
            ),
        ]);
        s.cap_left = Some(crate::selection::CapLeft {
            jobs: 1,
            cap: 10_000_000.0,
            estimate: 2_000_000.0,
            needed: 11_450_000.0,
        });
        s.max_credits = Some(10_000_000.0);
        s.command.extend(["--max-credits".into(), "10000000".into()]);
        insta::assert_snapshot!(render(&s));
    }

    #[test]
    fn a_run_stopped_by_a_refused_key() {
        let mut s = summary(vec![
            line(
                "a1",
                "magic/text-to-video",
                "one",
                Status::Pending,
                Some("not submitted"),
                false,
            ),
            line(
                "a2",
                "magic/text-to-video",
                "two",
                Status::Pending,
                Some("not submitted"),
                false,
            ),
        ]);
        s.credits_now = 0.0;
        s.stopped = Some("the API refused the request for `one`: HTTP 401. Check `AIMLAPI_KEY`".into());
        insta::assert_snapshot!(render(&s));
    }

    #[test]
    fn suggested_commands_replace_the_flags_they_set() {
        let given: Vec<String> = [
            "vidbatch",
            "run",
            "my campaign.csv",
            "--paid-retries=2",
            "--resubmit-unknown",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            command(&given, &[]),
            "vidbatch run 'my campaign.csv' --paid-retries=2 --resubmit-unknown"
        );
        assert_eq!(
            command(&given, &["--resubmit-unknown"]),
            "vidbatch run 'my campaign.csv' --paid-retries=2 --resubmit-unknown"
        );
        assert_eq!(
            command(&given, &["--paid-retries", "3"]),
            "vidbatch run 'my campaign.csv' --resubmit-unknown --paid-retries 3"
        );
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("manifests/demo.yaml"), "manifests/demo.yaml");
        assert_eq!(shell_quote("my campaign.csv"), "'my campaign.csv'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
