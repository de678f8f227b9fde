//! What to do after a submit, a poll or a download, as pure functions of the answer and what is known of the
//! job: the handlers in `events.rs` turn the decision into effects, so the decisions are
//! tested here without a runtime, a clock or a server.

use std::time::Duration;

use super::StopReason;
use crate::api::{ApiError, Disposition, GenerationStatus, Op, Pending};
use crate::download::{DownloadError, Downloaded};
use crate::retry::RetryPolicy;

/// After a submit that did not create a generation (or may have).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AfterSubmit {
    /// The account has too many generations running: nothing was created; back to the front of
    /// the queue, with fewer in flight and no submit for `pause`.
    TooManyActive { pause: Duration },
    /// Nothing was created: send it again after `delay` (it keeps its slot meanwhile).
    Retry { delay: Duration },
    /// Every other job would meet the same: the run stops, this job waits for the rerun.
    StopRun(StopReason),
    /// A generation may exist and be paid for: never sent again blindly.
    Unknown,
    /// Refused as sent, or retries spent on a service that kept failing: the job fails.
    Rejected,
}

/// `retries`: the retries made so far for this job's submit; `job`: its name, for messages.
pub(super) fn after_submit_error(e: &ApiError, retries: u32, policy: &RetryPolicy, job: &str) -> AfterSubmit {
    if e.is_too_many_active() {
        let pause = e.retry_after().unwrap_or(Duration::from_secs(1)).min(policy.max);
        return AfterSubmit::TooManyActive { pause };
    }
    let disposition = e.disposition(Op::Submit);
    if let Disposition::Retry { after } = disposition
        && retries < policy.max_retries
    {
        return AfterSubmit::Retry {
            delay: policy.delay(retries, after),
        };
    }
    match (e, disposition) {
        (ApiError::Unsendable(_), _) => AfterSubmit::StopRun(StopReason::Fatal(format!(
            "{e}; check `AIMLAPI_BASE_URL` and `AIMLAPI_KEY`"
        ))),
        (ApiError::Connect(_), _) => AfterSubmit::StopRun(StopReason::Unreachable(format!(
            "{e} (after {retries} retries); the run is saved and the same command resumes it"
        ))),
        (_, Disposition::Abort) => AfterSubmit::StopRun(StopReason::Refused(format!(
            "the API refused the request for `{job}`: {e}. Check `AIMLAPI_KEY` and the account's credits; \
             the run is saved and the same command resumes it"
        ))),
        (_, Disposition::Ambiguous) => AfterSubmit::Unknown,
        _ => AfterSubmit::Rejected,
    }
}

/// After a poll.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AfterPoll {
    /// Still running: poll again after `next`. `queued` when the service said so; `odd` is a
    /// status word vidbatch does not know (taken as pending).
    Running {
        next: Duration,
        queued: bool,
        odd: Option<String>,
    },
    /// Completed with a video: fetch it.
    Completed,
    /// The generation will not give a video (it failed, or the service does not know it).
    Failed { message: String },
    /// Waited past `--timeout`: left pending for a rerun, which polls it again.
    GaveUp { message: String },
    /// The poll failed for now: try again after `delay`.
    RetryIn { delay: Duration },
    /// The key was refused: the run stops.
    StopRun(StopReason),
}

/// What is known of a followed generation when its poll comes back.
#[derive(Debug, Clone)]
pub(super) struct Followed<'a> {
    pub generation_id: &'a str,
    /// How long it has been followed in this run (for `--timeout`).
    pub waited: Duration,
    /// Failed polls in a row before this one.
    pub poll_errors: u32,
    /// When the polling policy would look again, were it still running.
    pub next_poll: Duration,
}

