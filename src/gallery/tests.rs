use std::path::Path;

use super::*;

const HEADER: &str = "job_id,model,template,input,status,generation_id,file,bytes,sha256,credits,attempts,submitted_at,finished_at,error";

fn parse(text: &str) -> Vec<ResultRow> {
    crate::results::parse_rows(Path::new("results.csv"), text.as_bytes()).unwrap()
}

fn layout(text: &str) -> Gallery {
    Gallery::layout(&parse(text), &|_| false)
}

fn cell_ids(section: &Section) -> Vec<Vec<String>> {
    section
        .rows
        .iter()
        .map(|r| {
            r.cells
                .iter()
                .map(|c| c.iter().map(|e| e.job_id.clone()).collect::<Vec<_>>().join("+"))
                .collect()
        })
        .collect()
}

#[test]
fn images_are_rows_and_templates_columns() {
    let g = layout(&format!(
        "{HEADER}\n\
         a1,magic/image-to-video,Tokyo Billboard,assets/shoe.jpg,completed,g1,videos/t/shoe.mp4,10,x,2,1,2025-01-01T10:00:00Z,2025-01-01T10:01:05Z,\n\
         a2,magic/image-to-video,Rotating Cards,assets/shoe.jpg,failed,g2,,,,,1,2025-01-01T10:00:00Z,2025-01-01T10:00:30Z,generation failed: NSFW\n\
         a3,magic/image-to-video,Tokyo Billboard,assets/bag.png,pending,,,,,,0,,,\n\
         a4,magic/image-to-video,Rotating Cards,assets/bag.png,completed,g4,videos/r/bag #1.mp4,10,x,2,2,2025-01-01T10:00:00Z,2025-01-01T10:02:00Z,\n"
    ));
    assert_eq!(g.sections.len(), 1);
    let s = &g.sections[0];
    assert_eq!(s.rows_are, "input");
    assert_eq!(s.columns, ["Tokyo Billboard", "Rotating Cards"]);
    assert_eq!(
        s.rows.iter().map(|r| r.input.text.as_str()).collect::<Vec<_>>(),
        ["assets/shoe.jpg", "assets/bag.png"]
    );
    assert_eq!(cell_ids(s), [["a1", "a2"], ["a3", "a4"]]);
    let failed = &s.rows[0].cells[1][0];
    assert_eq!((failed.status.as_str(), failed.src.as_str()), ("failed", ""));
    assert_eq!(failed.error, "generation failed: NSFW");
    assert_eq!(
        s.rows[1].cells[1][0].src, "videos/r/bag%20%231.mp4",
        "a `#` stays in the path"
    );
    assert_eq!(s.rows[1].cells[1][0].facts, "2 credits · 2m · 2 attempts");
    assert_eq!(
        g.totals,
        Totals {
            jobs: 4,
            completed: 2,
            failed: 1,
            unknown: 0,
            pending: 1,
            credits: "4".into(),
            time: "2m".into(),
        }
    );
    assert_eq!(g.statuses, ["completed", "failed", "pending"], "in a fixed order");
    assert!(g.labels.is_empty(), "no label column, no label filter");
}

#[test]
fn text_to_video_prompts_are_rows() {
    let g = layout(&format!(
        "{HEADER}\n\
         b1,magic/text-to-video,Shanghai Drone Show,SALE -30%,completed,g,videos/a.mp4,1,x,2000000,1,,,\n\
         b2,magic/text-to-video,Shanghai Drone Show,'-40% TODAY,completed,g,videos/b.mp4,1,x,2000000,1,,,\n"
    ));
    let s = &g.sections[0];
    assert_eq!(s.rows_are, "prompt");
    assert_eq!(s.columns, ["Shanghai Drone Show"]);
    assert_eq!(s.rows[1].input.text, "-40% TODAY", "the formula guard is undone");
    assert_eq!(s.rows[1].input.kind, "text");
    assert_eq!(g.totals.credits, "4,000,000");
}

