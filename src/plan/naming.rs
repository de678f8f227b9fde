//! Where each job's video goes: the output pattern filled with file-name-safe values.

use std::collections::HashMap;
use std::sync::Arc;

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

/// A pattern's file extension, when it writes one after its last placeholder (`.mp4` in
/// `{input}.mp4`), and the rest; else the video's, `mp4`: the service sends MP4. Taken from the
/// pattern, not from the name made: a value is never taken for an extension.
fn split_extension(pattern: &str) -> (&str, &str) {
    let after = pattern.rfind(['}', '/', '\\']).map_or(0, |i| i + 1);
    match pattern[after..].rfind('.') {
        Some(dot) => {
            let ext = &pattern[after + dot + 1..];
            if (1..=8).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                (&pattern[..after + dot], ext)
            } else {
                (pattern, "mp4")
            }
        }
        None => (pattern, "mp4"),
    }
}

/// What may stand between the words of a name: what an empty value leaves doubled or dangling.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '_' | '.')
}

/// One job's name from the pattern's pieces (without the extension), relative to `videos/`. A
/// value that is empty (no prompt, no template) takes the separators it leaves with it:
/// `{input} {prompt}` is `shoe`, not `shoe `, and `{input}-{prompt}-{template}` is
/// `shoe-tokyo-billboard`.
fn fill(pieces: &[Piece], job: &Job, slug_of: &mut impl FnMut(&str) -> String) -> String {
    let prompt = job.params.get("prompt").and_then(Value::as_str).unwrap_or("");
    let mut path = String::new();
    let mut empties = Vec::new();
    for piece in pieces {
        let value = match *piece {
            Piece::Text(t) => {
                path.push_str(t);
                continue;
            }
            Piece::Model => slug_of(&job.model),
            Piece::Template => slug_of(job.template.as_deref().unwrap_or("")),
            Piece::Input if job.input.is_some() => slug(input_stem(&job.input_label), 60),
            Piece::Input | Piece::Prompt => slug(prompt, 60),
            Piece::JobId => job.key.short().to_string(),
        };
        if value.is_empty() {
            empties.push(path.len());
        } else {
            path.push_str(&value);
        }
    }
    // From the last, so that the places of the earlier ones stay where they were.
    for &at in empties.iter().rev() {
        let left: usize = path[..at].chars().rev().take_while(|c| is_separator(*c)).count();
        let right: usize = path[at..].chars().take_while(|c| is_separator(*c)).count();
        let starts = path[..at - left].is_empty() || path[..at - left].ends_with(['/', '\\']);
        let ends = at + right == path.len() || path[at + right..].starts_with(['/', '\\']);
        if starts || ends {
            path.replace_range(at - left..at + right, "");
        } else if left > 0 && right > 0 {
            path.replace_range(at..at + right, "");
        }
    }
    path
}

/// `videos/…/<stem>.<ext>` from a filled pattern: empty folders dropped, spaces and dots trimmed
/// from each part (a name ending in a space or a dot is trouble on Windows; one starting with a
/// dot is hidden). A value that names nothing (the prompt `..` in `a/{prompt}.mp4`) leaves the
/// job id to name the file.
fn place(path: &str, ext: &str, job_id: &str) -> String {
    fn trim(part: &str) -> &str {
        part.trim_matches(|c: char| c.is_whitespace() || c == '.')
    }
    // The last part names the file, even empty (then the job id does); empty folders go.
    let (folders, stem) = match path.rfind(['/', '\\']) {
        Some(i) => (&path[..i], trim(&path[i + 1..])),
        None => ("", trim(path)),
    };
    let mut file = String::with_capacity(path.len() + 20);
    file.push_str("videos");
    for part in folders.split(['/', '\\']).map(trim).filter(|p| !p.is_empty()) {
        file.push('/');
        file.push_str(part);
    }
    file.push('/');
    file.push_str(if stem.is_empty() { job_id } else { stem });
    file.push('.');
    file.push_str(ext);
    file
}

/// Fills each job's `file` from its pattern (its entry's `output:`, else the manifest's, else
/// [`super::DEFAULT_OUTPUT`]). Jobs named alike are told apart by what differs between them (see
/// [`telling_apart`]), and by their job ids only when nothing readable does: the one rule,
/// whether the pattern was written or left implicit.
pub(super) fn name_files(jobs: &mut [Job]) {
    // Each pattern is read once: most plans have one, a job's own `output:` adds its own.
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut which: Vec<usize> = Vec::with_capacity(jobs.len());
    for job in jobs.iter() {
        let next = index.len();
        which.push(*index.entry(job.pattern.clone()).or_insert(next));
    }
    let mut patterns: Vec<Arc<str>> = vec![Arc::from(""); index.len()];
    for (pattern, i) in index {
        patterns[i] = pattern;
    }
    let parsed: Vec<(Vec<Piece>, &str)> = patterns
        .iter()
        .map(|p| {
            let (stem, ext) = split_extension(p);
            (pieces(stem), ext)
        })
        .collect();
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
    for (job, &w) in jobs.iter_mut().zip(&which) {
        let (pieces, ext) = &parsed[w];
        let path = fill(pieces, job, &mut cached);
        job.file = place(&path, ext, job.key.short());
    }
    let groups = collisions(jobs);
    if groups.is_empty() {
        return;
    }
    for group in groups {
        let suffixes = telling_apart(jobs, &group);
        for (k, &i) in group.iter().enumerate() {
            let suffix = match &suffixes {
                Some(s) => s[k].clone(),
                None => jobs[i].key.short().to_string(),
            };
            append(&mut jobs[i].file, &suffix);
        }
    }
    // A name made longer may meet another job's: the job ids settle what is left (an input's
    // other names share their job's id, and get a number after, in `aliases`).
    for group in collisions(jobs) {
        for i in group {
            let id = jobs[i].key.short().to_string();
            append(&mut jobs[i].file, &id);
        }
    }
}

