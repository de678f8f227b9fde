//! The live view, when stderr is a terminal: a bar of jobs settled out of all, elapsed time, an
//! estimate of the time left, and below it the count of jobs in each state, credits spent and
//! requests per second. Log lines (failures, retries, warnings) are printed above it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Progress, RunEvent, Sink, short_duration, thousands};

pub struct Live {
    bar: ProgressBar,
    settled_at_start: usize,
}

impl Live {
    pub fn new(color: bool) -> Live {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(8));
        let template = if color {
            "{spinner:.cyan} {elapsed_precise} {wide_bar:.cyan/blue} {pos}/{len} ({percent}%) ETA {prefix}\n  {msg}"
        } else {
            "{spinner} {elapsed_precise} {wide_bar} {pos}/{len} ({percent}%) ETA {prefix}\n  {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .expect("the live view's template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        super::logs::show_bar(Some(bar.clone()));
        Live {
            bar,
            settled_at_start: 0,
        }
    }
}

/// The second line of the live view: where every job is.
pub fn counts_line(p: &Progress) -> String {
    let mut parts = Vec::new();
    for (n, word) in [
        (p.waiting, "waiting"),
        (p.submitting, "submitting"),
        (p.queued, "queued"),
        (p.generating, "generating"),
        (p.downloading, "downloading"),
        (p.done, "done"),
        (p.failed, "failed"),
        (p.unknown, "unknown"),
        (p.deferred, "deferred"),
    ] {
        // Done, failed and in-flight counts always show; the rest only when there are any.
        if n > 0 || matches!(word, "done" | "failed" | "generating") {
            parts.push(format!("{n} {word}"));
        }
    }
    format!(
        "{} · {} credits · {:.1} req/s",
        parts.join(" · "),
        thousands(p.credits),
        p.requests_per_second
    )
}

impl Sink for Live {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::Started(s) => {
                self.settled_at_start = s.settled;
                self.bar.set_length(s.jobs as u64);
                self.bar.set_position(s.already_done as u64);
                self.bar.set_prefix("-");
            }
            RunEvent::Progress(p) => {
                self.bar.set_length(p.total as u64);
                self.bar.set_position(p.settled() as u64);
                self.bar.set_prefix(
                    p.eta(self.settled_at_start)
                        .map_or_else(|| "-".to_string(), short_duration),
                );
                self.bar.set_message(counts_line(p));
            }
            RunEvent::Finished(_) => {
                self.bar.finish_and_clear();
                super::logs::show_bar(None);
            }
            _ => {}
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
        super::logs::show_bar(None);
    }
}
