//! Plain lines for a log file or a terminal too narrow for more: at most one line per job event
//! (finished, failed, unknown, retried, deferred) at the default level, and a status line every
//! few seconds. Lines go through `tracing`, so `-q`/`-v` and the timestamps apply to them.

use std::time::Duration;

use tokio::time::Instant;

use super::downloads::DownloadMeter;
use super::notice::Level;
use super::{Progress, RunEvent, Sink, Started, job_name, short_duration, thousands};
use crate::wording::count;

pub struct Lines {
    /// How often the status line is written; `None` when something else shows progress (the
    /// live view).
    status_every: Option<Duration>,
    /// Whether a finished job gets its line (the live view's bar already counts them).
    completions: bool,
    next_status: Option<Instant>,
    settled_at_start: usize,
    downloads: DownloadMeter,
}

impl Lines {
    pub fn new(status_every: Option<Duration>, completions: bool) -> Lines {
        Lines {
            status_every,
            completions,
            next_status: None,
            settled_at_start: 0,
            downloads: DownloadMeter::default(),
        }
    }
}

impl Sink for Lines {
    fn event(&mut self, event: &RunEvent<'_>) {
        self.downloads.observe(event, Instant::now());
        match event {
            RunEvent::Started(s) => {
                self.settled_at_start = s.settled;
                tracing::info!("{}", started_line(s));
                self.next_status = self.status_every.map(|every| Instant::now() + every);
            }
            RunEvent::Submitted {
                job,
                generation_id,
                attempt,
                ..
            } => {
                tracing::debug!(
                    "{}: submitted (attempt {attempt}), generation {generation_id}",
                    job_name(job)
                );
            }
            RunEvent::Retrying {
                job,
                attempt,
                delay,
                error,
            } => tracing::warn!(
                "{}: transient error submitting, retry {attempt} in {:.1}s: {error}",
                job_name(job),
                delay.as_secs_f64()
            ),
            RunEvent::Generated { job, generation_id } => {
                tracing::debug!("{}: generation {generation_id} completed, downloading", job_name(job));
            }
            RunEvent::Completed { job, bytes, .. } => {
                if self.completions {
                    tracing::info!(
                        "{}: saved {} ({} bytes)",
                        job_name(job),
                        job.file,
                        thousands(*bytes as f64)
                    );
                }
            }
            RunEvent::Failed {
                job,
                error,
                resubmitting,
                ..
            } => {
                if *resubmitting {
                    tracing::warn!("{}: {error}; submitting again (paid retry)", job_name(job));
                } else {
                    tracing::error!("{}: {error}", job_name(job));
                }
            }
            RunEvent::Unknown { job, error } => tracing::error!("{}: {error}", job_name(job)),
            // The jobs `--max-credits` leaves get one line for them all, not one each: before the
            // run (`--within-cap`) and in the summary, with what they would cost.
            RunEvent::Pending { reason, .. } if crate::selection::left_by_cap(reason) => {}
            RunEvent::Pending { job, reason } => tracing::warn!("{}: left pending: {reason}", job_name(job)),
            // Worded only when the level is on: a poll that finds a generation running is a
            // debug notice, thousands a minute.
            RunEvent::Notice(n) => match n.level() {
                Level::Debug => tracing::debug!("{}", n.text()),
                Level::Info => tracing::info!("{}", n.text()),
                Level::Warn => tracing::warn!("{}", n.text()),
                Level::Error => tracing::error!("{}", n.text()),
            },
            RunEvent::Halted {
                kind: Some(kind),
                failed,
                ..
            } => tracing::error!(
                "`{kind}`: {failed} generations failed and none completed: its other jobs are not submitted \
                 (--halt-kind); the generations in flight are still followed"
            ),
            RunEvent::Halted {
                kind: None,
                failed,
                finished,
            } => tracing::error!(
                "{failed} of {finished} generations failed: nothing more is submitted (--halt-run); \
                 the generations in flight are still followed"
            ),
            RunEvent::Progress(p) => {
                if let (Some(every), Some(next)) = (self.status_every, self.next_status) {
                    let now = Instant::now();
                    if now >= next {
                        self.next_status = Some(now + every);
                        tracing::info!("{}", status_line(p, self.settled_at_start, &self.downloads));
                    }
                }
            }
            RunEvent::Finished(_) => {}
        }
    }
}