/// `-<suffix>` put before a file's extension.
fn append(file: &mut String, suffix: &str) {
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.ends_with('/') && !ext.contains('/') => *file = format!("{stem}-{suffix}.{ext}"),
        _ => {
            file.push('-');
            file.push_str(suffix);
        }
    }
}

/// The groups of jobs (indices) whose names are one file. Names that differ only in case are the
/// same file on some disks. The first job of each name is kept in one map; a list is made only
/// for the names that collide (foldhash: a hundred thousand names are hashed here on a large
/// plan).
fn collisions(jobs: &[Job]) -> Vec<Vec<usize>> {
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
    let mut groups: Vec<Vec<usize>> = shared.into_values().collect();
    groups.sort();
    groups
}

/// A short slug of free text (a prompt, a label): at most `max` characters, cut between words.
fn short_slug(text: &str, max: usize) -> String {
    let long = slug(text, max + 1);
    if long.chars().count() <= max {
        return long;
    }
    let cut: String = long.chars().take(max).collect();
    match cut.rfind('-') {
        Some(i) if i > 0 => cut[..i].to_string(),
        _ => cut,
    }
}

/// The folder an input is in (`a` for `photos/a/shoe.jpg`, the URL's last folder), as a slug.
fn input_folder(written: &str) -> String {
    let path = written.split(['?', '#']).next().unwrap_or(written);
    let mut parts = path.trim_end_matches(['/', '\\']).rsplit(['/', '\\']);
    parts.next();
    slug(parts.next().unwrap_or(""), 40)
}

/// What tells apart the jobs of `group`, which a pattern names alike: a suffix for each, from
/// the first of these that tells them all apart on its own — the label, the prompt (a short
/// slug), the template, the model, the input's name, the folder it is in, a parameter that
/// differs — else from all of these that differ, together. `None` when even that leaves two
/// alike: their job ids tell them apart.
fn telling_apart(jobs: &[Job], group: &[usize]) -> Option<Vec<String>> {
    let members: Vec<&Job> = group.iter().map(|&i| &jobs[i]).collect();
    let prompt = |j: &Job| {
        j.params
            .get("prompt")
            .and_then(Value::as_str)
            .map(|p| short_slug(p, 40))
    };
    let mut traits: Vec<Vec<String>> = vec![
        members
            .iter()
            .map(|j| j.user_label.as_deref().map(|l| short_slug(l, 40)).unwrap_or_default())
            .collect(),
        members.iter().map(|j| prompt(j).unwrap_or_default()).collect(),
        members
            .iter()
            .map(|j| slug(j.template.as_deref().unwrap_or(""), 40))
            .collect(),
        members.iter().map(|j| slug(&j.model, 40)).collect(),
        members
            .iter()
            .map(|j| {
                if j.input.is_some() {
                    slug(input_stem(&j.input_label), 40)
                } else {
                    String::new()
                }
            })
            .collect(),
        members.iter().map(|j| input_folder(&j.input_label)).collect(),
    ];
    // The parameters that differ, by name: `resolution-1080p` beside `resolution-720p`.
    let names: std::collections::BTreeSet<&String> = members
        .iter()
        .flat_map(|j| j.params.keys())
        .filter(|k| !matches!(k.as_str(), "prompt" | "template"))
        .collect();
    for name in names {
        let values: Vec<Option<&Value>> = members.iter().map(|j| j.params.get(name.as_str())).collect();
        if values.iter().all(|v| *v == values[0]) {
            continue;
        }
        traits.push(
            values
                .iter()
                .map(|v| match v {
                    Some(Value::String(s)) => slug(&format!("{name}-{s}"), 40),
                    Some(v) => slug(&format!("{name}-{v}"), 40),
                    None => String::new(),
                })
                .collect(),
        );
    }
    let tells_apart = |values: &[String]| {
        let mut seen = std::collections::HashSet::new();
        values.iter().all(|v| !v.is_empty() && seen.insert(v.to_lowercase()))
    };
    if let Some(one) = traits.iter().find(|t| tells_apart(t)) {
        return Some(one.clone());
    }
    let mut together = vec![String::new(); members.len()];
    for values in traits.iter().filter(|t| t.iter().any(|v| *v != t[0])) {
        for (suffix, value) in together.iter_mut().zip(values) {
            if !value.is_empty() {
                if !suffix.is_empty() {
                    suffix.push('-');
                }
                suffix.push_str(value);
            }
        }
        if tells_apart(&together) {
            return Some(together);
        }
    }
    None
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