#[test]
fn without_templates_the_parameters_that_differ_are_the_columns() {
    let params = |res: &str, dur: u32| {
        format!("\"{{\"\"duration\"\":{dur},\"\"prompt\"\":\"\"wave\"\",\"\"resolution\"\":\"\"{res}\"\"}}\"")
    };
    let g = layout(&format!(
        "{HEADER},params\n\
         c1,pixverse/v5/image-to-video,,assets/p.jpg,completed,g,videos/1.mp4,1,x,1,1,,,,{}\n\
         c2,pixverse/v5/image-to-video,,assets/p.jpg,completed,g,videos/2.mp4,1,x,1,1,,,,{}\n\
         c3,pixverse/v5/image-to-video,,assets/q.jpg,completed,g,videos/3.mp4,1,x,1,1,,,,{}\n",
        params("720p", 5),
        params("1080p", 5),
        params("1080p", 5),
    ));
    let s = &g.sections[0];
    assert_eq!(s.columns, ["resolution=720p", "resolution=1080p"]);
    assert_eq!(s.common, "duration=5 · prompt=wave");
    assert_eq!(cell_ids(s), [["c1", "c2"], ["", "c3"]]);
    assert_eq!(s.rows_are, "input");

    // One variant only: one column, its parameters said once above the grid.
    let g = layout(&format!(
        "{HEADER},params\nc1,pixverse/v5/image-to-video,,assets/p.jpg,completed,g,videos/1.mp4,1,x,1,1,,,,{}\n",
        params("720p", 5)
    ));
    assert_eq!(g.sections[0].columns, ["video"]);
    assert_eq!(g.sections[0].common, "duration=5 · prompt=wave · resolution=720p");
}

#[test]
fn labels_are_read_by_name_wherever_the_column_is() {
    let text = "label,status,model,input,job_id,template,file\n\
                hero,completed,m,assets/a.jpg,d1,T,videos/a.mp4\n\
                ,failed,m,assets/b.jpg,d2,T,\n\
                teaser,completed,m,assets/c.jpg,d3,T,videos/c.mp4\n";
    let rows = parse(text);
    assert_eq!(rows[0].label, "hero");
    assert_eq!(rows[1].label, "");
    assert_eq!(rows[2].job_id, "d3");
    let g = Gallery::layout(&rows, &|_| false);
    assert_eq!(g.labels, ["hero", "teaser"]);
    let html = render(&g).unwrap();
    assert!(html.contains("id=\"filter-label\""));
    assert!(html.contains("<span class=\"badge label\">hero</span>"));

    let without = render(&layout(&format!(
        "{HEADER}\nd1,m,T,assets/a.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n"
    )))
    .unwrap();
    assert!(
        !without.contains("id=\"filter-label\""),
        "no label filter without labels"
    );
}

#[test]
fn a_results_file_saved_with_a_bom_is_read() {
    let rows = parse(&format!(
        "\u{feff}{HEADER}\ne1,m,T,assets/a.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n"
    ));
    assert_eq!(rows[0].job_id, "e1");
}

#[test]
fn a_file_without_the_needed_columns_says_which() {
    let err = crate::results::parse_rows(Path::new("r.csv"), b"job_id,model,input\nx,y,z\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "`r.csv` has no `status` column: is it a vidbatch results file?"
    );
}

#[test]
fn user_text_is_shown_as_text_never_run() {
    let prompt = r#"<script>alert("x")</script> & "quotes" '</script>"#;
    let csv_prompt = format!("\"{}\"", prompt.replace('"', "\"\""));
    let g = layout(&format!(
        "{HEADER},label\n\
         f1,magic/text-to-video,T,{csv_prompt},failed,,,,,,1,,,{csv_prompt},{csv_prompt}\n\
         f2,<b>model</b>,\"<img src=x onerror=alert(1)>\",\"javascript:alert(1)\",completed,g,javascript:alert(1),1,x,,1,,,,\n"
    ));
    let html = render(&g).unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<b>model"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt; &amp; &quot;quotes&quot;"));
    // The page's own script is the only one, closed once.
    assert_eq!(html.matches("<script").count(), 1);
    assert_eq!(html.matches("</script>").count(), 1);
    // A file named like a script URL is a relative path, not a `javascript:` link.
    assert!(html.contains("data-src=\"javascript%3Aalert%281%29\""), "{html}");
    assert!(!html.contains("href=\"javascript"));
}

