//! Tests that need something of the machine beyond cargo (Chromium, user namespaces, python3)
//! skip where it is missing, and say so where people see it; `VIDBATCH_REQUIRE_ALL_TESTS=1` (which
//! CI sets) makes a skip a failure, so that CI runs every test.

use std::io::Write as _;

/// The variable that turns a skip into a failure.
pub const REQUIRE_ALL: &str = "VIDBATCH_REQUIRE_ALL_TESTS";

/// The calling test cannot run here (`why`; `enable` says how to make it run): prints a
/// `SKIPPED:` line, or fails when [`REQUIRE_ALL`] is `1`. The caller returns at once.
pub fn skip(test: &str, why: &str, enable: &str) {
    let line = format!("SKIPPED: {test}: {why}. To run it: {enable}.");
    if std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1") {
        panic!("{line}\n{REQUIRE_ALL}=1 (as CI sets): every test must run here.");
    }
    // Written to the process's stderr itself: the test harness captures `eprintln!` and shows
    // it only for a test that fails, and a skipped test passes.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
