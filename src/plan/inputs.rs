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
