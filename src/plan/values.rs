//! Parameter values as written, made into what the API wants (or refused with a reason).

use serde_json::Value;

use crate::catalog::{self, ParamKind};

/// A CSV cell for a model we know nothing about: numbers and booleans become JSON numbers and
/// booleans, as they would be in YAML.
pub(super) fn text_cell_value(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => {
            if let Ok(i) = s.parse::<i64>() {
                i.into()
            } else if let Ok(f) = s.parse::<f64>()
                && let Some(n) = serde_json::Number::from_f64(f)
            {
                Value::Number(n)
            } else if s == "true" || s == "false" {
                Value::Bool(s == "true")
            } else {
                v.clone()
            }
        }
        None => v.clone(),
    }
}

/// Why a value is refused: what is wrong (after the parameter's name: "`seed` …"), and what to do.
#[derive(Debug)]
pub(super) struct Refused {
    pub message: String,
    pub help: String,
}

pub(super) fn refused(message: String, help: String) -> Refused {
    Refused { message, help }
}

/// What to write instead, for a parameter of this kind.
fn expected(kind: ParamKind) -> String {
    match kind {
        ParamKind::Text { .. } => "write it as text (quote it if it holds `: ` or starts with `[` or `{`)".into(),
        ParamKind::Choice(options) => format!("use one of {}", catalog::quoted_list(options)),
        ParamKind::IntChoice(options) => {
            let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            let list: Vec<&str> = list.iter().map(String::as_str).collect();
            format!("use one of {}", catalog::quoted_list(&list))
        }
        ParamKind::IntRange(i64::MIN, i64::MAX) => "use a whole number".into(),
        ParamKind::IntRange(lo, i64::MAX) => format!("use a whole number of at least {lo}"),
        ParamKind::IntRange(i64::MIN, hi) => format!("use a whole number of at most {hi}"),
        ParamKind::IntRange(lo, hi) => format!("use a whole number from {lo} to {hi}"),
        ParamKind::Number { min, max } => match (min, max) {
            (Some(lo), Some(hi)) => format!("use a number from {lo} to {hi}"),
            (Some(lo), None) => format!("use a number of at least {lo}"),
            (None, Some(hi)) => format!("use a number of at most {hi}"),
            (None, None) => "use a number".into(),
        },
        ParamKind::Bool => "use `true` or `false`".into(),
        ParamKind::Media { kind, list: false, .. } => {
            format!(
                "give one {} file (a path relative to the manifest) or an http(s) URL",
                kind.as_str()
            )
        }
        ParamKind::Media { kind, list: true, .. } => format!(
            "give a list of {} files (paths relative to the manifest) or http(s) URLs",
            kind.as_str()
        ),
        ParamKind::List { min, max } => match (min, max) {
            (Some(lo), Some(hi)) => format!("give a list of {lo} to {hi} items"),
            (Some(lo), None) => format!("give a list of at least {lo} items"),
            (None, Some(hi)) => format!("give a list of at most {hi} items"),
            (None, None) => "give a list (`[a, b]` in YAML)".into(),
        },
        ParamKind::Object { fields } if fields.iter().any(|f| f.required) => {
            let needed: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
            format!(
                "give a mapping with {} (`{{a: 1}}` in YAML)",
                catalog::quoted_list(&needed)
            )
        }
        ParamKind::Object { .. } => "give a mapping of its fields (`{a: 1}` in YAML)".into(),
        ParamKind::Any => "see the model's documentation".into(),
    }
}

/// Makes a written value into the type the parameter wants (numbers from text, enum case).
pub(super) fn coerce(kind: ParamKind, value: &Value) -> Result<Value, Refused> {
    let value = match (kind, value) {
        (ParamKind::IntChoice(_) | ParamKind::IntRange(..), Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => return Err(refused(format!("must be a whole number, not `{s}`"), expected(kind))),
        },
        // Written as the enum spells it, the usual case: no folding (100,000 rows of one enum
        // spent 8 % of `validate` folding every option of it again).
        (ParamKind::Choice(options), Value::String(s)) if options.contains(&s.as_str()) => value.clone(),
        (ParamKind::Choice(options), Value::String(s)) => {
            let folded = catalog::fold_name(s);
            match options.iter().find(|o| catalog::fold_name(o) == folded) {
                Some(exact) => Value::from(*exact),
                None => value.clone(),
            }
        }
        (ParamKind::Choice(_) | ParamKind::Text { .. }, Value::Number(n)) => Value::String(n.to_string()),
        (ParamKind::Number { .. }, Value::String(s)) => match s.trim().parse::<f64>().ok().and_then(number) {
            Some(n) => n,
            None => return Err(refused(format!("must be a number, not `{s}`"), expected(kind))),
        },
        (ParamKind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Value::Bool(true),
            "false" | "no" => Value::Bool(false),
            _ => return Err(refused(format!("must be `true` or `false`, not `{s}`"), expected(kind))),
        },
        // A spreadsheet cell of several: `a.png | b.png`.
        (ParamKind::Media { list: true, .. } | ParamKind::List { .. }, Value::String(s)) if s.contains('|') => {
            Value::Array(s.split('|').map(|v| Value::String(v.trim().to_string())).collect())
        }
        (ParamKind::Media { list: true, .. }, Value::String(s)) => Value::Array(vec![Value::String(s.clone())]),
        _ => value.clone(),
    };
    check_value(kind, &value)?;
    Ok(value)
}

