//! Where each job's video goes: the output pattern filled with file-name-safe values.

use std::collections::HashMap;

use serde_json::Value;

use super::{Job, JobKey};

/// A file-name-safe form of a value: lowercase letters and digits, runs of anything else as `-`.
pub fn slug(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0;
    // ASCII, by far the common case, without the Unicode tables.
    let lower = |c: char| {
        let ascii = c.is_ascii().then(|| c.to_ascii_lowercase());
        let unicode = !c.is_ascii();
        ascii.into_iter().chain(c.to_lowercase().filter(move |_| unicode))
    };
    for c in text.chars().flat_map(lower) {
        if c.is_alphanumeric() {
            out.push(c);
            chars += 1;
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
            chars += 1;
        }
        if chars >= max_chars {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

fn input_stem(written: &str) -> &str {
    if written.starts_with("data:") {
        return "input";
    }
    let path = written.split(['?', '#']).next().unwrap_or(written);
    let name = path.trim_end_matches('/').rsplit(['/', '\\']).next().unwrap_or(path);
    name.rsplit_once('.').map_or(name, |(stem, _)| stem)
}

/// A piece of an output pattern: text as written, or a placeholder.
enum Piece<'p> {
    Text(&'p str),
    Model,
    Template,
    Input,
    Prompt,
    JobId,
}

/// Splits a pattern (already checked by the planner) into its pieces; an unknown placeholder
/// stays text.
fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        let piece = match &rest[start + 1..start + len] {
            "model" => Piece::Model,
            "template" => Piece::Template,
            "input" => Piece::Input,
            "prompt" => Piece::Prompt,
            "job_id" => Piece::JobId,
            _ => {
                out.push(Piece::Text(&rest[..start + len + 1]));
                rest = &rest[start + len + 1..];
                continue;
            }
        };
        out.push(Piece::Text(&rest[..start]));
        out.push(piece);
        rest = &rest[start + len + 1..];
    }
    out.push(Piece::Text(rest));
    out
}

/// Fills `job.file` from the pattern; names that collide get the job id appended, so two jobs
/// never write one file. Returns the groups of jobs (indices) whose names collided.
pub(super) fn name_files(pattern: &str, jobs: &mut [Job]) -> Vec<Vec<usize>> {
    // The pattern is read once; each job fills only the placeholders it uses.
    let pieces = pieces(pattern);
    let mut path = String::new();
    // Models and templates repeat across thousands of jobs: each is made a slug once.
    let mut slugs: HashMap<String, String> = HashMap::new();
    let mut cached = |text: &str| -> String {
        if let Some(s) = slugs.get(text) {
            return s.clone();
        }
        let s = slug(text, 60);
        slugs.insert(text.to_string(), s.clone());
        s
    };
    for job in jobs.iter_mut() {
        let prompt = job.params.get("prompt").and_then(Value::as_str).unwrap_or("");
        path.clear();
        for piece in &pieces {
            match *piece {
                Piece::Text(t) => path.push_str(t),
                Piece::Model => path.push_str(&cached(&job.model)),
                Piece::Template => path.push_str(&cached(job.template.as_deref().unwrap_or(""))),
                Piece::Input if job.input.is_some() => path.push_str(&slug(input_stem(&job.input_label), 60)),
                Piece::Input | Piece::Prompt => path.push_str(&slug(prompt, 60)),
                Piece::JobId => path.push_str(job.key.short()),
            }
        }
        let mut parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty() && *p != ".").collect();
        let last = parts.pop().unwrap_or("");
        let mut file = String::with_capacity(path.len() + 20);
        file.push_str("videos");
        for part in &parts {
            file.push('/');
            file.push_str(part);
        }
        // A value that slugs to nothing (the prompt `..` in `a/{prompt}.mp4`) leaves a hidden
        // `.mp4` or no name: the job id names the file. A pattern without an extension
        // (`{input}`) gets the video's: the service sends MP4.
        let (stem, extension) = last.rsplit_once('.').unwrap_or((last, ""));
        file.push('/');
        file.push_str(if stem.is_empty() { job.key.short() } else { stem });
        file.push('.');
        file.push_str(if extension.is_empty() { "mp4" } else { extension });
        job.file = file;
    }
    // Names that differ only in case are the same file on some disks. The first job of each
    // name is kept in one map; a list is made only for the names that collide (foldhash: a
    // hundred thousand names are hashed here on a large plan).
    let mut first: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut shared: HashMap<usize, Vec<usize>, foldhash::fast::RandomState> = HashMap::default();
    for (i, job) in jobs.iter().enumerate() {
        match first.entry(job.file.to_lowercase()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                shared.entry(*o.get()).or_insert_with(|| vec![*o.get()]).push(i)
            }
        }
    }
    let mut collisions: Vec<Vec<usize>> = shared.into_values().collect();
    collisions.sort();
    for group in &collisions {
        for &i in group {
            let job = &mut jobs[i];
            let (stem, ext) = match job.file.rsplit_once('.') {
                Some((s, e)) if !s.ends_with('/') && !e.contains('/') => (s.to_string(), format!(".{e}")),
                _ => (job.file.clone(), String::new()),
            };
            job.file = format!("{stem}-{}{ext}", job.key.short());
        }
    }
    collisions
}

