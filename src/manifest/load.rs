//! From a path or bytes to a manifest: the size bound, what the bytes hold (a workbook, a picture
//! given by mistake, text in some encoding), and which reader parses them. Apart from what a
//! manifest is, as the only part that touches the file system.

use std::path::Path;
use std::sync::Arc;

use super::{Diagnostic, Diagnostics, Manifest, Pos, Severity, encoding, parse_csv, parse_yaml, sheet};

/// Reads and parses a manifest: a spreadsheet (`.xlsx`, `.ods`, … or any file that is one by its
/// content), else text in UTF-8, UTF-16 or Windows-1252, read as CSV (`.csv`, `.tsv`, `.txt`) or
/// YAML (anything else).
pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
    let bytes = read_bytes(path).map_err(|u| u.refused(path))?;
    load_bytes(path, bytes)
}

/// Parses a manifest's bytes as [`load`] does, as if read from `path`.
pub fn load_bytes(path: &Path, bytes: Vec<u8>) -> Result<Manifest, Diagnostics> {
    let refused = |unreadable: Unreadable| unreadable.refused(path);
    if sheet::is_spreadsheet(path, &bytes) {
        return sheet::parse_sheet(path, &bytes);
    }
    // A picture, a video or a PDF given by mistake (the input in place of the manifest) says
    // what it is, rather than "mixes two encodings".
    if let Some(kind) = infer::get(&bytes).filter(|k| {
        matches!(
            k.matcher_type(),
            infer::MatcherType::Image
                | infer::MatcherType::Video
                | infer::MatcherType::Audio
                | infer::MatcherType::Doc
                | infer::MatcherType::Archive
        )
    }) {
        return Err(refused(Unreadable::new(
            format!(
                "this file holds {} (a .{}), not a manifest",
                kind.mime_type(),
                kind.extension()
            ),
            Some(
                "give the YAML, CSV or spreadsheet that lists the jobs (`vidbatch run jobs.yaml`); images and videos \
                 are named inside it, as `input:`",
            ),
        )));
    }
    let decoded = encoding::decode(bytes).map_err(refused)?;
    let mut manifest = parse(path, decoded.text.into())?;
    if let Some(offset) = decoded.windows_1252_at {
        let text = manifest.text.clone();
        let len = text[offset..].chars().next().map_or(0, char::len_utf8);
        let mut d = manifest.warning(
            Some(manifest.pos(offset, len)),
            "this file is not UTF-8: it was read as Windows-1252 (what Excel saves as \"CSV\")",
        );
        d.help = Some("check that this text reads right; saving as \"CSV UTF-8\" removes the doubt".into());
        manifest.warnings.push(d);
    }
    Ok(manifest)
}

/// Parses a manifest's text as if read from `path` (the format follows its extension). Problems
/// in fields are kept in [`Manifest::problems`] for the planner to report with its own.
pub fn parse(path: &Path, text: Arc<str>) -> Result<Manifest, Diagnostics> {
    let is_csv = path
        .extension()
        .is_some_and(|e| ["csv", "tsv", "txt"].iter().any(|c| e.eq_ignore_ascii_case(c)));
    let mut manifest = Manifest::new(path, text.clone());
    if is_csv {
        parse_csv(&text, &mut manifest)?;
    } else {
        parse_yaml(&text, &mut manifest)?;
    }
    Ok(manifest)
}

/// The largest manifest read: a 100,000-row CSV weighs about 10 MB. Anything larger (or endless,
/// such as `/dev/zero`) is refused before memory runs out.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Why a manifest could not be read.
pub(super) struct Unreadable {
    pub(super) at: Option<Pos>,
    pub(super) message: String,
    pub(super) help: Option<String>,
    /// The text before the problem, when there is one to show.
    pub(super) readable: Option<String>,
}

