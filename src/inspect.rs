//! What an output folder holds, read from its state alone: no network, no lock taken, so it works
//! beside a run. `vidbatch status` prints it ([`status`]); `vidbatch validate` shows the plan, what
//! a run with the same options would do with each job (from the folder's state and
//! [`crate::selection`]), and what it should cost ([`validate`]). Both speak
//! text to people and, with `--json`, one JSON document to programs: the documents' fields are
//! described in the README ("Scripts and cron") and kept stable under [`SCHEMA_VERSION`].

use std::path::Path;

use serde::{Serialize, Serializer};

use crate::manifest::{Diagnostic, Severity};
use crate::state::StateError;

pub mod status;
pub mod validate;

/// The version of the JSON documents of `status`, `validate` and `verify`: raised only when a
/// field changes its meaning or goes away; fields may be added at any time.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    State(#[from] StateError),
    /// stdout could not be written (a closed pipe, say).
    #[error(transparent)]
    Output(#[from] std::io::Error),
}

/// Credits in JSON: the whole numbers they are (`29000000`, not `29000000.0`), as in
/// `results.csv`; a fraction (a price list's odd charge) stays one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Credits(pub f64);

impl Serialize for Credits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() < 9e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// A problem in JSON, a manifest's or a command's: where (file, sheet, line and column, when
/// known), what, and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: Option<String>,
    pub sheet: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn of_diagnostic(d: &Diagnostic) -> Problem {
        Problem {
            file: Some(d.file.display().to_string()),
            sheet: d.sheet.as_deref().map(String::from),
            line: d.at.map(|p| p.line),
            column: d.at.map(|p| p.column),
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }

    /// A problem that is no manifest's (a folder's state, an argument).
    pub fn of_message(message: String, help: Option<String>) -> Problem {
        Problem {
            file: None,
            sheet: None,
            line: None,
            column: None,
            message,
            help,
        }
    }
}

/// Splits a manifest's diagnostics into errors and warnings, as JSON problems.
pub fn problems(diagnostics: &[Diagnostic]) -> (Vec<Problem>, Vec<Problem>) {
    let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
        diagnostics.iter().partition(|d| d.severity == Severity::Error);
    (
        errors.into_iter().map(Problem::of_diagnostic).collect(),
        warnings.into_iter().map(Problem::of_diagnostic).collect(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_are_whole_numbers_in_json() {
        let json = serde_json::to_string(&[Credits(29_000_000.0), Credits(0.0), Credits(1.5)]).unwrap();
        assert_eq!(json, "[29000000,0,1.5]");
    }
}
