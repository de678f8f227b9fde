//! Prices from the API's live price list: the estimate of `validate` and a run's `run_started`
//! equal what the simulator charges, job by job, over a manifest of every model it prices at a
//! fixed or variant rate; the list is revalidated with its `ETag`, and a list that is down is
//! replaced by the last good copy, said so.

mod common;

use common::catalog_jobs::{media_files, minimal_job};
use common::{Harness, stderr};
use vidbatch::catalog;
use vidbatch::sim::ListingFault;
use vidbatch::sim::pricing::{Pricing, charge, pricing};

/// A job of every model the simulator prices exactly (not `variable`), and of a few with other
/// durations and resolutions than their defaults.
fn priced_manifest(h: &Harness) -> std::path::PathBuf {
    media_files(h.dir.path());
    let mut text = String::from("jobs:\n");
    let mut models = 0;
    for m in catalog::models() {
        if matches!(pricing(m.id), None | Some(Pricing::Variable)) {
            continue;
        }
        models += 1;
        text.push_str(minimal_job(m).strip_prefix("jobs:\n").unwrap());
    }
    assert!(models >= 20, "{models} models");
    // Variants by resolution, and a duration other than the default.
    text.push_str(
        "  - model: google/veo-3.0-i2v\n    input: img.png\n    prompt: x\n    params: {resolution: 1080P, duration: 4}\n\
         \x20 - model: bytedance/seedance-1-0-pro-i2v\n    input: img.png\n    prompt: y\n    params: {resolution: 480p, duration: 10}\n",
    );
    h.write("priced.yaml", &text)
}

/// The credits a line `  total  N  …  12,345` of `validate` says.
fn validate_total(stdout: &str) -> u64 {
    let line = stdout.lines().find(|l| l.trim_start().starts_with("total")).unwrap();
    line.split_whitespace()
        .last()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn the_estimate_is_what_the_simulator_charges_for_fixed_and_variant_prices() {
    let h = Harness::fast();
    let manifest = priced_manifest(&h);
    let validated = h.finish(h.command(&["validate", manifest.to_str().unwrap()]));
    assert_eq!(validated.status.code(), Some(0), "{}", stderr(&validated));
    let stdout = String::from_utf8_lossy(&validated.stdout).into_owned();
    assert!(
        !stdout.contains("counted at the highest"),
        "every job is priced by the list:\n{stdout}"
    );
    let estimate = validate_total(&stdout);

    // The run: its `run_started` says the same, and the simulator charges exactly that.
    let output = h.finish(h.run_command(&manifest, &["--log-format", "json", "--concurrency", "64"]));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let started: serde_json::Value = stderr(&output)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "run_started")
        .expect("a run_started event");
    assert_eq!(
        started["estimated_credits"].as_u64(),
        Some(estimate),
        "a whole number, as in results.csv"
    );
    let charged: u64 = h
        .log()
        .submits
        .iter()
        .map(|s| charge(s.body["model"].as_str().unwrap(), &s.body).unwrap())
        .sum();
    assert_eq!(charged, estimate, "the estimate is the simulator's charges, job by job");
    let recorded: u64 = h.results().iter().map(|r| r["credits"].parse::<u64>().unwrap()).sum();
    assert_eq!(recorded, estimate);
}

#[test]
fn the_list_is_revalidated_by_its_etag_and_a_list_that_is_down_is_replaced_by_its_last_copy() {
    let h = Harness::fast();
    let manifest = h.write(
        "m.yaml",
        "jobs:\n  - model: google/veo-3.0-i2v\n    input: assets/shoe.jpg\n    prompt: x\n",
    );
    let validate = || h.finish(h.command(&["validate", manifest.to_str().unwrap()]));
    let first = validate();
    assert!(String::from_utf8_lossy(&first.stdout).contains("(price list)"));
    // The second time the copy kept on disk is asked about: the answer is a 304.
    validate();
    assert_eq!(h.log().model_listings, 2);
    assert_eq!(h.log().model_listings_not_modified, 1);

    // Down: the copy is used, and the run says how old it is.
    h.sim.set_listing_fault(Some(ListingFault::Unavailable));
    let down = validate();
    let said = String::from_utf8_lossy(&down.stdout).into_owned();
    assert!(
        said.contains("(price list)") && said.contains("prices are from a copy"),
        "{said}"
    );
    // Garbage, and no copy (another cache): priced as before, said so, and nothing blocks.
    h.sim.set_listing_fault(Some(ListingFault::Garbage));
    let mut cmd = h.command(&["validate", manifest.to_str().unwrap()]);
    cmd.env("VIDBATCH_CACHE_DIR", h.path("empty-cache"));
    let garbage = h.finish(cmd);
    assert_eq!(garbage.status.code(), Some(0));
    let said = String::from_utf8_lossy(&garbage.stdout).into_owned();
    assert!(
        said.contains("no copy is kept") && said.contains("counted at the highest charge seen"),
        "{said}"
    );
}

#[test]
fn the_models_command_shows_each_models_price_from_the_list() {
    let h = Harness::fast();
    let one = h.finish(h.command(&["models", "magic/text-to-video"]));
    let said = String::from_utf8_lossy(&one.stdout).into_owned();
    assert!(said.contains("price: 1,050,000 credits a generation"), "{said}");
    let veo = h.finish(h.command(&["models", "google/veo-3.0-i2v"]));
    let said = String::from_utf8_lossy(&veo.stdout).into_owned();
    assert!(
        said.contains("price: resolution ") && said.contains(" credits a second"),
        "{said}"
    );
    let list = h.finish(h.command(&["models", "veo"]));
    let said = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        said.lines()
            .any(|l| l.starts_with("google/veo-3.0-i2v") && l.contains("by variant")),
        "{said}"
    );
    // No list to be had: the catalog is still shown, and says why there are no prices.
    h.sim.set_listing_fault(Some(ListingFault::Unavailable));
    let mut cmd = h.command(&["models", "kling"]);
    cmd.env("VIDBATCH_CACHE_DIR", h.path("empty-cache"));
    let offline = h.finish(cmd);
    assert_eq!(offline.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&offline.stdout).contains("prices: the price list could not be read"));
}
