//! `<out>/report.html`: one page to judge the variants of a run side by side.
//!
//! The page is made from `<out>/results.csv` alone (after a run, and by `vidbatch report OUT`),
//! read by column name so that columns added later (`label`, `params`) are used when present and
//! never shift the others. Each model gets a grid: its inputs (or prompts) as rows, its templates
//! (or, without templates, the parameters that differ between its jobs) as columns, and in each
//! cell the video, the failure, or "pending".
//!
//! The page is self-contained and fetches nothing from the network: inline CSS and script, a
//! Content-Security-Policy that allows only the page's own folder, relative links to the videos
//! under `<out>`, and copies of the local input files under `<out>/report-inputs/` (written after
//! a run, when the inputs' paths are known), so the folder can be zipped and sent as it is.
//! Videos are loaded only when scrolled into view and paused when out of it: hundreds of cells
//! cost what the few dozen on screen cost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::{Job, slug};
use crate::results::original;

/// The page, in the output folder.
pub const FILE: &str = "report.html";
/// Where copies of the local inputs go, in the output folder.
pub const INPUTS_DIR: &str = "report-inputs";
const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no results.csv in `{out}`: run a manifest into it first")]
    NoResults { out: PathBuf },
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("`{path}` has no `{column}` column: is it a vidbatch results file?")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("cannot render the report")]
    Render(#[from] minijinja::Error),
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One line of `results.csv`, as the report needs it; cells are as written before neutralising.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultRow {
    pub job_id: String,
    pub model: String,
    pub template: String,
    pub input: String,
    pub status: String,
    pub file: String,
    pub credits: Option<f64>,
    pub attempts: String,
    pub submitted_at: String,
    pub finished_at: String,
    pub error: String,
    /// The `label` column, when the file has one.
    pub label: Option<String>,
    /// The `params` column (a JSON object), when the file has one.
    pub params: Option<String>,
}

/// Reads `<out>/results.csv` by column names, tolerating a UTF-8 BOM and missing optional columns.
pub fn read_results(out: &Path) -> Result<Vec<ResultRow>, ReportError> {
    let path = out.join("results.csv");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NoResults { out: out.to_path_buf() });
        }
        Err(e) => return Err(ReportError::Read { path, source: e.into() }),
    };
    parse_results(&path, &bytes)
}

fn parse_results(path: &Path, bytes: &[u8]) -> Result<Vec<ResultRow>, ReportError> {
    // Excel's "CSV UTF-8" starts with a BOM, which would otherwise stick to the first name.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let read_err = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader.headers().map_err(read_err)?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let required = |name: &'static str| {
        column(name).ok_or(ReportError::MissingColumn {
            path: path.to_path_buf(),
            column: name,
        })
    };
    let (job_id, model, input, status) = (
        required("job_id")?,
        required("model")?,
        required("input")?,
        required("status")?,
    );
    let [
        template,
        file,
        credits,
        attempts,
        submitted,
        finished,
        error,
        label,
        params,
    ] = [
        "template",
        "file",
        "credits",
        "attempts",
        "submitted_at",
        "finished_at",
        "error",
        "label",
        "params",
    ]
    .map(column);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(read_err)?;
        let get = |i: usize| original(record.get(i).unwrap_or_default()).to_string();
        let opt = |i: Option<usize>| i.map(get).unwrap_or_default();
        rows.push(ResultRow {
            job_id: get(job_id),
            model: get(model),
            template: opt(template),
            input: get(input),
            status: get(status),
            file: opt(file),
            credits: credits.and_then(|i| get(i).parse().ok()),
            attempts: opt(attempts),
            submitted_at: opt(submitted),
            finished_at: opt(finished),
            error: opt(error),
            label: label.map(get),
            params: params.map(get),
        });
    }
    Ok(rows)
}

/// After a run: keeps copies of the local inputs for the page, then writes it. Returns its path.
pub fn write_after_run(out: &Path, jobs: &[Job]) -> Result<PathBuf, ReportError> {
    let inputs = jobs
        .iter()
        .filter_map(|j| Some((j.input_label.as_str(), j.local_input()?)));
    if let Err(e) = keep_inputs(out, inputs) {
        // The page is still worth having without the pictures of the inputs.
        tracing::warn!("cannot copy the inputs to `{}`: {e}", out.join(INPUTS_DIR).display());
    }
    write(out)
}

