//! A row of `results.jsonl`: the row of `results.csv`, typed for programs (numbers as numbers,
//! `params` as an object, empty cells as `null`, nothing neutralised), keyed by `custom_id` as
//! OpenAI's Batch API output is.

use serde::Serialize;
use serde_json::Value;

use super::ResultRow;

/// One line; the field order is the one people read (`custom_id` first).
#[derive(Debug, Serialize)]
pub struct Line<'r> {
    custom_id: &'r str,
    job_id: &'r str,
    status: &'static str,
    model: &'r str,
    template: Option<&'r str>,
    input: &'r str,
    prompt: Option<&'r str>,
    label: Option<&'r str>,
    params: Value,
    generation_id: Option<&'r str>,
    file: Option<&'r str>,
    bytes: Option<u64>,
    sha256: Option<&'r str>,
    credits: Option<Value>,
    attempts: Option<u32>,
    submitted_at: Option<&'r str>,
    finished_at: Option<&'r str>,
    error: Option<&'r str>,
    /// The manifest's own columns, by name (`{"#SKU": "S-1042", "#Notes": null}`), in the
    /// manifest's order.
    #[serde(serialize_with = "in_order")]
    columns: &'r [(String, String)],
}

impl<'r> Line<'r> {
    pub fn of(row: &'r ResultRow) -> Line<'r> {
        let text = |s: &'r String| Some(s.as_str()).filter(|s| !s.is_empty());
        Line {
            custom_id: &row.custom_id,
            job_id: &row.job_id,
            status: row.status.as_str(),
            model: &row.model,
            template: text(&row.template),
            input: &row.input,
            prompt: text(&row.prompt),
            label: text(&row.label),
            // Written by us as a JSON object; a cell edited by hand into something else stays text.
            params: match row.params.as_str() {
                "" => Value::Object(Default::default()),
                params => serde_json::from_str(params).unwrap_or_else(|_| Value::String(params.into())),
            },
            generation_id: text(&row.generation_id),
            file: text(&row.file),
            bytes: row.bytes,
            sha256: text(&row.sha256),
            credits: row.credits.map(credits),
            attempts: row.attempts,
            submitted_at: text(&row.submitted_at),
            finished_at: text(&row.finished_at),
            error: text(&row.error),
            columns: &row.columns,
        }
    }
}

/// Credits as the whole numbers they are (`29000000`, not `29000000.0`), as `results.csv` has
/// them; a fraction stays one.
pub fn credits(c: f64) -> Value {
    if c.fract() == 0.0 && c.abs() < 9e15 {
        Value::from(c as i64)
    } else {
        serde_json::json!(c)
    }
}

/// An object of the pairs, in their order (a map would sort them); an empty cell is `null`.
fn in_order<S: serde::Serializer>(pairs: &&[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, Some(v).filter(|v| !v.is_empty()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;

    #[test]
    fn a_line_is_typed_and_keyed_for_programs() {
        let row = ResultRow {
            custom_id: "S-1042 / Tokyo Billboard".into(),
            job_id: "0123456789ab".into(),
            model: "pixverse/v5/image-to-video".into(),
            input: "assets/shoe.jpg".into(),
            prompt: "=A shoe".into(),
            status: Status::Completed,
            file: "videos/a.mp4".into(),
            bytes: Some(12),
            credits: Some(29_000_000.0),
            attempts: Some(1),
            params: r#"{"duration":5,"prompt":"=A shoe"}"#.into(),
            columns: vec![("#SKU".into(), "S-1042".into()), ("#Notes".into(), String::new())],
            ..ResultRow::default()
        };
        let line = serde_json::to_string(&Line::of(&row)).unwrap();
        assert!(
            line.starts_with(r#"{"custom_id":"S-1042 / Tokyo Billboard","job_id":"0123456789ab","status":"completed""#),
            "{line}"
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["credits"], serde_json::json!(29000000));
        assert!(!line.contains("29000000.0"), "{line}");
        assert_eq!(value["bytes"], 12);
        assert_eq!(value["params"]["duration"], 5);
        assert_eq!(value["prompt"], "=A shoe", "not neutralised: no spreadsheet reads it");
        assert_eq!(value["template"], Value::Null);
        assert!(
            line.ends_with(r##""columns":{"#SKU":"S-1042","#Notes":null}}"##),
            "{line}"
        );
        assert_eq!(
            serde_json::to_value(Line::of(&ResultRow::default())).unwrap()["params"],
            serde_json::json!({})
        );
    }
}
