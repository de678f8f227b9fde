//! How counts and sizes read in what people see: `1 job` and `3 jobs` (never `1 jobs` or
//! `job(s)`), `1.2 GB`, `34 MB/s`. Numbers of credits and durations are in [`crate::sinks`]
//! ([`crate::sinks::thousands`], [`crate::sinks::short_duration`]).

/// `n` and the noun, singular for one and plural (an `s` added) otherwise: `count(1, "job")` is
/// `1 job`, `count(0, "job")` is `0 jobs`. A noun whose plural is not an added `s` uses
/// [`count_as`].
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `n` and the noun in the form it takes: `count_as(2, "entry", "entries")`.
pub fn count_as(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The noun alone, as [`count`] would write it beside `n`: `noun(1, "job")` is `job`.
pub fn noun(n: usize, noun: &str) -> String {
    if n == 1 { noun.to_string() } else { format!("{noun}s") }
}

/// A size in decimal units, as disks and networks are sold: `980 B`, `12.3 MB`, `1.2 GB`; three
/// significant digits at most, so a size reads at a glance.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 999.5 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{} {unit}", significant(value))
}

/// A transfer rate: `34 MB/s`; `None` when no time was spent.
pub fn rate(bytes: u64, seconds: f64) -> Option<String> {
    (seconds > 0.0 && seconds.is_finite()).then(|| {
        let per_second = (bytes as f64 / seconds).round() as u64;
        format!("{}/s", self::bytes(per_second))
    })
}

/// `1.23`, `12.3`, `123`: three significant digits, no trailing `.0`.
fn significant(value: f64) -> String {
    let text = match value {
        v if v < 9.995 => format!("{v:.2}"),
        v if v < 99.95 => format!("{v:.1}"),
        v => format!("{v:.0}"),
    };
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

/// A duration for timings under a minute or so: `0.4s`, `12.5s`, then as
/// [`crate::sinks::short_duration`] (`4m12s`). Renders of the simulator take a second; real ones,
/// minutes: both must read apart.
pub fn timing(d: std::time::Duration) -> String {
    if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        crate::sinks::short_duration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "template"), "1 template");
        assert_eq!(count(0, "template"), "0 templates");
        assert_eq!(count(2, "job"), "2 jobs");
        assert_eq!(count_as(1, "entry", "entries"), "1 entry");
        assert_eq!(count_as(3, "entry", "entries"), "3 entries");
        assert_eq!(noun(1, "video"), "video");
        assert_eq!(noun(5, "video"), "videos");
    }

    #[test]
    fn sizes_read_in_decimal_units_with_three_digits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1 kB");
        assert_eq!(bytes(1234), "1.23 kB");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(bytes(999_600_000), "1 GB");
        assert_eq!(bytes(1_200_000_000), "1.2 GB");
        assert_eq!(bytes(123_456_789_012), "123 GB");
        assert_eq!(bytes(u64::MAX), "18447 PB");
    }

    #[test]
    fn rates_need_time() {
        assert_eq!(rate(34_000_000, 1.0).as_deref(), Some("34 MB/s"));
        assert_eq!(rate(1_200_000_000, 35.3).as_deref(), Some("34 MB/s"));
        assert_eq!(rate(5, 0.0), None);
    }

    #[test]
    fn timings_under_a_minute_keep_a_decimal() {
        use std::time::Duration;
        assert_eq!(timing(Duration::from_millis(420)), "0.4s");
        assert_eq!(timing(Duration::from_millis(12_460)), "12.5s");
        assert_eq!(timing(Duration::from_secs(252)), "4m12s");
    }
}
