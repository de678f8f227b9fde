//! The small commands: `validate`, `templates`, `report`, `status`, `verify`, `completions` and
//! `sim`, and the loading of a manifest that `validate` and `run` share.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vidbatch::api::error_chain;
use vidbatch::exit_code;
use vidbatch::inspect::status::FolderStatus;
use vidbatch::inspect::validate::Validation;
use vidbatch::inspect::{self, Problem};
use vidbatch::plan::{self, Plan};
use vidbatch::sim::{self, SimConfig};
use vidbatch::{catalog, manifest};

use super::args::{Cli, SendArgs, SimArgs};
use super::output::{
    CliError, View, aborted, diagnostic_line, say, stderr_in_color, stderr_is_json, stderr_is_terminal, usage,
};

/// The API's base URL: `AIMLAPI_BASE_URL`, else the real service's; without a trailing `/`, so
/// that `run`, `validate` and `models` keep one copy of its price list.
pub(super) fn api_base_url() -> String {
    std::env::var("AIMLAPI_BASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| vidbatch::api::DEFAULT_BASE_URL.to_string())
        .trim()
        .trim_end_matches('/')
        .to_string()
}

pub(super) fn load_plan(path: &Path, key: Option<&str>) -> Result<Plan, CliError> {
    let plan = read_plan(path, false, key)?;
    // Drawn like errors (the line, the place, the help): a warning about a manifest is read
    // with the manifest open. `-q` leaves them out.
    if tracing::enabled!(tracing::Level::WARN) {
        for w in &plan.warnings {
            if stderr_is_json() {
                say!("{}", diagnostic_line(w));
            } else {
                say!("{}\n", w.render(stderr_in_color()));
            }
        }
    }
    Ok(plan)
}

/// The manifest planned, its warnings kept in the plan. When planning fails and `warnings` is
/// asked, the warnings of the reading go along with the errors (each says which it is).
fn read_plan(path: &Path, warnings: bool, key: Option<&str>) -> Result<Plan, CliError> {
    let mut manifest = manifest::load(path).map_err(CliError::Manifest)?;
    // `--key` over the manifest's `key:`.
    if let Some(key) = key {
        manifest.key = Some(manifest::KeyChoice {
            name: key.to_string(),
            at: None,
        });
    }
    plan::plan(&manifest).map_err(|mut errors| {
        if warnings {
            errors.0.extend(manifest.warnings.iter().cloned());
        }
        CliError::Manifest(errors)
    })
}

/// `vidbatch validate`: the plan, cut and priced as `run` with the same options would (see
/// `send.rs`), and what it would send: the table, or with `json` one JSON document in which
/// every error, the manifest's or the command's, is said too (stdout holds the whole answer).
/// Where `run` would refuse to start (over `--max-credits`), `validate` refuses too, with the
/// same exit code.
pub(crate) async fn validate(
    path: &Path,
    out: Option<&Path>,
    simulate: bool,
    send: &SendArgs,
    json: bool,
    key: Option<&str>,
) -> Result<i32, CliError> {
    let plan = match json {
        true => read_plan(path, true, key),
        false => load_plan(path, key),
    };
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(e) if json => return validate_failed(path, e),
        Err(e) => return Err(e),
    };
    let options = match super::send::options(send) {
        Ok(options) => options,
        Err(e) if json => return validate_failed(path, e),
        Err(e) => return Err(e),
    };
    let left_out = super::send::narrow(&mut plan, &options);
    // Priced as a run would price it: the API's price list (no key needed), or its kept copy;
    // the simulator's for a run that simulates. Where the prices come from is said beside the
    // estimate (stdout), not as a warning.
    let (price_list, note) = if simulate {
        let sim = match sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default()).await {
            Ok(sim) => sim,
            Err(e) => {
                let e = aborted(format!("cannot start the simulator: {e}"));
                return if json { validate_failed(path, e) } else { Err(e) };
            }
        };
        let (list, note) = vidbatch::pricing::load(&sim.base_url).await;
        sim.stop();
        let note = note.or_else(|| {
            list.is_some()
                .then(|| "the built-in simulator's price list (--simulate)".into())
        });
        (list, note)
    } else {
        vidbatch::pricing::load(&api_base_url()).await
    };
    // What a folder already holds: `--out`, else the folder `run` would use, if a run used it.
    let default_out = Path::new("out").join(plan::slug(&plan.name, 80));
    let folder = out
        .map(Path::to_path_buf)
        .or_else(|| default_out.join("state.db").is_file().then_some(default_out));
    let validation = match Validation::of(
        &mut plan,
        folder.as_deref(),
        price_list.map(Into::into),
        note,
        &options,
        left_out,
    ) {
        Ok(validation) => validation,
        Err(e) if json => return validate_failed(path, e.into()),
        Err(e) => return Err(e.into()),
    };
    // One write per block, not per line: a table of 100,000 jobs is 100,000 lines.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let printed = match json {
        true => validation.write_json(&mut stdout, path),
        false => validation.write_text(&mut stdout, path),
    };
    let refusal = validation.refusal();
    // The process ends here: freeing 100,000 jobs one by one is time spent for nothing.
    std::mem::forget(validation);
    std::mem::forget(plan);
    match (printed, refusal) {
        (Ok(()), None) => Ok(exit_code::OK),
        // The document says the refusal among its errors, and exits with `run`'s code.
        (Ok(()), Some(_)) if json => Ok(exit_code::INVALID),
        // The same refusal as `run`'s, and the same exit code.
        (Ok(()), Some(over)) => Err(CliError::Usage {
            message: format!("`run` with these options would refuse to start: {over}"),
            help: Some(over.help()),
        }),
        (Err(inspect::InspectError::State(e)), _) => Err(e.into()),
        (Err(inspect::InspectError::Output(e)), _) => Err(e.into()),
    }
}

