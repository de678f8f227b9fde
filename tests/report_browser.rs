//! `report.html` in a real browser: a manifest run by the real binary against the simulator, then
//! the page opened from disk in headless Chromium, driven over the DevTools protocol (on a pipe:
//! no port, no websocket). Checks what a person would see: the title names the campaign and counts
//! the videos on disk; the grid matches `results.csv`; the page scrolls (no grid scrolls inside it)
//! and every row can be seen whole; nothing is drawn over a video; labels are said once, in a
//! legend, and the user's `#` columns beside their rows; a failure shows its whole reason and what
//! to do; the videos on screen play (and those off screen wait); nothing is fetched from the
//! network; the lightbox opens and Esc closes it; the filters filter. Leaves screenshots behind.
//!
//! Needs Chromium: `VIDBATCH_CHROMIUM=path`, or `chromium`, `chromium-browser`, `google-chrome`
//! on the `PATH` (Debian: `apt-get install chromium`). Without it the tests are skipped, saying
//! so (a failure with `VIDBATCH_REQUIRE_ALL_TESTS=1`); `VIDBATCH_SKIP_BROWSER=1` skips them.

#![cfg(unix)]

#[path = "report_browser/checks.rs"]
mod checks;
#[path = "report_browser/chromium.rs"]
mod chromium;
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chromium::{Browser, chromium};
use common::{Harness, read_results, stderr};
use serde_json::{Value, json};
use vidbatch::exit_code;

/// Five products (one the same picture as another, under a second name: one job, two rows and
/// two videos) × three templates: a grid taller than the window.
const MANIFEST: &str = r#"name: spring launch
jobs:
  - model: magic/image-to-video
    inputs: [assets/shoe.jpg, assets/bag.png, assets/shoe-copy.jpg, assets/boot.jpg, assets/belt.jpg]
    templates: [Tokyo Billboard, Rotating Cards, Phone Social]
  - model: magic/text-to-video
    prompts: ["SALE -30%", "<script>alert('x')</script> & \"friends\""]
  - model: pixverse/v5/image-to-video
    input: assets/presenter.jpg
    prompt: A presenter waves
    params: {resolution: 540p}
  - model: pixverse/v5/image-to-video
    input: assets/presenter.jpg
    prompt: A presenter waves
    params: {resolution: 720p}
  - model: acme/video-9000
    prompt: a cat that the service refuses
"#;

