//! The small commands: `validate`, `templates`, `report`, `status`, `completions` and `sim`,
//! and the loading of a manifest that `validate` and `run` share.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vidbatch::api::error_chain;
use vidbatch::exit_code;
use vidbatch::plan::{self, Plan};
use vidbatch::sim::{self, SimConfig};
use vidbatch::{catalog, manifest};

use super::args::{Cli, SendArgs, SimArgs};
use super::output::{CliError, aborted, diagnostic_line, say, stderr_in_color, stderr_is_json, usage};

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

pub(super) fn load_plan(path: &Path) -> Result<Plan, CliError> {
    let manifest = manifest::load(path).map_err(CliError::Manifest)?;
    let plan = plan::plan(&manifest).map_err(CliError::Manifest)?;
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

/// `vidbatch validate`: the plan, cut and priced as `run` with the same options would (see
/// `send.rs`), and what it would send.
pub(crate) async fn validate(
    path: &Path,
    out: Option<&Path>,
    simulate: bool,
    send: &SendArgs,
) -> Result<i32, CliError> {
    let options = super::send::options(send)?;
    let mut plan = load_plan(path)?;
    let left_out = super::send::narrow(&mut plan, &options);
    // Priced as a run would price it: the API's price list (no key needed), or its kept copy;
    // the simulator's for a run that simulates. Where the prices come from is said beside the
    // estimate (stdout), not as a warning.
    let (price_list, note) = if simulate {
        let sim = sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
            .await
            .map_err(|e| aborted(format!("cannot start the simulator: {e}")))?;
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
    // One write per block, not per line: a table of 100,000 jobs is 100,000 lines.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let preview = vidbatch::inspect::Preview {
        options: &options,
        left_out: &left_out,
    };
    let printed = vidbatch::inspect::validate(
        &mut out,
        path,
        &mut plan,
        folder.as_deref(),
        price_list.map(Into::into),
        note,
        preview,
    )
    .and_then(|sending| {
        std::io::Write::flush(&mut out)?;
        Ok(sending)
    });
    // The process ends here: freeing 100,000 jobs one by one is time spent for nothing.
    std::mem::forget(plan);
    match printed.map(|sending| sending.check()) {
        Ok(Ok(())) => Ok(exit_code::OK),
        // The same refusal as `run`'s, and the same exit code.
        Ok(Err(over)) => Err(CliError::Usage {
            message: format!("`run` with these options would refuse to start: {over}"),
            help: Some(over.help()),
        }),
        Err(vidbatch::inspect::InspectError::State(e)) => Err(e.into()),
        Err(vidbatch::inspect::InspectError::Output(e)) => Err(e.into()),
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
            "{} ({} templates, default `{}`):",
            m.id,
            m.templates.len(),
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

/// `vidbatch status OUT…`.
pub(crate) fn status(folders: &[PathBuf]) -> Result<i32, CliError> {
    let mut out = std::io::stdout().lock();
    match vidbatch::inspect::status(&mut out, folders) {
        Ok(()) => Ok(exit_code::OK),
        Err(vidbatch::inspect::InspectError::State(e)) => Err(e.into()),
        Err(vidbatch::inspect::InspectError::Output(e)) => Err(e.into()),
    }
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
        "{} model(s); `vidbatch models ID` shows one with its parameters and an example job",
        found.len()
    )?;
    out.flush()?;
    Ok(exit_code::OK)
}
