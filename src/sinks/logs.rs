//! Where `tracing` lines go: plain text on stderr (colour only for a person at a terminal),
//! above the live view's bar while one is drawn, or JSON objects in the same shape as the event
//! lines of `--log-format json`. A person at a terminal reads the time of day (`14:03:12`); a
//! file or a pipe gets RFC 3339 in UTC, as the JSON lines do.

use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use indicatif::ProgressBar;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The bar being drawn, if any: log lines are printed above it rather than through it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

pub fn show_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Writes to stderr, clearing the live view's bar around the text.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// Never an error: a closed stderr (`… 2>&1 | head -1`) leaves no one to tell, and
    /// tracing-subscriber would report it with `eprintln!`, which panics there.
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = match bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| std::io::stderr().write_all(buf)),
            _ => std::io::stderr().write_all(buf),
        };
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `terminal`: stderr is a terminal (the lines' time is then the time of day).
pub fn init(filter: EnvFilter, format: LogFormat, color: bool, terminal: bool) {
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_timer(Stamp { terminal })
                    .with_ansi(color)
                    .log_internal_errors(false)
                    .with_writer(|| Stderr),
            )
            .init(),
        LogFormat::Json => registry.with(JsonLogs).init(),
    }
}

/// How a text line is stamped (tracing-subscriber's own stamp, `2025-05-02T14:03:12.123456Z`,
/// is long for a person and its microseconds say nothing).
struct Stamp {
    terminal: bool,
}

impl tracing_subscriber::fmt::time::FormatTime for Stamp {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&stamp(SystemTime::now(), self.terminal))
    }
}

/// The local time of day for a terminal, RFC 3339 in UTC with milliseconds for anything kept.
fn stamp(now: SystemTime, terminal: bool) -> String {
    match terminal {
        true => chrono::DateTime::<chrono::Local>::from(now)
            .format("%H:%M:%S")
            .to_string(),
        false => humantime::format_rfc3339_millis(now).to_string(),
    }
}

/// Log lines as `{"ts", "event": "log", "level", "message", …fields}`.
struct JsonLogs;

impl<S: tracing::Subscriber> Layer<S> for JsonLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields(serde_json::Map::new());
        event.record(&mut fields);
        let mut object = serde_json::Map::new();
        object.insert(
            "level".into(),
            event.metadata().level().as_str().to_ascii_lowercase().into(),
        );
        object.extend(fields.0);
        let line = super::json::line("log", serde_json::Value::Object(object));
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

struct Fields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_terminal_reads_the_time_of_day_and_a_file_rfc_3339() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_micros(1_746_195_792_123_456);
        assert_eq!(stamp(now, false), "2025-05-02T14:23:12.123Z");
        let local = stamp(now, true);
        // The hour depends on the machine's time zone; the minutes and seconds do not (nearly).
        assert!(
            local.len() == 8 && local.ends_with(":12") && local.as_bytes()[2] == b':',
            "{local}"
        );
    }
}
