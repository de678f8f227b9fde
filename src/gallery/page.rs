//! The page as a whole: its title, the counts at the top, the legend of labels, the jobs that want
//! a decision, and a grid per model (see [`super::layout`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use super::attention::{self, Attention};
use super::format::{count, distinct, format_number, relative_url, span};
use super::layout::{self, Section};
use super::notes::Note;
use super::{INPUTS_DIR, ResultRow};
use crate::results::Status;

/// What the page shows, ready for the template.
#[derive(Debug, Serialize)]
pub struct Gallery {
    /// The campaign (the manifest's `name`); empty when not known.
    pub campaign: String,
    /// `24 videos · 1 failed`: what the page holds, in its title and under its heading.
    pub headline: String,
    pub totals: Totals,
    pub legend: Legend,
    pub attention: Attention,
    pub sections: Vec<Section>,
    /// The values the filters offer, in order of appearance.
    pub models: Vec<String>,
    pub statuses: Vec<String>,
}

/// What the page can find in the output folder.
pub struct Disk<'a> {
    /// Whether the copy of an input (by its name under [`INPUTS_DIR`]) is there.
    pub input_copy: &'a dyn Fn(&str) -> bool,
    /// Whether a video (by its `file` cell, a path under the folder) is there.
    pub video: &'a dyn Fn(&str) -> bool,
}

/// The counts at the top. Jobs are counted once each (a job whose input has other names has a
/// row, and a file, for each name); videos are the files on disk.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Totals {
    /// Completed rows whose video is on disk: what the page can play.
    pub videos: usize,
    pub jobs: usize,
    pub completed: usize,
    /// Completed rows whose video is not on disk.
    pub missing: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Paid for, the video not saved yet.
    pub awaiting: usize,
    pub pending: usize,
    pub credits: String,
    /// From the first submit to the last finish, as `1m 12s`; empty when unknown.
    pub time: String,
}

/// The labels of the run, each said once here; grids show a key (`1`, `2`, …) where a label
/// applies rather than the label again and again.
#[derive(Debug, Default, Serialize)]
pub struct Legend {
    pub labels: Vec<LabelKey>,
    /// Every job has the one label: the legend says so and the grids show nothing of it.
    pub everywhere: bool,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelKey {
    pub text: String,
    /// Shown in the grids where the label applies (`1`, `2`, …).
    pub key: usize,
    /// One of the page's colours (`tone-0` … `tone-7`).
    pub tone: usize,
    /// How many rows have it.
    pub count: usize,
}

/// A label's mark in a grid: its key and colour (its text is the legend's, and the mark's title).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Marker {
    pub key: usize,
    pub tone: usize,
}

/// How many colours the page has for labels; more labels share them, told apart by their key.
const TONES: usize = 8;

impl Legend {
    pub fn new(rows: &[ResultRow]) -> Legend {
        let mut legend = Legend::default();
        for row in rows.iter().filter(|r| !r.label.is_empty()) {
            let at = *legend.index.entry(row.label.clone()).or_insert_with(|| {
                let at = legend.labels.len();
                legend.labels.push(LabelKey {
                    text: row.label.clone(),
                    key: at + 1,
                    tone: at % TONES,
                    count: 0,
                });
                at
            });
            legend.labels[at].count += 1;
        }
        legend.everywhere = legend.labels.len() == 1 && legend.labels[0].count == rows.len();
        legend
    }

    /// The mark of `label` in the grids: none for no label, or when the legend said it for all.
    pub fn marker(&self, label: &str) -> Option<Marker> {
        if self.everywhere {
            return None;
        }
        let key = &self.labels[*self.index.get(label)?];
        Some(Marker {
            key: key.key,
            tone: key.tone,
        })
    }
}

impl Gallery {
    /// Lays out `rows` (with the user's own columns of each, `notes`) for the page that goes in
    /// `out`, where the inputs' copies and the videos are looked for.
    pub fn new(rows: &[ResultRow], notes: &[Vec<Note>], campaign: Option<&str>, out: &Path) -> Gallery {
        let input_copy = |name: &str| out.join(INPUTS_DIR).join(name).is_file();
        let video = |file: &str| out.join(file).is_file();
        Gallery::layout(
            rows,
            notes,
            campaign,
            &Disk {
                input_copy: &input_copy,
                video: &video,
            },
        )
    }

