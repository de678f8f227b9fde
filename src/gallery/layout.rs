//! How `report.html` lays out the rows of `results.csv`: a grid per model, inputs by variants.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::{INPUTS_DIR, ResultRow, input_copy_name};
use crate::results::Status;

/// What the page shows, ready for the template.
#[derive(Debug, Serialize)]
pub struct Gallery {
    pub totals: Totals,
    pub sections: Vec<Section>,
    /// The values the filters offer, in order of appearance.
    pub models: Vec<String>,
    pub statuses: Vec<String>,
    /// Empty when no row has a label (or the file has no `label` column).
    pub labels: Vec<String>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Totals {
    pub jobs: usize,
    pub completed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub pending: usize,
    pub credits: String,
    /// From the first submit to the last finish, as `1m 12s`; empty when unknown.
    pub time: String,
}

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
    pub job_id: String,
    pub model: String,
    pub status: String,
    pub label: String,
    /// The video's address relative to the page, when completed.
    pub src: String,
    pub file: String,
    pub error: String,
    /// `2000000 credits · 1m 3s · 2 attempts`.
    pub facts: String,
}

impl Gallery {
    /// Lays out `rows`; `out` is where the page goes (to find the inputs' copies).
    pub fn new(rows: &[ResultRow], out: &Path) -> Gallery {
        let has_copy = |name: &str| out.join(INPUTS_DIR).join(name).is_file();
        Gallery::layout(rows, &has_copy)
    }

    pub(super) fn layout(rows: &[ResultRow], has_copy: &dyn Fn(&str) -> bool) -> Gallery {
        let mut totals = Totals {
            jobs: rows.len(),
            ..Totals::default()
        };
        let mut credits = 0.0;
        let (mut first, mut last) = (None, None);
        for row in rows {
            match row.status {
                Status::Completed => totals.completed += 1,
                Status::Failed => totals.failed += 1,
                Status::Unknown => totals.unknown += 1,
                Status::AwaitingDownload | Status::Pending => totals.pending += 1,
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

        let models = distinct(rows.iter().map(|r| r.model.as_str()));
        let mut statuses = distinct(rows.iter().map(|r| r.status.as_str()));
        let rank = |s: &String| {
            ["completed", "failed", "unknown", "pending"]
                .iter()
                .position(|k| k == s)
        };
        statuses.sort_by_key(|s| rank(s).unwrap_or(usize::MAX));
        let labels = distinct(rows.iter().map(|r| r.label.as_str()).filter(|l| !l.is_empty()));
        let sections = models
            .iter()
            .map(|model| {
                let of_model: Vec<&ResultRow> = rows.iter().filter(|r| &r.model == model).collect();
                section(model, &of_model, has_copy)
            })
            .collect();
        Gallery {
            totals,
            sections,
            models,
            statuses,
            labels,
        }
    }
}

fn section(model: &str, rows: &[&ResultRow], has_copy: &dyn Fn(&str) -> bool) -> Section {
    // The parameters that differ between the model's jobs name its columns; the rest are common.
    let params: Vec<BTreeMap<String, String>> = rows
        .iter()
        .map(|r| parse_params(Some(r.params.as_str()).filter(|p| !p.is_empty())))
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
    let columns = distinct_owned(rows.iter().zip(&params).map(|(r, p)| column_of(r, p)));
    let inputs = distinct(rows.iter().map(|r| r.input.as_str()));
    let mut grid: Vec<Vec<Vec<CellView>>> = inputs
        .iter()
        .map(|_| (0..columns.len()).map(|_| Vec::new()).collect())
        .collect();
    // By map, not by search: 10,000 prompts each looked for among 10,000 rows was most of the
    // time of a large report.
    let positions =
        |list: &[String]| -> HashMap<String, usize> { list.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect() };
    let (input_at, column_at) = (positions(&inputs), positions(&columns));
    for (row, p) in rows.iter().zip(&params) {
        let r = input_at.get(row.input.as_str()).copied().unwrap_or(0);
        let c = column_at.get(&column_of(row, p)).copied().unwrap_or(0);
        // Room for the one job a cell holds, normally (a first push makes room for four).
        let cell_jobs = &mut grid[r][c];
        cell_jobs.reserve_exact(1);
        cell_jobs.push(cell(row));
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
    Section {
        model: model.to_string(),
        common: shown(&params.first().cloned().unwrap_or_default(), &common),
        rows_are,
        columns,
        rows: Arc::new(Rows(
            inputs
                .into_iter()
                .zip(grid)
                .map(|(input, cells)| GridRow {
                    input: input_view(&input, has_copy),
                    cells,
                })
                .collect(),
        )),
    }
}

fn cell(row: &ResultRow) -> CellView {
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
    let src = match row.status {
        Status::Completed => relative_url(&row.file).unwrap_or_default(),
        _ => String::new(),
    };
    CellView {
        job_id: row.job_id.clone(),
        model: row.model.clone(),
        status: row.status.as_str().to_string(),
        label: row.label.clone(),
        src,
        file: row.file.clone(),
        error: row.error.clone(),
        facts: facts.join(" · "),
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

fn is_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
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

/// A path under the output folder as a relative URL: each byte outside the unreserved set
/// percent-encoded, so `#`, `?`, `%` and `:` in a name stay part of the path. `None` for a path
/// that would leave the folder.
pub(super) fn relative_url(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|s| s == "..") {
        return None;
    }
    let mut url = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => url.push(b as char),
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    Some(url)
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    distinct_owned(values.map(String::from))
}

fn distinct_owned(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for v in values {
        if seen.insert(v.clone()) {
            out.push(v);
        }
    }
    out
}

/// `2000000` as `2,000,000`; fractions kept (`0.5`).
pub(super) fn format_number(n: f64) -> String {
    let text = if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    };
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn span(from: std::time::SystemTime, to: std::time::SystemTime) -> String {
    let secs = to.duration_since(from).map_or(0, |d| d.as_secs());
    if secs == 0 {
        return "<1s".into();
    }
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
