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
const SLOWEST: usize = 3;

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
    let timings = &heard.timings;
    // Among as few jobs as are named, none stands out.
    if timings.len() <= SLOWEST {
        return;
    }
    // Sorted slowest first.
    let median = timings[timings.len() / 2].took;
    let _ = writeln!(
        out,
        "slowest, submit to saved video (median {} over {}):",
        timing(median),
        count(timings.len(), "job")
    );
    for t in timings.iter().take(SLOWEST) {
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
            heard: Heard {
                generations: 4,
                expected: 4_200_000.0,
                ..Heard::default()
            },
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
        s.heard.not_submitted = 1;
        s.heard.not_spent = 2_000_000.0;
        s.command.extend(["--max-credits".into(), "10000000".into()]);
        insta::assert_snapshot!(render(&s));
    }

    #[test]
    fn the_credits_line_names_the_cap_once_with_the_jobs_it_left() {
        let mut s = summary(Vec::new());
        s.max_credits = Some(10_000_000.0);
        s.cap_left = Some(crate::selection::CapLeft {
            jobs: 2,
            cap: 10_000_000.0,
            estimate: 2_100_000.0,
            needed: 11_450_000.0,
        });
        // A stop left 3 jobs, the cap 2 of them.
        s.heard.not_submitted = 3;
        s.heard.not_spent = 3_150_000.0;
        assert_eq!(
            credits_line(&s),
            "credits: 4,200,000 spent in this run on 4 generations (expected 4,200,000); 3 jobs not submitted \
             (2 of them would pass --max-credits 10,000,000): 3,150,000 of the 5,250,000 estimate not spent; \
             9,450,000 recorded for these jobs"
        );
        // Nothing heard of them (the state says the cap left them): what they should cost.
        s.heard.not_submitted = 0;
        assert_eq!(
            credits_line(&s),
            "credits: 4,200,000 spent in this run on 4 generations (expected 4,200,000); 2 jobs not sent: they \
             would pass --max-credits 10,000,000 (est. 2,100,000 more); 9,450,000 recorded for these jobs"
        );
        // No job left: the cap is said at the end.
        s.cap_left = None;
        assert!(credits_line(&s).ends_with("; 9,450,000 recorded for these jobs; --max-credits 10,000,000"));
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
        s.estimate = Some(2_100_000.0);
        s.heard = Heard {
            not_submitted: 2,
            not_spent: 2_100_000.0,
            ..Heard::default()
        };
        s.stopped = Some("the API refused the request for `one`: HTTP 401. Check `AIMLAPI_KEY`".into());
        insta::assert_snapshot!(render(&s));
    }

    #[test]
    fn a_stopped_run_says_what_was_not_spent_and_why() {
        let mut s = summary(vec![line(
            "a1",
            "magic/text-to-video",
            "one",
            Status::Pending,
            None,
            false,
        )]);
        s.credits_now = 0.0;
        s.credits_total = 0.0;
        s.estimate = Some(20_600_000.0);
        s.heard = Heard {
            not_submitted: 20,
            not_spent: 20_600_000.0,
            ..Heard::default()
        };
        assert_eq!(
            credits_line(&s),
            "credits: 0 spent in this run; 20 jobs not submitted: the 20,600,000 estimate not spent; \
             0 recorded for these jobs"
        );
        s.credits_now = 4_200_000.0;
        s.heard = Heard {
            generations: 4,
            expected: 4_120_000.0,
            not_submitted: 16,
            not_spent: 16_480_000.0,
            ..Heard::default()
        };
        assert_eq!(
            credits_line(&s),
            "credits: 4,200,000 spent in this run on 4 generations (expected 4,120,000); 16 jobs not submitted: \
             16,480,000 of the 20,600,000 estimate not spent; 0 recorded for these jobs"
        );
        s.heard.generations = 1;
        s.heard.not_submitted = 1;
        assert!(credits_line(&s).contains("on 1 generation (expected 4,120,000); 1 job not submitted"));
    }

    #[test]
    fn downloads_and_the_slowest_jobs() {
        let mut s = summary(
            (0..4)
                .map(|i| {
                    line(
                        &format!("a{i}"),
                        "magic/text-to-video",
                        "x",
                        Status::Completed,
                        None,
                        false,
                    )
                })
                .collect(),
        );
        let timed = |id: &str, label: Option<&str>, secs: u64| super::super::tally::JobTiming {
            job_id: id.into(),
            name: format!("magic-text-to-video/{id}"),
            label: label.map(Into::into),
            took: Duration::from_secs(secs),
        };
        s.heard.downloads = super::super::downloads::DownloadMeter::measured(4, 1_234_000_000, Duration::from_secs(36));
        s.heard.timings = vec![
            timed("a3", Some("hero"), 252),
            timed("a1", None, 130),
            timed("a0", None, 95),
            timed("a2", None, 61),
        ];
        let text = render(&s);
        assert!(
            text.contains("time: 12m34s · 118 API requests · downloaded 4 videos, 1.23 GB at 34.3 MB/s\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "slowest, submit to saved video (median 1m35s over 4 jobs):\n  \
                 a3 magic-text-to-video/a3 (hero): 4m12s\n  a1 magic-text-to-video/a1: 2m10s\n  \
                 a0 magic-text-to-video/a0: 1m35s\n"
            ),
            "{text}"
        );
        // Among three jobs, none stands out.
        s.heard.timings.truncate(3);
        assert!(!render(&s).contains("slowest"));
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
