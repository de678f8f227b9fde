//! Local input files: read once, typed by their content, encoded as data URLs.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::LocalInput;

pub(super) fn guess_field_from_name(lower_url: &str) -> &'static str {
    let path = lower_url.split(['?', '#']).next().unwrap_or("");
    let video = [".mp4", ".mov", ".webm", ".m4v", ".mkv", ".avi"]
        .iter()
        .any(|e| path.ends_with(e))
        || lower_url.starts_with("data:video/");
    if video { "video_url" } else { "image_url" }
}

pub(super) fn read_local(path: &Path) -> Result<LocalInput, String> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("file not found (looked for `{}`)", path.display()),
        _ => format!("cannot read `{}`: {e}", path.display()),
    })?;
    if path.is_dir() {
        return Err(format!("`{}` is a folder, not a file", path.display()));
    }
    let Some(kind) = infer::get(&bytes) else {
        return Err("cannot tell what kind of file this is from its content; inputs are images (jpeg, png, webp, …) or videos (mp4, mov, webm)".into());
    };
    let mime = kind.mime_type();
    if !(mime.starts_with("image/") || mime.starts_with("video/")) {
        return Err(format!("the file is {mime}, not an image or a video"));
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
