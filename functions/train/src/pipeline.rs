//! The pure training pipeline over an in-memory dataset: search, re-fit the winner on
//! train + validation, choose the threshold, evaluate on test, export and check that tract
//! reproduces the model. No I/O; `job` wraps it with the store, registry and tracking.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::{Metric, Task, TrainingConfig};
use crate::data::{Dataset, Split, class_weights};
use crate::evaluate::{self, Outputs};
use crate::export;
use crate::metrics::{self, Interval};
use crate::model::{self, Budget, Fitted, Params};
use crate::search::{self, Selection, Trial};

/// Largest difference allowed between tract's outputs and the training library's own
/// (absolute, or relative for values beyond 1 in magnitude).
pub const PARITY_TOLERANCE: f64 = 1e-5;

/// A trained, evaluated and exported model, ready to register.
#[derive(Debug)]
pub struct Candidate {
    pub task: Task,
    pub classes: Vec<String>,
    pub features: Vec<String>,
    pub metric: Metric,
    pub params: Params,
    pub best_trial: usize,
    pub trials: Vec<Trial>,
    pub rungs: Vec<f64>,
    /// How the search judged its trials (holdout, or cross-validation on small data).
    pub selection: Selection,
    pub threshold: Option<f64>,
    /// Test-split metrics of the re-fitted model.
    pub test_metrics: BTreeMap<String, f64>,
    /// Main metric on test (`None` when undefined there).
    pub main: Option<f64>,
    pub interval: Option<Interval>,
    /// `(feature, importance)`, most important first.
    pub importance: Vec<(String, f64)>,
    pub onnx: Vec<u8>,
    /// Largest |tract - training library| over the test rows.
    pub parity: f64,
    /// Per test row, the score serving logs: the positive-class probability (binary), the
    /// top class's probability (multi-class) or the value (regression).
    pub test_scores: Vec<f32>,
    pub description: String,
    pub timings: BTreeMap<String, f64>,
    pub model: Fitted,
}

/// Summary of a candidate for records and reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub metric: String,
    pub value: Option<f64>,
    pub interval: Option<Interval>,
    pub threshold: Option<f64>,
    pub params: Params,
    pub best_trial: usize,
    pub model: String,
    pub parity_max_abs_diff: f64,
    /// How the search judged its trials (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

impl Candidate {
    pub fn summary(&self) -> Summary {
        Summary {
            metric: self.metric.name().into(),
            value: self.main,
            interval: self.interval,
            threshold: self.threshold,
            params: self.params.clone(),
            best_trial: self.best_trial,
            model: self.description.clone(),
            parity_max_abs_diff: self.parity,
            selection: Some(self.selection.clone()),
        }
    }
}

/// The model's per-row outputs from tract's run of `onnx`, in the training library's layout.
pub fn onnx_outputs(
    onnx: &[u8],
    ds: &Dataset,
    rows: &[usize],
    task: Task,
) -> Result<Vec<f64>, TrainError> {
    let out = export::run_onnx(onnx, &ds.row_major(rows), rows.len(), ds.n_features())
        .map_err(TrainError::Export)?;
    Ok(match task {
        Task::BinaryClassification => out.iter().map(|r| f64::from(r[1])).collect(),
        Task::MulticlassClassification => out.iter().flatten().map(|v| f64::from(*v)).collect(),
        Task::Regression => out.iter().map(|r| f64::from(r[0])).collect(),
    })
}

pub fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(
            if a.len() == b.len() {
                0.0
            } else {
                f64::INFINITY
            },
            f64::max,
        )
}

