//! A model described for people (`vidbatch models ID`): what each field takes, in words, and an
//! example job. Wording, apart from the catalog's data and matching.

use std::fmt::Write as _;

use super::{MediaKind, ModelSpec, ParamKind, ParamSpec, quoted_list};

/// One model as a manifest uses it: where its input goes, its prompt, each parameter with what it
/// takes, and an example job (`vidbatch models ID`).
pub fn describe(m: &ModelSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}){}",
        m.id,
        m.task,
        if m.deprecated { ", deprecated" } else { "" }
    );
    if !m.aliases.is_empty() {
        let _ = writeln!(out, "  also written {} (sent as `{}`)", quoted_list(m.aliases), m.id);
    }
    match (m.input.field(), m.input.kind()) {
        (Some(field), Some(kind)) => {
            let need = if m.input_required { "required" } else { "optional" };
            let _ = writeln!(
                out,
                "  input: `input:` goes to `{field}`: {} file or URL ({need})",
                kind.as_str()
            );
        }
        _ => {
            let _ = writeln!(out, "  input: none (the prompt is the input)");
        }
    }
    if let Some(p) = &m.prompt {
        let need = if p.required { "required" } else { "optional" };
        let _ = writeln!(out, "  prompt: {} ({need})", kind_text(p.kind));
    }
    if !m.templates.is_empty() {
        let _ = writeln!(
            out,
            "  template: {} (`vidbatch templates {}`)",
            crate::wording::count(m.templates.len(), "template"),
            m.id
        );
    }
    if !m.params.is_empty() {
        let _ = writeln!(out, "  parameters (under `params:`, or as CSV columns):");
        let width = m.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in m.params {
            let mut text = kind_text(p.kind);
            if let Some(d) = p.default {
                let _ = write!(text, "; default {}", d.to_json());
            }
            if p.required {
                text.push_str("; required");
            }
            let _ = writeln!(out, "    {:<width$}  {text}", p.name);
        }
    }
    if let Some((lo, hi)) = m.render_seconds {
        let _ = writeln!(out, "  render time by the docs: {}", seconds_range(lo, hi));
    }
    let _ = writeln!(out, "example job:\n  jobs:\n    - model: {}", m.id);
    if let Some(kind) = m.input.kind().filter(|_| m.input_required) {
        let file = match kind {
            MediaKind::Video => "assets/teaser.mp4",
            MediaKind::Audio => "assets/voice.mp3",
            _ => "assets/shoe.jpg",
        };
        let _ = writeln!(out, "      input: {file}");
    }
    if m.prompt.is_some_and(|p| p.required) {
        let _ = writeln!(out, "      prompt: \"A slow pan over the product on a marble table\"");
    }
    let required: Vec<&ParamSpec> = m.params.iter().filter(|p| p.required).collect();
    if !required.is_empty() {
        let _ = writeln!(out, "      params:");
        for p in required {
            let _ = writeln!(out, "        {}: {}", p.name, example_value(p.kind));
        }
    }
    out
}

/// What a parameter takes, in words.
fn kind_text(kind: ParamKind) -> String {
    match kind {
        ParamKind::Text { max_chars: Some(n) } => format!("text, at most {n} characters"),
        ParamKind::Text { max_chars: None } => "text".into(),
        ParamKind::Choice(options) => format!("one of {}", quoted_list(options)),
        ParamKind::IntChoice(options) => {
            let list: Vec<String> = options.iter().map(i64::to_string).collect();
            format!("one of {}", list.join(", "))
        }
        ParamKind::IntRange(i64::MIN, i64::MAX) => "a whole number".into(),
        ParamKind::IntRange(lo, i64::MAX) => format!("a whole number, at least {lo}"),
        ParamKind::IntRange(lo, hi) => format!("a whole number from {lo} to {hi}"),
        ParamKind::Number { min, max } => match (min, max) {
            (Some(lo), Some(hi)) => format!("a number from {lo} to {hi}"),
            _ => "a number".into(),
        },
        ParamKind::Bool => "true or false".into(),
        ParamKind::Media {
            kind, list, data_uri, ..
        } => {
            let what = if list {
                format!("a list of {} files or URLs", kind.as_str())
            } else {
                format!("{} file or URL", kind.as_str())
            };
            match data_uri {
                Some(false) => format!("{what} (URLs only by the docs)"),
                _ => what,
            }
        }
        ParamKind::List { .. } => "a list".into(),
        ParamKind::Object { fields } if fields.iter().any(|f| f.required) => {
            let needed: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
            format!("a mapping with {}", quoted_list(&needed))
        }
        ParamKind::Object { .. } => "a mapping".into(),
        ParamKind::Any => "a value (see the vendor's page)".into(),
    }
}

fn example_value(kind: ParamKind) -> String {
    match kind {
        ParamKind::Choice(options) => options.first().map_or_else(String::new, |o| format!("\"{o}\"")),
        ParamKind::IntChoice(options) => options.first().map_or_else(String::new, i64::to_string),
        ParamKind::IntRange(lo, _) if lo > i64::MIN => lo.to_string(),
        ParamKind::IntRange(..) => "1".into(),
        ParamKind::Number { min, .. } => min.unwrap_or(1.0).to_string(),
        ParamKind::Bool => "true".into(),
        ParamKind::Media { list: true, .. } => "[assets/shoe.jpg]".into(),
        ParamKind::Media {
            kind: MediaKind::Video, ..
        } => "assets/teaser.mp4".into(),
        ParamKind::Media { .. } => "assets/shoe.jpg".into(),
        ParamKind::List { .. } => "[]".into(),
        ParamKind::Object { fields } => {
            let each: Vec<String> = fields
                .iter()
                .filter(|f| f.required)
                .map(|f| match f.kind {
                    ParamKind::Media { .. } => format!("{}: https://example.com/file", f.name),
                    kind => format!("{}: {}", f.name, example_value(kind)),
                })
                .collect();
            format!("{{{}}}", each.join(", "))
        }
        ParamKind::Text { .. } | ParamKind::Any => "\"…\"".into(),
    }
}

fn seconds_range(lo: f64, hi: f64) -> String {
    let text = |s: f64| {
        if s >= 120.0 {
            format!("{:.0} min", s / 60.0)
        } else {
            format!("{s:.0} s")
        }
    };
    if (hi - lo).abs() < 1.0 {
        format!("about {}", text(lo))
    } else {
        format!("{}–{}", text(lo), text(hi))
    }
}
