//! Inputs named by globs and folders: which files they take, in what order, what they leave out
//! and say so, and where a `**` may search.

use super::{asset, load_with};
use crate::plan::Plan;

/// (input as written, request field) of each job.
fn inputs(p: &Plan) -> Vec<(String, String)> {
    p.jobs
        .iter()
        .map(|j| {
            let body = j.body();
            let field = ["image_url", "video_url"].into_iter().find(|f| body.get(*f).is_some());
            (j.input_label.clone(), field.unwrap_or("-").to_string())
        })
        .collect()
}

#[test]
fn globs_and_folders_name_their_files_sorted_and_told_apart_by_content() {
    let (shoe, bag, teaser) = (asset("shoe.jpg"), asset("bag.png"), asset("teaser.mp4"));
    let photos: &[(&str, &[u8])] = &[
        ("photos/b.jpg", &shoe),
        // A PNG named `.jpg`: content decides.
        ("photos/A.jpg", &bag),
        ("photos/c.mp4", &teaser),
        ("photos/notes.txt", b"not an image"),
        // Hidden, and a copy of a photo: were it read, it would be a job's alias.
        ("photos/.DS_Store", &shoe),
        ("photos/sub/d.jpg", &shoe),
    ];
    // The manifest, the (input, field) of its jobs, a warning about files left out.
    type Case<'c> = (&'c str, &'c [(&'c str, &'c str)], Option<&'c str>);
    let cases: &[Case] = &[
        (
            "jobs:\n  - model: magic/image-to-video\n    inputs: photos/\n",
            &[("photos/A.jpg", "image_url"), ("photos/b.jpg", "image_url")],
            Some("input `photos/`: 2 files left out, not images: `photos/c.mp4` (a video), `photos/notes.txt`"),
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    inputs: [photos/*.jpg, assets/presenter.jpg]\n",
            &[
                ("photos/A.jpg", "image_url"),
                ("photos/b.jpg", "image_url"),
                ("assets/presenter.jpg", "image_url"),
            ],
            None,
        ),
        (
            "jobs:\n  - model: magic/video-to-video\n    input: photos\n",
            &[("photos/c.mp4", "video_url")],
            Some("3 files left out, not videos"),
        ),
        // A model vidbatch does not know takes either, each in its field.
        (
            "jobs:\n  - model: acme/any-to-video\n    inputs: photos/*\n",
            &[
                ("photos/A.jpg", "image_url"),
                ("photos/b.jpg", "image_url"),
                ("photos/c.mp4", "video_url"),
            ],
            Some("1 file left out, not images or videos: `photos/notes.txt`"),
        ),
        (
            "jobs:\n  - model: magic/image-to-video\n    input: photos/sub/*.jpg\n",
            &[("photos/sub/d.jpg", "image_url")],
            None,
        ),
    ];
    for &(text, expected, warning) in cases {
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), photos);
        let p = p.unwrap_or_else(|e| panic!("{text}\n{e}"));
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(inputs(&p), expected, "{text}");
        let warned: Vec<&str> = p
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .filter(|m| m.starts_with("input"))
            .collect();
        match warning {
            Some(w) => assert!(warned.len() == 1 && warned[0].contains(w), "{text}: {warned:?}"),
            None => assert!(warned.is_empty(), "{text}: {warned:?}"),
        }
    }
    // In a CSV cell too.
    let (_dir, p) = load_with("m.csv", b"model,input\nmagic/image-to-video,photos/*.jpg\n", photos);
    assert_eq!(inputs(&p.unwrap()).len(), 2);
    // A file whose name holds a glob's characters is itself; an absolute glob is not joined.
    let (dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    input: photos/b[1].jpg\n",
        &[("photos/b[1].jpg", &shoe), ("photos/b1.jpg", &bag)],
    );
    assert_eq!(
        inputs(&p.unwrap()),
        [("photos/b[1].jpg".to_string(), "image_url".to_string())]
    );
    let absolute = format!("{}/photos/*.jpg", dir.path().display());
    let text = format!("jobs:\n  - model: magic/image-to-video\n    input: \"{absolute}\"\n");
    let (_dir, p) = load_with("m.yaml", text.as_bytes(), photos);
    assert_eq!(inputs(&p.unwrap()).len(), 2);
}

#[test]
fn a_glob_or_folder_with_nothing_to_take_names_its_line_and_what_was_looked_for() {
    let files: &[(&str, &[u8])] = &[("empty/.DS_Store", b"x"), ("docs/brief.txt", b"a brief")];
    for (input, line, message) in [
        ("photos/*.jpg", 3, "input `photos/*.jpg`: no file matches (looked for `"),
        ("empty/", 3, "input `empty/`: the folder holds no file (looked in `"),
        (
            "docs/",
            3,
            "input `docs/`: none of the 1 file it names is one of the images this model takes: `docs/brief.txt`",
        ),
        ("photos/[a", 3, "input `photos/[a`: `photos/[a` is not a valid pattern"),
    ] {
        let text = format!("jobs:\n  - model: magic/image-to-video\n    input: {input}\n");
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), files);
        let err = p.expect_err(input);
        assert_eq!(err.0[0].line(), Some(line), "{input}");
        assert!(err.0[0].message.starts_with(message), "{input}: {}", err.0[0].message);
        assert!(err.0[0].help.is_some());
    }
}

/// `input: /**/*.png` walked the whole file system; a `**` outside the manifest's folder is
/// refused before any walk, one inside it is read.
#[test]
fn a_recursive_glob_walks_the_manifests_folder_only() {
    let shoe = asset("shoe.jpg");
    let files: &[(&str, &[u8])] = &[("photos/sub/a.jpg", &shoe)];
    for input in ["/**/*.png", "../**/*.jpg", "photos/../../**/*.jpg"] {
        let text = format!("jobs:\n  - model: magic/image-to-video\n    input: \"{input}\"\n");
        let (_dir, p) = load_with("m.yaml", text.as_bytes(), files);
        let err = p.expect_err(input);
        assert_eq!(err.0[0].line(), Some(3), "{input}");
        assert!(
            err.0[0]
                .message
                .contains("a `**` pattern searches inside the manifest's folder only"),
            "{input}: {}",
            err.0[0].message
        );
    }
    let (_dir, p) = load_with(
        "m.yaml",
        b"jobs:\n  - model: magic/image-to-video\n    input: photos/**/*.jpg\n",
        files,
    );
    assert_eq!(
        inputs(&p.unwrap()),
        [("photos/sub/a.jpg".to_string(), "image_url".to_string())]
    );
}