/// Writes `<out>/report.html` from `<out>/results.csv`, atomically. Returns its path.
pub fn write(out: &Path) -> Result<PathBuf, ReportError> {
    // The rows are let go before the page is drawn, and the page goes straight to its file: at
    // 10,000 jobs, rows, views and page held at once were most of a run's peak memory.
    let gallery = {
        let rows = read_results(out)?;
        Gallery::new(&rows, out)
    };
    let path = out.join(FILE);
    let tmp = out.join(format!(".{FILE}.tmp"));
    let err = |source| ReportError::Write {
        path: path.clone(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(err)?);
    template()?
        .get_template("report.html")?
        .render_captured_to(minijinja::value::Serde(&gallery), &mut file)?;
    file.into_inner()
        .map_err(|e| err(e.into_error()))?
        .flush()
        .map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

fn template() -> Result<minijinja::Environment<'static>, ReportError> {
    let mut env = minijinja::Environment::new();
    // The `.html` name turns HTML autoescaping on: prompts and errors are user text.
    env.add_template("report.html", TEMPLATE)?;
    Ok(env)
}

/// The page for `gallery`, as text (the tests read it; a run streams it to its file).
#[cfg(test)]
fn render(gallery: &Gallery) -> Result<String, ReportError> {
    Ok(template()?
        .get_template("report.html")?
        .render(minijinja::value::Serde(gallery))?)
}

/// The name of the copy of a local input under [`INPUTS_DIR`], from the input as written in the
/// manifest (the `input` column), so that `vidbatch report` finds it from `results.csv` alone.
/// `None` for URLs and prompts.
pub fn input_copy_name(written: &str) -> Option<String> {
    let lower = written.to_ascii_lowercase();
    if written.is_empty() || lower.starts_with("http://") || lower.starts_with("https://") || lower.contains(':') {
        return None;
    }
    let name = written.rsplit(['/', '\\']).next().unwrap_or(written);
    let (stem, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    if ext.is_empty() || ext.len() > 5 || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let hash = format!("{:x}", Sha256::digest(written.as_bytes()));
    Some(format!("{}-{}.{ext}", slug(stem, 40), &hash[..8]))
}

/// Copies (hard links, where the file system allows) each local input under [`INPUTS_DIR`].
fn keep_inputs<'a>(out: &Path, inputs: impl Iterator<Item = (&'a str, &'a Path)>) -> std::io::Result<()> {
    let dir = out.join(INPUTS_DIR);
    let mut done = HashSet::new();
    for (written, source) in inputs {
        let Some(name) = input_copy_name(written) else { continue };
        if !done.insert(name.clone()) {
            continue;
        }
        std::fs::create_dir_all(&dir)?;
        let dest = dir.join(&name);
        let same = |a: &Path, b: &Path| {
            let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
                return false;
            };
            a.len() == b.len() && a.modified().ok() <= b.modified().ok()
        };
        if same(source, &dest) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(source, &tmp).is_err() {
            std::fs::copy(source, &tmp)?;
        }
        std::fs::rename(&tmp, &dest)?;
    }
    Ok(())
}

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

    fn layout(rows: &[ResultRow], has_copy: &dyn Fn(&str) -> bool) -> Gallery {
        let mut totals = Totals {
            jobs: rows.len(),
            ..Totals::default()
        };
        let mut credits = 0.0;
        let (mut first, mut last) = (None, None);
        for row in rows {
            match row.status.as_str() {
                "completed" => totals.completed += 1,
                "failed" => totals.failed += 1,
                "unknown" => totals.unknown += 1,
                _ => totals.pending += 1,
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
        let labels = distinct(rows.iter().filter_map(|r| r.label.as_deref()).filter(|l| !l.is_empty()));
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
    let params: Vec<BTreeMap<String, String>> = rows.iter().map(|r| parse_params(r.params.as_deref())).collect();
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
    if row.attempts.parse::<u32>().is_ok_and(|a| a > 1) {
        facts.push(format!("{} attempts", row.attempts));
    }
    let src = match row.status.as_str() {
        "completed" => relative_url(&row.file).unwrap_or_default(),
        _ => String::new(),
    };
    CellView {
        job_id: row.job_id.clone(),
        model: row.model.clone(),
        status: row.status.clone(),
        label: row.label.clone().unwrap_or_default(),
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
fn relative_url(path: &str) -> Option<String> {
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
fn format_number(n: f64) -> String {
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

#[cfg(test)]
mod tests;
