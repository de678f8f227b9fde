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

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

mod layout;
pub use layout::{CellView, Gallery, GridRow, InputView, Rows, Section, Totals};
#[cfg(test)]
use layout::{format_number, relative_url};

#[cfg(test)]
mod tests;
