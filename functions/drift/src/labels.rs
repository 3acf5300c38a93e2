//! Delayed labels: ground truth uploaded after the fact as `labels/<model>/<file>` objects of
//! (request id, record index, label) rows, joined to the logged predictions by those keys
//! (every inference response carries both), and the live metric of each window.
//!
//! Files are CSV with a header (`request_id`, `index`, `label`; other columns are ignored) or
//! JSON lines (`{"request_id", "index", "label"}`). A row that cannot be read is skipped and
//! reported with its file, row, column and rule; the rest still count. A later row for the
//! same (request id, index) replaces an earlier one (files in key order), so a correction is
//! an upload.

use std::collections::HashMap;
use std::io::Cursor;

use polars::prelude::*;
use records::serving::LabelRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage::Store;

use crate::DriftError;

/// At most this many problems are listed (all are counted).
const MAX_PROBLEMS: usize = 20;

/// A label as uploaded: a class name, or a number (regression, or 0/1 classes).
pub use records::serving::LabelValue as Truth;

/// Every label of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub rows: HashMap<(String, u64), Truth>,
    pub objects: usize,
    pub skipped_rows: usize,
    /// `file row N: column: rule` for the first skipped rows.
    pub problems: Vec<String>,
    /// Changes whenever a label object is added or replaced: performance is recomputed then.
    pub fingerprint: String,
}

impl Labels {
    fn problem(&mut self, message: String) {
        self.skipped_rows += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(message);
        }
    }

    fn add(
        &mut self,
        file: &str,
        row: usize,
        id: Option<&str>,
        index: Option<&str>,
        label: Option<Truth>,
    ) {
        let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
            return self.problem(format!("{file} row {row}: request_id: missing"));
        };
        let Some(index) = index.and_then(|s| s.trim().parse::<u64>().ok()) else {
            return self.problem(format!(
                "{file} row {row}: index: not a non-negative integer"
            ));
        };
        let Some(label) = label else {
            return self.problem(format!("{file} row {row}: label: missing"));
        };
        let row = LabelRow {
            request_id: id.to_string(),
            index,
            label,
        };
        self.rows.insert((row.request_id, row.index), row.label);
    }

    /// Adds the rows of one object (CSV, or JSON lines for `.jsonl`/`.json`/`.ndjson`).
    pub fn add_object(&mut self, key: &str, bytes: &[u8]) {
        self.objects += 1;
        let lower = key.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".json") || lower.ends_with(".ndjson") {
            for (i, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let row = i + 1;
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    self.problem(format!("{key} row {row}: not a JSON object"));
                    continue;
                };
                let id = match &v["request_id"] {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                };
                let index = match &v["index"] {
                    Value::Number(n) => Some(n.to_string()),
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                };
                let label = match &v["label"] {
                    Value::String(s) => Some(Truth::Text(s.clone())),
                    Value::Number(n) => n.as_f64().map(Truth::Number),
                    Value::Bool(b) => Some(Truth::Text(b.to_string())),
                    _ => None,
                };
                self.add(key, row, id.as_deref(), index.as_deref(), label);
            }
            return;
        }
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_raise_if_empty(false)
            .into_reader_with_file_handle(Cursor::new(bytes.to_vec()))
            .finish();
        let df = match df {
            Ok(df) => df,
            Err(e) => {
                self.problem(format!("{key}: not a CSV file: {e}"));
                return;
            }
        };
        let column =
            |name: &str| -> Option<StringChunked> { df.column(name).ok()?.str().ok().cloned() };
        let (Some(ids), Some(indexes), Some(labels)) =
            (column("request_id"), column("index"), column("label"))
        else {
            self.problem(format!(
                "{key}: the header must name request_id, index and label"
            ));
            return;
        };
        for i in 0..df.height() {
            // Row numbers as a spreadsheet shows them: the header is row 1.
            self.add(
                key,
                i + 2,
                ids.get(i),
                indexes.get(i),
                labels.get(i).map(|s| Truth::Text(s.to_string())),
            );
        }
    }
}

/// Every label object of `model`, read in key order.
pub async fn read(store: &Store, model: &str) -> Result<Labels, DriftError> {
    use sha2::Digest;
    let mut labels = Labels::default();
    let mut infos = store.list(&records::keys::labels_prefix(model)).await?;
    infos.sort_by(|a, b| a.key.cmp(&b.key));
    let mut h = sha2::Sha256::new();
    for info in &infos {
        h.update(format!("{}\n{}\n{:?}\n", info.key, info.size, info.etag).as_bytes());
        let obj = store.get(&info.key).await?;
        labels.add_object(&info.key, &obj.bytes);
    }
    labels.fingerprint = hex::encode(h.finalize());
    Ok(labels)
}

/// One window's predictions that have labels: (score, predicted label, truth).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Joined {
    pub rows: Vec<(f64, Option<String>, Truth)>,
}

