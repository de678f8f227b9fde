//! Local input files: read once, typed by their content, encoded as data URLs.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::LocalInput;
use super::values::{Refused, refused};

pub(super) fn guess_field_from_name(lower_url: &str) -> &'static str {
    let path = lower_url.split(['?', '#']).next().unwrap_or("");
    let video = [".mp4", ".mov", ".webm", ".m4v", ".mkv", ".avi"]
        .iter()
        .any(|e| path.ends_with(e))
        || lower_url.starts_with("data:video/");
    if video { "video_url" } else { "image_url" }
}

/// What inputs may be, for the help of a refused one.
const INPUT_KINDS: &str = "inputs are images (jpeg, png, webp, …) or videos (mp4, mov, webm)";

pub(super) fn read_local(path: &Path) -> Result<LocalInput, Refused> {
    // A folder first: reading one fails with an OS message that says less.
    if path.is_dir() {
        return Err(refused(
            format!("`{}` is a folder, not a file", path.display()),
            "give the path of an image or video file (local paths are relative to the manifest's folder)".into(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => refused(
            format!("file not found (looked for `{}`)", path.display()),
            "check the spelling; local paths are relative to the manifest's folder, and http(s) URLs work too".into(),
        ),
        std::io::ErrorKind::PermissionDenied => refused(
            format!("cannot read `{}`: {e}", path.display()),
            "give this user read permission on the file (`chmod a+r`), or use a copy".into(),
        ),
        _ => refused(
            format!("cannot read `{}`: {e}", path.display()),
            "check that the file can be read, or use a copy".into(),
        ),
    })?;
    if bytes.is_empty() {
        return Err(refused(
            "the file is empty (0 bytes)".into(),
            format!("copy the real file there again; {INPUT_KINDS}"),
        ));
    }
    let Some(kind) = infer::get(&bytes) else {
        return Err(refused(
            "cannot tell what kind of file this is from its content".into(),
            format!("{INPUT_KINDS}: is this the file you meant?"),
        ));
    };
    let mime = kind.mime_type();
    if !(mime.starts_with("image/") || mime.starts_with("video/")) {
        return Err(refused(
            format!("the file is {mime}, not an image or a video"),
            format!("{INPUT_KINDS}: is this the file you meant?"),
        ));
    }
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let data_url = format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    Ok(LocalInput {
        path: path.to_path_buf(),
        sha256,
        data_url,
    })
}

/// Whether an input as written names several files: a glob (`photos/*.jpg`) or a folder
/// (`photos/`, or a path that is one).
pub(super) fn names_several(dir: &Path, written: &str) -> bool {
    let path = dir.join(written);
    // A file that exists is itself, whatever its name holds (`photo[1].jpg`).
    if path.is_file() {
        return false;
    }
    written.contains(['*', '?', '[']) || written.ends_with(['/', '\\']) || path.is_dir()
}

/// What a file's first bytes say it is (`image/png`), without reading all of it: a folder may
/// hold videos of gigabytes that an image model leaves out.
pub(super) fn sniff(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(8192);
    std::fs::File::open(path).ok()?.take(8192).read_to_end(&mut head).ok()?;
    infer::get(&head).map(|kind| kind.mime_type().to_string())
}

/// Files a folder holds that no one means as an input: hidden ones (`.DS_Store`, `._shoe.jpg`)
/// and the thumbnail caches Windows leaves beside photos.
fn is_clutter(name: &str) -> bool {
    name.starts_with('.') || name.eq_ignore_ascii_case("Thumbs.db") || name.eq_ignore_ascii_case("desktop.ini")
}

/// The files a glob or a folder names, relative to `dir` as they are written in results (`/`
/// separators), sorted by their bytes so every run sees one order; subfolders are not entered,
/// hidden files are left out. An error says what was looked for.
pub(super) fn expand(dir: &Path, written: &str) -> Result<Vec<(String, std::path::PathBuf)>, Refused> {
    let relative = |path: &Path| {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut found = Vec::new();
    if written.contains(['*', '?', '[']) {
        // The manifest's folder is matched literally, whatever characters its name holds.
        let pattern = if Path::new(written).is_absolute() {
            written.to_string()
        } else {
            format!(
                "{}/{}",
                glob::Pattern::escape(&dir.to_string_lossy()),
                written.replace('\\', "/")
            )
        };
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&pattern, options).map_err(|e| {
            refused(
                format!("`{written}` is not a valid pattern: {}", e.msg),
                "`*` matches any part of a name, `?` one character, `[abc]` one of those; a `[` that is part of \
                 the name is written `[[]`"
                    .into(),
            )
        })?;
        for path in paths.flatten() {
            // Hidden files are not matched by a wildcard (`require_literal_leading_dot`); one
            // written out (`photos/.a.jpg`) is meant.
            let cache = path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                !n.starts_with('.') && is_clutter(&n)
            });
            if path.is_file() && !cache {
                found.push((relative(&path), path));
            }
        }
    } else {
        let folder = dir.join(written);
        let entries = std::fs::read_dir(&folder).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => refused(
                format!("folder not found (looked for `{}`)", folder.display()),
                "check the spelling; local paths are relative to the manifest's folder".into(),
            ),
            _ => refused(
                format!("cannot read the folder `{}`: {e}", folder.display()),
                "check that the folder can be read".into(),
            ),
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !is_clutter(&name) && path.is_file() {
                found.push((relative(&path), path));
            }
        }
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(found)
}
