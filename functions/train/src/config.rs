//! The project's training file: what to train, how hard to search, how to judge and when to
//! promote. Reference: `docs/training.md`.

use serde::{Deserialize, Serialize};

use crate::metrics::ThresholdRule;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: invalid TOML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    BinaryClassification,
    MulticlassClassification,
    Regression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Gradient-boosted trees.
    Gbm,
    /// Logistic (classification) or linear (regression) model.
    Linear,
    /// A small multi-layer perceptron.
    Mlp,
}

/// Metrics a search can optimise, each with its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RocAuc,
    PrAuc,
    LogLoss,
    Brier,
    F1,
    Accuracy,
    F1Macro,
    Rmse,
    Mae,
    R2,
}

impl Metric {
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::LogLoss | Metric::Brier | Metric::Rmse | Metric::Mae
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::RocAuc => "roc_auc",
            Metric::PrAuc => "pr_auc",
            Metric::LogLoss => "log_loss",
            Metric::Brier => "brier",
            Metric::F1 => "f1",
            Metric::Accuracy => "accuracy",
            Metric::F1Macro => "f1_macro",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    /// Whether the metric is defined for `task`.
    pub fn fits(self, task: Task) -> bool {
        match task {
            Task::BinaryClassification => matches!(
                self,
                Metric::RocAuc | Metric::PrAuc | Metric::LogLoss | Metric::Brier | Metric::F1
            ),
            Task::MulticlassClassification => {
                matches!(self, Metric::Accuracy | Metric::F1Macro | Metric::LogLoss)
            }
            Task::Regression => matches!(self, Metric::Rmse | Metric::Mae | Metric::R2),
        }
    }
}

/// Random search with successive halving (ASHA-style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Search {
    /// Configurations sampled per family.
    pub trials: usize,
    pub seed: u64,
    /// Keep the best 1/reduction_factor of trials at each rung.
    pub reduction_factor: usize,
    /// The first rung's share of the full budget (trees, epochs or rows).
    pub min_resource: f64,
    /// Trials run at once; 0 = the number of cores.
    pub parallel: usize,
}

impl Default for Search {
    fn default() -> Search {
        Search {
            trials: 8,
            seed: 42,
            reduction_factor: 3,
            min_resource: 0.25,
            parallel: 0,
        }
    }
}

/// When a new version becomes champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Promotion {
    /// Promote automatically when the rule holds; otherwise register only.
    pub auto: bool,
    /// Required margin over the champion on the same test set, in the main metric's
    /// direction (0: at least as good).
    pub min_improvement: f64,
    /// A floor the candidate's main metric must reach (in its direction), if any.
    pub min_metric: Option<f64>,
}

impl Default for Promotion {
    fn default() -> Promotion {
        Promotion {
            auto: true,
            min_improvement: 0.0,
            min_metric: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingFile {
    model: String,
    view: Option<String>,
    /// Several views: the first provides the label events, the others are joined onto them.
    views: Option<Vec<String>>,
    task: Option<Task>,
    #[serde(default)]
    families: Vec<Family>,
    metric: Option<Metric>,
    #[serde(default)]
    search: Search,
    threshold: Option<ThresholdRule>,
    #[serde(default)]
    promotion: Promotion,
    /// Train on every new version of the view (default) or only on retrain requests.
    #[serde(default = "yes")]
    train_on_new_features: bool,
    #[serde(default = "bootstrap")]
    bootstrap_resamples: usize,
    #[serde(default)]
    class_weight: ClassWeight,
    positive_class: Option<String>,
    /// The drift stage's settings (`drift::DriftSettings`): kept in the model's training
    /// file so one file describes the model's lifecycle; training does not read them.
    #[serde(default)]
    #[allow(dead_code)]
    drift: Option<toml::Value>,
}

/// How classes are weighted in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassWeight {
    /// Each class carries the same total weight (rare classes count as much as common ones).
    #[default]
    Balanced,
    /// Every row weighs 1 (better-calibrated probabilities on imbalanced data).
    None,
}

fn yes() -> bool {
    true
}

fn bootstrap() -> usize {
    200
}

/// The checked training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// Registry name of the model.
    pub model: String,
    /// The feature view whose label events (and split) the model trains on.
    pub view: String,
    /// Further views joined point-in-time onto those label events, in input order.
    #[serde(default)]
    pub join: Vec<String>,
    /// `None`: inferred from the label when training starts.
    pub task: Option<Task>,
    pub families: Vec<Family>,
    /// `None`: the task's default (PR-AUC, log-loss, RMSE).
    pub metric: Option<Metric>,
    pub search: Search,
    pub threshold: ThresholdRule,
    pub promotion: Promotion,
    pub train_on_new_features: bool,
    pub bootstrap_resamples: usize,
    pub class_weight: ClassWeight,
    /// The positive class of a binary label (default: the larger or later value).
    pub positive_class: Option<String>,
}

impl TrainingConfig {
    pub fn balanced(&self) -> bool {
        self.class_weight == ClassWeight::Balanced
    }