#[test]
fn paths_become_relative_urls_inside_the_folder_only() {
    assert_eq!(relative_url("videos/a b/ü.mp4").unwrap(), "videos/a%20b/%C3%BC.mp4");
    assert_eq!(relative_url("videos/x?.mp4").unwrap(), "videos/x%3F.mp4");
    assert_eq!(relative_url("../secret.mp4"), None);
    assert_eq!(relative_url("/etc/passwd"), None);
    assert_eq!(relative_url(""), None);
}

#[test]
fn input_copies_are_named_from_the_input_as_written() {
    let a = input_copy_name("assets/shoe.jpg").unwrap();
    assert!(a.starts_with("shoe-") && a.ends_with(".jpg"), "{a}");
    assert_ne!(a, input_copy_name("other/shoe.jpg").unwrap(), "two folders, two copies");
    assert_eq!(input_copy_name("https://example.com/a.png"), None);
    assert_eq!(input_copy_name("SALE -30%"), None);
    assert_eq!(input_copy_name("data:image/png;base64,xx"), None);
}

#[test]
fn inputs_with_a_copy_are_shown_beside_their_row() {
    let rows = parse(&format!(
        "{HEADER}\n\
         g1,m,T,assets/shoe.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n\
         g2,m,T,assets/teaser.mp4,completed,g,videos/b.mp4,1,x,,1,,,\n\
         g3,m,T,https://cdn.example/x.png,completed,g,videos/c.mp4,1,x,,1,,,\n"
    ));
    let g = Gallery::layout(&rows, &|name| name.starts_with("shoe-") || name.starts_with("teaser-"));
    let inputs: Vec<&InputView> = g.sections[0].rows.iter().map(|r| &r.input).collect();
    assert_eq!(inputs[0].kind, "image");
    assert!(inputs[0].src.starts_with("report-inputs/shoe-"));
    assert_eq!(inputs[1].kind, "video");
    assert_eq!(inputs[2].kind, "link");
    let html = render(&g).unwrap();
    assert!(!html.contains("<img src=\"https"), "a URL input is never loaded");
}

#[test]
fn the_page_is_written_whole_next_to_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let err = write(dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::NoResults { .. }), "{err}");
    std::fs::write(
        dir.path().join("results.csv"),
        format!("{HEADER}\nh1,m,T,assets/a.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n"),
    )
    .unwrap();
    let page = write(dir.path()).unwrap();
    assert_eq!(page, dir.path().join("report.html"));
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.trim_end().ends_with("</html>"));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "results.csv"], "no temporary file left");
}

#[test]
fn numbers_are_grouped() {
    assert_eq!(format_number(0.0), "0");
    assert_eq!(format_number(2_000_000.0), "2,000,000");
    assert_eq!(format_number(1234.5), "1,234.5");
    assert_eq!(format_number(999.0), "999");
}

#[test]
fn inputs_are_copied_once_and_again_only_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("shoe.jpg");
    std::fs::write(&source, b"first").unwrap();
    let out = dir.path().join("out");
    let copies = |out: &Path| std::fs::read_dir(out.join(INPUTS_DIR)).unwrap().count();
    let shoe = ("assets/shoe.jpg", source.as_path());
    keep_inputs(&out, [shoe, shoe].into_iter()).unwrap();
    assert_eq!(copies(&out), 1);
    let copy = out.join(INPUTS_DIR).join(input_copy_name("assets/shoe.jpg").unwrap());
    assert_eq!(std::fs::read(&copy).unwrap(), b"first");
    // Replaced by another file of another size: copied again.
    std::fs::remove_file(&source).unwrap();
    std::fs::write(&source, b"second!").unwrap();
    keep_inputs(&out, [shoe].into_iter()).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), b"second!");
    assert_eq!(copies(&out), 1, "no temporary file left");
    // A URL or a prompt has nothing to copy.
    keep_inputs(
        &out,
        [("https://example.com/a.png", shoe.1), ("SALE", shoe.1)].into_iter(),
    )
    .unwrap();
    assert_eq!(copies(&out), 1);
}
