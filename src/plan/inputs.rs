//! An entry's inputs: URLs sent as written; local files read once, typed by their content and
//! encoded as data URLs; folders and globs expanded into the files they name.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::values::{Refused, refused};
use serde_json::Value;

use super::{InputValue, LocalInput, NamedMedia, Planner, is_url};
use crate::catalog::{self, InputSlot, MediaKind, ModelSpec, ParamKind};
use crate::manifest::{Entry, Pos, Spanned};

impl Planner<'_> {
    #[allow(clippy::type_complexity)]
    pub(super) fn inputs(
        &mut self,
        entry: &Entry,
        spec: Option<&ModelSpec>,
    ) -> Vec<Option<(String, (&'static str, InputValue))>> {
        let slot = spec.map(|s| s.input);
        match slot {
            Some(InputSlot::None) if !entry.inputs.is_empty() => {
                let model = spec.map_or("", |s| s.id);
                let help = if entry.params_are_text {
                    "leave the `input` cell empty: the text shown in the video goes in the `prompt` column"
                } else {
                    "remove `input:`: the text shown in the video goes in `prompt:` (or `prompts:`)"
                };
                self.error(
                    entry.inputs[0].at,
                    format!("`{model}` takes no input file"),
                    Some(help.into()),
                );
                return vec![None];
            }
            Some(s) if s != InputSlot::None && entry.inputs.is_empty() && spec.is_some_and(|m| m.input_required) => {
                let media = s.kind().map_or("file", |k| k.as_str());
                self.error(
                    entry.at,
                    format!("`{}` needs an input {media}", spec.map_or("", |s| s.id)),
                    Some(if entry.params_are_text {
                        format!("fill the row's `input` cell with the {media}'s path or URL")
                    } else {
                        format!("add `input:` with the {media}'s path or URL (or `inputs:` with a list of them)")
                    }),
                );
                return vec![None];
            }
            _ => {}
        }
        if entry.inputs.is_empty() {
            return vec![None];
        }
        let mut out = Vec::new();
        for written in &entry.inputs {
            if !is_url(&written.value) && names_several(&self.manifest.dir, &written.value) {
                out.extend(self.several_inputs(written, slot).into_iter().map(Some));
            } else if let Some(value) = self.input_value(written, slot) {
                out.push(Some((written.value.clone(), value)));
            }
        }
        out
    }

    /// The files of a glob or a folder, each an input of its own, told apart by content: those
    /// the model cannot take (a video among the photos, a text file) are left out with one
    /// warning; none left is an error.
    fn several_inputs(
        &mut self,
        written: &Spanned<String>,
        slot: Option<InputSlot>,
    ) -> Vec<(String, (&'static str, InputValue))> {
        let text = written.value.as_str();
        let found = match expand(&self.manifest.dir, text) {
            Ok(found) => found,
            Err(refused) => {
                self.error(
                    written.at,
                    format!("input `{text}`: {}", refused.message),
                    Some(refused.help),
                );
                return Vec::new();
            }
        };
        let want = slot.and_then(|s| s.kind());
        let mut taken = Vec::new();
        let mut left_out = Vec::new();
        for (label, path) in found {
            // Left out by its first bytes when it is clearly not what the model takes.
            if let (Some(want), Some(mime)) = (want, sniff(&path))
                && !want.takes(mime.split('/').next().unwrap_or(""))
            {
                let family = mime.split('/').next().unwrap_or("");
                let what = if matches!(family, "image" | "video") {
                    format!("a {family}")
                } else {
                    mime.clone()
                };
                left_out.push(format!("`{label}` ({what})"));
                continue;
            }
            let local = match self.local(&path) {
                Ok(local) => local,
                Err(refused) => {
                    left_out.push(format!("`{label}` ({})", refused.message));
                    continue;
                }
            };
            let family = local.family();
            match (want, slot.and_then(|s| s.field())) {
                (Some(want), Some(field)) if want.takes(family) => {
                    taken.push((label, (field, InputValue::Local(local))))
                }
                (Some(_), _) => left_out.push(format!("`{label}` (a {family})")),
                (None, _) => {
                    let field = if family == "video" { "video_url" } else { "image_url" };
                    taken.push((label, (field, InputValue::Local(local))));
                }
            }
        }
        let what = match want {
            Some(MediaKind::Image) => "images",
            Some(MediaKind::Video) => "videos",
            Some(MediaKind::Audio) => "audio files",
            Some(MediaKind::ImageOrVideo) | None => "images or videos",
        };
        let pattern = text.contains(['*', '?', '[']);
        let looked = self.manifest.dir.join(text);
        if taken.is_empty() {
            let (message, help) = match (left_out.len(), pattern) {
                (0, true) => (
                    format!("no file matches (looked for `{}`)", looked.display()),
                    "`*` stands for any part of a name, `?` for one character; paths are relative to the manifest's \
                     folder, and hidden files are left out",
                ),
                (0, false) => (
                    format!("the folder holds no file (looked in `{}`)", looked.display()),
                    "put the images in that folder, or check its path (relative to the manifest's folder); hidden \
                     files and subfolders are left out",
                ),
                (n, _) => (
                    format!(
                        "none of the {} it names is one of the {what} this model takes: {}",
                        crate::wording::count(n, "file"),
                        left_out.join(", ")
                    ),
                    "check that the path names the files you meant; files are told apart by their content, not their \
                     names",
                ),
            };
            self.error(written.at, format!("input `{text}`: {message}"), Some(help.into()));
        } else if !left_out.is_empty() {
            self.warnings.push(self.manifest.warning(
                Some(written.at),
                format!(
                    "input `{text}`: {} left out, not {what}: {}",
                    crate::wording::count(left_out.len(), "file"),
                    left_out.join(", ")
                ),
            ));
        }
        taken
    }

    /// A local file read, or the one already read at that path.
    fn local(&mut self, path: &Path) -> Result<Arc<LocalInput>, Refused> {
        if let Some(l) = self.inputs.get(path) {
            return Ok(l.clone());
        }
        let l = Arc::new(read_local(path)?);
        self.inputs.insert(path.to_path_buf(), l.clone());
        Ok(l)
    }

    /// Reads a local input (or checks a URL) and decides which request field carries it.
    fn input_value(
        &mut self,
        written: &Spanned<String>,
        slot: Option<InputSlot>,
    ) -> Option<(&'static str, InputValue)> {
        let text = written.value.as_str();
        let lower = text.to_ascii_lowercase();
        if is_url(text) {
            let field = match slot {
                Some(s) => s.field()?,
                // An unknown model: the extension is the best guess we have.
                None => guess_field_from_name(&lower),
            };
            return Some((field, InputValue::Url(text.to_string())));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            self.error(
                written.at,
                format!("input `{text}`: `{scheme}://` URLs are not supported"),
                Some("use an http(s) URL or a path relative to the manifest".into()),
            );
            return None;
        }
        let path = self.manifest.dir.join(text);
        let local = match self.local(&path) {
            Ok(l) => l,
            Err(refused) => {
                self.error(
                    written.at,
                    format!("input `{text}`: {}", refused.message),
                    Some(refused.help),
                );
                return None;
            }
        };
        let mime = local.mime();
        let family = local.family();
        let field = match slot {
            Some(s) => {
                let want = s.kind()?;
                if !want.takes(family) {
                    // A model that takes what was given, if one is known.
                    let other = catalog::models()
                        .iter()
                        .find(|m| m.input.kind().is_some_and(|k| k.as_str() == family))
                        .map(|m| format!("; for {family} input, use a model such as `{}`", m.id))
                        .unwrap_or_default();
                    let want = want.as_str();
                    let article = |media: &str| {
                        if media.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        }
                    };
                    self.error(
                        written.at,
                        format!(
                            "input `{text}` is {mime}, but this model needs {} {want}",
                            article(want)
                        ),
                        Some(format!("give {} {want} file{other}", article(want))),
                    );
                    return None;
                }
                s.field()?
            }
            None if family == "video" => "video_url",
            None => "image_url",
        };
        Some((field, InputValue::Local(local)))
    }
}

