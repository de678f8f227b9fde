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

/// Makes a written value into the type the parameter wants (numbers from text, enum case).
pub(super) fn coerce(kind: ParamKind, value: &Value) -> Result<Value, String> {
    let value = match (kind, value) {
        (ParamKind::IntChoice(_) | ParamKind::IntRange(..), Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => return Err(format!("must be a whole number, not `{s}`")),
        },
        (ParamKind::Choice(options), Value::String(s)) => {
            let folded = catalog::fold_name(s);
            match options.iter().find(|o| catalog::fold_name(o) == folded) {
                Some(exact) => Value::from(*exact),
                None => value.clone(),
            }
        }
        (ParamKind::Choice(_) | ParamKind::Text { .. }, Value::Number(n)) => Value::String(n.to_string()),
        _ => value.clone(),
    };
    check_value(kind, &value)?;
    Ok(value)
}

pub(super) fn check_value(kind: ParamKind, value: &Value) -> Result<(), String> {
    match kind {
        ParamKind::Text { max_chars } => {
            let Some(s) = value.as_str() else {
                return Err("must be text".into());
            };
            if let Some(max) = max_chars {
                let n = s.chars().count();
                if n > max {
                    return Err(format!("is {n} characters long; the most is {max}"));
                }
            }
            if s.trim().is_empty() {
                return Err("is empty".into());
            }
        }
        ParamKind::Choice(options) => {
            let s = value.as_str().unwrap_or_default();
            if !options.contains(&s) {
                let near = catalog::closest(s, options.iter().copied())
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                return Err(format!(
                    "is `{}`; {near}it must be one of {}",
                    display(value),
                    catalog::quoted_list(options)
                ));
            }
        }
        ParamKind::IntChoice(options) => {
            let ok = value.as_i64().is_some_and(|i| options.contains(&i));
            if !ok {
                let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
                let list: Vec<&str> = list.iter().map(String::as_str).collect();
                return Err(format!(
                    "is `{}`; it must be one of {}",
                    display(value),
                    catalog::quoted_list(&list)
                ));
            }
        }
        ParamKind::IntRange(lo, hi) => {
            let ok = value.as_i64().is_some_and(|i| (lo..=hi).contains(&i));
            if !ok {
                return Err(format!(
                    "is `{}`; it must be a whole number from {lo} to {hi}",
                    display(value)
                ));
            }
        }
    }
    Ok(())
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