pub fn started_line(s: &Started) -> String {
    let mut line = format!(
        "{}: {} to submit, {} to follow, {} already done",
        count(s.jobs, "job"),
        s.to_submit,
        count(s.to_follow, "generation"),
        s.already_done
    );
    if let Some(estimate) = s.estimate.filter(|_| s.to_submit > 0) {
        line.push_str(&format!("; about {} credits to spend", thousands(estimate)));
    }
    if let Some(cap) = s.max_credits {
        line.push_str(&format!(" (at most {} with --max-credits)", thousands(cap)));
    }
    line
}

/// One line of where a run stands, for logs: every count is there, zeros included, so the lines
/// of a run line up and `grep` finds the same words each time. A share is said only of jobs
/// there are: `0/0` is no `100%`.
pub fn status_line(p: &Progress, settled_at_start: usize, downloads: &DownloadMeter) -> String {
    let percent = (p.settled() * 100)
        .checked_div(p.total)
        .map(|n| format!(" ({n}%)"))
        .unwrap_or_default();
    let eta = p.eta(settled_at_start).map_or_else(|| "-".to_string(), short_duration);
    let downloaded = crate::wording::bytes(downloads.bytes);
    let rate = crate::wording::rate(downloads.bytes, downloads.busy().as_secs_f64())
        .map(|r| format!(" at {r}"))
        .unwrap_or_default();
    format!(
        "[{}] {}/{} settled{percent}: {} done, {} failed, {} unknown, {} deferred | {} waiting, {} submitting, \
         {} queued, {} generating, {} downloading | {} credits, {downloaded} downloaded{rate}, {:.1} req/s, ETA {eta}",
        short_duration(p.elapsed),
        p.settled(),
        p.total,
        p.done,
        p.failed,
        p.unknown,
        p.deferred,
        p.waiting,
        p.submitting,
        p.queued,
        p.generating,
        p.downloading,
        thousands(p.credits),
        p.requests_per_second,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_for_logs() {
        let p = Progress {
            total: 210,
            waiting: 12,
            submitting: 1,
            queued: 4,
            generating: 30,
            downloading: 2,
            done: 158,
            failed: 2,
            unknown: 1,
            deferred: 0,
            credits: 165_900_000.0,
            requests: 900,
            requests_per_second: 4.85,
            elapsed: Duration::from_secs(372),
        };
        let meter = DownloadMeter::measured(158, 5_372_000_000, Duration::from_secs(158));
        insta::assert_snapshot!(status_line(&p, 10, &meter));
        insta::assert_snapshot!(super::super::live::counts_line(&p, &meter));
        let started = Started {
            jobs: 210,
            to_submit: 200,
            to_follow: 0,
            already_done: 10,
            settled: 10,
            estimate: Some(210_000_000.0),
            max_credits: Some(250_000_000.0),
        };
        insta::assert_snapshot!(started_line(&started));
    }

    #[test]
    fn a_run_with_no_jobs_claims_no_share() {
        let line = status_line(&Progress::default(), 0, &DownloadMeter::default());
        assert!(
            line.starts_with("[0s] 0/0 settled: 0 done") && line.contains("| 0 credits, 0 B downloaded, 0.0 req/s"),
            "{line}"
        );
        let started = Started {
            jobs: 1,
            to_submit: 1,
            to_follow: 1,
            ..Started::default()
        };
        assert_eq!(
            started_line(&started),
            "1 job: 1 to submit, 1 generation to follow, 0 already done"
        );
    }
}
