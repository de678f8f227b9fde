//! The process's exit codes, decided once at the end of a command.

/// Every job completed (or, for `validate`, the manifest is valid).
pub const OK: i32 = 0;
/// The run finished, but some jobs did not complete (failed, unknown or pending).
pub const JOBS_INCOMPLETE: i32 = 1;
/// The manifest, the arguments or the configuration are invalid: nothing was submitted.
pub const INVALID: i32 = 2;
/// The run was aborted: the service refused the key or account, the run was interrupted, or its
/// state could not be written. What was recorded is resumable with the same command.
pub const ABORTED: i32 = 3;
/// Another vidbatch run holds the output folder (its `state.lock`): nothing was done. Wait for it,
/// or choose another `--out`.
pub const BUSY: i32 = 4;
