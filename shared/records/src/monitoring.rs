//! What the drift stage leaves for the training stage and for people.

use serde::{Deserialize, Serialize};

/// `requests/retrain/<id>.json`: asks the training stage to train `model` again (written by
/// the drift stage when drift holds, or by a person). The training stage reads the model's
/// current definition and the view's newest version, or `snapshot` when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrainRequest {
    pub model: String,
    /// A dataset snapshot to train on (`<dataset>@<hash>`) instead of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Why (shown in the training run and its record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One drift window as a check reports it: where its report is and its verdict in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftSummary {
    /// `w=<start, UTC, yyyymmddThhmmZ>`.
    pub run: String,
    /// The report's key (`drift/<model>/<run>/report.json`).
    pub report: String,
    /// Prediction-log records in the window.
    pub rows: usize,
    /// False when the window had too few rows to judge.
    pub judged: bool,
    pub dataset_drift: bool,
    pub features_drifted: usize,
    pub features_tested: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrain_requests_written_by_hand_need_only_the_model() {
        let r: RetrainRequest =
            serde_json::from_str(r#"{"model":"fraud"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.snapshot, None);
        let json = serde_json::to_string(&RetrainRequest {
            model: "fraud".into(),
            snapshot: None,
            reason: Some("drift".into()),
        })
        .unwrap_or_default();
        assert_eq!(json, r#"{"model":"fraud","reason":"drift"}"#);
    }
}