/// `validate --json` of a manifest that is not valid, or of a folder that cannot be read: the
/// document says every problem (with its file, line and column when it has them), and the
/// command exits with the error's code.
fn validate_failed(path: &Path, e: CliError) -> Result<i32, CliError> {
    let code = e.exit_code();
    let (errors, warnings) = match &e {
        CliError::Manifest(diagnostics) => inspect::problems(&diagnostics.0),
        other => (vec![Problem::of_message(error_chain(other), other.help())], Vec::new()),
    };
    let mut stdout = std::io::stdout().lock();
    match inspect::validate::write_json_invalid(&mut stdout, path, code, errors, warnings) {
        Ok(()) => Ok(code),
        Err(inspect::InspectError::Output(io)) => Err(io.into()),
        Err(inspect::InspectError::State(state)) => Err(state.into()),
    }
}

pub(crate) fn templates(model: Option<&str>) -> Result<i32, CliError> {
    let models: Vec<&catalog::ModelSpec> = match model {
        Some(id) => match catalog::model(id) {
            Some(m) => vec![m],
            None => {
                let help = match catalog::near_miss_model(id) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => format!(
                        "models with templates: {}",
                        catalog::models()
                            .iter()
                            .filter(|m| !m.templates.is_empty())
                            .map(|m| m.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(CliError::Usage {
                    message: format!("unknown model `{id}`"),
                    help: Some(help),
                });
            }
        },
        None => catalog::models().iter().filter(|m| !m.templates.is_empty()).collect(),
    };
    let mut out = std::io::stdout().lock();
    for m in models {
        if m.templates.is_empty() {
            writeln!(out, "{} takes no template", m.id)?;
            continue;
        }
        writeln!(
            out,
            "{} ({}, default `{}`):",
            m.id,
            vidbatch::wording::count(m.templates.len(), "template"),
            m.default_template.unwrap_or("-")
        )?;
        for t in m.templates {
            writeln!(out, "  {t}")?;
        }
    }
    out.flush()?;
    Ok(exit_code::OK)
}

/// `vidbatch report OUT`: the page again, from `OUT/results.csv` alone.
pub(crate) fn report(out: &Path) -> Result<i32, CliError> {
    match vidbatch::gallery::write(out) {
        Ok(page) => {
            writeln!(std::io::stdout(), "{}", page.display())?;
            Ok(exit_code::OK)
        }
        // A folder without results, or a results.csv that is not one: nothing to do, exit 2.
        Err(e @ (vidbatch::gallery::ReportError::NoResults { .. } | vidbatch::gallery::ReportError::Read(_))) => {
            Err(usage(error_chain(&e)))
        }
        Err(e) => Err(aborted(error_chain(&e))),
    }
}

/// `vidbatch status OUT…`: exits with the code of the folders' runs (the highest of them).
pub(crate) fn status(folders: &[PathBuf], json: bool, jobs: bool) -> Result<i32, CliError> {
    let mut read: Vec<(PathBuf, Result<FolderStatus, vidbatch::state::StateError>)> = folders
        .iter()
        .map(|dir| (dir.clone(), FolderStatus::read(dir)))
        .collect();
    let code = inspect::status::exit_code(&read);
    let mut stdout = std::io::stdout().lock();
    if json {
        inspect::status::write_json(&mut stdout, &read, jobs)?;
        return Ok(code);
    }
    // One folder that cannot be read is the command's error, said as errors are; among several,
    // it is said in its place.
    if let [(_, Err(_))] = read.as_slice()
        && let Some((_, Err(e))) = read.pop()
    {
        return Err(e.into());
    }
    inspect::status::write_text(&mut stdout, &read, jobs)?;
    Ok(code)
}

/// `vidbatch verify OUT…`: every completed video read again and compared with its record, a
/// few at once; a bar of bytes read on a terminal.
pub(crate) fn verify(folders: &[PathBuf], json: bool, view: View) -> Result<i32, CliError> {
    // Reading is what takes the time: a few readers keep a disk (or a network share) busy
    // without thrashing it.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let show_bar = !view.quiet && stderr_is_terminal() && !stderr_is_json();
    let mut findings = Vec::with_capacity(folders.len());
    for dir in folders {
        let found = vidbatch::verify::recorded(dir).map(|(videos, source)| {
            let bar = show_bar.then(|| verify_bar(&videos, dir));
            let started = std::time::Instant::now();
            let files = vidbatch::verify::check(dir, &videos, threads, &|n| {
                if let Some(bar) = &bar {
                    bar.inc(n);
                }
            });
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            vidbatch::verify::FolderReport::new(dir, source, files, started.elapsed())
        });
        findings.push((dir.clone(), found));
    }
    let code = vidbatch::verify::exit_code(&findings);
    let mut stdout = std::io::stdout().lock();
    if json {
        vidbatch::verify::write_json(&mut stdout, &findings)?;
        return Ok(code);
    }
    // One folder that cannot be checked is the command's error, said as errors are.
    if let [(_, Err(_))] = findings.as_slice()
        && let Some((_, Err(e))) = findings.pop()
    {
        return Err(match e {
            vidbatch::verify::VerifyError::State(e) => e.into(),
            other => CliError::Usage {
                message: error_chain(&other),
                help: Some("give an output folder of `vidbatch run`: it holds `state.db` or `results.csv`".into()),
            },
        });
    }
    vidbatch::verify::render_text(&mut stdout, &findings)?;
    Ok(code)
}

/// A bar of the bytes to read, on stderr.
fn verify_bar(videos: &[vidbatch::verify::Recorded], dir: &Path) -> indicatif::ProgressBar {
    let total: u64 = videos.iter().filter_map(|v| v.bytes).sum();
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr_with_hz(8));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {prefix} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(dir.display().to_string());
    bar
}

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    use clap::CommandFactory as _;
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "vidbatch", &mut out);
    out.flush()?;
    Ok(exit_code::OK)
}