/// The placeholder a pattern lacks to tell apart two jobs that it names alike, if any: their
/// templates differ and it has no `{template}`, say. `None` means they collide by chance (two
/// `shoe.jpg` from two folders) and the job ids appended settle it.
pub(super) fn missing_placeholder(pattern: &str, a: &Job, b: &Job) -> Option<&'static str> {
    if pattern.contains("{job_id}") {
        return None;
    }
    let has = |p: &str| pattern.contains(&format!("{{{p}}}"));
    let prompt = |j: &Job| j.params.get("prompt").cloned();
    if a.model != b.model && !has("model") {
        Some("{model}")
    } else if a.template != b.template && !has("template") {
        Some("{template}")
    } else if a.input_label != b.input_label && a.input.is_some() && !has("input") {
        Some("{input}")
    } else if prompt(a) != prompt(b) && !has("prompt") && !(a.input.is_none() && has("input")) {
        Some("{prompt}")
    } else {
        None
    }
}

/// Moves jobs off files that already hold another job's finished video (from an earlier run of an
/// edited manifest, say): that video was paid for and must not be overwritten. The new name
/// carries the job id, so it is the same on every rerun. Returns what was moved, for a warning.
pub fn keep_clear_of(jobs: &mut [Job], finished: &HashMap<String, JobKey>) -> Vec<(String, String)> {
    let mut moved = Vec::new();
    for job in jobs.iter_mut() {
        let key = job.key.clone();
        // The other names of its input get copies of its video: they must not land on one either.
        let files = std::iter::once(&mut job.file).chain(job.aliases.iter_mut().map(|a| &mut a.file));
        for file in files {
            match finished.get(&file.to_lowercase()) {
                Some(owner) if *owner != key => {}
                _ => continue,
            }
            let (stem, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), ""));
            let new = if ext.is_empty() || ext.contains('/') {
                format!("{file}-{}", key.short())
            } else {
                format!("{stem}-{}.{ext}", key.short())
            };
            moved.push((std::mem::replace(file, new.clone()), new));
        }
    }
    moved
}

/// The first folder a video would be written through that is a symbolic link, below `out`
/// (`out/videos` linked to `/etc`, say), with where it points: videos would land outside the
/// output folder. `out` itself may be a link: the user chose it.
pub fn linked_folder<'f>(
    out: &std::path::Path,
    files: impl IntoIterator<Item = &'f str>,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let mut checked = std::collections::HashSet::new();
    for file in files {
        let mut folder = out.to_path_buf();
        let parts: Vec<&str> = file.split('/').collect();
        // Every folder of the path, and the file itself (a link there is written through too).
        for part in parts {
            folder.push(part);
            if !checked.insert(folder.clone()) {
                continue;
            }
            match std::fs::symlink_metadata(&folder) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(&folder).unwrap_or_default();
                    return Some((folder, target));
                }
                Ok(_) => {}
                // Nothing below a missing folder exists yet.
                Err(_) => break,
            }
        }
    }
    None
}