pub(super) fn check_value(kind: ParamKind, value: &Value) -> Result<(), Refused> {
    match kind {
        ParamKind::Text { max_chars } => {
            let Some(s) = value.as_str() else {
                return Err(refused(format!("must be text, not {}", what(value)), expected(kind)));
            };
            if let Some(max) = max_chars {
                let n = s.chars().count();
                if n > max {
                    return Err(refused(
                        format!("is {n} characters long; the most is {max}"),
                        format!("shorten it to {max} characters or fewer ({} too many)", n - max),
                    ));
                }
            }
            if s.trim().is_empty() {
                return Err(refused("is empty".into(), "write the text, or remove the field".into()));
            }
        }
        ParamKind::Choice(options) => {
            let s = value.as_str().unwrap_or_default();
            if !options.contains(&s) {
                let help = match catalog::closest(s, options.iter().copied()) {
                    Some(c) if value.is_string() => format!("did you mean `{c}`? {}", expected(kind)),
                    _ => expected(kind),
                };
                return Err(refused(format!("cannot be `{}`", display(value)), help));
            }
        }
        ParamKind::IntChoice(options) => {
            if value.as_i64().is_none() {
                return Err(refused(
                    format!("must be a whole number, not `{}`", display(value)),
                    expected(kind),
                ));
            }
            if !value.as_i64().is_some_and(|i| options.contains(&i)) {
                return Err(refused(format!("cannot be `{}`", display(value)), expected(kind)));
            }
        }
        ParamKind::IntRange(lo, hi) => {
            if value.as_i64().is_none() {
                return Err(refused(
                    format!("must be a whole number, not `{}`", display(value)),
                    expected(kind),
                ));
            }
            if !value.as_i64().is_some_and(|i| (lo..=hi).contains(&i)) {
                return Err(refused(format!("cannot be `{}`", display(value)), expected(kind)));
            }
        }
        ParamKind::Number { min, max } => {
            let Some(n) = value.as_f64() else {
                return Err(refused(
                    format!("must be a number, not `{}`", display(value)),
                    expected(kind),
                ));
            };
            if min.is_some_and(|lo| n < lo) || max.is_some_and(|hi| n > hi) {
                return Err(refused(format!("cannot be `{}`", display(value)), expected(kind)));
            }
        }
        ParamKind::Bool if !value.is_boolean() => {
            return Err(refused(
                format!("must be `true` or `false`, not `{}`", display(value)),
                expected(kind),
            ));
        }
        // How many files a list holds is counted once its folders and globs are expanded
        // (`Planner::named_media`).
        ParamKind::Media { list, .. } => {
            let texts = match value {
                Value::Array(items) if list => items.iter().all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())),
                Value::String(s) if !list => !s.trim().is_empty(),
                _ => false,
            };
            if !texts {
                return Err(refused(format!("cannot be {}", what(value)), expected(kind)));
            }
        }
        ParamKind::List { min, max } => {
            let Some(items) = value.as_array() else {
                return Err(refused(format!("must be a list, not {}", what(value)), expected(kind)));
            };
            if min.is_some_and(|lo| items.len() < lo) || max.is_some_and(|hi| items.len() > hi) {
                return Err(refused(format!("has {} items", items.len()), expected(kind)));
            }
        }
        ParamKind::Object { fields } => {
            let Some(map) = value.as_object() else {
                return Err(refused(
                    format!("must be a mapping, not {}", what(value)),
                    expected(kind),
                ));
            };
            if let Some(missing) = fields.iter().find(|f| f.required && !map.contains_key(f.name)) {
                return Err(refused(format!("has no `{}`", missing.name), expected(kind)));
            }
            for f in fields {
                let Some(v) = map.get(f.name) else { continue };
                // Inside a mapping a media field takes a URL: files are read for the request's
                // own fields only.
                if let ParamKind::Media { .. } = f.kind
                    && !v.as_str().is_some_and(super::is_url)
                {
                    return Err(refused(
                        format!("`{}` must be an http(s) URL, not `{}`", f.name, display(v)),
                        format!(
                            "put the file where an https URL reaches it, and give that URL as `{}`",
                            f.name
                        ),
                    ));
                }
                if let Err(inner) = check_value(f.kind, v) {
                    return Err(refused(format!("`{}` {}", f.name, inner.message), inner.help));
                }
            }
        }
        ParamKind::Bool | ParamKind::Any => {}
    }
    Ok(())
}

/// A finite number as JSON (whole numbers stay whole: `5`, not `5.0`).
fn number(n: f64) -> Option<Value> {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Some(Value::from(n as i64))
    } else {
        serde_json::Number::from_f64(n).map(Value::Number)
    }
}

/// What kind of value this is, for "must be text, not a list".
fn what(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
        Value::Number(_) => "a number",
        Value::Bool(_) => "true or false",
        Value::Null => "nothing",
        Value::String(_) => "text",
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list of `n` media files against what the field takes.
pub(super) fn check_count(n: usize, (least, most): (Option<usize>, Option<usize>)) -> Result<(), Refused> {
    if least.is_some_and(|lo| n < lo) || most.is_some_and(|hi| n > hi) {
        let wanted = match (least, most) {
            (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (_, hi) => format!("at most {}", hi.unwrap_or(0)),
        };
        return Err(refused(
            format!("has {}", crate::wording::count(n, "file")),
            format!("give {wanted} files or URLs"),
        ));
    }
    Ok(())
}