impl Unreadable {
    /// The diagnostic for `path`: the text up to the first bad byte is shown, as far as it goes.
    fn refused(self, path: &Path) -> Diagnostics {
        Diagnostics(vec![Diagnostic {
            severity: Severity::Error,
            file: path.to_path_buf(),
            at: self.at,
            message: self.message,
            help: self.help,
            source: self.readable.map(Into::into),
            sheet: None,
        }])
    }

    pub(super) fn new(message: impl Into<String>, help: Option<&str>) -> Unreadable {
        Unreadable {
            at: None,
            message: message.into(),
            help: help.map(String::from),
            readable: None,
        }
    }
}

/// Reads a manifest's bytes, bounded in size.
fn read_bytes(path: &Path) -> Result<Vec<u8>, Unreadable> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| Unreadable::new(format!("cannot read the manifest: {e}"), None);
    if path.is_dir() {
        return Err(Unreadable::new(
            "this is a folder, not a manifest file",
            Some("give the path of a `.yaml`, `.csv`, `.xlsx` or `.ods` file"),
        ));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(Unreadable::new(
            format!("the manifest is larger than {} MiB", MAX_MANIFEST_BYTES >> 20),
            Some("split it into several manifests, each with its own `--out` or run one after another"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_or_a_video_given_as_the_manifest_says_what_it_is() {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets");
        for (file, holds) in [("bag.png", "image/png (a .png)"), ("teaser.mp4", "video/mp4 (a .mp4)")] {
            let bytes = std::fs::read(assets.join(file)).unwrap();
            let err = load_bytes(Path::new("jobs.csv"), bytes).unwrap_err().to_string();
            assert!(
                err.contains(&format!("this file holds {holds}, not a manifest")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "\u{feff}jobs:\n  - model: magic/text-to-video\n    prompt: hi\n").unwrap();
        assert_eq!(load(&path).unwrap().entries.len(), 1);
    }

    #[test]
    fn text_in_other_encodings_is_read_and_what_is_no_text_says_where_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let latin1 = dir.path().join("m.csv");
        std::fs::write(&latin1, b"model,prompt\nmagic/text-to-video,Caf\xE9 -20%\n").unwrap();
        let m = load(&latin1).unwrap();
        assert_eq!(m.entries[0].prompts[0].value, "Café -20%");
        // The guess is shown where it matters, to be checked.
        assert_eq!(m.warnings[0].at.map(|p| (p.line, p.column)), Some((2, 24)));
        assert!(
            m.warnings[0].message.contains("read as Windows-1252"),
            "{}",
            m.warnings[0]
        );
        let binary = dir.path().join("b.csv");
        std::fs::write(&binary, b"model,prompt\nmagic/text-to-video,Caf\xE9\x01\n").unwrap();
        let err = load(&binary).unwrap_err();
        assert_eq!(err.0[0].at.map(|p| (p.line, p.column)), Some((2, 25)));
        assert!(err.0[0].message.contains("byte 0x01 is not text"), "{err}");
        assert!(err.0[0].help.as_deref().unwrap().contains("CSV UTF-8"), "{err}");
        // The line is shown, the bad byte as `�`, underlined.
        let drawn = err.0[0].render(false);
        assert!(drawn.contains("magic/text-to-video,Café\u{fffd}"), "{drawn}");
        let utf16 = dir.path().join("u.csv");
        std::fs::write(&utf16, b"\xFF\xFEm\x00").unwrap();
        assert!(load(&utf16).unwrap_err().0[0].message.contains("no `model` column"));
        let bom = dir.path().join("b.yaml");
        std::fs::write(
            &bom,
            b"\xEF\xBB\xBFjobs:\n  - model: magic/text-to-video\n    prompt: hi\n",
        )
        .unwrap();
        assert_eq!(load(&bom).unwrap().entries.len(), 1);
        assert!(load(dir.path()).unwrap_err().0[0].message.contains("folder"));
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_manifest_is_refused_at_the_size_limit() {
        let err = load(Path::new("/dev/zero")).unwrap_err();
        assert!(err.0[0].message.contains("larger than"), "{err}");
    }
}
