//! CSV and workbook manifests: cells typed as the model wants them, the user's own columns never
//! sent, workbook cells named in problems, and every encoding read alike.

use std::path::Path;

use super::{load, load_with};

#[test]
fn csv_cells_become_numbers_where_the_model_wants_them() {
    let (_dir, p) = load(
        "m.csv",
        "model,input,prompt,template,duration,resolution,lip_sync_tts_speaker\npixverse/v5/image-to-video,assets/presenter.jpg,Hi there,,8,540P,chloe\nmagic/image-to-video,assets/shoe.jpg,,Tokyo Billboard|Phone App,,,\n",
    );
    let p = p.unwrap();
    let body = p.jobs[0].body();
    assert_eq!(body["duration"], 8);
    assert_eq!(body["resolution"], "540p");
    assert_eq!(body["lip_sync_tts_speaker"], "Chloe");
    assert_eq!(p.jobs.len(), 3);
}

#[test]
fn labels_and_columns_of_ones_own_are_never_sent() {
    let (_dir, p) = load(
        "m.csv",
        "#SKU;Model;Input;Prompt;Label;Negative Prompt;Duration\nS-1;pixverse/v5/image-to-video;assets/presenter.jpg;Hi;Spring, hero;blurry;8\n",
    );
    let p = p.unwrap();
    let body = p.jobs[0].body();
    assert_eq!(p.jobs[0].user_label.as_deref(), Some("Spring, hero"));
    assert_eq!(body["negative_prompt"], "blurry");
    assert_eq!(body["duration"], 8);
    let sent = body.to_string();
    assert!(
        !sent.contains("Spring") && !sent.contains("S-1") && !sent.contains("SKU"),
        "{sent}"
    );
}

#[test]
fn spreadsheets_are_read_like_csv_and_name_cells() {
    let sheets = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sheets");
    // A workbook saved with a `.csv` name by mistake is still read for what it is.
    for (name, saved_as) in [
        ("campaign.xlsx", "campaign.xlsx"),
        ("campaign.ods", "campaign.ods"),
        ("campaign.xlsx", "campaign.csv"),
    ] {
        let bytes = std::fs::read(sheets.join(name)).unwrap();
        let (_dir, p) = load_with(saved_as, &bytes, &[]);
        let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
        // Model, template, input, label, and the body without the input.
        type Shown<'j> = (&'j str, Option<&'j str>, &'j str, Option<&'j str>, String);
        let jobs: Vec<Shown> = p
            .jobs
            .iter()
            .map(|j| {
                let mut body = j.body();
                body.as_object_mut().unwrap().retain(|k, _| !k.ends_with("_url"));
                (
                    j.model.as_str(),
                    j.template.as_deref(),
                    j.input_label.as_str(),
                    j.user_label.as_deref(),
                    body.to_string(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            [
                (
                    "magic/image-to-video",
                    Some("Tokyo Billboard"),
                    "assets/shoe.jpg",
                    Some("Hero shoe"),
                    r#"{"model":"magic/image-to-video","template":"Tokyo Billboard"}"#.to_string()
                ),
                (
                    "pixverse/v5/image-to-video",
                    None,
                    "assets/presenter.jpg",
                    Some("Presenter, 5 s"),
                    r#"{"duration":5,"model":"pixverse/v5/image-to-video","prompt":"A presenter waves","resolution":"720p"}"#
                        .to_string()
                ),
            ],
            "{name}"
        );
    }
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_manifests/74-bad-cell.xlsx")).unwrap();
    let (_dir, p) = load_with("bad.xlsx", &bytes, &[]);
    let shown: Vec<String> = p.unwrap_err().0.iter().map(|d| d.to_string()).collect();
    assert!(
        shown[0].contains("bad.xlsx: sheet Sheet1, cell C2: unknown template `Tokio Billboard`"),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|d| d.contains("bad.xlsx: sheet Sheet1, cell B3: this cell holds the error `#N/A`"))
    );
}

/// A manifest saved in each encoding a spreadsheet or an editor uses reads as the same jobs, and
/// a problem in it is placed on the same line and column of the file.
#[test]
fn every_encoding_gives_the_same_jobs_and_the_same_places() {
    use encoding_rs::WINDOWS_1252;
    let text = "Model;Prompt;Label\r\nmagic/text-to-video;Soldes d’été -20%;Café\r\nmagic/text-to-video;é;Crème\r\nmagic/text-to-video;Crème brûlée;Fête;en trop\r\n";
    let encode = |encoding: &str, text: &str| -> Vec<u8> {
        let utf16 = |mark: [u8; 2], unit: fn(u16) -> [u8; 2]| -> Vec<u8> {
            mark.into_iter().chain(text.encode_utf16().flat_map(unit)).collect()
        };
        match encoding {
            "UTF-8" => text.as_bytes().to_vec(),
            "UTF-8 with a mark" => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            "UTF-16 LE" => utf16([0xFF, 0xFE], u16::to_le_bytes),
            "UTF-16 BE" => utf16([0xFE, 0xFF], u16::to_be_bytes),
            _ => WINDOWS_1252.encode(text).0.into_owned(),
        }
    };
    for name in ["UTF-8", "UTF-8 with a mark", "UTF-16 LE", "UTF-16 BE", "Windows-1252"] {
        let (_dir, p) = load_with("m.csv", &encode(name, text), &[]);
        let err = p.expect_err(name);
        let places: Vec<(usize, usize, &str)> = err
            .0
            .iter()
            .map(|d| (d.at.unwrap().line, d.at.unwrap().column, d.message.as_str()))
            .collect();
        // Past accented characters, the column is still the file's (in characters).
        assert_eq!(
            places,
            [(4, 39, "this row has 4 cells, but the header names 3 columns")],
            "{name}"
        );
        // Without the bad row, the jobs themselves.
        let good = &text[..text.find("magic/text-to-video;Crème").unwrap()];
        let (_dir, p) = load_with("m.csv", &encode(name, good), &[]);
        let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
        let jobs: Vec<(String, Option<&str>)> = p
            .jobs
            .iter()
            .map(|j| (j.input_label.clone(), j.user_label.as_deref()))
            .collect();
        assert_eq!(
            jobs,
            [
                ("Soldes d’été -20%".to_string(), Some("Café")),
                ("é".to_string(), Some("Crème"))
            ],
            "{name}"
        );
    }
}