    pub(super) fn layout(rows: &[ResultRow], notes: &[Vec<Note>], campaign: Option<&str>, disk: &Disk) -> Gallery {
        // A path that would leave the folder is never looked for, and never shown.
        let on_disk = |row: &ResultRow| relative_url(&row.file).is_some() && (disk.video)(&row.file);
        let shown: Vec<&'static str> = rows
            .iter()
            .map(|row| attention::shown_status(row, row.status == Status::Completed && on_disk(row)))
            .collect();
        let totals = Totals::count(rows, &shown);
        let legend = Legend::new(rows);
        let models = distinct(rows.iter().map(|r| r.model.as_str()));
        let mut statuses = distinct(shown.iter().copied());
        let order = [
            "completed",
            "missing",
            "failed",
            "unknown",
            "awaiting_download",
            "pending",
        ];
        statuses.sort_by_key(|s| order.iter().position(|k| k == s).unwrap_or(usize::MAX));

        let no_notes = Vec::new();
        let mut problems = Vec::new();
        let mut sections = Vec::new();
        for model in &models {
            let of_model: Vec<layout::Placed> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| &r.model == model)
                .map(|(i, row)| layout::Placed {
                    index: i,
                    row,
                    notes: notes.get(i).unwrap_or(&no_notes),
                    status: shown[i],
                })
                .collect();
            let (section, listed) = layout::section(model, &of_model, &legend, disk.input_copy);
            sections.push(section);
            problems.extend(listed);
        }
        Gallery {
            campaign: campaign.unwrap_or_default().to_string(),
            headline: totals.headline(),
            attention: Attention::new(problems, totals.pending),
            totals,
            legend,
            sections,
            models,
            statuses,
        }
    }
}

impl Totals {
    /// Counts `rows`, each shown as `shown` says (see [`attention::shown_status`]).
    fn count(rows: &[ResultRow], shown: &[&str]) -> Totals {
        let mut totals = Totals::default();
        let mut credits = 0.0;
        let (mut first, mut last) = (None, None);
        let mut jobs = HashSet::new();
        for (row, &status) in rows.iter().zip(shown) {
            match status {
                "completed" => totals.videos += 1,
                "missing" => totals.missing += 1,
                _ => {}
            }
            // A job's other rows (other names of its input) share its status and its cost.
            if !row.job_id.is_empty() && !jobs.insert(row.job_id.as_str()) {
                continue;
            }
            totals.jobs += 1;
            match row.status {
                Status::Completed => totals.completed += 1,
                Status::Failed => totals.failed += 1,
                Status::Unknown => totals.unknown += 1,
                Status::AwaitingDownload => totals.awaiting += 1,
                Status::Pending => totals.pending += 1,
            }
            credits += row.credits.unwrap_or(0.0);
            if let Ok(t) = humantime::parse_rfc3339_weak(&row.submitted_at) {
                first = Some(first.map_or(t, |f: std::time::SystemTime| f.min(t)));
            }
            if let Ok(t) = humantime::parse_rfc3339_weak(&row.finished_at) {
                last = Some(last.map_or(t, |l: std::time::SystemTime| l.max(t)));
            }
        }
        totals.credits = format_number(credits);
        if let (Some(first), Some(last)) = (first, last) {
            totals.time = span(first, last);
        }
        totals
    }

    /// `24 videos · 1 failed`: the videos the page plays, then what else there is, worst first.
    fn headline(&self) -> String {
        let mut parts = vec![count(self.videos, "video", "videos")];
        for (n, what) in [
            (self.missing, "missing"),
            (self.failed, "failed"),
            (self.unknown, "unknown"),
            (self.awaiting, "not downloaded"),
            (self.pending, "pending"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(" · ")
    }
}
