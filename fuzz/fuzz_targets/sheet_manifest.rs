//! The spreadsheet reader and the planner on arbitrary workbook bytes (see `check.rs`); seeded
//! with `fuzz/seeds/*.xlsx` and `*.ods`, sheets whose cells lie far apart among them.
#![no_main]

mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check_sheet(data));
