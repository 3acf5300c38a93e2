//! One interface over the model families: fit on some rows with a share of the resource,
//! predict, export, explain.

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::config::{Family, Task};
use crate::data::Dataset;
use crate::export::TreeOutput;
use crate::gbm::{self, Gbm, GbmParams};
use crate::nn::{self, Net, NetParams};

/// A trial's hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "kebab-case")]
pub enum Params {
    Gbm(GbmParams),
    Linear(NetParams),
    Mlp(NetParams),
}

impl Params {
    pub fn family(&self) -> Family {
        match self {
            Params::Gbm(_) => Family::Gbm,
            Params::Linear(_) => Family::Linear,
            Params::Mlp(_) => Family::Mlp,
        }
    }

    /// The family's defaults: the first trial of every search.
    pub fn default_for(family: Family) -> Params {
        match family {
            Family::Gbm => Params::Gbm(GbmParams::default()),
            Family::Linear => Params::Linear(NetParams::linear()),
            Family::Mlp => Params::Mlp(NetParams::mlp()),
        }
    }

    /// Flat `name -> value` pairs for tracking.
    pub fn flat(&self) -> Vec<(String, String)> {
        let mut out = vec![("family".to_string(), family_name(self.family()).to_string())];
        match self {
            Params::Gbm(p) => {
                out.push(("learning_rate".into(), format!("{}", p.learning_rate)));
                out.push(("max_trees".into(), p.max_trees.to_string()));
                out.push(("max_leaves".into(), p.max_leaves.to_string()));
                out.push(("max_depth".into(), p.max_depth.to_string()));
                out.push(("min_leaf_weight".into(), format!("{}", p.min_leaf_weight)));
                out.push(("l2".into(), format!("{}", p.l2)));
                out.push(("max_bin".into(), p.max_bin.to_string()));
                out.push(("subsample".into(), format!("{}", p.subsample)));
                out.push(("colsample".into(), format!("{}", p.colsample)));
                out.push((
                    "early_stopping_rounds".into(),
                    p.early_stopping_rounds.to_string(),
                ));
            }
            Params::Linear(p) | Params::Mlp(p) => {
                out.push(("hidden".into(), format!("{:?}", p.hidden)));
                out.push(("learning_rate".into(), format!("{}", p.learning_rate)));
                out.push(("weight_decay".into(), format!("{}", p.weight_decay)));
                out.push(("epochs".into(), p.epochs.to_string()));
                out.push(("batch_size".into(), p.batch_size.to_string()));
            }
        }
        out
    }
}

pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::Gbm => "gbm",
        Family::Linear => "linear",
        Family::Mlp => "mlp",
    }
}

pub fn task_name(t: Task) -> &'static str {
    match t {
        Task::BinaryClassification => "binary-classification",
        Task::MulticlassClassification => "multiclass-classification",
        Task::Regression => "regression",
    }
}

/// A fitted model of any family.
#[derive(Debug)]
pub enum Fitted {
    Gbm(Gbm),
    Net(Net),
}

/// What one fit may use.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Share of the full resource (GBM: training rows; networks: epochs), in (0, 1].
    pub resource: f64,
    pub threads: usize,
    pub seed: u64,
}

/// Fits `params` on `rows` of `ds` with per-row `weights` (aligned with `rows`). A panic
/// inside a training library (data it did not expect) becomes an error for this trial.
pub fn fit(
    ds: &Dataset,
    rows: &[usize],
    weights: &[f64],
    params: &Params,
    budget: Budget,
) -> Result<Fitted, TrainError> {
    fit_with_eval(ds, rows, weights, params, budget, None)
}

/// [`fit`], with gradient-boosted trees stopping on `eval` (rows of `ds` and their weights)
/// instead of a share of `rows`: a cross-validation fold's held-out rows. Networks train
/// their fixed epochs either way.
pub fn fit_with_eval(
    ds: &Dataset,
    rows: &[usize],
    weights: &[f64],
    params: &Params,
    budget: Budget,
    eval: Option<(&[usize], &[f64])>,
) -> Result<Fitted, TrainError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fit_inner(ds, rows, weights, params, budget, eval)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(TrainError::Fit(format!(
            "{} training failed inside the library: {what}",
            family_name(params.family())
        )))
    })
}

