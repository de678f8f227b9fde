//! What the coordinator tells people besides the jobs' own events, as data: it never writes
//! prose, the sinks word each notice here (the lines sink logs it at its level, the JSON sink
//! writes it with its kind).

use std::path::Path;
use std::time::Duration;

use crate::plan::Job;

/// How much a notice matters, as a log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Something a run met that people should hear of.
#[derive(Debug)]
pub enum Notice<'a> {
    /// Jobs an earlier vidbatch recorded under their old ids were found under them.
    Rekeyed { jobs: usize },
    /// Unfinished downloads an earlier run left were removed.
    StaleParts { removed: usize },
    /// Generations an earlier run started that this manifest no longer has.
    Orphans { generations: usize, state: &'a Path },
    /// An earlier submit's answer was lost; `--resubmit-unknown` sends it again.
    ResubmittingUnknown { job: &'a Job },
    /// An earlier submit's answer was lost: left `unknown`.
    UnknownLeft { job: &'a Job },
    /// A generation an earlier run started is followed again.
    Resuming { job: &'a Job, generation_id: &'a str },
    /// A video recorded as saved is missing or changed: fetched again (free).
    VideoGone { job: &'a Job, file: &'a str, changed: bool },
    /// A generation was created but its id could not be recorded.
    Unrecorded { job: &'a Job, generation_id: &'a str },
    /// The service has too many generations of the account running: fewer are kept in flight.
    CeilingLowered { error: &'a str, limit: usize },
    /// The service refuses local files for a field: the model's other such jobs are not sent.
    FilesRefused { why: &'a str },
    /// A poll found the generation still running.
    StillRunning { job: &'a Job },
    /// The service answered a status word vidbatch does not know (said once per word).
    OddStatus { job: &'a Job, word: &'a str },
    /// A poll failed for a passing reason; it is tried again.
    PollRetry {
        job: &'a Job,
        delay: Duration,
        error: &'a str,
    },
    /// A video could not be fetched yet; a fresh link is asked for.
    Refetch { job: &'a Job, warning: &'a str },
    /// The polls are planned within a request budget (`None`: none) from now on.
    Budget { polls: Option<f64>, plans: &'a str },
    /// Ctrl-C: no new submits; the generations paid for are still followed.
    Stopping { in_flight: usize },
    /// On the way out: the answers of submits already sent are awaited.
    WaitingForSubmits { submits: usize },
    /// The run cannot go on: the state, a folder or the disk (said as it is).
    Fatal { text: &'a str },
}

impl Notice<'_> {
    pub fn level(&self) -> Level {
        match self {
            Notice::Rekeyed { .. } | Notice::StaleParts { .. } | Notice::WaitingForSubmits { .. } => Level::Info,
            Notice::Resuming { .. }
            | Notice::StillRunning { .. }
            | Notice::PollRetry { .. }
            | Notice::Budget { .. } => Level::Debug,
            Notice::Unrecorded { .. } | Notice::Fatal { .. } => Level::Error,
            _ => Level::Warn,
        }
    }

    /// A name for programs (the JSON sink's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Rekeyed { .. } => "rekeyed",
            Notice::StaleParts { .. } => "stale_parts",
            Notice::Orphans { .. } => "orphans",
            Notice::ResubmittingUnknown { .. } => "resubmitting_unknown",
            Notice::UnknownLeft { .. } => "unknown_left",
            Notice::Resuming { .. } => "resuming",
            Notice::VideoGone { .. } => "video_gone",
            Notice::Unrecorded { .. } => "unrecorded",
            Notice::CeilingLowered { .. } => "ceiling_lowered",
            Notice::FilesRefused { .. } => "files_refused",
            Notice::StillRunning { .. } => "still_running",
            Notice::OddStatus { .. } => "odd_status",
            Notice::PollRetry { .. } => "poll_retry",
            Notice::Refetch { .. } => "refetch",
            Notice::Budget { .. } => "poll_budget",
            Notice::Stopping { .. } => "stopping",
            Notice::WaitingForSubmits { .. } => "waiting_for_submits",
            Notice::Fatal { .. } => "fatal",
        }
    }

    /// The job it is about, if one.
    pub fn job(&self) -> Option<&Job> {
        match self {
            Notice::ResubmittingUnknown { job }
            | Notice::UnknownLeft { job }
            | Notice::Resuming { job, .. }
            | Notice::VideoGone { job, .. }
            | Notice::Unrecorded { job, .. }
            | Notice::StillRunning { job }
            | Notice::OddStatus { job, .. }
            | Notice::PollRetry { job, .. }
            | Notice::Refetch { job, .. } => Some(job),
            _ => None,
        }
    }

    /// In words.
    pub fn text(&self) -> String {
        use crate::wording::count;
        match self {
            Notice::Rekeyed { jobs } => format!(
                "{} recorded by an earlier vidbatch under their old ids are picked up",
                count(*jobs, "job")
            ),
            Notice::StaleParts { removed } => format!(
                "removed {} left by an earlier run",
                count(*removed, "unfinished download")
            ),
            Notice::Orphans { generations, state } => format!(
                "{} started by an earlier run are not in this manifest any more and will not be followed \
                 (they stay recorded in {})",
                count(*generations, "generation"),
                state.display()
            ),
            Notice::ResubmittingUnknown { job } => format!(
                "{}: the answer to an earlier submit was lost; submitting again as asked (--resubmit-unknown)",
                job.label()
            ),
            Notice::UnknownLeft { job } => format!(
                "{}: an earlier submit's answer was lost: a generation may exist and be paid for. \
                 Left as `unknown`; `--resubmit-unknown` submits it again",
                job.label()
            ),
            Notice::Resuming { job, generation_id } => {
                format!("{}: resuming generation {generation_id}", job.label())
            }
            Notice::VideoGone { job, file, changed } => format!(
                "{}: `{file}` is {}; fetching it again",
                job.label(),
                if *changed { "changed" } else { "missing" }
            ),
            Notice::Unrecorded { job, generation_id } => format!(
                "{}: generation `{generation_id}` was created but could not be recorded; note this id",
                job.label()
            ),
            Notice::CeilingLowered { error, limit } => format!(
                "the service has too many generations of this account running ({error}); keeping at most \
                 {limit} in flight from now on"
            ),
            Notice::FilesRefused { why } => why.to_string(),
            Notice::StillRunning { job } => format!("{}: still running", job.label()),
            Notice::OddStatus { job, word } => format!(
                "{}: the service answered status `{word}`, which vidbatch does not know; taken as still \
                 pending (until --timeout)",
                job.label()
            ),
            Notice::PollRetry { job, delay, error } => format!(
                "transient error polling `{}` (next try in {:.1}s): {error}",
                job.label(),
                delay.as_secs_f64()
            ),
            Notice::Refetch { job, warning } => format!("{}: {warning}", job.label()),
            Notice::Budget { polls, plans } => format!(
                "polls planned within {:.2} per generation: {plans}",
                polls.unwrap_or(f64::INFINITY)
            ),
            Notice::Stopping { in_flight } => format!(
                "stopping: no new submissions; waiting for {} already paid for (Ctrl-C again to leave now: \
                 a rerun picks them up)",
                count(*in_flight, "generation")
            ),
            Notice::WaitingForSubmits { submits } => {
                format!("waiting for the answers of {} already sent", count(*submits, "submit"))
            }
            Notice::Fatal { text } => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_worded_with_their_counts_and_levels() {
        let n = Notice::Stopping { in_flight: 1 };
        assert_eq!(n.level(), Level::Warn);
        assert_eq!(
            n.text(),
            "stopping: no new submissions; waiting for 1 generation already paid for (Ctrl-C again to leave \
             now: a rerun picks them up)"
        );
        assert_eq!(
            Notice::StaleParts { removed: 2 }.text(),
            "removed 2 unfinished downloads left by an earlier run"
        );
        assert_eq!(Notice::Fatal { text: "x" }.level(), Level::Error);
        assert_eq!(Notice::WaitingForSubmits { submits: 3 }.kind(), "waiting_for_submits");
    }
}