    pub fn from_toml(text: &str, file: &str) -> Result<TrainingConfig, ConfigError> {
        let raw: TrainingFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.into(),
            message: e.to_string(),
        })?;
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            file: file.into(),
            field: field.into(),
            message,
        };
        if !contracts::is_identifier(&raw.model) {
            return Err(invalid(
                "model",
                format!(
                    "'{}' must be 1-64 characters of a-z, 0-9, '_' or '-'",
                    raw.model
                ),
            ));
        }
        let (view, join) = match (raw.view, raw.views) {
            (Some(v), None) => (v, Vec::new()),
            (None, Some(vs)) if !vs.is_empty() => {
                let mut vs = vs.into_iter();
                let first = vs.next().unwrap_or_default();
                (first, vs.collect())
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "views",
                    "give either view (one) or views (several), not both".into(),
                ));
            }
            (None, _) => {
                return Err(invalid(
                    "view",
                    "name the feature view to train on (view = \"...\"), or several (views = [...], the first providing the labels)".into(),
                ));
            }
        };
        for (i, v) in std::iter::once(&view).chain(&join).enumerate() {
            if std::iter::once(&view).chain(&join).take(i).any(|w| w == v) {
                return Err(invalid("views", format!("view '{v}' is listed twice")));
            }
        }
        let families = if raw.families.is_empty() {
            vec![Family::Gbm, Family::Linear]
        } else {
            raw.families
        };
        if let (Some(task), Some(metric)) = (raw.task, raw.metric)
            && !metric.fits(task)
        {
            return Err(invalid(
                "metric",
                format!("{} does not apply to {task:?}", metric.name()),
            ));
        }
        let s = &raw.search;
        if s.trials == 0
            || s.reduction_factor < 2
            || !(s.min_resource > 0.0 && s.min_resource <= 1.0)
        {
            return Err(invalid(
                "search",
                "trials >= 1, reduction_factor >= 2 and 0 < min_resource <= 1".into(),
            ));
        }
        let threshold = raw.threshold.unwrap_or(ThresholdRule::MaxF1);
        match threshold {
            ThresholdRule::Fixed { value: v }
            | ThresholdRule::Precision { target: v }
            | ThresholdRule::Recall { target: v }
                if !(0.0..=1.0).contains(&v) =>
            {
                return Err(invalid("threshold", format!("{v} is not in [0, 1]")));
            }
            _ => {}
        }
        Ok(TrainingConfig {
            model: raw.model,
            view,
            join,
            task: raw.task,
            families,
            metric: raw.metric,
            search: raw.search,
            threshold,
            promotion: raw.promotion,
            train_on_new_features: raw.train_on_new_features,
            bootstrap_resamples: raw.bootstrap_resamples,
            class_weight: raw.class_weight,
            positive_class: raw.positive_class,
        })
    }

    /// Every view the model reads, label view first.
    pub fn views(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.view.as_str()).chain(self.join.iter().map(String::as_str))
    }

    /// The metric to optimise for `task`.
    pub fn metric_for(&self, task: Task) -> Metric {
        self.metric.unwrap_or(match task {
            Task::BinaryClassification => Metric::PrAuc,
            Task::MulticlassClassification => Metric::LogLoss,
            Task::Regression => Metric::Rmse,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let c = TrainingConfig::from_toml(
            r#"
model = "fraud"
view = "card_activity"
task = "binary-classification"
families = ["gbm", "linear", "mlp"]
metric = "pr_auc"
threshold = { strategy = "precision", target = 0.9 }
[search]
trials = 12
seed = 7
[promotion]
min_improvement = 0.005
"#,
            "training.toml",
        )
        .unwrap();
        assert_eq!(c.families.len(), 3);
        assert_eq!(c.threshold, ThresholdRule::Precision { target: 0.9 });
        assert_eq!(c.search.reduction_factor, 3);
        assert!(c.promotion.auto);
        assert_eq!(c.metric_for(Task::BinaryClassification), Metric::PrAuc);
    }

    #[test]
    fn several_views_name_the_label_view_first() {
        let c = TrainingConfig::from_toml(
            "model = \"m\"\nviews = [\"departures\", \"aircraft\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.view, "departures");
        assert_eq!(c.join, vec!["aircraft".to_string()]);
        assert_eq!(c.views().collect::<Vec<_>>(), ["departures", "aircraft"]);
    }

    #[test]
    fn defaults_and_mistakes() {
        let c = TrainingConfig::from_toml("model = \"m\"\nview = \"v\"\n", "t.toml").unwrap();
        assert_eq!(c.families, vec![Family::Gbm, Family::Linear]);
        assert_eq!(c.threshold, ThresholdRule::MaxF1);
        assert_eq!(c.metric_for(Task::Regression), Metric::Rmse);
        for (body, needle) in [
            ("model = \"M\"\nview = \"v\"", "model"),
            (
                "model = \"m\"\nview = \"v\"\ntask = \"regression\"\nmetric = \"roc_auc\"",
                "does not apply",
            ),
            (
                "model = \"m\"\nview = \"v\"\n[search]\ntrials = 0",
                "trials",
            ),
            (
                "model = \"m\"\nview = \"v\"\nthreshold = { strategy = \"fixed\", value = 2.0 }",
                "not in [0, 1]",
            ),
            ("model = \"m\"\nview = \"v\"\nsurprise = 1", "unknown field"),
            ("model = \"m\"", "name the feature view"),
            (
                "model = \"m\"\nview = \"v\"\nviews = [\"v\", \"w\"]",
                "not both",
            ),
            ("model = \"m\"\nviews = [\"v\", \"v\"]", "listed twice"),
            (
                "model = \"m\"\nview = \"v\"\nfamilies = [\"svm\"]",
                "unknown variant",
            ),
        ] {
            let err = TrainingConfig::from_toml(body, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("t.toml: "), "{err}");
            assert!(err.contains(needle), "{body} => {err}");
        }
    }
}