fn fit_inner(
    ds: &Dataset,
    rows: &[usize],
    weights: &[f64],
    params: &Params,
    budget: Budget,
    eval: Option<(&[usize], &[f64])>,
) -> Result<Fitted, TrainError> {
    let r = budget.resource.clamp(1e-6, 1.0);
    match params {
        Params::Gbm(p) => {
            // A seeded share of the rows, kept in time order.
            let take = ((rows.len() as f64 * r).ceil() as usize).clamp(1, rows.len());
            let (rows, weights): (Vec<usize>, Vec<f64>) = if take == rows.len() {
                (rows.to_vec(), weights.to_vec())
            } else {
                let mut pick: Vec<usize> = (0..rows.len()).collect();
                let mut s = budget.seed;
                for i in (1..pick.len()).rev() {
                    s = s
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    pick.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
                }
                let mut pick = pick[..take].to_vec();
                pick.sort_unstable();
                (
                    pick.iter().map(|&i| rows[i]).collect(),
                    pick.iter().map(|&i| weights[i]).collect(),
                )
            };
            let output = tree_output(ds);
            let cols = ds.columns(&rows);
            let y = ds.targets(&rows);
            let held = eval.map(|(r, w)| (ds.columns(r), ds.targets(r), w));
            Ok(Fitted::Gbm(gbm::fit(
                &cols,
                &y,
                &weights,
                output,
                p,
                budget.threads,
                budget.seed,
                held.as_ref()
                    .map(|(cols, y, weights)| gbm::HeldOut { cols, y, weights }),
            )?))
        }
        Params::Linear(p) | Params::Mlp(p) => {
            let epochs = ((p.epochs as f64 * r).ceil() as usize).max(1);
            let x = ds.row_major(rows);
            let y = ds.targets(rows);
            Ok(Fitted::Net(nn::fit(
                &x,
                rows.len(),
                ds.n_features(),
                &y,
                weights,
                ds.task,
                ds.n_classes(),
                p,
                epochs,
                budget.seed,
            )?))
        }
    }
}

pub fn tree_output(ds: &Dataset) -> TreeOutput {
    match ds.task {
        Task::BinaryClassification => TreeOutput::Binary,
        Task::MulticlassClassification => TreeOutput::Multiclass(ds.n_classes()),
        Task::Regression => TreeOutput::Regression,
    }
}

impl Fitted {
    /// The training library's own predictions for `rows` (see `Gbm::predict`).
    pub fn predict(&self, ds: &Dataset, rows: &[usize]) -> Result<Vec<f64>, TrainError> {
        match self {
            Fitted::Gbm(g) => Ok(g.predict(&ds.columns(rows))),
            Fitted::Net(n) => n.predict(&ds.row_major(rows), rows.len()),
        }
    }

    pub fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        match self {
            Fitted::Gbm(g) => g.to_onnx(),
            Fitted::Net(n) => n.to_onnx(),
        }
    }

    /// Per-feature importance summing to 1: total split gain for trees, permutation
    /// sensitivity on `rows` for networks.
    pub fn importance(&self, ds: &Dataset, rows: &[usize], seed: u64) -> Vec<f64> {
        match self {
            Fitted::Gbm(g) => g.importance(),
            Fitted::Net(n) => n.importance(&ds.row_major(rows), rows.len(), seed),
        }
    }

    /// A few facts about the fitted model's size.
    pub fn describe(&self) -> String {
        match self {
            Fitted::Gbm(g) => format!("{} trees", g.n_trees()),
            Fitted::Net(n) => {
                let widths: Vec<String> = n
                    .network
                    .layers
                    .iter()
                    .map(|l| l.outputs.to_string())
                    .collect();
                format!(
                    "{} inputs -> {}",
                    n.network.n_features(),
                    widths.join(" -> ")
                )
            }
        }
    }
}
