//! The YAML manifest reader and the planner on arbitrary text: no panic, no hang, bounded memory
//! (run with `-rss_limit_mb` and `-timeout`), every diagnostic inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/fuzzed.yaml");
    let outcome = vidbatch::manifest::parse(&path, text.into()).and_then(|m| vidbatch::plan::plan(&m));
    if let Err(diagnostics) = outcome {
        for d in &diagnostics.0 {
            if let Some(at) = d.at {
                assert!(at.offset + at.len <= text.len());
                assert!(text.is_char_boundary(at.offset));
            }
            let _ = d.render(false);
        }
    }
});
