//! The `vidbatch` command line.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

use vidbatch::sinks::logs::LogFormat;

use cli::args::{Cli, ColorChoice, Command};
use cli::commands::{completions, models, report, serve_sim, status, templates, validate, verify};
use cli::output::{COLOR, CliError, JSON, View, init_logging, stderr_is_terminal};
use cli::run::run;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    COLOR.store(color, std::sync::atomic::Ordering::Relaxed);
    JSON.store(cli.log_format == LogFormat::Json, std::sync::atomic::Ordering::Relaxed);
    init_logging(cli.verbose, cli.quiet, cli.log_format, color);
    // `--log-format json` asks for machines: the commands that print a report print JSON.
    let json_out = cli.log_format == LogFormat::Json;
    let view = View {
        format: cli.log_format,
        color,
        quiet: cli.quiet,
    };
    // A run is one coordinator loop and its I/O: on one thread, a worker's answer reaches the
    // loop without waking another thread (at thousands of requests a second, those wake-ups
    // were a large share of the client's CPU). `vidbatch sim` serves on every core (the
    // simulator of `run --simulate` shares the run's thread: it serves one client).
    let runtime = match &cli.command {
        Command::Sim(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async {
            match cli.command {
                Command::Run(args) => run(args, view).await,
                Command::Validate {
                    manifest,
                    out,
                    simulate,
                    send,
                    json,
                    key,
                } => {
                    validate(
                        &manifest,
                        out.as_deref(),
                        simulate,
                        &send,
                        json || json_out,
                        key.key.as_deref(),
                    )
                    .await
                }
                Command::Status { out, json, jobs } => status(&out, json || json_out, jobs),
                Command::Verify { out, json } => verify(&out, json || json_out, view),
                Command::Completions { shell } => completions(shell),
                Command::Templates { model } => templates(model.as_deref()),
                Command::Models { filter } => models(filter.as_deref()).await,
                Command::Sim(args) => serve_sim(args).await,
                Command::Report { out } => report(&out),
            }
        }),
        Err(e) => Err(CliError::Aborted {
            message: format!("cannot start the async runtime: {e}"),
            help: None,
        }),
    };
    // The one place that prints an error and decides the exit code.
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}
