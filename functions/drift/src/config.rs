//! A model's drift settings: the `[drift]` table of its training file (the training job
//! ignores it), with the common defaults so users get familiar answers.
//!
//! ```toml
//! [drift]
//! window = "1d"        # length of a current window (s, m, h or d)
//! min_rows = 100       # smaller windows are reported but not judged
//! share = 0.5          # the dataset drifts when at least this share of features drift
//! consecutive = 3      # drifted windows in a row before a retrain request
//! logs = "s3://mlpipe-inference-logs?endpoint=..."  # where prediction logs are (default: the pipeline store)
//!
//! [drift.features.amount]
//! test = "psi"         # ks | wasserstein | psi | chisquare | jensenshannon
//! threshold = 0.2
//!
//! [drift.performance]  # live metric from delayed labels (labels/<model>/...)
//! metric = "roc_auc"   # default: roc_auc (binary), accuracy (multi-class), rmse (regression)
//! floor = 0.8          # degraded below it (above it for rmse, mae, log_loss, brier);
//!                      # without a floor: worse than the test metric by more than max_drop
//! max_drop = 0.1       # relative to the model's test metric
//! min_labels = 50      # fewer labelled predictions in a window are reported, not judged
//! lookback = 7         # windows whose performance is re-evaluated when labels arrive
//! ```
//!
//! Defaults per feature (Evidently's convention): with a reference of at most 1,000 values,
//! Kolmogorov-Smirnov (numeric) or chi-square (categorical) with p < 0.05; above that,
//! Wasserstein distance normalised by the reference standard deviation >= 0.1 (numeric) or
//! Jensen-Shannon distance >= 0.1 (categorical).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DriftError;

/// Reference size up to which the default tests are the hypothesis tests.
pub const SMALL_REFERENCE: usize = 1_000;

/// A statistical test or distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    /// Two-sample Kolmogorov-Smirnov; drift when p < threshold.
    Ks,
    /// Wasserstein-1 distance / reference standard deviation; drift when >= threshold.
    Wasserstein,
    /// Population stability index over the reference deciles (numeric) or categories;
    /// drift when >= threshold.
    Psi,
    /// Pearson's chi-square on category counts; drift when p < threshold.
    Chisquare,
    /// Jensen-Shannon distance (natural log) of category shares; drift when >= threshold.
    Jensenshannon,
}

impl Test {
    /// Hypothesis tests judge by p-value (drift below the threshold), distances by value.
    pub fn is_p_value(self) -> bool {
        matches!(self, Test::Ks | Test::Chisquare)
    }

    pub fn default_threshold(self) -> f64 {
        match self {
            Test::Ks | Test::Chisquare => 0.05,
            Test::Wasserstein | Test::Jensenshannon => 0.1,
            Test::Psi => 0.2,
        }
    }

    pub fn applies_to_numeric(self) -> bool {
        matches!(self, Test::Ks | Test::Wasserstein | Test::Psi)
    }

    pub fn applies_to_categorical(self) -> bool {
        matches!(self, Test::Chisquare | Test::Jensenshannon | Test::Psi)
    }
}

/// Per-feature override.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRule {
    pub test: Option<Test>,
    pub threshold: Option<f64>,
    /// Leave this feature out of the dataset verdict (still reported).
    #[serde(default)]
    pub ignore: bool,
}

/// Live performance from delayed labels: the `[drift.performance]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceRule {
    pub metric: Option<String>,
    pub floor: Option<f64>,
    pub max_drop: f64,
    pub min_labels: usize,
    pub lookback: usize,
}

impl Default for PerformanceRule {
    fn default() -> PerformanceRule {
        PerformanceRule {
            metric: None,
            floor: None,
            max_drop: 0.1,
            min_labels: 50,
            lookback: 7,
        }
    }
}

/// Live metrics the drift stage computes.
pub const LIVE_METRICS: &[&str] = &[
    "roc_auc", "pr_auc", "accuracy", "log_loss", "brier", "rmse", "mae",
];

impl PerformanceRule {
    /// The judged metric for a model of `task`.
    pub fn metric_for(&self, task: &str) -> String {
        self.metric.clone().unwrap_or_else(|| {
            match task {
                "binary-classification" => "roc_auc",
                "regression" => "rmse",
                _ => "accuracy",
            }
            .to_string()
        })
    }
}

/// The checked drift settings of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSettings {
    /// Window length, e.g. "1h" or "1d".
    pub window: String,
    pub min_rows: usize,
    pub share: f64,
    pub consecutive: usize,
    /// Store URL of the prediction logs (None: the pipeline's store).
    pub logs: Option<String>,
    pub features: BTreeMap<String, FeatureRule>,
    pub performance: PerformanceRule,
}

impl Default for DriftSettings {
    fn default() -> DriftSettings {
        DriftSettings {
            window: "1d".into(),
            min_rows: 100,
            share: 0.5,
            consecutive: 3,
            logs: None,
            features: BTreeMap::new(),
            performance: PerformanceRule::default(),
        }
    }
}

/// Parses a duration such as `90s`, `30m`, `1h`, `1d` into microseconds.
pub fn parse_window(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let unit_us: i64 = match unit.trim() {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return None,
    };
    n.checked_mul(unit_us)
}

