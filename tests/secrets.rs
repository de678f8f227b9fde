//! The API key goes into the `Authorization` header of API requests and nowhere else: not into
//! any output at any verbosity, not into any file the run writes, not to the file host, not to
//! a host a redirect points to.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{Harness, fast_config, files_under};
use vidbatch::exit_code;
use vidbatch::sim::SimConfig;
use vidbatch::sim::chaos::{Chaos, Fault};

/// A simulator that accepts only `key`, refuses it once anyway (401), throttles, hands out an
/// expired URL first, and redirects some requests to another host.
fn hostile_sim(key: &str) -> Harness {
    Harness::new(SimConfig {
        key: Some(key.to_string()),
        unauthorized_first_submits: 1,
        throttle_first_submits: 2,
        retry_after: Duration::from_secs(1),
        expire_first_urls: 1,
        chaos: Some(Chaos::only(
            0x5EC2E7,
            &[
                (Fault::SubmitRedirect, 0.2),
                (Fault::PollRedirect, 0.2),
                (Fault::DownloadRedirect, 0.3),
                (Fault::SubmitServerError, 0.1),
                (Fault::PollThrottled, 0.1),
                (Fault::DownloadExpired, 0.1),
            ],
        )),
        ..fast_config()
    })
}

const MANIFEST: &str = "jobs:\n  - model: magic/text-to-video\n    prompts: [SECRET A, SECRET B]\n  - model: magic/image-to-video\n    input: assets/shoe.jpg\n    templates: [Tokyo Billboard, Phone App]\n  - model: pixverse/v5/image-to-video\n    input: assets/presenter.jpg\n    prompt: a presenter keeps a secret\n";

/// Where `needle` occurs in `haystack`, as a short excerpt.
fn find(haystack: &[u8], needle: &[u8]) -> Option<String> {
    let at = haystack.windows(needle.len()).position(|w| w == needle)?;
    let from = at.saturating_sub(60);
    let to = (at + needle.len() + 60).min(haystack.len());
    Some(String::from_utf8_lossy(&haystack[from..to]).into_owned())
}

/// Every place the secret shows up, in an output or a file under `dir`.
fn leaks(secret: &str, outputs: &[(String, &Output)], dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (what, output) in outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            if let Some(excerpt) = find(bytes, secret.as_bytes()) {
                found.push(format!("{what} {stream}: …{excerpt}…"));
            }
        }
    }
    for file in files_under(dir) {
        let bytes = std::fs::read(dir.join(&file)).unwrap();
        if let Some(excerpt) = find(&bytes, secret.as_bytes()) {
            found.push(format!("{file}: …{excerpt:?}…"));
        }
    }
    found
}

#[test]
fn the_leak_scanner_finds_what_it_looks_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out/videos")).unwrap();
    std::fs::write(dir.path().join("out/videos/a.bin"), b"\x00\x01sk-CANARY-123\xff").unwrap();
    assert_eq!(leaks("sk-CANARY-123", &[], dir.path()).len(), 1);
    assert!(leaks("sk-CANARY-124", &[], dir.path()).is_empty());
}

#[test]
fn the_key_is_never_written_printed_or_sent_where_it_does_not_belong() {
    let key = format!("sk-LEAKCHECK-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    // The distinctive part alone too, in case the key is shown with its prefix changed.
    let secret_part = &key["sk-LEAKCHECK-".len()..];
    for (level, flags) in [("-vv", &["-vv"][..]), ("default", &[][..]), ("-q", &["-q"][..])] {
        let h = hostile_sim(&key);
        let manifest = h.write("secret.yaml", MANIFEST);
        let run = |extra: &[&str]| {
            let mut command = h.run_in("out", &manifest, extra);
            command.env("AIMLAPI_KEY", &key);
            h.finish(command)
        };
        // The service refuses the key once: the run stops, and the same command resumes it.
        let refused = run(flags);
        assert_eq!(refused.status.code(), Some(exit_code::ABORTED), "{level}");
        let resumed = run(flags);
        assert!(
            matches!(resumed.status.code(), Some(exit_code::OK | exit_code::JOBS_INCOMPLETE)),
            "{level}: {:?}",
            resumed.status.code()
        );
        let again = run(flags);
        let validate = h
            .command_as(&key, &[flags, &["validate", manifest.to_str().unwrap()][..]].concat())
            .output()
            .unwrap();
        assert_eq!(validate.status.code(), Some(exit_code::OK));
        let log = h.log();
        assert!(
            log.refused.iter().any(|r| r.0 == 401),
            "{level}: the refused-key path ran"
        );
        assert!(log.refused.iter().any(|r| r.0 == 429), "{level}: throttled");
        assert!(
            log.downloads.iter().any(|d| d.status == 403),
            "{level}: an expired URL was met"
        );
        assert!(!log.downloads.is_empty());

        let outputs = [
            (format!("{level} refused run"), &refused),
            (format!("{level} resumed run"), &resumed),
            (format!("{level} third run"), &again),
            (format!("{level} validate"), &validate),
        ];
        // Everything the runs wrote: the output folder (state.db, results.csv, videos) and
        // anything else beside the manifest.
        for secret in [key.as_str(), secret_part] {
            let found = leaks(secret, &outputs, h.dir.path());
            assert!(found.is_empty(), "the key leaked at {level}:\n{}", found.join("\n"));
        }
        assert!(files_under(&h.out()).iter().any(|f| f == "state.db"));

        // What the simulator saw: the key only where it belongs.
        assert!(
            log.key_leaks().is_empty(),
            "{level}: the key was sent to {:?}",
            log.key_leaks()
        );
        assert!(log.downloads.iter().all(|d| !d.had_authorization));
        assert!(
            log.submits.iter().all(|s| !s.body.to_string().contains(secret_part)),
            "{level}: the key went into a request body"
        );
    }
}

/// A key the service never accepts: the refusal is reported without the key.
#[test]
fn a_wrong_key_is_reported_without_being_shown() {
    let right = format!("sk-LEAKCHECK-{:016x}", fastrand::u64(..));
    let wrong = format!("sk-LEAKCHECK-WRONG-{:016x}", fastrand::u64(..));
    let h = Harness::new(SimConfig {
        key: Some(right),
        ..fast_config()
    });
    let manifest = h.write("secret.yaml", MANIFEST);
    let mut command = h.run_in("out", &manifest, &["-vv"]);
    command.env("AIMLAPI_KEY", &wrong);
    let output = h.finish(command);
    assert_eq!(output.status.code(), Some(exit_code::ABORTED));
    let found = leaks(&wrong, &[("-vv run".to_string(), &output)], h.dir.path());
    assert!(found.is_empty(), "the wrong key leaked:\n{}", found.join("\n"));
    assert!(h.log().refused.iter().all(|r| r.0 == 401));
}