/// The live performance of one window (`drift/<model>/<run>/performance.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub format: u32,
    pub model: String,
    pub version: u64,
    pub run: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    /// Predictions logged in the window, and how many have labels.
    pub predictions: usize,
    pub labelled: usize,
    /// The judged metric, its live value and the model's test value.
    pub metric: String,
    pub value: Option<f64>,
    pub test_value: Option<f64>,
    /// Below the floor (above it, for error metrics) with enough labels.
    pub degraded: bool,
    pub rule: String,
    /// Every live metric computed for the task.
    pub metrics: std::collections::BTreeMap<String, f64>,
    pub label_objects: usize,
    pub skipped_label_rows: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_problems: Vec<String>,
    pub labels_fingerprint: String,
    pub created_at: String,
    /// The challenger's live metrics on the same window (canary or shadow predictions
    /// joined to the same labels), beside the champion's so a promotion can be decided on
    /// live traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger: Option<ArmPerformance>,
}

/// One traffic arm's live metrics in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmPerformance {
    pub version: u64,
    pub predictions: usize,
    pub labelled: usize,
    /// The judged metric's live value.
    pub value: Option<f64>,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// True for metrics where lower is better.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "rmse" | "mae" | "log_loss" | "brier")
}

/// The live metrics of joined rows for a model of `task` with `classes` (binary: the
/// positive class is the second).
pub fn live_metrics(
    task: &str,
    classes: &[String],
    rows: &[(f64, Option<String>, Truth)],
) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    if rows.is_empty() {
        return out;
    }
    match task {
        "regression" => {
            let (y, p): (Vec<f64>, Vec<f64>) = rows
                .iter()
                .filter_map(|(s, _, t)| Some((t.as_number()?, *s)))
                .unzip();
            if !y.is_empty() {
                out.insert("rmse".into(), model_metrics::rmse(&y, &p));
                out.insert("mae".into(), model_metrics::mae(&y, &p));
            }
        }
        _ => {
            let correct = rows
                .iter()
                .filter(|(_, predicted, truth)| {
                    predicted.as_deref() == Some(truth.as_text().as_str())
                })
                .count();
            out.insert("accuracy".into(), correct as f64 / rows.len() as f64);
            if task == "binary-classification"
                && let Some(positive) = classes.get(1)
            {
                let y: Vec<bool> = rows
                    .iter()
                    .map(|(_, _, t)| t.as_text() == *positive)
                    .collect();
                let p: Vec<f64> = rows.iter().map(|(s, _, _)| *s).collect();
                if let Some(v) = model_metrics::roc_auc(&y, &p) {
                    out.insert("roc_auc".into(), v);
                }
                if let Some(v) = model_metrics::average_precision(&y, &p) {
                    out.insert("pr_auc".into(), v);
                }
                out.insert("log_loss".into(), model_metrics::log_loss(&y, &p));
                out.insert("brier".into(), model_metrics::brier(&y, &p));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_lines_are_read_and_bad_rows_named() {
        let mut l = Labels::default();
        l.add_object(
            "labels/m/a.csv",
            b"request_id,index,label,note\nr1,0,true,x\nr1,1,false,\n,2,true,\nr2,minus,true,\n",
        );
        l.add_object(
            "labels/m/b.jsonl",
            b"{\"request_id\":\"r2\",\"index\":0,\"label\":\"true\"}\n{\"request_id\":\"r3\",\"index\":0,\"label\":2.5}\nnot json\n",
        );
        assert_eq!(l.rows.len(), 4, "{l:#?}");
        assert_eq!(l.rows[&("r1".into(), 1)], Truth::Text("false".into()));
        assert_eq!(l.rows[&("r3".into(), 0)].as_number(), Some(2.5));
        assert_eq!(l.skipped_rows, 3);
        assert_eq!(
            l.problems,
            [
                "labels/m/a.csv row 4: request_id: missing",
                "labels/m/a.csv row 5: index: not a non-negative integer",
                "labels/m/b.jsonl row 3: not a JSON object",
            ]
        );
        let mut bad = Labels::default();
        bad.add_object("labels/m/c.csv", b"id,label\nr1,true\n");
        assert!(bad.problems[0].contains("must name request_id, index and label"));
    }

    #[test]
    fn binary_live_metrics_follow_the_positive_class() {
        let classes = ["false".to_string(), "true".to_string()];
        let t = |s: &str| Truth::Text(s.into());
        let rows = vec![
            (0.9, Some("true".into()), t("true")),
            (0.8, Some("true".into()), t("false")),
            (0.3, Some("false".into()), t("true")),
            (0.1, Some("false".into()), t("false")),
        ];
        let m = live_metrics("binary-classification", &classes, &rows);
        assert_eq!(m["accuracy"], 0.5);
        assert_eq!(m["roc_auc"], 0.75);
        let r = live_metrics(
            "regression",
            &[],
            &[
                (1.0, None, Truth::Number(2.0)),
                (3.0, None, Truth::Number(3.0)),
            ],
        );
        assert!((r["rmse"] - (0.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(r["mae"], 0.5);
    }
}
