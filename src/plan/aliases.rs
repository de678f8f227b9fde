//! The same content under several names. Jobs are keyed by what is sent, so two names for one
//! photo make one job and one payment; but each name was written by someone who expects its row
//! in `results.csv` and its own file. So the later names become [`Alias`]es of the first job:
//! named here like jobs, given a copy of the video when results are written.

use std::collections::HashMap;
use std::collections::HashSet;
use std::collections::hash_map::Entry as MapEntry;

use super::{Alias, Job, JobKey};
use crate::manifest::{Diagnostic, Manifest};

/// Jobs with the key of an earlier one: the same name again runs once (with a warning); another
/// name becomes an alias of the earlier job (with a warning saying so).
pub(super) fn merge_duplicates(manifest: &Manifest, jobs: Vec<Job>, warnings: &mut Vec<Diagnostic>) -> Vec<Job> {
    // foldhash: 100,000 keys are hashed here on a large plan, and SipHash was a twentieth of
    // `validate`'s time.
    let mut first: HashMap<JobKey, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut unique: Vec<Job> = Vec::with_capacity(jobs.len());
    // The names each job has (its own and its aliases'), to tell a repeat from another name
    // without going through all of them: 80,000 repeats of a job were quadratic.
    let mut names: HashSet<(usize, String), foldhash::fast::RandomState> = HashSet::default();
    // Said once per pair of names, however many templates they go through.
    let mut told: HashSet<(String, String)> = HashSet::new();
    // The repeats of each job: one warning (its index in `warnings`) and their lines. A warning
    // each was 40,000 warnings drawn for 40,000 identical rows.
    let mut repeats: HashMap<usize, (usize, Vec<usize>)> = HashMap::new();
    for job in jobs {
        let i = match first.entry(job.key.clone()) {
            MapEntry::Vacant(v) => {
                v.insert(unique.len());
                names.insert((unique.len(), job.input_label.clone()));
                unique.push(job);
                continue;
            }
            MapEntry::Occupied(o) => *o.get(),
        };
        let earlier = &mut unique[i];
        let line = earlier.at.line;
        if names.contains(&(i, job.input_label.clone())) {
            match repeats.get_mut(&i) {
                Some((_, lines)) => lines.push(job.at.line),
                None => {
                    let message = format!(
                        "this job ({} · {}) repeats the one of line {line}: it runs once",
                        job.model, job.input_label
                    );
                    repeats.insert(i, (warnings.len(), Vec::new()));
                    warnings.push(manifest.warning(Some(job.at), message));
                }
            }
            continue;
        }
        names.insert((i, job.input_label.clone()));
        let pair = (job.input_label.clone(), earlier.input_label.clone());
        if !told.contains(&pair) {
            let message = format!(
                "`{}` has the same content as `{}` (line {line}): generated once, each video copied to both names",
                job.input_label, earlier.input_label
            );
            warnings.push(manifest.warning(Some(job.at), message));
            told.insert(pair);
        }
        // Keys that fell back to the job id are the earlier job's too: the name tells them apart.
        let custom_id = if job.custom_id == earlier.custom_id {
            format!("{} / {}", job.custom_id, job.input_label)
        } else {
            job.custom_id
        };
        earlier.aliases.push(Alias {
            input_label: job.input_label,
            user_label: job.user_label,
            own: job.own,
            custom_id,
            file: String::new(),
            at: job.at,
        });
    }
    for (warning, mut lines) in repeats.into_values() {
        if lines.is_empty() {
            continue;
        }
        let more = lines.len();
        lines.dedup();
        let d = &mut warnings[warning];
        d.message = format!("{}; so do {more} more ({})", d.message, manifest.rows(&lines));
    }
    unique
}

/// The jobs followed by a stand-in job for each alias (its job with the alias's name), so that
/// files are named for all at once and never collide.
pub(super) fn with_stand_ins(jobs: Vec<Job>) -> Vec<Job> {
    let mut stand_ins = Vec::new();
    for job in &jobs {
        for alias in &job.aliases {
            let mut stand_in = job.clone();
            stand_in.aliases.clear();
            stand_in.input_label = alias.input_label.clone();
            stand_in.user_label = alias.user_label.clone();
            stand_in.at = alias.at;
            stand_ins.push(stand_in);
        }
    }
    let mut all = jobs;
    all.extend(stand_ins);
    all
}

/// Gives each stand-in (after the first `jobs` entries) a file of its own: an alias shares its
/// job's id, so the id appended to a colliding name does not tell them apart; a number does.
pub(super) fn separate_files(all: &mut [Job], jobs: usize) {
    if all.len() == jobs {
        return;
    }
    let mut taken: HashSet<String> = all[..jobs].iter().map(|j| j.file.to_lowercase()).collect();
    for stand_in in &mut all[jobs..] {
        let base = stand_in.file.clone();
        let mut n = 1;
        while taken.contains(&stand_in.file.to_lowercase()) {
            n += 1;
            stand_in.file = match base.rsplit_once('.') {
                Some((stem, ext)) if !ext.contains('/') => format!("{stem}-{n}.{ext}"),
                _ => format!("{base}-{n}"),
            };
        }
        taken.insert(stand_in.file.to_lowercase());
    }
}

/// The jobs again, each alias with the file its stand-in was given.
pub(super) fn fold_back(mut all: Vec<Job>, jobs: usize) -> Vec<Job> {
    let stand_ins = all.split_off(jobs);
    let mut files = stand_ins.into_iter().map(|s| s.file);
    for job in &mut all {
        for alias in &mut job.aliases {
            alias.file = files.next().unwrap_or_default();
        }
    }
    all
}
