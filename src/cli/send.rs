//! The options that choose what a run sends (`--shard`, `--limit`, `--sample`, `--max-credits`,
//! `--within-cap`, `--paid-retries`, `--resubmit-unknown`), read the same way by `run` and
//! `validate`, so that `validate` shows the jobs `run` would send.

use vidbatch::plan::Plan;
use vidbatch::selection::{self, LeftOut, Options};
use vidbatch::shard::Shard;

use super::args::SendArgs;
use super::output::{CliError, usage};

/// The options as the library takes them; the shard is `--shard`, else Kubernetes' indexed-job
/// variables.
pub(super) fn options(args: &SendArgs) -> Result<Options, CliError> {
    let shard = match args.shard {
        Some(shard) => Some(shard),
        None => Shard::from_kubernetes(
            std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
            std::env::var("JOB_COMPLETION_COUNT").ok().as_deref(),
        )
        .map_err(usage)?,
    };
    Ok(Options {
        shard,
        limit: args.limit,
        sample: args.sample,
        max_credits: args.max_credits,
        within_cap: args.within_cap,
        paid_retries: args.paid_retries,
        resubmit_unknown: args.resubmit_unknown,
    })
}

/// Cuts the plan to this run's part, and says so.
pub(super) fn narrow(plan: &mut Plan, options: &Options) -> LeftOut {
    let whole = plan.jobs.len();
    let left_out = selection::narrow(plan, options);
    if let Some(shard) = options.shard {
        tracing::info!(
            "shard {shard}: {} of the manifest's {}",
            plan.jobs.len(),
            vidbatch::wording::count(whole, "job")
        );
    }
    left_out
}