impl Planner<'_> {
    /// What a job gives one of the model's media fields besides `input` (`last_image_url:
    /// assets/end.png`, `image_urls: [a.png, b.png]`): URLs as written, local files read once,
    /// checked for their kind of media by their content, and sent as `data:` URIs.
    pub(super) fn named_media(
        &mut self,
        field: &'static str,
        param: ParamKind,
        value: &Value,
        at: Pos,
    ) -> Option<NamedMedia> {
        let ParamKind::Media { list, .. } = param else {
            return None;
        };
        match self.media_values(field, param, value, at) {
            Ok(values) => Some(NamedMedia {
                field,
                written: value.clone(),
                values,
                list,
            }),
            // One problem of the field is reported, at its value.
            Err(refused) => {
                self.error(at, refused.message, Some(refused.help));
                None
            }
        }
    }

    /// The files and URLs of a media field's value (see [`Planner::named_media`]); a problem's
    /// message names the field.
    fn media_values(
        &mut self,
        field: &'static str,
        param: ParamKind,
        value: &Value,
        at: Pos,
    ) -> Result<Vec<InputValue>, Refused> {
        let ParamKind::Media {
            kind,
            list,
            data_uri,
            items,
        } = param
        else {
            return Ok(Vec::new());
        };
        let written: Vec<&str> = match value {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => Vec::new(),
        };
        // A folder or glob names the files of a list field, in name order.
        let mut paths: Vec<String> = Vec::with_capacity(written.len());
        for text in written {
            let text = text.trim();
            if is_url(text) || !names_several(&self.manifest.dir, text) {
                paths.push(text.to_string());
                continue;
            }
            if !list {
                return Err(refused(
                    format!("`{field}` takes one file, and `{text}` names a folder or a glob"),
                    format!("give one file or URL for `{field}`"),
                ));
            }
            let found = expand(&self.manifest.dir, text)
                .map_err(|r| refused(format!("`{field}` `{text}`: {}", r.message), r.help))?;
            if found.is_empty() {
                return Err(refused(
                    format!("`{field}`: `{text}` names no file"),
                    "check the folder or the pattern (relative to the manifest's folder)".into(),
                ));
            }
            paths.extend(found.into_iter().map(|(label, _)| label));
        }
        if list {
            super::values::check_count(paths.len(), items)
                .map_err(|r| refused(format!("`{field}` {}", r.message), r.help))?;
        }
        let mut values = Vec::with_capacity(paths.len());
        for text in &paths {
            if is_url(text) {
                values.push(InputValue::Url(text.clone()));
                continue;
            }
            if let Some((scheme, _)) = text.split_once("://") {
                return Err(refused(
                    format!("`{field}`: `{scheme}://` URLs are not supported"),
                    "use an http(s) URL or a path relative to the manifest".into(),
                ));
            }
            let local = self
                .local(&self.manifest.dir.join(text))
                .map_err(|r| refused(format!("`{field}` `{text}`: {}", r.message), r.help))?;
            if !kind.takes(local.family()) {
                return Err(refused(
                    format!(
                        "`{field}` `{text}` is {}, but `{field}` takes {}",
                        local.mime(),
                        kind.as_str()
                    ),
                    format!("give {} file or an http(s) URL", kind.as_str()),
                ));
            }
            // Once per field: the docs say it takes URLs only; the file goes as a `data:` URI
            // all the same (the service may take it), and the user knows what to do if not.
            let note = format!("url-only:{field}");
            if data_uri == Some(false) && !self.warned_models.contains(&note) {
                self.warned_models.push(note);
                self.warnings.push(self.manifest.warning(
                    Some(at),
                    format!(
                        "`{field}` takes URLs only by the vendor's docs; local files are sent as `data:` URIs, \
                         which the service may refuse: if it does, put the files where an https URL reaches them"
                    ),
                ));
            }
            values.push(InputValue::Local(local));
        }
        Ok(values)
    }
}