/// Runs the whole pipeline on `ds` as `cfg` says.
pub fn train(
    ds: &Dataset,
    cfg: &TrainingConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Candidate, TrainError> {
    let metric = cfg.metric_for(ds.task);
    if !metric.fits(ds.task) {
        return Err(TrainError::Config(format!(
            "metric {} does not apply to {}",
            metric.name(),
            model::task_name(ds.task)
        )));
    }
    // Judged on a validation split, the search needs every class there; cross-validation
    // (small data) draws its folds from train + validation, stratified.
    if ds.task != Task::Regression && !search::uses_cross_validation(ds) {
        let valid = ds.rows(Split::Validation);
        let seen: std::collections::BTreeSet<u64> = valid.iter().map(|&i| ds.y[i] as u64).collect();
        if seen.len() < ds.n_classes() {
            let missing: Vec<&str> = (0..ds.n_classes())
                .filter(|c| !seen.contains(&(*c as u64)))
                .map(|c| ds.classes[c].as_str())
                .collect();
            return Err(TrainError::Data {
                column: "validation split".into(),
                message: format!(
                    "{} validation rows hold no example of class(es) {missing:?}, so the search cannot be judged; more labelled data (or a different split) is needed",
                    valid.len()
                ),
            });
        }
    }
    let mut timings = BTreeMap::new();
    let weights = class_weights(&ds.y, ds.task, cfg.balanced());
    let started = Instant::now();
    let outcome = search::run(ds, &cfg.families, &cfg.search, metric, &weights, progress)?;
    timings.insert("search_s".to_string(), started.elapsed().as_secs_f64());

    let valid = ds.rows(Split::Validation);
    let test = ds.rows(Split::Test);
    // The threshold is chosen on the predictions the search judged: the validation split's,
    // or every train + validation row's out-of-fold prediction.
    let threshold = (ds.task == Task::BinaryClassification).then(|| {
        let y: Vec<bool> = outcome
            .selection_rows
            .iter()
            .map(|&i| ds.y[i] == 1.0)
            .collect();
        metrics::choose_threshold(cfg.threshold, &y, &outcome.validation_predictions)
    });

    // Re-fit the winner on train + validation with the full resource.
    let best = &outcome.trials[outcome.best];
    progress(&format!(
        "best trial {} ({}) by {}; re-fitting on train + validation",
        best.id,
        model::family_name(best.params.family()),
        outcome.selection.describe()
    ));
    let started = Instant::now();
    let mut rows = ds.rows(Split::Train);
    rows.extend(&valid);
    rows.sort_unstable();
    let w: Vec<f64> = rows.iter().map(|&i| weights[i]).collect();
    let (_, threads) = search::parallelism(&crate::config::Search {
        parallel: 1,
        ..cfg.search.clone()
    });
    let refit = model::fit(
        ds,
        &rows,
        &w,
        &outcome.final_params,
        Budget {
            resource: 1.0,
            threads,
            seed: best.seed,
        },
    );
    // A re-fit that fails (it sees more data than any trial did) falls back to the trial's model.
    let final_model = match refit {
        Ok(m) => m,
        Err(e) => {
            progress(&format!("re-fit failed ({e}); keeping the trial's model"));
            outcome.model
        }
    };
    timings.insert("refit_s".to_string(), started.elapsed().as_secs_f64());

    let started = Instant::now();
    let p = final_model.predict(ds, &test)?;
    let y = ds.targets(&test);
    let o = Outputs {
        task: ds.task,
        k: ds.n_classes(),
        y: &y,
        p: &p,
    };
    let t = threshold.unwrap_or(0.5);
    let test_scores: Vec<f32> = match ds.task {
        Task::MulticlassClassification => p
            .chunks(ds.n_classes().max(1))
            .map(|row| row.iter().copied().fold(f64::MIN, f64::max) as f32)
            .collect(),
        _ => p.iter().map(|x| *x as f32).collect(),
    };
    let test_metrics = evaluate::report(o, t);
    let main = evaluate::score(metric, o, t);
    let interval = evaluate::interval(metric, o, t, cfg.bootstrap_resamples, cfg.search.seed);
    timings.insert("evaluate_s".to_string(), started.elapsed().as_secs_f64());

    let started = Instant::now();
    let onnx = final_model.to_onnx()?;
    let tract = onnx_outputs(&onnx, ds, &test, ds.task)?;
    let parity = max_difference(&tract, &p);
    if parity > PARITY_TOLERANCE {
        return Err(TrainError::Export(format!(
            "tract's outputs differ from the training library's by {parity:e} (> {PARITY_TOLERANCE:e}); refusing to register"
        )));
    }
    timings.insert("export_s".to_string(), started.elapsed().as_secs_f64());

    let imp = final_model.importance(ds, &valid, cfg.search.seed);
    let mut importance: Vec<(String, f64)> = ds.features.iter().cloned().zip(imp).collect();
    importance.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Candidate {
        task: ds.task,
        classes: ds.classes.clone(),
        features: ds.features.clone(),
        metric,
        params: outcome.final_params.clone(),
        best_trial: best.id,
        trials: outcome.trials.clone(),
        rungs: outcome.rungs.clone(),
        selection: outcome.selection.clone(),
        threshold,
        test_metrics,
        main,
        interval,
        importance,
        onnx,
        parity,
        test_scores,
        description: final_model.describe(),
        timings,
        model: final_model,
    })
}
