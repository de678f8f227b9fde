//! The embedded catalog (`catalog/models.json`) is what the generator makes of the vendor facts
//! kept in `catalog/vendor/`: an edit by hand, or a generator changed without regenerating, fails
//! here. (Regenerating from the vendor's docs: `tools/catalog/README.md`.)

use std::process::Command;

#[path = "common/skip.rs"]
mod skip;

/// Whether `python3` is there and new enough for the generator; why not, when not.
fn python_missing() -> Option<String> {
    let version = Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output();
    match version {
        Err(e) => Some(format!("no `python3` to run the catalog generator ({e})")),
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let (major, minor) = text.split_once('.')?;
            let new_enough = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?) >= (3, 11);
            (!new_enough).then(|| format!("the catalog generator needs python3 3.11 or later, this is {text}"))
        }
    }
}

#[test]
fn the_embedded_catalog_is_what_the_generator_makes() {
    if let Some(why) = python_missing() {
        skip::skip(
            "the_embedded_catalog_is_what_the_generator_makes",
            &why,
            "install python3 (3.11 or later; the standard library is all it uses)",
        );
        return;
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("python3")
        .args(["tools/catalog/generate.py", "build", "--check"])
        .current_dir(repo)
        .output()
        .expect("the catalog generator needs python3 (3.11 or later, standard library only)");
    assert!(
        output.status.success(),
        "catalog/models.json differs from what `python3 tools/catalog/generate.py build` writes:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