pub(super) fn after_poll(
    result: &Result<GenerationStatus, ApiError>,
    followed: &Followed<'_>,
    timeout: Duration,
    retry: &RetryPolicy,
) -> AfterPoll {
    let late = followed.waited > timeout;
    match result {
        Ok(GenerationStatus::Pending(status)) if late => AfterPoll::GaveUp {
            message: format!(
                "no result after {}s (last status `{status}`); the generation may still finish: rerun to pick it up",
                timeout.as_secs()
            ),
        },
        Ok(GenerationStatus::Pending(status)) => AfterPoll::Running {
            next: followed.next_poll,
            queued: matches!(status, Pending::Known(word) if word == "queued"),
            odd: match status {
                Pending::Unknown(word) => Some(word.clone()),
                _ => None,
            },
        },
        Ok(GenerationStatus::Completed { .. }) => AfterPoll::Completed,
        Ok(GenerationStatus::Failed { message }) => AfterPoll::Failed {
            message: message.clone(),
        },
        Err(e) => match e.disposition(Op::Poll) {
            Disposition::Abort => AfterPoll::StopRun(StopReason::Refused(format!(
                "the API refused a poll: {e}. Check `AIMLAPI_KEY`; the run is saved and the same command resumes it"
            ))),
            // Polls that keep failing must not keep the run alive forever.
            Disposition::Retry { .. } if late => AfterPoll::GaveUp {
                message: format!(
                    "no answer about generation {} for {}s (last error: {e}); rerun to poll it again",
                    followed.generation_id,
                    timeout.as_secs()
                ),
            },
            Disposition::Retry { after } => AfterPoll::RetryIn {
                delay: retry.delay(followed.poll_errors, after).max(followed.next_poll),
            },
            // The service answered, and not with a status (e.g. 404: it does not know the id):
            // this generation will not finish. It was paid for all the same.
            Disposition::FailJob | Disposition::Ambiguous => AfterPoll::Failed {
                message: format!("polling the generation failed: {e}"),
            },
        },
    }
}

/// After a download.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AfterDownload {
    Saved,
    /// The output folder cannot be written (a full disk): the job fails and the run stops before
    /// more generations are paid for.
    StopRun {
        message: String,
        reason: StopReason,
    },
    /// This job's video cannot be kept in this run (too large, or the file host kept failing
    /// until `--timeout`): it stays paid for and `awaiting_download`; a rerun fetches it at no cost.
    /// Never `failed`: the generation succeeded.
    GiveUp {
        message: String,
    },
    /// Ask for a fresh URL (a fresh poll) after `delay`: that mends an expired link, free.
    Refetch {
        delay: Duration,
        warning: String,
    },
}

/// The longest wait between two tries of one video: a file host that is down for minutes is
/// tried a few times a minute, until `--timeout`.
const REFETCH_CAP: Duration = Duration::from_secs(30);