/// One browser at a time: two, each decoding dozens of videos, would starve each other on a
/// small machine and make the timing checks flaky.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_report_shows_the_results_plays_the_videos_and_fetches_nothing() {
    let Some(chromium) = chromium("the_report_shows_the_results_plays_the_videos_and_fetches_nothing") else {
        return;
    };
    let _turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let h = Harness::fast();
    let shoe = std::fs::read(h.path("assets/shoe.jpg")).unwrap();
    std::fs::write(h.path("assets/shoe-copy.jpg"), &shoe).unwrap();
    // Other products: other bytes (after the picture's end), so other jobs.
    for (name, tail) in [("boot", b"boot"), ("belt", b"belt")] {
        std::fs::write(h.path(&format!("assets/{name}.jpg")), [shoe.as_slice(), tail].concat()).unwrap();
    }
    let manifest = h.write("gallery.yaml", MANIFEST);
    // The output folder elsewhere than the manifest: the inputs still show.
    let output = h.finish(h.run_in("runs/gallery", &manifest, &[]));
    assert_eq!(
        output.status.code(),
        Some(exit_code::JOBS_INCOMPLETE),
        "{}",
        stderr(&output)
    );
    let out = h.path("runs/gallery");
    let page = out.join("report.html");
    assert!(page.is_file(), "the run wrote no report: {}", stderr(&output));
    let rows = read_results(&out.join("results.csv"));
    assert_eq!(rows.len(), 20, "15 + 2 + 2 + 1 rows");

    let mut browser = Browser::open(&chromium, h.dir.path());
    browser.navigate(&page);
    let entries = browser.entries();
    assert_grid_matches(&entries, &rows, &out);
    // 17 jobs, one of which has two names: 19 videos, 1 failure.
    assert_eq!(
        browser.eval("document.title"),
        "spring launch · 19 videos · 1 failed — vidbatch report"
    );
    assert_eq!(browser.text("#campaign"), "spring launch");
    assert_eq!(browser.text("#total-videos"), "19");
    assert_eq!(browser.text("#total-jobs"), "17");
    assert_eq!(browser.text("#total-completed"), "16");
    assert_eq!(browser.text("#total-failed"), "1");
    let credits: f64 = rows.iter().filter_map(|r| r["credits"].parse::<f64>().ok()).sum();
    assert_eq!(browser.text("#total-credits").replace(',', ""), credits.to_string());
    let prompts = browser.eval("[...document.querySelectorAll('tbody th .prompt')].map(p => p.textContent)");
    assert!(
        prompts
            .as_array()
            .unwrap()
            .contains(&json!("<script>alert('x')</script> & \"friends\"")),
        "the prompt is shown as text: {prompts}"
    );
    assert_eq!(browser.eval("document.scripts.length"), 1, "a prompt became a script");

    browser.assert_the_page_scrolls_and_every_row_is_seen_whole();
    browser.assert_nothing_covers_a_video();
    let failed: Vec<&HashMap<String, String>> = rows.iter().filter(|r| r["status"] == "failed").collect();
    browser.assert_failures_read_at_a_glance(&failed);

    // The inputs beside their rows: copies under the output folder, decoded by the browser.
    let images = browser.eval(
        "[...document.querySelectorAll('tbody th img')].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])",
    );
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 6, "{images:?}");
    for image in images {
        assert!(image[0].as_str().unwrap().starts_with("report-inputs/"), "{image}");
        assert_eq!(image[1], true, "input image not shown: {image}");
    }

    // What is on screen plays; what is below waits for its turn.
    browser.eval("window.scrollTo(0, 0)");
    let on_screen = browser.wait_for_playing();
    assert!(on_screen >= 2, "only {on_screen} video(s) playing");
    let waiting =
        browser.eval("[...document.querySelectorAll('video.cell-video')].filter(v => !v.getAttribute('src')).length");
    assert!(
        waiting.as_u64().unwrap() >= 1,
        "every video loaded at once: lazy loading is off"
    );

    // Scrolled to the end: the last videos load and play, the first ones pause.
    browser.eval("window.scrollTo(0, document.documentElement.scrollHeight)");
    browser.wait_until("the last videos play", "(() => { const v = [...document.querySelectorAll('video.cell-video')].pop(); return v.getAttribute('src') && !v.paused && v.currentTime > 0 && v.readyState >= 2; })()");
    browser.wait_until(
        "the first video pauses",
        "document.querySelector('video.cell-video').paused",
    );
    let loaded = browser.eval(
        "[...document.querySelectorAll('video.cell-video')].every(v => v.getAttribute('src') ? v.readyState >= 2 && !v.error : true)",
    );
    assert_eq!(loaded, true, "a video failed to load");
    browser.scroll_through();
    browser.screenshot("", true);

    // A click enlarges a video; Esc closes it.
    browser.eval("document.querySelector('video.cell-video').click()");
    browser.wait_until("the lightbox plays", "(() => { const d = document.getElementById('lightbox'); const v = d.querySelector('video'); return d.open && !v.paused && v.currentTime > 0; })()");
    browser.key("Escape");
    browser.wait_until("Esc closes the lightbox", "!document.getElementById('lightbox').open");

    // The status filter leaves the failed job alone.
    browser.eval("(() => { const s = document.getElementById('filter-status'); s.value = 'failed'; s.dispatchEvent(new Event('change')); })()");
    let visible =
        browser.eval("[...document.querySelectorAll('.entry')].filter(e => e.offsetParent).map(e => e.dataset.job)");
    let failed_ids: Vec<&str> = failed.iter().map(|r| r["job_id"].as_str()).collect();
    assert_eq!(visible, json!(failed_ids));

    browser.assert_nothing_from_the_network();
    drop(browser);

    // Labels, the sheet's own columns, a long reason, a video deleted since: `vidbatch report`
    // redraws the page from results.csv, titled with the campaign the run recorded.
    std::fs::write(out.join("results.csv"), relabelled(&out.join("results.csv"))).unwrap();
    let rows = read_results(&out.join("results.csv"));
    let gone = rows
        .iter()
        .find(|r| r["template"] == "Rotating Cards" && r["input"] == "assets/bag.png")
        .unwrap();
    std::fs::remove_file(out.join(&gone["file"])).unwrap();
    let again = h.finish(h.command(&["report", out.to_str().unwrap()]));
    assert_eq!(again.status.code(), Some(exit_code::OK));
    let mut browser = Browser::open(&chromium, h.dir.path());
    browser.navigate(&page);
    let entries = browser.entries();
    assert_grid_matches(&entries, &rows, &out);
    assert_eq!(
        browser.eval("document.title"),
        "spring launch · 18 videos · 1 missing · 1 failed — vidbatch report"
    );
    let missing = entries.iter().find(|e| e["status"] == "missing").unwrap();
    assert_eq!(missing["job"], gone["job_id"].as_str());
    assert!(
        missing["next"]
            .as_str()
            .unwrap()
            .contains("a rerun fetches it again at no cost"),
        "{missing}"
    );
    for e in &entries {
        let row = rows
            .iter()
            .find(|r| r["job_id"] == e["job"] && r["input"] == e["row"])
            .unwrap();
        assert_eq!(e["label"], row["label"].as_str(), "{e}");
    }
    browser.assert_labels_are_said_once();
    browser.assert_nothing_covers_a_video();
    browser.assert_the_page_scrolls_and_every_row_is_seen_whole();
    let failed: Vec<&HashMap<String, String>> = rows.iter().filter(|r| r["status"] == "failed").collect();
    browser.assert_failures_read_at_a_glance(&failed);
    // The sheet's SKU of each product beside its row; the custom_id says nothing more: left out.
    let notes = browser.eval(
        "[...document.querySelectorAll('tbody th')].filter(th => th.querySelector('img')).map(th => [th.title, [...th.querySelectorAll('.note')].map(n => n.textContent)])",
    );
    for row in notes.as_array().unwrap() {
        let input = row[0].as_str().unwrap();
        assert_eq!(row[1], json!([format!("SKU{}", sku(input))]), "{row}");
    }
    browser.scroll_through();
    browser.screenshot("-labels", true);

    // A label of the legend, clicked, shows only its videos; clicked again, all of them.
    browser.eval("[...document.querySelectorAll('.legend-item')].find(b => b.dataset.label === 'hero').click()");
    let hero = rows.iter().filter(|r| r["label"] == "hero").count();
    let visible = browser.eval("document.querySelectorAll('.entry:not([hidden])').length");
    assert_eq!(visible, hero);
    assert_eq!(browser.text("#shown"), format!("showing {hero} of {}", rows.len()));
    browser.eval("[...document.querySelectorAll('.legend-item')].find(b => b.dataset.label === 'hero').click()");
    assert_eq!(browser.text("#shown"), "");
    browser.assert_nothing_from_the_network();

    // No results, no page: said plainly.
    let none = h.finish(h.command(&["report", "nowhere"]));
    assert_eq!(none.status.code(), Some(exit_code::INVALID));
    assert!(stderr(&none).contains("no results.csv in `nowhere`: run a manifest into it first"));
}

