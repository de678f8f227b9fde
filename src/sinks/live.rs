//! The live view, when stderr is a terminal: a bar of jobs settled out of all, elapsed time, an
//! estimate of the time left, and below it the count of jobs in each state, credits spent, the
//! videos' bytes and download rate, and requests per second. Log lines (failures, retries,
//! warnings) are printed above it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::downloads::DownloadMeter;
use super::{Progress, RunEvent, Sink, short_duration, thousands};

pub struct Live {
    bar: ProgressBar,
    color: bool,
    /// Whether the bar shows its ratio yet: not before there are jobs to count, or it would
    /// flash `0/0 (100%)` while the run starts.
    counting: bool,
    settled_at_start: usize,
    downloads: DownloadMeter,
}

impl Live {
    pub fn new(color: bool) -> Live {
        let live = Live::drawn_on(ProgressDrawTarget::stderr_with_hz(8), color);
        live.bar.enable_steady_tick(Duration::from_millis(250));
        super::logs::show_bar(Some(live.bar.clone()));
        live
    }

    /// The live view drawn on `target` (a test draws it in memory).
    fn drawn_on(target: ProgressDrawTarget, color: bool) -> Live {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(style(STARTING, color));
        Live {
            bar,
            color,
            counting: false,
            settled_at_start: 0,
            downloads: DownloadMeter::default(),
        }
    }

    /// Sets the jobs to count; the bar shows its ratio from the first job on.
    fn count_of(&mut self, total: usize) {
        self.bar.set_length(total as u64);
        if total > 0 && !self.counting {
            self.counting = true;
            self.bar.set_style(style(COUNTING, self.color));
        }
    }
}

/// Before the run knows its jobs: no ratio, no bar.
const STARTING: &str = "{spinner} {elapsed_precise} starting…\n  {msg}";
const COUNTING: &str = "{spinner} {elapsed_precise} {wide_bar} {pos}/{len} ({percent}%) ETA {prefix}\n  {msg}";

fn style(template: &str, color: bool) -> ProgressStyle {
    let template = match color {
        true => template
            .replace("{spinner}", "{spinner:.cyan}")
            .replace("{wide_bar}", "{wide_bar:.cyan/blue}"),
        false => template.to_string(),
    };
    ProgressStyle::with_template(&template)
        .expect("the live view's templates are valid")
        .progress_chars("=> ")
}

/// The second line of the live view: where every job is, what it cost, what came down.
pub fn counts_line(p: &Progress, downloads: &DownloadMeter) -> String {
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
    let mut line = format!("{} · {} credits", parts.join(" · "), thousands(p.credits));
    if let Some(downloaded) = downloads.describe() {
        line.push_str(&format!(" · {downloaded}"));
    }
    line.push_str(&format!(" · {:.1} req/s", p.requests_per_second));
    line
}

impl Sink for Live {
    fn event(&mut self, event: &RunEvent<'_>) {
        self.downloads.observe(event, Instant::now());
        match event {
            RunEvent::Started(s) => {
                self.settled_at_start = s.settled;
                self.count_of(s.jobs);
                self.bar.set_position(s.already_done as u64);
                self.bar.set_prefix("-");
            }
            RunEvent::Progress(p) => {
                self.count_of(p.total);
                self.bar.set_position(p.settled() as u64);
                self.bar.set_prefix(
                    p.eta(self.settled_at_start)
                        .map_or_else(|| "-".to_string(), short_duration),
                );
                self.bar.set_message(counts_line(p, &self.downloads));
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sinks::Started;

    /// A terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.write_line(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_ratio_is_drawn_before_there_are_jobs_to_count() {
        let screen = Screen::default();
        let mut live = Live::drawn_on(ProgressDrawTarget::term_like(Box::new(screen.clone())), false);
        live.bar.tick();
        // A run that has nothing to do draws no ratio either.
        live.event(&RunEvent::Progress(&Progress::default()));
        live.bar.tick();
        let drawn = screen.0.lock().unwrap().join("\n");
        assert!(drawn.contains("starting…"), "{drawn}");
        assert!(!drawn.contains("0/0") && !drawn.contains('%'), "{drawn}");

        let started = Started {
            jobs: 20,
            to_submit: 20,
            ..Started::default()
        };
        live.event(&RunEvent::Started(&started));
        let progress = Progress {
            total: 20,
            done: 5,
            ..Progress::default()
        };
        live.event(&RunEvent::Progress(&progress));
        live.bar.tick();
        let drawn = screen.0.lock().unwrap().join("\n");
        assert!(drawn.contains("5/20 (25%)"), "{drawn}");
    }

    #[test]
    fn the_counts_line_says_what_came_down() {
        let p = Progress {
            generating: 3,
            done: 2,
            credits: 2_100_000.0,
            requests_per_second: 4.0,
            ..Progress::default()
        };
        assert_eq!(
            counts_line(&p, &DownloadMeter::default()),
            "3 generating · 2 done · 0 failed · 2,100,000 credits · 4.0 req/s"
        );
        let meter = DownloadMeter::measured(2, 68_000_000, Duration::from_secs(2));
        assert_eq!(
            counts_line(&p, &meter),
            "3 generating · 2 done · 0 failed · 2,100,000 credits · 68 MB at 34 MB/s · 4.0 req/s"
        );
    }
}
