//! `<out>/report.html`: one page to judge the variants of a run side by side.
//!
//! The page is made from `<out>/results.csv` alone (after a run, and by `vidbatch report OUT`),
//! read by column name so that columns added later (`label`, `params`, the user's own `#…` and
//! `custom_id`) are used when present and never shift the others. Each model gets a grid: its
//! inputs (or prompts) as rows, its templates (or, without templates, the parameters that differ
//! between its jobs) as columns, and in each cell the video, or what became of the job and what to
//! do about it. The page is titled with the campaign (the manifest's `name`, which the run records
//! in `state.db` for `vidbatch report`) and what it holds: `24 videos · 1 failed`.
//!
//! The page is self-contained and fetches nothing from the network: inline CSS and script, a
//! Content-Security-Policy that allows only the page's own folder, relative links to the videos
//! under `<out>`, and copies of the local input files under `<out>/report-inputs/` (written after
//! a run, when the inputs' paths are known), so the folder can be zipped and sent as it is.
//! Videos are loaded only when scrolled into view and paused when out of it: hundreds of cells
//! cost what the few dozen on screen cost. The page itself scrolls (no grid scrolls inside it),
//! so every row is reached the usual way, and nothing is drawn over a video.
//!
//! Layout: [`page`] (the counts, the legend of labels, the page as a whole), [`layout`] (a grid
//! per model), [`attention`] (what did not give a video, and what to do), [`notes`] (the user's
//! own columns), [`format`] (numbers, durations, addresses).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::plan::{Job, slug};
pub use crate::results::ResultRow;

/// The page, in the output folder.
pub const FILE: &str = "report.html";
/// Where copies of the local inputs go, in the output folder.
pub const INPUTS_DIR: &str = "report-inputs";
const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no results.csv in `{out}`: run a manifest into it first")]
    NoResults { out: PathBuf },
    #[error(transparent)]
    Read(#[from] crate::results::ReadError),
    #[error("cannot render the report")]
    Render(#[from] minijinja::Error),
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `<out>/results.csv`: its rows (the schema of [`crate::results::ResultRow`]) and the
/// user's own columns of each (see [`notes`]).
pub fn read_results(out: &Path) -> Result<(Vec<ResultRow>, Vec<Vec<Note>>), ReportError> {
    let path = out.join("results.csv");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NoResults { out: out.to_path_buf() });
        }
        Err(e) => return Err(crate::results::ReadError::Read { path, source: e.into() }.into()),
    };
    let rows = crate::results::parse_rows(&path, &bytes)?;
    Ok((rows, notes::read(&bytes)))
}

/// The campaign's name as the last run into `out` recorded it, if it did.
fn recorded_campaign(out: &Path) -> Option<String> {
    // A folder without a state (results copied elsewhere), or one an older vidbatch wrote, has
    // none: the page is then titled by what it holds alone.
    let state = crate::state::StateReader::open(out).ok()?;
    state.campaign().ok().flatten().filter(|name| !name.is_empty())
}

/// After a run: keeps copies of the local inputs of `jobs` for the page (see [`INPUTS_DIR`]).
/// Apart from [`write_after_run`], so that the run can let its plan go before the page is drawn.
pub fn keep_inputs_of(out: &Path, jobs: &[Job]) {
    // Another name of a job's input (an alias) has the same content, so the job's file is its
    // picture too.
    let inputs = jobs
        .iter()
        .filter_map(|j| Some((j, j.local_input()?)))
        .flat_map(|(j, path)| {
            std::iter::once(j.input_label.as_str())
                .chain(j.aliases.iter().map(|a| a.input_label.as_str()))
                .map(move |name| (name, path))
        });
    if let Err(e) = keep_inputs(out, inputs) {
        // The page is still worth having without the pictures of the inputs.
        tracing::warn!("cannot copy the inputs to `{}`: {e}", out.join(INPUTS_DIR).display());
    }
}

/// After a run of the campaign `campaign` (the manifest's name), whose inputs
/// [`keep_inputs_of`] copied: writes the page. Returns its path.
pub fn write_after_run(out: &Path, campaign: &str) -> Result<PathBuf, ReportError> {
    write_page(out, Some(campaign).filter(|c| !c.is_empty()))
}

/// `vidbatch report OUT`: writes `<out>/report.html` from `<out>/results.csv`, titled with the
/// campaign the last run recorded. Returns its path.
pub fn write(out: &Path) -> Result<PathBuf, ReportError> {
    write_page(out, recorded_campaign(out).as_deref())
}

/// Writes `<out>/report.html` from `<out>/results.csv`, atomically. Returns its path.
fn write_page(out: &Path, campaign: Option<&str>) -> Result<PathBuf, ReportError> {
    // The rows are let go before the page is drawn, and the page goes straight to its file: at
    // 10,000 jobs, rows, views and page held at once were most of a run's peak memory.
    let gallery = {
        let (rows, notes) = read_results(out)?;
        Gallery::new(&rows, &notes, campaign, out)
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

mod attention;
mod format;
mod layout;
mod notes;
mod page;
pub use attention::{Attention, Problem};
pub use layout::{CellView, GridRow, InputView, Rows, Section};
pub use notes::Note;
pub use page::{Gallery, LabelKey, Legend, Marker, Totals};
#[cfg(test)]
use {
    format::{format_number, relative_url},
    page::Disk,
};

#[cfg(test)]
mod tests;