/// 500 cells (25 inputs × 20 templates): the page opens at once, loads only the videos near the
/// screen, plays at most a few dozen, and keeps that bound while the grid is scrolled about.
#[test]
fn five_hundred_cells_load_and_play_only_what_is_on_screen() {
    let Some(chromium) = chromium("five_hundred_cells_load_and_play_only_what_is_on_screen") else {
        return;
    };
    let _turn = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut csv = String::from(
        "job_id,model,template,input,status,generation_id,file,bytes,sha256,credits,attempts,submitted_at,finished_at,error\n",
    );
    let video = vidbatch::sim::media::video("g");
    for t in 0..20 {
        std::fs::create_dir_all(out.join(format!("videos/t{t}"))).unwrap();
        for i in 0..25 {
            let file = format!("videos/t{t}/input-{i}.mp4");
            std::fs::write(out.join(&file), &video).unwrap();
            let id = format!("{t:02}{i:02}00000000");
            csv.push_str(&format!(
                "{id},magic/image-to-video,Template {t},assets/input-{i}.jpg,completed,g{id},{file},{},x,1,1,,,\n",
                video.len()
            ));
        }
    }
    std::fs::write(out.join("results.csv"), csv).unwrap();
    let report = Command::new(env!("CARGO_BIN_EXE_vidbatch"))
        .args(["report", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(exit_code::OK), "{}", stderr(&report));

    let mut browser = Browser::open(&chromium, dir.path());
    let start = Instant::now();
    browser.navigate(&out.join("report.html"));
    assert_eq!(
        browser.eval("document.querySelectorAll('video.cell-video').length"),
        500
    );
    let bounds = "(() => { const vs = [...document.querySelectorAll('video.cell-video')]; return [vs.filter(v => v.getAttribute('src')).length, vs.filter(v => !v.paused).length]; })()";
    let check = |browser: &mut Browser, when: &str| {
        let playing = browser.wait_for_playing();
        let counts = browser.eval(bounds);
        let (loaded, running) = (counts[0].as_u64().unwrap(), counts[1].as_u64().unwrap());
        eprintln!("{when}: {playing} in view, {loaded} loaded, {running} playing");
        assert!(playing >= 4, "{when}: {playing} in view");
        // The page keeps at most 48 loaded, and more only while they are all near the window
        // (within 150 px of it): what is loaded follows what is on screen, never the page's 500.
        assert!(loaded <= 48.max(2 * playing), "{when}: {loaded} videos loaded");
        // Only what is in view plays.
        assert_eq!(running, playing, "{when}: {running} videos playing, {playing} in view");
    };
    check(&mut browser, "opened");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the page took {:?}",
        start.elapsed()
    );
    // No state in the folder, so no campaign: the title says what the page holds.
    assert_eq!(browser.eval("document.title"), "500 videos — vidbatch report");
    // The page itself scrolls, both ways, as one grid wider and taller than the window.
    for (x, y) in [(2400, 0), (4800, 2000), (0, 4000), (1200, 1200)] {
        browser.eval(&format!("window.scrollTo({x}, {y})"));
        std::thread::sleep(Duration::from_millis(100));
        check(&mut browser, &format!("scrolled to {x},{y}"));
    }
    browser.screenshot("-500", false);
    browser.assert_the_page_scrolls_and_every_row_is_seen_whole();
    browser.assert_nothing_from_the_network();
}

