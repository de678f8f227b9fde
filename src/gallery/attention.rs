//! What did not give a video, and what to do about it: each job's state in a word the page
//! shows, and the next step in a sentence, the way the end-of-run summary words them.

use serde::Serialize;

use super::ResultRow;
use crate::results::Status;

/// How many jobs the list at the top of the page names one by one; every one is in its grid.
pub const LISTED: usize = 50;

/// What the page says of a row: its status, or `missing` for a completed job whose video is no
/// longer on disk (deleted, moved, or an alias's copy not made).
pub fn shown_status(row: &ResultRow, video_on_disk: bool) -> &'static str {
    match row.status {
        Status::Completed if !video_on_disk => "missing",
        status => status.as_str(),
    }
}

/// What to do about a row that shows no video (empty for one that does).
pub fn next_step(status: &str, row: &ResultRow) -> String {
    match status {
        // No generation id: the service refused the request itself (a 400), nothing was made.
        "failed" if row.generation_id.is_empty() => "Refused by the service, so nothing was paid: fix what the \
             reason names; a rerun submits it again."
            .into(),
        "failed" => {
            // `--paid-retries N` allows N generations after the first: enough for one more try.
            let tries = row.attempts.unwrap_or(1).max(1);
            format!(
                "The generation failed and was paid for. A rerun retries it only with `--paid-retries {tries}`, \
                 paid again."
            )
        }
        "unknown" => "Submitted, but the answer was lost: a generation may exist. Check the account's history; \
             if there is none, rerun with `--resubmit-unknown` (which may pay twice)."
            .into(),
        "awaiting_download" => "Generated and paid for, the video not saved yet: a rerun fetches it at no cost.".into(),
        "pending" => "Not finished when the run stopped: a rerun goes on with it (a generation already \
             submitted is polled, not paid again)."
            .into(),
        "missing" => format!(
            "The video `{}` is not on disk: a rerun fetches it again at no cost.",
            row.file
        ),
        _ => String::new(),
    }
}

/// Whether a row is named in the list at the top of the page: pending jobs are not news (a
/// stopped run leaves many), the others each want a decision.
pub fn listed(status: &str) -> bool {
    matches!(status, "failed" | "unknown" | "missing" | "awaiting_download")
}

/// A job named at the top of the page, with everything that identifies it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    /// The `id` of its entry in its grid.
    pub anchor: String,
    pub job_id: String,
    pub generation_id: String,
    pub model: String,
    /// Its column in the grid: the template, or the parameters that tell it apart.
    pub column: String,
    pub input: String,
    pub label: String,
    pub status: String,
    pub error: String,
    pub next: String,
}

/// The jobs that want a decision, the first [`LISTED`] of them named.
#[derive(Debug, Default, Serialize)]
pub struct Attention {
    pub problems: Vec<Problem>,
    /// Those not named (see their grids, or filter by status).
    pub more: usize,
    /// Jobs pending: counted, with what a rerun does, not named.
    pub pending: usize,
}

impl Attention {
    /// `problems` in the order of `results.csv` (each with its row's index there).
    pub fn new(mut problems: Vec<(usize, Problem)>, pending: usize) -> Attention {
        problems.sort_by_key(|(i, _)| *i);
        let more = problems.len().saturating_sub(LISTED);
        Attention {
            problems: problems.into_iter().take(LISTED).map(|(_, p)| p).collect(),
            more,
            pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: Status, generation_id: &str, attempts: Option<u32>) -> ResultRow {
        ResultRow {
            status,
            generation_id: generation_id.into(),
            attempts,
            file: "videos/a.mp4".into(),
            ..ResultRow::default()
        }
    }

    #[test]
    fn each_state_says_what_a_rerun_does() {
        let cases = [
            (row(Status::Failed, "", Some(1)), true, "failed", "nothing was paid"),
            (
                row(Status::Failed, "g1", Some(2)),
                true,
                "failed",
                "`--paid-retries 2`, paid again",
            ),
            (
                row(Status::Unknown, "", Some(1)),
                true,
                "unknown",
                "`--resubmit-unknown`",
            ),
            (
                row(Status::AwaitingDownload, "g", Some(1)),
                true,
                "awaiting_download",
                "at no cost",
            ),
            (
                row(Status::Pending, "", None),
                true,
                "pending",
                "polled, not paid again",
            ),
            (
                row(Status::Completed, "g", Some(1)),
                false,
                "missing",
                "`videos/a.mp4` is not on disk",
            ),
            (row(Status::Completed, "g", Some(1)), true, "completed", ""),
        ];
        for (row, on_disk, status, said) in cases {
            let shown = shown_status(&row, on_disk);
            assert_eq!(shown, status);
            let next = next_step(shown, &row);
            if said.is_empty() {
                assert_eq!(next, "", "{status}");
            } else {
                assert!(next.to_lowercase().contains(&said.to_lowercase()), "{status}: {next}");
                assert!(next.contains("rerun"), "{status}: {next}");
            }
        }
        assert!(listed("failed") && listed("missing") && !listed("pending") && !listed("completed"));
    }

    #[test]
    fn the_list_names_the_first_ones_in_file_order_and_counts_the_rest() {
        let problem = |i: usize| {
            (
                i,
                Problem {
                    anchor: format!("e{i}"),
                    job_id: String::new(),
                    generation_id: String::new(),
                    model: String::new(),
                    column: String::new(),
                    input: String::new(),
                    label: String::new(),
                    status: "failed".into(),
                    error: String::new(),
                    next: String::new(),
                },
            )
        };
        let attention = Attention::new((0..LISTED + 3).rev().map(problem).collect(), 4);
        assert_eq!(attention.problems.len(), LISTED);
        assert_eq!(attention.problems[0].anchor, "e0");
        assert_eq!(attention.more, 3);
        assert_eq!(attention.pending, 4);
    }
}
