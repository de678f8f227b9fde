//! vidbatch: run a manifest of video generations against the AI/ML API, durably.
//!
//! # Layout
//! Data flows one way: manifest → plan → coordinator → (api, download) → state → results.
//!
//! - [`manifest`]: reads YAML or CSV into entries that remember their lines.
//! - [`catalog`]: what the client knows of each model: fields, enums, templates, defaults.
//! - [`plan`]: validates entries into content-keyed [`plan::Job`]s; nothing is sent before this
//!   succeeds for every job.
//! - [`coordinator`]: the one owner of a run: submits, polls all in-flight generations from one
//!   timer, fetches videos, records every step in [`state`] before and after it happens.
//! - [`api`]: the two HTTP endpoints, the rate limiter and error classification; [`retry`]: how
//!   long to wait before trying again.
//! - [`download`]: streams videos to `.part` files, checks and hashes them, renames.
//! - [`state`]: `<out>/state.db` (SQLite), the run's durable memory.
//! - [`results`]: `<out>/results.csv` (in the manifest's dialect), `results.jsonl` and, for a
//!   workbook manifest, `results.xlsx`, read from the state; each row keyed back to its manifest row.
//! - [`sinks`]: what people and programs see of a run, from the coordinator's events: the live
//!   view, plain or JSON log lines, the refreshed `results.csv`, the end-of-run summary.
//! - [`cost`]: prices, estimates, and the ledger that keeps `--max-credits`.
//! - [`selection`]: what a run will send, decided before it sends anything, the same for `run`
//!   and `validate`: `--shard`, `--limit`, `--sample`, the folder's state, `--max-credits`.
//! - [`pricing`]: the vendor's live price list, kept on disk with its `ETag`, quoted per job.
//! - [`inspect`]: what an output folder holds, from its state alone (`status`, `validate --out`).
//! - [`shard`]: `--shard K/N`, a split of a plan's jobs by job id.
//! - [`gallery`]: `<out>/report.html`, the videos side by side (inputs × templates), made from
//!   `results.csv`.
//! - [`sim`]: a simulator of the API (an HTTP server) for the demo and the tests.
//! - [`verify`]: checks the videos of an output folder against their recorded SHA-256.
//! - [`wording`]: how counts and sizes read (`1 job`, `3 jobs`, `1.2 GB`).
//! - [`exit_code`]: what the process returns.

pub mod api;
pub mod catalog;
pub mod coordinator;
pub mod cost;
pub mod download;
pub mod exit_code;
pub mod gallery;
pub mod inspect;
pub mod manifest;
pub mod plan;
pub mod pricing;
pub mod results;
pub mod retry;
pub mod selection;
pub mod shard;
pub mod sim;
pub mod sinks;
pub mod state;
pub mod verify;
pub mod wording;
