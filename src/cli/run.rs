//! `vidbatch run`: a manifest submitted, polled and downloaded, and Ctrl-C and SIGTERM turned
//! into a drained or aborted run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use vidbatch::api::{ApiClient, ApiKey, error_chain};
use vidbatch::coordinator::polling::PollPolicy;
use vidbatch::coordinator::{CancelLevel, Coordinator, Polling, RunConfig, Shutdown};
use vidbatch::download::Downloader;
use vidbatch::exit_code::RunOutcome;

use vidbatch::cost::Prices;
use vidbatch::plan;
use vidbatch::results;
use vidbatch::retry::RetryPolicy;
use vidbatch::selection;
use vidbatch::sim::{self, SimConfig};
use vidbatch::sinks::logs::LogFormat;
use vidbatch::sinks::{self, Finished, RunEvent, Sinks};
use vidbatch::state::{RunState, StateError};

use super::args::RunArgs;
use super::commands::{api_base_url, load_plan};
use super::output::{CliError, View, aborted, say, stderr_is_terminal, usage};
use super::send;

/// Turns Ctrl-C and SIGTERM into shutdown levels: the first Ctrl-C drains, a second aborts;
/// SIGTERM (cron, systemd) aborts at once, as everything is already recorded.
fn watch_signals(shutdown: Shutdown) {
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let next = if on_ctrl_c.level() == CancelLevel::Running {
                CancelLevel::Drain
            } else {
                CancelLevel::Abort
            };
            on_ctrl_c.escalate(next);
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            tracing::warn!("SIGTERM: leaving now; the run is saved and the same command resumes it");
            shutdown.escalate(CancelLevel::Abort);
        }
    });
}