impl DriftSettings {
    /// The `[drift]` table of a training file (`file` names it in errors); defaults when
    /// the table is absent.
    pub fn from_training_toml(text: &str, file: &str) -> Result<DriftSettings, DriftError> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            drift: Option<toml::Value>,
        }
        let outer: Outer = toml::from_str(text).map_err(|e| DriftError::Config {
            file: file.into(),
            message: e.to_string(),
        })?;
        let settings: DriftSettings = match outer.drift {
            None => DriftSettings::default(),
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| DriftError::Config {
                    file: file.into(),
                    message: format!("[drift]: {e}"),
                })?,
        };
        settings.check(file)?;
        Ok(settings)
    }

    fn check(&self, file: &str) -> Result<(), DriftError> {
        let bad = |message: String| DriftError::Config {
            file: file.into(),
            message,
        };
        if parse_window(&self.window).is_none() {
            return Err(bad(format!(
                "[drift] window = \"{}\" is not a duration like \"30m\", \"1h\" or \"1d\"",
                self.window
            )));
        }
        if !(self.share > 0.0 && self.share <= 1.0) {
            return Err(bad(format!(
                "[drift] share = {} must be in (0, 1]",
                self.share
            )));
        }
        if self.consecutive == 0 {
            return Err(bad("[drift] consecutive must be at least 1".into()));
        }
        let p = &self.performance;
        if let Some(m) = &p.metric
            && !LIVE_METRICS.contains(&m.as_str())
        {
            return Err(bad(format!(
                "[drift.performance] metric = \"{m}\" is not one of {}",
                LIVE_METRICS.join(", ")
            )));
        }
        if p.floor.is_some_and(|f| !f.is_finite()) || !(p.max_drop.is_finite() && p.max_drop >= 0.0)
        {
            return Err(bad(
                "[drift.performance] floor and max_drop must be finite (max_drop >= 0)".into(),
            ));
        }
        if p.lookback == 0 {
            return Err(bad("[drift.performance] lookback must be at least 1".into()));
        }
        for (name, rule) in &self.features {
            if let Some(t) = rule.threshold
                && !(t.is_finite() && t >= 0.0)
            {
                return Err(bad(format!(
                    "[drift.features.{name}] threshold = {t} must be a finite number >= 0"
                )));
            }
        }
        Ok(())
    }

    pub fn window_us(&self) -> i64 {
        parse_window(&self.window).unwrap_or(86_400_000_000)
    }

    /// The test and threshold for `feature`, given its kind and the reference size.
    pub fn rule_for(&self, feature: &str, categorical: bool, reference_n: usize) -> (Test, f64) {
        let rule = self.features.get(feature);
        let default = match (categorical, reference_n <= SMALL_REFERENCE) {
            (false, true) => Test::Ks,
            (false, false) => Test::Wasserstein,
            (true, true) => Test::Chisquare,
            (true, false) => Test::Jensenshannon,
        };
        let test = rule
            .and_then(|r| r.test)
            .filter(|t| {
                if categorical {
                    t.applies_to_categorical()
                } else {
                    t.applies_to_numeric()
                }
            })
            .unwrap_or(default);
        let threshold = rule
            .and_then(|r| r.threshold)
            .unwrap_or_else(|| test.default_threshold());
        (test, threshold)
    }

    pub fn ignored(&self, feature: &str) -> bool {
        self.features.get(feature).is_some_and(|r| r.ignore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_common_convention_and_overrides_apply() {
        let s =
            DriftSettings::from_training_toml("model = \"m\"\nview = \"v\"\n", "t.toml").unwrap();
        assert_eq!(s, DriftSettings::default());
        assert_eq!(s.rule_for("x", false, 500), (Test::Ks, 0.05));
        assert_eq!(s.rule_for("x", false, 5000), (Test::Wasserstein, 0.1));
        assert_eq!(s.rule_for("c", true, 500), (Test::Chisquare, 0.05));
        assert_eq!(s.rule_for("c", true, 5000), (Test::Jensenshannon, 0.1));
        let s = DriftSettings::from_training_toml(
            "model = \"m\"\n[drift]\nwindow = \"1h\"\nconsecutive = 2\n[drift.features.x]\ntest = \"psi\"\nthreshold = 0.25\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.window_us(), 3_600_000_000);
        assert_eq!(s.rule_for("x", false, 50), (Test::Psi, 0.25));
    }

    #[test]
    fn bad_settings_name_the_file_and_the_field() {
        for (text, needle) in [
            ("[drift]\nwindow = \"soon\"\n", "window"),
            ("[drift]\nshare = 0\n", "share"),
            ("[drift]\nconsecutive = 0\n", "consecutive"),
            ("[drift]\nwindwo = \"1h\"\n", "windwo"),
            ("[drift.features.x]\ntest = \"magic\"\n", "magic"),
            ("[drift.features.x]\nthreshold = -1.0\n", "threshold"),
            ("[drift.performance]\nmetric = \"auc\"\n", "auc"),
            ("[drift.performance]\nlookback = 0\n", "lookback"),
            ("[drift.performance]\nfloor = \"high\"\n", "floor"),
        ] {
            let e = DriftSettings::from_training_toml(text, "t.toml").unwrap_err();
            let e = e.to_string();
            assert!(e.contains("t.toml") && e.contains(needle), "{text}: {e}");
        }
        assert_eq!(parse_window("90s"), Some(90_000_000));
        assert_eq!(parse_window("1w"), None);
        assert_eq!(parse_window(""), None);
    }
}
