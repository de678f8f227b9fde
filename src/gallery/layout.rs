//! How `report.html` lays out the rows of `results.csv`: a grid per model, inputs by variants.
//! What a whole grid row shares (a label, the user's `#` columns) is said once, beside its input;
//! only what differs between its cells is said in them, under the video, never over it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::attention::{self, Problem};
use super::format::{distinct, distinct_owned, format_number, is_url, relative_url, span};
use super::notes::{self, Note};
use super::page::{Legend, Marker};
use super::{INPUTS_DIR, ResultRow, input_copy_name};

/// One model's grid.
#[derive(Debug, Serialize)]
pub struct Section {
    pub model: String,
    /// Parameters every job of the section shares, as `key=value · key=value`.
    pub common: String,
    /// What the rows are: `input` or `prompt`.
    pub rows_are: &'static str,
    pub columns: Vec<String>,
    #[serde(serialize_with = "one_at_a_time")]
    pub rows: Arc<Rows>,
}

/// A section's rows, made into template values one at a time as the page is drawn: converting
/// all of a 10,000-job run's at once took 10 MB of the 41 MB heap at the run's peak.
#[derive(Debug)]
pub struct Rows(pub Vec<GridRow>);

impl std::ops::Deref for Rows {
    type Target = Vec<GridRow>;
    fn deref(&self) -> &Vec<GridRow> {
        &self.0
    }
}

impl minijinja::value::Object for Rows {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, index: &minijinja::Value) -> Option<minijinja::Value> {
        let row = self.0.get(index.as_usize()?)?;
        Some(minijinja::Value::from(minijinja::value::Serde(row)))
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.len())
    }
}

/// Hands the template the rows themselves (see [`Rows`]); other serializers get a list.
fn one_at_a_time<S: serde::Serializer>(rows: &Arc<Rows>, serializer: S) -> Result<S::Ok, S::Error> {
    minijinja::Value::from_dyn_object(rows.clone()).serialize(serializer)
}

#[derive(Debug, Serialize)]
pub struct GridRow {
    pub input: InputView,
    /// The label every job of the row has (empty when they differ, or have none), with its mark.
    pub label: String,
    pub marker: Option<Marker>,
    /// The user's columns every job of the row has alike.
    pub notes: Vec<Note>,
    /// One entry per column; a cell holds every job of that input and column (one, normally).
    pub cells: Vec<Vec<CellView>>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct InputView {
    /// The input as written (or the prompt).
    pub text: String,
    /// `image`, `video`, `link` or `text`.
    pub kind: &'static str,
    /// The relative address of the copy (image, video) or the URL (link).
    pub src: String,
}

#[derive(Debug, Serialize)]
pub struct CellView {
    /// The entry's `id` in the page (`e7`: row 7 of `results.csv`), for links to it.
    pub anchor: String,
    pub job_id: String,
    pub model: String,
    /// As the page shows it (see [`attention::shown_status`]).
    pub status: &'static str,
    /// The job's label (what the label filter matches).
    pub label: String,
    /// The label's mark, when its row does not say it already.
    pub marker: Option<Marker>,
    /// The user's columns, when its row does not say them already.
    pub notes: Vec<Note>,
    /// The video's address relative to the page, when it is there to play.
    pub src: String,
    pub file: String,
    pub error: String,
    /// What to do about a job that shows no video.
    pub next: String,
    /// `2000000 credits · 1m 3s · 2 attempts`.
    pub facts: String,
}

/// A row of `results.csv` on its way into a grid.
pub struct Placed<'a> {
    /// Its place in `results.csv`.
    pub index: usize,
    pub row: &'a ResultRow,
    pub notes: &'a [Note],
    /// See [`attention::shown_status`].
    pub status: &'static str,
}