pub(crate) async fn run(args: RunArgs, view: View) -> Result<i32, CliError> {
    let options = send::options(&args.send)?;
    let mut plan = load_plan(&args.manifest, args.results.key.key.as_deref())?;
    if let Some(sep) = args.results.results_delimiter {
        plan.dialect.delimiter = sep.byte();
    }
    let left_out = send::narrow(&mut plan, &options);
    // `--adopt` rebuilds the state from `results.csv`, which is then rewritten for the jobs
    // planned: a part of the manifest would drop the others' rows (their generations, charges).
    if args.adopt && left_out.jobs > 0 {
        return Err(usage(
            "`--adopt` needs the whole manifest: run it once without `--limit`, `--sample` and a shard (`--shard`, \
             `JOB_COMPLETION_INDEX`), then narrow the runs again",
        ));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(plan::slug(&plan.name, 80)));
    // Before anything is paid for: a video must not be written through a link out of `--out`.
    let files = plan
        .jobs
        .iter()
        .flat_map(|j| std::iter::once(j.file.as_str()).chain(j.aliases.iter().map(|a| a.file.as_str())));
    if let Some((link, target)) = plan::linked_folder(&out, files) {
        return Err(CliError::Usage {
            message: format!(
                "`{}` is a symbolic link (to `{}`): videos would be written outside the output folder",
                link.display(),
                target.display()
            ),
            help: Some("remove the link, or choose another `--out`".into()),
        });
    }

    // The endpoint: the built-in simulator, or the real service with a key.
    let mut simulator = None;
    let (base_url, key, endpoint) = if args.simulate {
        let s = sim::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
            .await
            .map_err(|e| aborted(format!("cannot start the simulator: {e}")))?;
        tracing::info!("simulating the API at {} (no key, no network)", s.base_url);
        let url = s.base_url.clone();
        simulator = Some(s);
        (url, ApiKey::new("simulator"), "simulator".to_string())
    } else {
        let key = match std::env::var("AIMLAPI_KEY") {
            Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
            _ => {
                return Err(CliError::Usage {
                    message: "`AIMLAPI_KEY` is not set".into(),
                    help: Some(
                        "export AIMLAPI_KEY=<your key>, or add --simulate to try the manifest on the built-in simulator"
                            .into(),
                    ),
                });
            }
        };
        let base = api_base_url();
        (base.clone(), ApiKey::new(key), base)
    };

    let api = ApiClient::new(&base_url, key, args.rate).map_err(usage)?;
    let (price_list, note) = vidbatch::pricing::load(&base_url).await;
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    let price_list = price_list.map(std::sync::Arc::new);
    let downloader = std::sync::Arc::new(Downloader::new(args.max_download_size).map_err(aborted)?);
    let mut state = RunState::open(&out, &endpoint)?;
    state.set_campaign(&plan.name)?;
    if !state.knows_jobs()?
        && let Some(found) = vidbatch::coordinator::earlier_run(&out)
    {
        if args.adopt {
            let adoption = match vidbatch::coordinator::adopt(&out, &mut plan.jobs, &mut state) {
                Ok(adoption) => adoption,
                Err(vidbatch::coordinator::AdoptError::State(e)) => return Err(e.into()),
                Err(e @ vidbatch::coordinator::AdoptError::Results(_)) => {
                    return Err(CliError::Usage {
                        message: error_chain(&e),
                        help: Some(format!(
                            "nothing was sent. Put back the `results.csv` the earlier run wrote in `{}` (a \
                             spreadsheet may have saved it in another shape), or move it away and run with \
                             `--start-over` to pay for every job again",
                            out.display()
                        )),
                    });
                }
            };
            tracing::warn!(
                "adopted {} finished video(s) of an earlier run (checked against `results.csv`); \
                 {} generation(s) it names are followed (polled or fetched again, not paid again); \
                 {} stay `unknown`; {} completed row(s) no longer match their file and name no generation \
                 (submitted again)",
                adoption.adopted,
                adoption.followed,
                adoption.unknown,
                adoption.mismatched
            );
            for (old, new) in &adoption.kept_aside {
                tracing::warn!("`{old}` is kept (no record says which job it belongs to); its job writes `{new}`");
            }
        } else if args.start_over {
            tracing::warn!(
                "starting over in `{}` ({found} there): every job is submitted and paid again",
                out.display()
            );
        } else {
            return Err(StateError::Lost { out, found }.into());
        }
    }
    // Records an earlier vidbatch kept under old ids are this plan's before names are checked.
    state.rekey(&plan.jobs)?;
    let records = state.records()?;
    // A finished video stays where it was saved, whatever the naming says now.
    selection::keep_recorded_files(&mut plan.jobs, &records);
    for (old, new) in plan::keep_clear_of(&mut plan.jobs, &state.finished_files()?) {
        tracing::warn!(
            "`{old}` already holds the finished video of another job; \
             the job now named there writes `{new}` instead"
        );
    }
    // What this run sends, decided as `validate` decides it, before anything is sent: over the
    // cap, the run stops here unless `--within-cap` says which jobs go.
    let prices = Prices::new(state.charges_by_model()?).with_list(price_list.clone());
    let sending = selection::sending(&out, &plan.jobs, &records, &prices, &options);
    drop(records);
    sending.check().map_err(|over| CliError::Usage {
        message: over.to_string(),
        help: Some(over.help()),
    })?;
    if let Some(within) = sending.within_cap_line() {
        tracing::warn!("{within}");
    }
    // Spread over the grid: the coordinator takes the jobs in that order, so the plan is put in
    // it for the run, and back in the manifest's order for the results and the summary.
    let run_order = sending.run_order();
    if let Some(order) = &run_order {
        selection::reorder(&mut plan.jobs, order);
    }
    let polling = match (args.poll_interval, args.poll_prior) {
        (Some(every), _) => Polling::Fixed(every),
        (None, Some(prior)) => Polling::Adaptive(PollPolicy::scaled(prior)),
        // The built-in simulator renders in about 1.2 s; the service, in minutes.
        (None, None) if args.simulate => Polling::Adaptive(PollPolicy::scaled(Duration::from_millis(1200))),
        (None, None) => Polling::Adaptive(PollPolicy::service()),
    };
    let progress_every = args.progress_every.max(Duration::from_millis(10));
    let live = view.format == LogFormat::Text && !view.quiet && stderr_is_terminal();
    let mut sinks = Sinks::default();
    match view.format {
        LogFormat::Json => sinks.push(sinks::json::JsonLines::new(Box::new(std::io::stderr()), progress_every)),
        LogFormat::Text if live => {
            sinks.push(sinks::live::Live::new(view.color));
            sinks.push(sinks::lines::Lines::new(None, false));
        }
        LogFormat::Text => sinks.push(sinks::lines::Lines::new(Some(progress_every), true)),
    }
    sinks.push(sinks::results_file::ResultsFile::new(
        out.clone(),
        &plan,
        progress_every,
    ));
    // The summary's downloads, slowest jobs and unspent estimate, priced as the coordinator prices.
    let tally = sinks::tally::Tally::new(prices.clone());
    sinks.push(tally.clone());
    let config = RunConfig {
        concurrency: args.concurrency as usize,
        downloads: args.downloads as usize,
        polling,
        paid_retries: options.paid_retries,
        resubmit_unknown: options.resubmit_unknown,
        generation_timeout: args.timeout,
        retry: RetryPolicy {
            base: args.retry_base,
            ..RetryPolicy::default()
        },
        // The live view redraws a few times a second; plain lines and JSON keep their own pace.
        progress_every: if live {
            Duration::from_millis(200)
        } else {
            progress_every.min(Duration::from_secs(1))
        },
        max_credits: options.max_credits,
        min_free: args.min_free,
        price_list,
        halt: vidbatch::coordinator::Halt {
            kind_failures: args.halt_kind,
            run_share: args.halt_run / 100.0,
        },
    };
    let started = std::time::Instant::now();
    let shutdown = Shutdown::default();
    watch_signals(shutdown.clone());
    let coordinator = Coordinator::new(&plan, &out, state, api, downloader, config, &shutdown, sinks)?;
    let (state, report, mut sinks) = coordinator.run().await;
    drop(simulator);

    // The summary's lines are taken as the rows are written, in the manifest's order: each job's
    // record is read once, and 10,000 of them are never held at once.
    let failed_before: std::collections::HashSet<usize> = report
        .failed_before
        .iter()
        .map(|&i| run_order.as_ref().map_or(i, |order| order[i]))
        .collect();
    let wants_summary = view.format == LogFormat::Text && !view.quiet;
    let mut lines = Vec::with_capacity(if wants_summary { plan.jobs.len() } else { 0 });
    let totals = results::write_each(&out, &plan, &state, run_order.as_deref(), |m, job, record| {
        if wants_summary {
            lines.push(sinks::summary::JobLine {
                job_id: job.key.short().to_string(),
                model: job.model.clone(),
                name: job.label().to_string(),
                status: results::Status::of(record),
                error: record.and_then(|r| r.error.clone()),
                earlier: failed_before.contains(&m),
                paid_failure: record.and_then(|r| r.failure) == Some(vidbatch::state::Failure::Generation),
                attempts: record.map_or(0, |r| r.attempts),
            });
        }
    })
    .map_err(|e| aborted(error_chain(&e)))?;

    let outcome = RunOutcome::of(report.stopped.clone(), totals.completed, totals.total());
    let stopped = outcome.stopped();
    let finished = Finished {
        completed: totals.completed,
        failed: totals.failed,
        unknown: totals.unknown,
        awaiting_download: totals.awaiting_download,
        pending: totals.pending,
        credits: totals.credits,
        api_requests: report.api_requests,
        elapsed: started.elapsed(),
        stopped: stopped.clone(),
        exit_code: outcome.exit_code(),
    };
    sinks.emit(RunEvent::Finished(&finished));
    drop(sinks);
    if let Some(order) = &run_order {
        selection::restore(&mut plan.jobs, order);
    }
    // Only a capped run asks which jobs its cap left, and what the folder has committed.
    let cap_left = match options.max_credits {
        Some(_) => selection::cap_left(&plan.jobs, &state.records()?, &prices, options.max_credits),
        None => None,
    };

    let summary = if wants_summary {
        let mut jobs = lines;
        jobs.reserve(totals.alias_failures.len());
        // An input's other name whose copy failed fails its own row: said like a job.
        jobs.extend(totals.alias_failures.iter().map(|(id, input, why)| {
            sinks::summary::JobLine {
                job_id: id.clone(),
                model: plan
                    .jobs
                    .iter()
                    .find(|j| j.key.short() == id)
                    .map_or_else(String::new, |j| j.model.clone()),
                name: input.clone(),
                status: results::Status::Failed,
                error: Some(why.clone()),
                earlier: false,
                paid_failure: false,
                attempts: 0,
            }
        }));
        Some(sinks::summary::Summary {
            jobs,
            credits_now: report.credits_now,
            // The whole run's estimate: the credits line says which part of it was not spent, and
            // how many of the jobs not submitted the cap left.
            estimate: Some(report.estimate),
            credits_total: totals.credits,
            cap_left,
            max_credits: options.max_credits,
            not_run: left_out.sentence(),
            elapsed: finished.elapsed,
            api_requests: report.api_requests,
            out: out.clone(),
            rows: totals.total(),
            report: None,
            command: std::env::args().collect(),
            stopped,
            heard: tally.heard(),
        })
    } else {
        None
    };
    // The state's connection and the plan are let go before the page is drawn: at 10,000 jobs
    // the plan alone was a quarter of the run's peak memory.
    drop(state);
    vidbatch::gallery::keep_inputs_of(&out, &plan.jobs);
    let campaign = std::mem::take(&mut plan.name);
    drop(plan);
    // The page is for people to look at: failing to write it does not fail the run.
    let page = match vidbatch::gallery::write_after_run(&out, &campaign) {
        Ok(page) => Some(page),
        Err(e) => {
            tracing::warn!("no report: {}", error_chain(&e));
            None
        }
    };
    if let Some(summary) = summary {
        let summary = sinks::summary::Summary {
            report: page,
            ..summary
        };
        say!("{}", sinks::summary::render(&summary));
    }
    if let Some((limit, refusals)) = report.concurrency_found {
        tracing::warn!(
            "the service refused {refusals} submit(s) for too many active generations: this account runs about \
             {limit} at once (`--concurrency {limit}` avoids the refusals)"
        );
    }
    match (outcome.is_error(), outcome.stopped()) {
        (true, Some(message)) => Err(CliError::Aborted {
            message,
            help: outcome.help().map(String::from),
        }),
        _ => Ok(outcome.exit_code()),
    }
}
