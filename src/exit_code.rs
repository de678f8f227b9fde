//! The process's exit codes, decided once at the end of a command.

/// Every job completed (or, for `validate`, the manifest is valid).
pub const OK: i32 = 0;
/// The run finished, but some jobs did not complete (failed, unknown or pending).
pub const JOBS_INCOMPLETE: i32 = 1;
/// The manifest, the arguments or the configuration are invalid, or the jobs to send would pass
/// `--max-credits` and no `--within-cap` says which go: nothing was submitted.
pub const INVALID: i32 = 2;
/// The run was aborted: the service refused the key or account, the run was interrupted, or its
/// state could not be written. What was recorded is resumable with the same command.
pub const ABORTED: i32 = 3;
/// Another vidbatch run holds the output folder (its `state.lock`): nothing was done. Wait for it,
/// or choose another `--out`.
pub const BUSY: i32 = 4;

use crate::coordinator::StopReason;
use crate::state::StateError;

/// The code of a command that could not use an output folder's state: 4 while another run holds
/// it, 2 for a state to fix or restore (nothing was done), 3 when it could not be opened or
/// written.
pub fn of_state_error(e: &StateError) -> i32 {
    match e {
        StateError::Locked { .. } => BUSY,
        StateError::OtherEndpoint { .. }
        | StateError::Missing { .. }
        | StateError::NewerSchema { .. }
        | StateError::NotAState { .. }
        | StateError::Lost { .. }
        | StateError::Corrupt { .. } => INVALID,
        StateError::CreateDir { .. } | StateError::Lock { .. } | StateError::Open { .. } | StateError::Sql(_) => {
            ABORTED
        }
    }
}

/// How a run ended, decided once from why it stopped and what its rows say: the exit code, the
/// line the summary ends with, and what to do about it all come from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every job completed.
    Complete,
    /// The run went to its end; some jobs did not complete (failed, unknown, awaiting download
    /// or pending).
    Incomplete,
    /// The run stopped before its work was done; the same command resumes it.
    Stopped(StopReason),
}

impl RunOutcome {
    /// `completed` of `total` rows completed, and why the run stopped, if it did.
    pub fn of(stopped: Option<StopReason>, completed: usize, total: usize) -> RunOutcome {
        match stopped {
            Some(reason) => RunOutcome::Stopped(reason),
            None if completed == total => RunOutcome::Complete,
            None => RunOutcome::Incomplete,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::Complete => OK,
            RunOutcome::Incomplete => JOBS_INCOMPLETE,
            RunOutcome::Stopped(_) => ABORTED,
        }
    }

    /// Why the run stopped early, in words (`None` when it did not).
    pub fn stopped(&self) -> Option<String> {
        match self {
            RunOutcome::Complete | RunOutcome::Incomplete => None,
            RunOutcome::Stopped(StopReason::Interrupted) => {
                Some("interrupted: the same command resumes the run".into())
            }
            RunOutcome::Stopped(
                StopReason::Refused(m)
                | StopReason::Fatal(m)
                | StopReason::Unreachable(m)
                | StopReason::DiskFull(m)
                | StopReason::Failing(m),
            ) => Some(m.clone()),
        }
    }

    /// Whether the stop is an error to report (an interrupt is what the user asked for).
    pub fn is_error(&self) -> bool {
        matches!(self, RunOutcome::Stopped(reason) if *reason != StopReason::Interrupted)
    }

    /// What to do next, when the stop calls for something besides the same command.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            RunOutcome::Stopped(StopReason::Unreachable(_)) => Some("check the network and `AIMLAPI_BASE_URL`"),
            RunOutcome::Stopped(StopReason::DiskFull(_)) => Some(
                "free some space on that disk (or choose another `--out`), then rerun the same command: \
                 what was paid for is fetched at no cost",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ending_has_its_code() {
        assert_eq!(RunOutcome::of(None, 3, 3).exit_code(), OK);
        assert_eq!(RunOutcome::of(None, 2, 3).exit_code(), JOBS_INCOMPLETE);
        let interrupted = RunOutcome::of(Some(StopReason::Interrupted), 3, 3);
        assert_eq!(interrupted.exit_code(), ABORTED);
        assert!(!interrupted.is_error());
        let full = RunOutcome::of(Some(StopReason::DiskFull("no room".into())), 0, 3);
        assert_eq!(
            (full.exit_code(), full.stopped().as_deref()),
            (ABORTED, Some("no room"))
        );
        assert!(full.is_error() && full.help().is_some_and(|h| h.contains("free some space")));
    }
}
