//! Small words of the page: numbers, durations, relative addresses, lists without repeats.

use std::collections::HashSet;

/// A path under the output folder as a relative URL: each byte outside the unreserved set
/// percent-encoded, so `#`, `?`, `%` and `:` in a name stay part of the path. `None` for a path
/// that would leave the folder.
pub fn relative_url(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|s| s == "..") {
        return None;
    }
    let mut url = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => url.push(b as char),
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    Some(url)
}

pub fn is_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

pub fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    distinct_owned(values.map(String::from))
}

pub fn distinct_owned(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for v in values {
        if seen.insert(v.clone()) {
            out.push(v);
        }
    }
    out
}

/// `2000000` as `2,000,000`; fractions kept (`0.5`).
pub fn format_number(n: f64) -> String {
    let text = if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    };
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `3 videos`, `1 video`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn span(from: std::time::SystemTime, to: std::time::SystemTime) -> String {
    let secs = to.duration_since(from).map_or(0, |d| d.as_secs());
    if secs == 0 {
        return "<1s".into();
    }
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}
