//! What the fuzz targets check: a manifest reader and the planner on arbitrary text, with no
//! panic, no hang, bounded memory (run with `-rss_limit_mb` and `-timeout`), and every diagnostic
//! inside the text.

#[allow(dead_code)]
pub fn check(ext: &str, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../manifests/fuzzed.{ext}"));
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
}

/// A workbook's bytes, read as `load` reads an `.xlsx` (or `.ods`, by content): no panic, no
/// allocation of a sheet's whole box (`-rss_limit_mb`), a refusal that says why.
#[allow(dead_code)]
pub fn check_sheet(data: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/fuzzed.xlsx");
    let outcome = vidbatch::manifest::load_bytes(&path, data.to_vec()).and_then(|m| vidbatch::plan::plan(&m));
    if let Err(diagnostics) = outcome {
        assert!(!diagnostics.0.is_empty());
        let _ = diagnostics.render(false);
    }
}