/// Lays out one model's rows; also returns those that want a decision, for the list at the top.
pub fn section(
    model: &str,
    rows: &[Placed],
    legend: &Legend,
    has_copy: &dyn Fn(&str) -> bool,
) -> (Section, Vec<(usize, Problem)>) {
    // The parameters that differ between the model's jobs name its columns; the rest are common.
    let params: Vec<BTreeMap<String, String>> = rows
        .iter()
        .map(|p| parse_params(Some(p.row.params.as_str()).filter(|p| !p.is_empty())))
        .collect();
    let mut keys: Vec<&String> = params.iter().flat_map(|p| p.keys()).collect();
    keys.sort();
    keys.dedup();
    let (varying, common): (Vec<&String>, Vec<&String>) = keys
        .into_iter()
        .partition(|k| params.iter().any(|p| p.get(*k) != params[0].get(*k)));
    let shown = |p: &BTreeMap<String, String>, keys: &[&String]| {
        keys.iter()
            .filter_map(|k| Some(format!("{k}={}", p.get(*k)?)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let column_of = |row: &ResultRow, p: &BTreeMap<String, String>| {
        let variant = shown(p, &varying);
        match (row.template.is_empty(), variant.is_empty()) {
            (false, true) => row.template.clone(),
            (false, false) => format!("{} · {variant}", row.template),
            (true, false) => variant,
            (true, true) => "video".into(),
        }
    };
    let columns = distinct_owned(rows.iter().zip(&params).map(|(p, params)| column_of(p.row, params)));
    let inputs = distinct(rows.iter().map(|p| p.row.input.as_str()));
    let mut grid: Vec<Vec<Vec<CellView>>> = inputs
        .iter()
        .map(|_| (0..columns.len()).map(|_| Vec::new()).collect())
        .collect();
    // By map, not by search: 10,000 prompts each looked for among 10,000 rows was most of the
    // time of a large report.
    let positions =
        |list: &[String]| -> HashMap<String, usize> { list.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect() };
    let (input_at, column_at) = (positions(&inputs), positions(&columns));
    let mut problems = Vec::new();
    for (placed, p) in rows.iter().zip(&params) {
        let column = column_of(placed.row, p);
        let r = input_at.get(placed.row.input.as_str()).copied().unwrap_or(0);
        let c = column_at.get(&column).copied().unwrap_or(0);
        let entry = cell(placed, legend);
        if attention::listed(entry.status) {
            problems.push((placed.index, problem(&entry, placed.row, column)));
        }
        // Room for the one job a cell holds, normally (a first push makes room for four).
        let cell_jobs = &mut grid[r][c];
        cell_jobs.reserve_exact(1);
        cell_jobs.push(entry);
    }
    // Rows are prompts when none is a file or a URL: text-to-video.
    let is_file = |input: &str| {
        is_url(input)
            || input_copy_name(input).is_some_and(|name| has_copy(&name) || !input.contains(char::is_whitespace))
    };
    let rows_are = if inputs.iter().any(|i| is_file(i)) {
        "input"
    } else {
        "prompt"
    };
    let grid_rows = inputs
        .into_iter()
        .zip(grid)
        .map(|(input, cells)| said_once(input_view(&input, has_copy), cells, legend))
        .collect();
    let section = Section {
        model: model.to_string(),
        common: shown(&params.first().cloned().unwrap_or_default(), &common),
        rows_are,
        columns,
        rows: Arc::new(Rows(grid_rows)),
    };
    (section, problems)
}

/// A grid row whose jobs all share a label, or the same `#` columns, says them once beside its
/// input, and its cells say nothing of them.
fn said_once(input: InputView, mut cells: Vec<Vec<CellView>>, legend: &Legend) -> GridRow {
    let mut entries = cells.iter().flatten();
    let first = entries.next();
    let label = first.map(|e| e.label.clone()).unwrap_or_default();
    let notes = first.map(|e| e.notes.clone()).unwrap_or_default();
    let same_label = cells.iter().flatten().all(|e| e.label == label);
    let same_notes = cells.iter().flatten().all(|e| e.notes == notes);
    for entry in cells.iter_mut().flatten() {
        if same_label {
            entry.marker = None;
        }
        if same_notes {
            entry.notes.clear();
        }
    }
    let label = if same_label && !legend.everywhere {
        label
    } else {
        String::new()
    };
    GridRow {
        input,
        marker: legend.marker(&label),
        label,
        notes: if same_notes { notes } else { Vec::new() },
        cells,
    }
}

fn cell(placed: &Placed, legend: &Legend) -> CellView {
    let row = placed.row;
    let mut facts = Vec::new();
    if let Some(c) = row.credits {
        facts.push(format!(
            "{} credit{}",
            format_number(c),
            if c == 1.0 { "" } else { "s" }
        ));
    }
    if let (Ok(a), Ok(b)) = (
        humantime::parse_rfc3339_weak(&row.submitted_at),
        humantime::parse_rfc3339_weak(&row.finished_at),
    ) {
        facts.push(span(a, b));
    }
    if let Some(attempts) = row.attempts.filter(|&a| a > 1) {
        facts.push(format!("{attempts} attempts"));
    }
    let src = match placed.status {
        "completed" => relative_url(&row.file).unwrap_or_default(),
        _ => String::new(),
    };
    CellView {
        anchor: format!("e{}", placed.index),
        job_id: row.job_id.clone(),
        model: row.model.clone(),
        status: placed.status,
        label: row.label.clone(),
        marker: legend.marker(&row.label),
        notes: notes::worth_showing(placed.notes, &row.label),
        src,
        file: row.file.clone(),
        error: row.error.clone(),
        next: attention::next_step(placed.status, row),
        facts: facts.join(" · "),
    }
}

fn problem(entry: &CellView, row: &ResultRow, column: String) -> Problem {
    Problem {
        anchor: entry.anchor.clone(),
        job_id: row.job_id.clone(),
        generation_id: row.generation_id.clone(),
        model: row.model.clone(),
        column,
        input: row.input.clone(),
        label: row.label.clone(),
        status: entry.status.to_string(),
        error: row.error.clone(),
        next: entry.next.clone(),
    }
}

fn input_view(text: &str, has_copy: &dyn Fn(&str) -> bool) -> InputView {
    let view = |kind, src: String| InputView {
        text: text.to_string(),
        kind,
        src,
    };
    if let Some(name) = input_copy_name(text).filter(|n| has_copy(n)) {
        let ext = name.rsplit('.').next().unwrap_or("");
        let kind = match ext {
            "mp4" | "mov" | "webm" | "m4v" | "mkv" | "avi" => "video",
            _ => "image",
        };
        return view(kind, relative_url(&format!("{INPUTS_DIR}/{name}")).unwrap_or_default());
    }
    if is_url(text) {
        // Shown as a link, never loaded: the page fetches nothing from the network.
        return view("link", text.to_string());
    }
    view("text", String::new())
}

/// `key=value` of a `params` cell (a JSON object); nothing when absent or unreadable.
fn parse_params(cell: Option<&str>) -> BTreeMap<String, String> {
    let Some(Ok(Value::Object(map))) = cell.filter(|c| !c.is_empty()).map(serde_json::from_str) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}
