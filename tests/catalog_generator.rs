//! The embedded catalog (`catalog/models.json`) is what the generator makes of the vendor facts
//! kept in `catalog/vendor/`: an edit by hand, or a generator changed without regenerating, fails
//! here. (Regenerating from the vendor's docs: `tools/catalog/README.md`.)

use std::process::Command;

#[test]
fn the_embedded_catalog_is_what_the_generator_makes() {
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
