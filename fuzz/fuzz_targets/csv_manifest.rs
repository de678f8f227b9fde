//! The CSV manifest reader and the planner on arbitrary text (see `check.rs`).
#![no_main]

mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check("csv", data));