/// `tries`: the downloads of this video tried so far, this one included; `trying`: how long
/// since its generation was seen completed, against `deadline` (`--timeout`). A paid video is
/// worth minutes of tries: transport errors never fail it.
pub(super) fn after_download(
    result: &Result<Downloaded, DownloadError>,
    tries: u32,
    trying: Duration,
    deadline: Duration,
    retry: &RetryPolicy,
) -> AfterDownload {
    let e = match result {
        Ok(_) => return AfterDownload::Saved,
        Err(e) => e,
    };
    match e {
        DownloadError::Write { .. } => AfterDownload::StopRun {
            message: e.to_string(),
            reason: StopReason::Fatal(format!(
                "{e}; stopping before more generations are paid for (a rerun fetches the finished ones again)"
            )),
        },
        // Fetching it again would meet the same limit: the job waits for a rerun with a higher
        // one (the generation stays paid for and fetchable until its URL expires).
        DownloadError::TooLarge { .. } => AfterDownload::GiveUp {
            message: format!("{e}; rerun with a higher --max-download-size to fetch it"),
        },
        _ if trying >= deadline => AfterDownload::GiveUp {
            message: format!(
                "{e} (tried {tries} times over {}; --timeout {}); a rerun fetches it at no cost",
                humantime::format_duration(Duration::from_secs(trying.as_secs())),
                humantime::format_duration(deadline)
            ),
        },
        _ => {
            // An expired link is mended by a fresh URL at once, the first times; a host that
            // keeps refusing is given time like any other failure.
            let delay = match e {
                DownloadError::Expired(_) if tries <= 2 => Duration::ZERO,
                _ => retry.delay(tries.saturating_sub(1), None).min(REFETCH_CAP),
            };
            AfterDownload::Refetch {
                delay,
                warning: format!("{e}; asking for a fresh URL (try {} next)", tries + 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: Option<&str>, retry_after: Option<u64>) -> ApiError {
        ApiError::Http {
            status,
            message: "m".into(),
            code: code.map(Into::into),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    #[test]
    fn each_submit_error_gets_its_decision() {
        let p = policy();
        type Expect = fn(&AfterSubmit) -> bool;
        let cases: Vec<(ApiError, u32, Expect, &str)> = vec![
            (
                http(429, Some("concurrency_limit_exceeded"), Some(2)),
                0,
                |d| {
                    *d == AfterSubmit::TooManyActive {
                        pause: Duration::from_secs(2),
                    }
                },
                "too many active: paused as the service asked",
            ),
            (
                http(429, Some("rate_limit_exceeded"), Some(3)),
                0,
                |d| matches!(d, AfterSubmit::Retry { delay } if *delay >= Duration::from_secs(3)),
                "too many requests: retried, not before Retry-After",
            ),
            (
                http(503, None, None),
                0,
                |d| matches!(d, AfterSubmit::Retry { .. }),
                "a 503 is retried",
            ),
            (
                http(503, None, None),
                p.max_retries,
                |d| *d == AfterSubmit::Rejected,
                "retries spent: the job fails",
            ),
            (
                ApiError::Connect("refused".into()),
                p.max_retries,
                |d| matches!(d, AfterSubmit::StopRun(StopReason::Unreachable(_))),
                "an API never reached stops the run",
            ),
            (
                http(401, None, None),
                0,
                |d| matches!(d, AfterSubmit::StopRun(StopReason::Refused(m)) if m.contains("AIMLAPI_KEY")),
                "a refused key stops the run",
            ),
            (
                http(504, None, None),
                0,
                |d| *d == AfterSubmit::Unknown,
                "a gateway timeout may have created one",
            ),
            (
                http(524, None, None),
                0,
                |d| *d == AfterSubmit::Unknown,
                "so may a CDN's origin timeout",
            ),
            (
                ApiError::NoAnswer("reset".into()),
                0,
                |d| *d == AfterSubmit::Unknown,
                "an answer cut off may hide a generation",
            ),
            (
                http(400, None, None),
                0,
                |d| *d == AfterSubmit::Rejected,
                "refused as sent",
            ),
            (
                ApiError::Unsendable("bad header".into()),
                0,
                |d| matches!(d, AfterSubmit::StopRun(StopReason::Fatal(_))),
                "a request that cannot be built stops the run",
            ),
        ];
        for (error, retries, expected, what) in cases {
            let decision = after_submit_error(&error, retries, &p, "job");
            assert!(expected(&decision), "{what}: {error} → {decision:?}");
        }
    }

    #[test]
    fn each_poll_answer_gets_its_decision() {
        let p = policy();
        let timeout = Duration::from_secs(600);
        let followed = |waited: u64, poll_errors: u32| Followed {
            generation_id: "g1",
            waited: Duration::from_secs(waited),
            poll_errors,
            next_poll: Duration::from_secs(5),
        };
        let pending = |word: &str| Ok(GenerationStatus::Pending(Pending::Known(word.into())));
        assert_eq!(
            after_poll(&pending("queued"), &followed(10, 0), timeout, &p),
            AfterPoll::Running {
                next: Duration::from_secs(5),
                queued: true,
                odd: None
            }
        );
        assert!(matches!(
            after_poll(&pending("generating"), &followed(601, 0), timeout, &p),
            AfterPoll::GaveUp { message } if message.contains("rerun")
        ));
        let odd = Ok(GenerationStatus::Pending(Pending::Unknown("thinking".into())));
        assert!(matches!(
            after_poll(&odd, &followed(10, 0), timeout, &p),
            AfterPoll::Running { odd: Some(w), queued: false, .. } if w == "thinking"
        ));
        // A transient error: retried, never sooner than the policy would poll anyway.
        let slow = Err(http(503, None, None));
        assert!(matches!(
            after_poll(&slow, &followed(10, 0), timeout, &p),
            AfterPoll::RetryIn { delay } if delay >= Duration::from_secs(5)
        ));
        assert!(matches!(
            after_poll(&slow, &followed(601, 7), timeout, &p),
            AfterPoll::GaveUp { message } if message.contains("g1")
        ));
        assert!(matches!(
            after_poll(&Err(http(404, None, None)), &followed(10, 0), timeout, &p),
            AfterPoll::Failed { .. }
        ));
        assert!(matches!(
            after_poll(&Err(http(403, None, None)), &followed(10, 0), timeout, &p),
            AfterPoll::StopRun(StopReason::Refused(_))
        ));
        let failed = Ok(GenerationStatus::Failed {
            message: "renderer gave up".into(),
        });
        assert_eq!(
            after_poll(&failed, &followed(10, 0), timeout, &p),
            AfterPoll::Failed {
                message: "renderer gave up".into()
            }
        );
    }

    #[test]
    fn each_download_outcome_gets_its_decision() {
        let p = policy();
        let saved: Result<Downloaded, DownloadError> = Ok(Downloaded {
            bytes: 10,
            sha256: "ff".into(),
        });
        let (zero, long) = (Duration::ZERO, Duration::from_secs(1800));
        assert_eq!(after_download(&saved, 0, zero, long, &p), AfterDownload::Saved);
        let full = Err(DownloadError::Write {
            path: "videos/a.mp4".into(),
            source: std::io::Error::other("No space left on device"),
        });
        assert!(matches!(
            after_download(&full, 1, zero, long, &p),
            AfterDownload::StopRun { reason: StopReason::Fatal(m), .. } if m.contains("stopping before more")
        ));
        let big = Err(DownloadError::TooLarge {
            offered: "50 GB".into(),
            limit: 1 << 30,
        });
        assert!(matches!(
            after_download(&big, 1, zero, long, &p),
            AfterDownload::GiveUp { message } if message.contains("--max-download-size")
        ));
        // An expired link: a fresh URL at once; another failure: after a backoff, capped.
        assert!(matches!(
            after_download(&Err(DownloadError::Expired(403)), 1, zero, long, &p),
            AfterDownload::Refetch { delay, .. } if delay.is_zero()
        ));
        assert!(matches!(
            after_download(&Err(DownloadError::Expired(403)), 6, zero, long, &p),
            AfterDownload::Refetch { delay, .. } if !delay.is_zero()
        ));
        let cut = || Err(DownloadError::Transient("reset".into()));
        assert!(matches!(
            after_download(&cut(), 2, zero, long, &p),
            AfterDownload::Refetch { delay, warning } if !delay.is_zero() && warning.contains("try 3 next")
        ));
        // Fifty failures in a row are no reason to give a paid video up while time is left.
        assert!(matches!(
            after_download(&cut(), 50, Duration::from_secs(600), long, &p),
            AfterDownload::Refetch { delay, .. } if delay <= REFETCH_CAP
        ));
        assert!(matches!(
            after_download(&cut(), 50, long, long, &p),
            AfterDownload::GiveUp { message } if message.contains("a rerun fetches it at no cost")
        ));
    }
}