fn guess_field_from_name(lower_url: &str) -> &'static str {
    let path = lower_url.split(['?', '#']).next().unwrap_or("");
    let video = [".mp4", ".mov", ".webm", ".m4v", ".mkv", ".avi"]
        .iter()
        .any(|e| path.ends_with(e))
        || lower_url.starts_with("data:video/");
    if video { "video_url" } else { "image_url" }
}

/// What inputs may be, for the help of a refused one.
const INPUT_KINDS: &str = "inputs are images (jpeg, png, webp, …), videos (mp4, mov, webm) or, for the models that take it, audio (mp3, wav, …)";

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
    if !(mime.starts_with("image/") || mime.starts_with("video/") || mime.starts_with("audio/")) {
        return Err(refused(
            format!("the file is {mime}, not an image, a video or audio"),
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
fn names_several(dir: &Path, written: &str) -> bool {
    let path = dir.join(written);
    // A file that exists is itself, whatever its name holds (`photo[1].jpg`).
    if path.is_file() {
        return false;
    }
    written.contains(['*', '?', '[']) || written.ends_with(['/', '\\']) || path.is_dir()
}

/// What a file's first bytes say it is (`image/png`), without reading all of it: a folder may
/// hold videos of gigabytes that an image model leaves out.
fn sniff(path: &Path) -> Option<String> {
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

/// The most files one glob may name: ten times a large manifest's jobs. A pattern that names
/// more is a mistake, and stops being read there.
const MAX_MATCHES: usize = 1_000_000;

/// Refuses a `**` pattern that would walk folders outside the manifest's: `/**/*.png` walked the
/// whole file system. Inside the manifest's folder, the user's own tree bounds the walk.
fn refuse_endless_walk(dir: &Path, written: &str) -> Result<(), Refused> {
    let parts: Vec<&str> = written.split(['/', '\\']).collect();
    let Some(recursive) = parts.iter().position(|p| p.contains("**")) else {
        return Ok(());
    };
    // The folder the walk starts from: the parts before the first wildcard.
    let literal = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[']))
        .count()
        .min(recursive);
    let base = parts[..literal].join("/");
    let start = if Path::new(written).is_absolute() {
        std::path::PathBuf::from(if base.is_empty() { "/" } else { &base })
    } else {
        dir.join(&base)
    };
    let inside = match (start.canonicalize(), dir.canonicalize()) {
        (Ok(start), Ok(dir)) => start.starts_with(dir),
        // A folder that does not exist walks nothing.
        (Err(_), _) => true,
        (_, Err(_)) => !Path::new(written).is_absolute() && !parts[..literal].contains(&".."),
    };
    if inside {
        return Ok(());
    }
    Err(refused(
        format!(
            "a `**` pattern searches inside the manifest's folder only; this one would search every folder under \
             `{}`",
            start.display()
        ),
        "put the manifest beside the files (`photos/**/*.png`), or name their folder without `**`".into(),
    ))
}

/// The files a glob or a folder names, relative to `dir` as they are written in results (`/`
/// separators), sorted by their bytes so every run sees one order; subfolders are not entered,
/// hidden files are left out. An error says what was looked for.
fn expand(dir: &Path, written: &str) -> Result<Vec<(String, std::path::PathBuf)>, Refused> {
    let relative = |path: &Path| {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut found = Vec::new();
    if written.contains(['*', '?', '[']) {
        refuse_endless_walk(dir, written)?;
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
            if found.len() == MAX_MATCHES {
                return Err(refused(
                    format!("`{written}` matches more than {MAX_MATCHES} files"),
                    "name a folder with fewer files, or split the manifest".into(),
                ));
            }
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
