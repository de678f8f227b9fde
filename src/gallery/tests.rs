use std::path::Path;

use super::*;

const HEADER: &str = "job_id,model,template,input,status,generation_id,file,bytes,sha256,credits,attempts,submitted_at,finished_at,error";

fn parse(text: &str) -> Vec<ResultRow> {
    crate::results::parse_rows(Path::new("results.csv"), text.as_bytes()).unwrap()
}

/// The page for `text`, every video on disk and no input copied.
fn layout(text: &str) -> Gallery {
    layout_with(text, None, &|_| false, &|_| true)
}

fn layout_with(
    text: &str,
    campaign: Option<&str>,
    input_copy: &dyn Fn(&str) -> bool,
    video: &dyn Fn(&str) -> bool,
) -> Gallery {
    Gallery::layout(
        &parse(text),
        &notes::read(text.as_bytes()),
        campaign,
        &Disk { input_copy, video },
    )
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
    assert_eq!((failed.status, failed.src.as_str()), ("failed", ""));
    assert_eq!(failed.error, "generation failed: NSFW");
    assert_eq!(
        s.rows[1].cells[1][0].src, "videos/r/bag%20%231.mp4",
        "a `#` stays in the path"
    );
    assert_eq!(s.rows[1].cells[1][0].facts, "2 credits · 2m · 2 attempts");
    assert_eq!(
        g.totals,
        Totals {
            videos: 2,
            jobs: 4,
            completed: 2,
            failed: 1,
            pending: 1,
            credits: "4".into(),
            time: "2m".into(),
            ..Totals::default()
        }
    );
    assert_eq!(g.headline, "2 videos · 1 failed · 1 pending");
    assert_eq!(g.statuses, ["completed", "failed", "pending"], "in a fixed order");
    assert!(g.legend.labels.is_empty(), "no label column, no legend");
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
    let g = layout(text);
    let labels: Vec<&str> = g.legend.labels.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(labels, ["hero", "teaser"]);
    let html = render(&g).unwrap();
    assert!(html.contains("class=\"legend-item\" data-label=\"hero\""));

    let without = render(&layout(&format!(
        "{HEADER}\nd1,m,T,assets/a.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n"
    )))
    .unwrap();
    assert!(!without.contains("id=\"legend\""), "no legend without labels");
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
    let text = format!(
        "{HEADER}\n\
         g1,m,T,assets/shoe.jpg,completed,g,videos/a.mp4,1,x,,1,,,\n\
         g2,m,T,assets/teaser.mp4,completed,g,videos/b.mp4,1,x,,1,,,\n\
         g3,m,T,https://cdn.example/x.png,completed,g,videos/c.mp4,1,x,,1,,,\n"
    );
    let g = layout_with(
        &text,
        None,
        &|name| name.starts_with("shoe-") || name.starts_with("teaser-"),
        &|_| true,
    );
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

#[test]
fn the_title_counts_the_videos_on_disk_and_names_the_campaign() {
    // The issue's run: 24 videos and a failure was titled "25 videos".
    let mut text = format!("{HEADER}\n");
    for i in 0..24 {
        text.push_str(&format!(
            "j{i:02},magic/image-to-video,T{},assets/p{}.jpg,completed,g,videos/{i}.mp4,1,x,1050000,1,,,\n",
            i % 4,
            i / 4
        ));
    }
    text.push_str("jf,magic/image-to-video,T9,assets/p0.jpg,failed,g,,,,1050000,1,,,generation failed\n");
    let g = layout_with(&text, Some("spring-sale"), &|_| false, &|_| true);
    assert_eq!(g.headline, "24 videos · 1 failed");
    assert_eq!((g.totals.videos, g.totals.jobs), (24, 25));
    let html = render(&g).unwrap();
    assert!(
        html.contains("<title>spring-sale · 24 videos · 1 failed — vidbatch report</title>"),
        "{html}"
    );
    assert!(html.contains("<h1 id=\"campaign\">spring-sale</h1>"));

    // A video deleted since, and another name of a job's input (its own row and file, the same
    // job): videos are files on disk, jobs are counted once.
    let text = format!(
        "{HEADER}\n\
         k1,m,T,assets/a.jpg,completed,g1,videos/a.mp4,1,x,5,1,,,\n\
         k1,m,T,assets/a-copy.jpg,completed,g1,videos/a-copy.mp4,1,x,,,,,\n\
         k2,m,T,assets/b.jpg,completed,g2,videos/gone.mp4,1,x,5,1,,,\n\
         k3,m,T,assets/c.jpg,unknown,,,,,,1,,,answer lost\n"
    );
    let g = layout_with(&text, None, &|_| false, &|file| file != "videos/gone.mp4");
    assert_eq!(
        g.totals,
        Totals {
            videos: 2,
            jobs: 3,
            completed: 2,
            missing: 1,
            unknown: 1,
            credits: "10".into(),
            ..Totals::default()
        }
    );
    assert_eq!(g.headline, "2 videos · 1 missing · 1 unknown");
    let gone = &g.sections[0].rows[2].cells[0][0];
    assert_eq!((gone.status, gone.src.as_str()), ("missing", ""), "no broken player");
    assert!(gone.next.contains("`videos/gone.mp4` is not on disk"), "{}", gone.next);
    assert_eq!(g.statuses, ["completed", "missing", "unknown"]);
    let html = render(&g).unwrap();
    assert!(html.contains("<title>2 videos · 1 missing · 1 unknown — vidbatch report</title>"));
    assert!(html.contains("<h1 id=\"campaign\">vidbatch report</h1>"));
}

#[test]
fn a_label_is_said_once_and_never_over_a_video() {
    let text = format!(
        "{HEADER},label\n\
         l1,m,T1,assets/a.jpg,completed,g,videos/1.mp4,1,x,,1,,,,hero\n\
         l2,m,T2,assets/a.jpg,completed,g,videos/2.mp4,1,x,,1,,,,hero\n\
         l3,m,T1,assets/b.jpg,completed,g,videos/3.mp4,1,x,,1,,,,hero\n\
         l4,m,T2,assets/b.jpg,failed,,,,,,1,,,refused,teaser\n"
    );
    let g = layout(&text);
    let keys: Vec<(&str, usize, usize)> = g
        .legend
        .labels
        .iter()
        .map(|l| (l.text.as_str(), l.key, l.count))
        .collect();
    assert_eq!(keys, [("hero", 1, 3), ("teaser", 2, 1)]);
    assert!(!g.legend.everywhere);
    let rows = &g.sections[0].rows;
    // A row whose jobs share the label says it once, beside its input.
    assert_eq!(rows[0].label, "hero");
    assert_eq!(rows[0].marker.map(|m| m.key), Some(1));
    assert!(rows[0].cells.iter().flatten().all(|e| e.marker.is_none()));
    // A row whose jobs differ marks each cell with its label's key.
    assert_eq!(rows[1].label, "");
    let marks: Vec<Option<usize>> = rows[1]
        .cells
        .iter()
        .flatten()
        .map(|e| e.marker.map(|m| m.key))
        .collect();
    assert_eq!(marks, [Some(1), Some(2)]);

    let html = render(&g).unwrap();
    assert!(!html.contains("badge"), "no badge per cell");
    // The media box holds the video and nothing else.
    let media: Vec<&str> = html.split("<div class=\"media\">").skip(1).collect();
    assert_eq!(media.len(), 3);
    for m in media {
        let inside = &m[..m.find("</div>").unwrap()];
        assert!(
            inside.starts_with("<video ") && inside.ends_with("</video>"),
            "{inside}"
        );
    }
    // Each label's text is written once in the legend and once on its row, and in no cell.
    assert_eq!(html.matches("<span class=\"legend-text\">hero</span>").count(), 1);
    assert_eq!(html.matches(">hero</span></p>").count(), 1, "on the row that shares it");
    assert!(html.contains("<span class=\"key tone-1\" title=\"teaser\">2</span>"));

    // One label on every job: said once above the grids, and nowhere else.
    let g = layout(&format!(
        "{HEADER},label\n\
         s1,m,T1,assets/a.jpg,completed,g,videos/1.mp4,1,x,,1,,,,spring\n\
         s2,m,T2,assets/b.jpg,completed,g,videos/2.mp4,1,x,,1,,,,spring\n"
    ));
    assert!(g.legend.everywhere);
    assert!(
        g.sections[0]
            .rows
            .iter()
            .all(|r| r.label.is_empty() && r.marker.is_none())
    );
    let html = render(&g).unwrap();
    assert_eq!(html.matches(">spring<").count(), 1, "{html}");
    assert!(html.contains("(every video)"));
}

#[test]
fn the_users_own_columns_are_shown_where_they_apply() {
    let text = format!(
        "{HEADER},label,custom_id,#SKU,#Notes\n\
         n1,m,T1,assets/a.jpg,completed,g,videos/1.mp4,1,x,,1,,,,,SKU-1,SKU-1,ok for FR\n\
         n2,m,T2,assets/a.jpg,completed,g,videos/2.mp4,1,x,,1,,,,,SKU-1,SKU-1,ok for FR\n\
         n3,m,T1,assets/b.jpg,completed,g,videos/3.mp4,1,x,,1,,,,,bag-a,SKU-2,\n\
         n4,m,T2,assets/b.jpg,completed,g,videos/4.mp4,1,x,,1,,,,,bag-b,SKU-2,\n"
    );
    let g = layout(&text);
    let note = |name: &str, value: &str| Note {
        name: name.into(),
        value: value.into(),
    };
    let rows = &g.sections[0].rows;
    // Shared by the row: said beside its input (the custom_id repeats the SKU: left out).
    assert_eq!(rows[0].notes, [note("SKU", "SKU-1"), note("Notes", "ok for FR")]);
    assert!(rows[0].cells.iter().flatten().all(|e| e.notes.is_empty()));
    // Different in each cell: said under each video.
    assert!(rows[1].notes.is_empty());
    let cells: Vec<&Vec<Note>> = rows[1].cells.iter().flatten().map(|e| &e.notes).collect();
    assert_eq!(
        cells,
        [
            &vec![note("custom_id", "bag-a"), note("SKU", "SKU-2")],
            &vec![note("custom_id", "bag-b"), note("SKU", "SKU-2")]
        ]
    );
    let html = render(&g).unwrap();
    assert!(html.contains("<p class=\"note\"><span class=\"note-name\">SKU</span><span>SKU-1</span></p>"));
    assert!(html.contains("<span class=\"note\"><span class=\"note-name\">custom_id</span><span>bag-b</span></span>"));
}

#[test]
fn a_failure_says_its_whole_reason_who_it_is_and_what_to_do() {
    let reason = format!(
        "HTTP 400: Body validation error: {}",
        "the prompt is too long; ".repeat(30)
    );
    let g = layout(&format!(
        "{HEADER},label\n\
         p1,magic/image-to-video,Tokyo Billboard,assets/a.jpg,completed,g,videos/1.mp4,1,x,,1,,,,hero\n\
         p2,magic/image-to-video,Phone Social,assets/a.jpg,failed,,,,,,1,,,{reason},hero\n\
         p3,magic/image-to-video,Phone Social,assets/b.jpg,failed,gen-9,,,,1050000,2,,,generation failed: NSFW,\n\
         p4,magic/image-to-video,Tokyo Billboard,assets/b.jpg,pending,,,,,,0,,,,\n"
    ));
    let problems = &g.attention.problems;
    assert_eq!(problems.len(), 2, "pending jobs are counted, not listed");
    assert_eq!(g.attention.pending, 1);
    let refused = &problems[0];
    assert_eq!(
        (
            refused.anchor.as_str(),
            refused.model.as_str(),
            refused.column.as_str(),
            refused.input.as_str(),
            refused.label.as_str(),
            refused.job_id.as_str()
        ),
        (
            "e1",
            "magic/image-to-video",
            "Phone Social",
            "assets/a.jpg",
            "hero",
            "p2"
        )
    );
    assert_eq!(refused.error, reason, "the whole reason");
    assert!(refused.next.contains("nothing was paid"), "{}", refused.next);
    assert!(problems[1].next.contains("`--paid-retries 2`"), "{}", problems[1].next);
    assert_eq!(problems[1].generation_id, "gen-9");

    let html = render(&g).unwrap();
    assert_eq!(
        html.matches(&format!("<p class=\"error\">{reason}</p>")).count(),
        2,
        "in its cell and in the list at the top"
    );
    assert!(html.contains("<a class=\"status\" href=\"#e1\">failed</a>"));
    assert!(html.contains("id=\"e1\""));
    // Nothing on the page scrolls inside it: no reason in a scroll box, no grid cut short.
    assert!(!TEMPLATE.contains("overflow: auto") && !TEMPLATE.contains("overflow: scroll"));
    assert!(!TEMPLATE.contains("max-height: 82vh"));
}

#[test]
fn the_page_is_titled_with_the_campaign_the_run_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("results.csv"),
        format!("{HEADER}\nh1,m,T,assets/a.jpg,failed,,,,,,1,,,refused\n"),
    )
    .unwrap();
    let title = |dir: &Path| {
        let html = std::fs::read_to_string(dir.join(FILE)).unwrap();
        html[html.find("<title>").unwrap() + 7..html.find("</title>").unwrap()].to_string()
    };
    // No state (results copied elsewhere): what the page holds.
    write(dir.path()).unwrap();
    assert_eq!(title(dir.path()), "0 videos · 1 failed — vidbatch report");
    // `vidbatch report OUT` after a run: the name the run recorded.
    crate::state::RunState::open(dir.path(), "e")
        .unwrap()
        .set_campaign("spring-sale")
        .unwrap();
    write(dir.path()).unwrap();
    assert_eq!(title(dir.path()), "spring-sale · 0 videos · 1 failed — vidbatch report");
    // After a run: the name it was given.
    write_after_run(dir.path(), "summer").unwrap();
    assert_eq!(title(dir.path()), "summer · 0 videos · 1 failed — vidbatch report");
}
