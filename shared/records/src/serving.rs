//! What the edge writes as it serves, and what users send back about it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of a prediction log (`inference-logs/<model>/date=/hour=/<id>.jsonl`): one
/// record of one request. `(request_id, index)` is the key delayed labels join on; the drift
/// stage reads `at_us`, `features` and `score`.
///
/// Fields are in alphabetical order so the JSON matches what earlier releases wrote. Every
/// field but `at_us` and `features` reads with a default: a log line is evidence, and a
/// partial one still counts in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionLine {
    /// The traffic arm this line was scored on (`champion`, `challenger`, `shadow`) when a
    /// traffic policy was in force; absent otherwise (the champion, or a pinned version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<crate::models::Arm>,
    /// Microseconds since the epoch (UTC) when the request was served.
    pub at_us: i64,
    /// Model input by column name; `None` (JSON `null`) is a missing value.
    pub features: BTreeMap<String, Option<f64>>,
    /// The record's position in its request.
    #[serde(default)]
    pub index: u64,
    /// The predicted class (classification).
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub request_id: String,
    /// The positive-class probability or the regression value.
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub version: u64,
}

/// An `f32` model value as logged: its shortest decimal form read back as `f64` (so `0.1f32`
/// is logged as `0.1`, not `0.10000000149011612`); non-finite values are missing.
pub fn logged_value(x: f32) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    Some(x.to_string().parse().unwrap_or(f64::from(x)))
}

/// One delayed label (a row of a file under `labels/<model>/`): the truth for one record of
/// one served request. Files are CSV or JSON lines with these columns; `label` is a class
/// name or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    pub request_id: String,
    #[serde(default)]
    pub index: u64,
    pub label: LabelValue,
}

/// A label as written: text (a class) or a number (a class index or a regression target).
/// Readers take a JSON boolean as the text `true`/`false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelValue {
    Number(f64),
    Text(String),
}

impl LabelValue {
    /// The label as a class name (integral numbers without a fraction: `1`, not `1.0`).
    pub fn as_text(&self) -> String {
        match self {
            LabelValue::Text(s) => s.clone(),
            LabelValue::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                format!("{}", *x as i64)
            }
            LabelValue::Number(x) => x.to_string(),
        }
    }

    /// The label as a number, when it is one (or text that parses as one); finite only.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            LabelValue::Number(x) => Some(*x),
            LabelValue::Text(s) => s.trim().parse().ok(),
        }
        .filter(|x: &f64| x.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_lines_keep_f32_values_short_and_read_leniently() {
        let line = PredictionLine {
            arm: None,
            at_us: 5,
            features: BTreeMap::from([
                ("a".to_string(), logged_value(0.1)),
                ("b".to_string(), logged_value(f32::NAN)),
            ]),
            index: 1,
            label: None,
            model: "m".into(),
            request_id: "r".into(),
            score: logged_value(0.25),
            version: 3,
        };
        let json = serde_json::to_string(&line).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"at_us":5,"features":{"a":0.1,"b":null},"index":1,"label":null,"model":"m","request_id":"r","score":0.25,"version":3}"#
        );
        let back: PredictionLine = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, line);
        let partial: PredictionLine =
            serde_json::from_str(r#"{"at_us":1,"features":{}}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(partial.score, None);
        assert!(serde_json::from_str::<PredictionLine>(r#"{"features":{}}"#).is_err());
    }

    #[test]
    fn label_rows_take_text_and_numbers() {
        let rows: Vec<LabelRow> = [
            r#"{"request_id":"a","index":0,"label":"fraud"}"#,
            r#"{"request_id":"a","label":1}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
        assert_eq!(rows[0].label, LabelValue::Text("fraud".into()));
        assert_eq!(rows[1].label, LabelValue::Number(1.0));
        assert_eq!(rows[1].index, 0);
        assert_eq!(rows[1].label.as_text(), "1");
        assert_eq!(LabelValue::Number(0.5).as_text(), "0.5");
        assert_eq!(LabelValue::Text(" 2.5 ".into()).as_number(), Some(2.5));
        assert_eq!(LabelValue::Text("fraud".into()).as_number(), None);
    }
}