pub(crate) async fn serve_sim(args: SimArgs) -> Result<i32, CliError> {
    let config = SimConfig {
        queued: args.queued,
        generating: args.generating,
        url_ttl: args.url_ttl,
        fail_first: args.fail_first,
        expire_first_urls: args.expire_first_urls,
        key: args.key,
        throttle_first_submits: args.throttle_first_submits,
        retry_after: args.retry_after,
        unavailable_first_polls: args.unavailable_first_polls,
        out_of_credits_first_submits: args.out_of_credits_first_submits,
        chaos: args.chaos.map(|rate| sim::chaos::Chaos::uniform(args.chaos_seed, rate)),
        render: args.render,
        rate_limit: args.rate_limit.filter(|r| r.is_finite() && *r > 0.0),
        max_active: args.max_active,
        video_size: args.video_size,
        ..SimConfig::default()
    };
    let sim = sim::start(SocketAddr::new(args.host, args.port), config)
        .await
        .map_err(|e| usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    // A closed stdout (`vidbatch sim | head -1`) must not stop the server.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "simulator listening on {}", sim.base_url);
    let _ = writeln!(
        stdout,
        "try: AIMLAPI_BASE_URL={} AIMLAPI_KEY=any vidbatch run manifests/demo.yaml",
        sim.base_url
    );
    let _ = tokio::signal::ctrl_c().await;
    sim.stop();
    Ok(exit_code::OK)
}

/// `vidbatch models [FILTER]`: the catalog, one line a model; `vidbatch models ID`: one model as
/// a manifest uses it.
pub(crate) async fn models(filter: Option<&str>) -> Result<i32, CliError> {
    let (prices, note) = vidbatch::pricing::load(&api_base_url()).await;
    let price = |id: &str, short: bool| prices.as_ref().and_then(|p| p.describe(id, short));
    let mut out = std::io::stdout().lock();
    if let Some(spec) = filter.and_then(catalog::model) {
        write!(out, "{}", vidbatch::catalog::describe(spec))?;
        match (price(spec.id, false), &note) {
            (Some(p), _) => writeln!(out, "price: {p}")?,
            (None, Some(why)) => writeln!(out, "price: unknown: {why}")?,
            (None, None) => writeln!(out, "price: not in the API's price list")?,
        }
        out.flush()?;
        return Ok(exit_code::OK);
    }
    let needle = filter.map(str::to_lowercase).unwrap_or_default();
    let found: Vec<&catalog::ModelSpec> = catalog::models()
        .iter()
        .filter(|m| {
            needle.is_empty()
                || m.id.to_lowercase().contains(&needle)
                || m.task.contains(&needle)
                || m.aliases.iter().any(|a| a.to_lowercase().contains(&needle))
        })
        .collect();
    if found.is_empty() {
        return Err(CliError::Usage {
            message: format!("no catalogued model matches `{needle}`"),
            help: Some(match catalog::near_miss_model(&needle) {
                Some(known) => format!("did you mean `{known}`?"),
                None => "`vidbatch models` lists them all; a filter matches part of an id or a task".into(),
            }),
        });
    }
    let width = found.iter().map(|m| m.id.len()).max().unwrap_or(0);
    for m in &found {
        let input = match m.input.field() {
            Some(field) => format!("{field} ({})", m.input.kind().map_or("", |k| k.as_str())),
            None => "prompt only".into(),
        };
        let deprecated = if m.deprecated { "  (deprecated)" } else { "" };
        let cost = price(m.id, true).unwrap_or_else(|| "-".into());
        writeln!(out, "{:<width$}  {:<26}  {cost:<16}  {input}{deprecated}", m.id, m.task)?;
    }
    if let Some(why) = note {
        writeln!(out, "prices: {why}")?;
    }
    writeln!(
        out,
        "{}; `vidbatch models ID` shows one with its parameters and an example job",
        vidbatch::wording::count(found.len(), "model")
    )?;
    out.flush()?;
    Ok(exit_code::OK)
}