/// Every row of `results.csv` is one entry of the page, in the grid of its model, on the row of
/// its input and in the column of its template (or its parameters), with its status (`missing`
/// for a completed job whose video is no longer in `out`) and its error.
fn assert_grid_matches(entries: &[Value], rows: &[HashMap<String, String>], out: &Path) {
    assert_eq!(entries.len(), rows.len(), "{entries:#?}");
    let strip = |v: &str| v.strip_prefix('\'').unwrap_or(v).to_string();
    for row in rows {
        let e = entries
            .iter()
            .find(|e| e["job"] == row["job_id"].as_str() && e["row"] == strip(&row["input"]))
            .unwrap_or_else(|| panic!("job {} of {} not on the page", row["job_id"], row["input"]));
        assert_eq!(e["section"], row["model"].as_str(), "{e}");
        let on_disk = !row["file"].is_empty() && out.join(&row["file"]).is_file();
        let status = match row["status"].as_str() {
            "completed" if !on_disk => "missing",
            status => status,
        };
        assert_eq!(e["status"], status, "{e}");
        let column = e["column"].as_str().unwrap();
        if row["template"].is_empty() {
            let params: Value = serde_json::from_str(&row["params"]).unwrap_or(Value::Null);
            match params["resolution"].as_str() {
                Some(res) => assert_eq!(column, format!("resolution={res}"), "{e}"),
                None => assert_eq!(column, "video", "{e}"),
            }
        } else {
            assert_eq!(column, row["template"], "{e}");
        }
        match status {
            "completed" => assert_eq!(e["src"], row["file"].as_str(), "{e}"),
            "missing" => assert_eq!(e["src"], Value::Null, "no player for a video that is not there: {e}"),
            _ => {
                assert_eq!(e["src"], Value::Null, "{e}");
                assert_eq!(e["error"], row["error"].as_str(), "{e}");
                assert!(e["next"].as_str().unwrap().contains("rerun"), "what to do: {e}");
            }
        }
    }
}

/// The `#SKU` the sheet gives a product.
fn sku(input: &str) -> String {
    let name = input.rsplit('/').next().unwrap_or(input);
    format!("SKU-{}", name.split('.').next().unwrap_or(name))
}

/// `results.csv` as a team's sheet would make it: a BOM, the `label` column moved third (read by
/// name), `hero` on the Tokyo Billboard videos and `winner?` on the other videos; the sheet's
/// `#SKU` and a `custom_id` made from it; a failure's reason as long as the service's can be.
fn relabelled(path: &Path) -> String {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (label, status, template, input, error) = (at("label"), at("status"), at("template"), at("input"), at("error"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    let reorder = |cells: Vec<String>| {
        let mut cells = cells;
        let moved = cells.remove(label);
        cells.insert(2, moved);
        cells
    };
    let mut names: Vec<String> = headers.iter().map(String::from).collect();
    names.extend(["#SKU".to_string(), "custom_id".to_string()]);
    writer.write_record(reorder(names)).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let mut cells: Vec<String> = record.iter().map(String::from).collect();
        cells[label] = match (cells[status].as_str(), cells[template].as_str()) {
            ("completed", "Tokyo Billboard") => "hero".into(),
            ("completed", _) => "winner?".into(),
            _ => String::new(),
        };
        if cells[status] == "failed" {
            cells[error] = format!(
                "{} The service said: {}",
                cells[error],
                "this model is not available for this key in this region; ".repeat(8)
            );
        }
        let is_file = cells[input].ends_with(".jpg") || cells[input].ends_with(".png");
        let sku = if is_file { sku(&cells[input]) } else { String::new() };
        cells.extend([sku.clone(), sku]);
        writer.write_record(reorder(cells)).unwrap();
    }
    format!("\u{feff}{}", String::from_utf8(writer.into_inner().unwrap()).unwrap())
}
