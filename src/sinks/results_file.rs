//! Keeps `<out>/results.csv` (and `results.jsonl`) fresh while a run goes on, so that people
//! (and a run killed outright) have a recent one. It reads the committed state through its own connection, on its
//! own clock and only after something changed, so a run of 10,000 jobs rewrites it every few
//! seconds at most, never per event. The final file is written by the caller at the end.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::{RunEvent, Sink};
use crate::plan::Plan;
use crate::state::StateReader;

pub struct ResultsFile<'a> {
    out: PathBuf,
    plan: &'a Plan,
    every: Duration,
    next: Instant,
    changed: bool,
    reader: Option<StateReader>,
}

impl<'a> ResultsFile<'a> {
    pub fn new(out: PathBuf, plan: &'a Plan, every: Duration) -> ResultsFile<'a> {
        ResultsFile {
            out,
            plan,
            every,
            next: Instant::now() + every,
            changed: false,
            reader: None,
        }
    }

    fn refresh(&mut self) -> Result<(), String> {
        if self.reader.is_none() {
            self.reader = Some(StateReader::open(&self.out).map_err(|e| crate::api::error_chain(&e))?);
        }
        let reader = self.reader.as_ref().expect("opened above");
        // One snapshot for the whole file: its rows, read one at a time, agree with each other.
        reader
            .on_one_snapshot(|r| crate::results::refresh(&self.out, self.plan, r))
            .map_err(|e| crate::api::error_chain(&e))?
            .map_err(|e| crate::api::error_chain(&e))?;
        Ok(())
    }
}

impl Sink for ResultsFile<'_> {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Progress(_) => {
                let now = Instant::now();
                if !self.changed || now < self.next {
                    return;
                }
                self.next = now + self.every;
                self.changed = false;
                // Only a warning: the state holds the truth, and the final write reports errors.
                if let Err(e) = self.refresh() {
                    tracing::warn!("{e}");
                }
            }
            RunEvent::Started(_) | RunEvent::Finished(_) => {}
            _ => self.changed = true,
        }
    }
}
