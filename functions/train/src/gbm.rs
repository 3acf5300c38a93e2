//! Gradient-boosted trees with the `forust-ml` crate (histogram-based, XGBoost-style, with
//! weights and missing values), and their conversion to the exported tree ensemble.
//!
//! Binary classification and regression fit one booster; multi-class fits one log-loss
//! booster per class (one-vs-rest) and the model's probabilities are the softmax of their
//! raw scores, which is exactly what one multi-target ONNX ensemble with a softmax computes.
//! Like scikit-learn's HistGradientBoosting, a fit on more than 10,000 rows holds out a
//! seeded 10% of them to stop adding trees once the loss there has not improved for
//! `early_stopping_rounds` rounds; the model keeps the trees up to the best round.

use forust_ml::data::Matrix;
use forust_ml::gradientbooster::{GradientBooster, GrowPolicy, ImportanceMethod};
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::export::{self, TreeEnsemble, TreeOutput};

/// Rows above which a fit holds out part of its rows for early stopping (as scikit-learn).
pub const EARLY_STOPPING_MIN_ROWS: usize = 10_000;
/// Share of the rows held out for early stopping.
pub const EARLY_STOPPING_SHARE: f64 = 0.1;

/// Tree hyperparameters. The defaults are scikit-learn's HistGradientBoosting defaults
/// (100 rounds, learning rate 0.1, 31 leaves grown best-first, 255 bins, early stopping),
/// with a little L2 regularisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbmParams {
    pub learning_rate: f32,
    /// Most boosting rounds (trees per booster).
    pub max_trees: usize,
    /// Most leaves per tree (trees grow best-first).
    pub max_leaves: usize,
    pub max_depth: usize,
    /// Least hessian sum in a leaf (for log-loss about rows x p(1-p)).
    pub min_leaf_weight: f32,
    pub l2: f32,
    pub max_bin: u16,
    /// Share of rows sampled for each tree.
    pub subsample: f32,
    /// Share of features sampled for each tree.
    pub colsample: f64,
    /// Rounds without improvement on the held-out rows before stopping (0: never stop early).
    pub early_stopping_rounds: usize,
}

impl Default for GbmParams {
    fn default() -> GbmParams {
        GbmParams {
            learning_rate: 0.1,
            max_trees: 100,
            max_leaves: 31,
            max_depth: 32,
            min_leaf_weight: 1.0,
            l2: 1.0,
            max_bin: 255,
            subsample: 1.0,
            colsample: 1.0,
            early_stopping_rounds: 10,
        }
    }
}

impl GbmParams {
    fn check(&self) -> Result<(), TrainError> {
        let bad = |what: &str| Err(TrainError::Fit(format!("gbm: {what}")));
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate must be in (0, 1]");
        }
        if self.max_trees == 0 || self.max_leaves < 2 || self.max_depth == 0 {
            return bad("max_trees must be >= 1, max_leaves >= 2 and max_depth >= 1");
        }
        if self.max_bin < 2 {
            return bad("max_bin must be >= 2");
        }
        let share = |v: f64| v > 0.0 && v <= 1.0;
        if !(share(f64::from(self.subsample)) && share(self.colsample)) {
            return bad("subsample and colsample must be in (0, 1]");
        }
        if !(self.min_leaf_weight >= 0.0 && self.l2 >= 0.0) {
            return bad("min_leaf_weight and l2 must be >= 0");
        }
        Ok(())
    }
}

/// A fitted tree model.
pub struct Gbm {
    boosters: Vec<GradientBooster>,
    output: TreeOutput,
    n_features: usize,
}

impl std::fmt::Debug for Gbm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gbm")
            .field("boosters", &self.boosters.len())
            .field("trees", &self.n_trees())
            .field("output", &self.output)
            .finish()
    }
}

/// forust's matrix is one column-major slice.
fn flatten(cols: &[Vec<f64>], rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(cols.len() * rows.len());
    for c in cols {
        out.extend(rows.iter().map(|&r| c[r]));
    }
    out
}

/// Seeded split of `0..n` into (fit rows, early-stopping rows); no hold-out for small fits.
fn holdout(n: usize, params: &GbmParams, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if params.early_stopping_rounds == 0 || n <= EARLY_STOPPING_MIN_ROWS {
        return ((0..n).collect(), Vec::new());
    }
    let mut s = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut fit = Vec::with_capacity(n);
    let mut held = Vec::with_capacity((n as f64 * EARLY_STOPPING_SHARE) as usize + 1);
    for i in 0..n {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if ((s >> 11) as f64 / (1u64 << 53) as f64) < EARLY_STOPPING_SHARE {
            held.push(i);
        } else {
            fit.push(i);
        }
    }
    (fit, held)
}

/// Rows a fit stops on: their features (column-major), targets and weights. A
/// cross-validation fold passes its held-out fold here, so the boosting rounds are chosen
/// on rows the trees never saw.
#[derive(Debug, Clone, Copy)]
pub struct HeldOut<'a> {
    pub cols: &'a [Vec<f64>],
    pub y: &'a [f64],
    pub weights: &'a [f64],
}

/// Per-booster targets: `y` itself, or one 0/1 target per class.
fn targets_of(y: &[f64], output: TreeOutput) -> Vec<Vec<f64>> {
    match output {
        TreeOutput::Binary | TreeOutput::Regression => vec![y.to_vec()],
        TreeOutput::Multiclass(k) => (0..k)
            .map(|c| {
                y.iter()
                    .map(|v| f64::from(u8::from(*v as usize == c)))
                    .collect()
            })
            .collect(),
    }
}

/// Fits on column-major `cols` with targets `y` (0/1, class index or value) and weights.
/// Early stopping uses `held_out` when given (every row of `cols` is then fitted), else a
/// seeded 10% of the rows on fits above [`EARLY_STOPPING_MIN_ROWS`].
#[allow(clippy::too_many_arguments)] // one fit's data, model shape and budget
pub fn fit(
    cols: &[Vec<f64>],
    y: &[f64],
    weights: &[f64],
    output: TreeOutput,
    params: &GbmParams,
    threads: usize,
    seed: u64,
    held_out: Option<HeldOut<'_>>,
) -> Result<Gbm, TrainError> {
    params.check()?;
    let n = cols.first().map_or(0, Vec::len);
    if n == 0 || y.len() != n || weights.len() != n {
        return Err(TrainError::Fit(
            "gbm: no rows, or targets/weights do not match the rows".into(),
        ));
    }
    let targets = targets_of(y, output);
    let (fit_rows, x, w, held_n, xh, wh, held_targets) = match held_out {
        Some(h) => {
            let m = h.cols.first().map_or(0, Vec::len);
            if h.cols.len() != cols.len() || h.y.len() != m || h.weights.len() != m {
                return Err(TrainError::Fit(
                    "gbm: the held-out rows do not match the training columns".into(),
                ));
            }
            let all: Vec<usize> = (0..n).collect();
            let x = flatten(cols, &all);
            let xh = flatten(h.cols, &(0..m).collect::<Vec<_>>());
            let held_targets = if params.early_stopping_rounds == 0 {
                Vec::new()
            } else {
                targets_of(h.y, output)
            };
            let m = if held_targets.is_empty() { 0 } else { m };
            (
                all,
                x,
                weights.to_vec(),
                m,
                xh,
                h.weights.to_vec(),
                held_targets,
            )
        }
        None => {
            let (fit_rows, held_rows) = holdout(n, params, seed);
            let x = flatten(cols, &fit_rows);
            let xh = flatten(cols, &held_rows);
            let w: Vec<f64> = fit_rows.iter().map(|&i| weights[i]).collect();
            let wh: Vec<f64> = held_rows.iter().map(|&i| weights[i]).collect();
            let held_targets: Vec<Vec<f64>> = targets
                .iter()
                .map(|t| held_rows.iter().map(|&i| t[i]).collect())
                .collect();
            (fit_rows, x, w, held_rows.len(), xh, wh, held_targets)
        }
    };
    // forust's objective and metric types are not Clone: made fresh for each booster.
    let regression = output == TreeOutput::Regression;
    let objective = || {
        if regression {
            ObjectiveType::SquaredLoss
        } else {
            ObjectiveType::LogLoss
        }
    };
    let metric = || {
        if regression {
            Metric::RootMeanSquaredError
        } else {
            Metric::LogLoss
        }
    };
    let mut boosters = Vec::with_capacity(targets.len());
    for (c, target) in targets.iter().enumerate() {
        let yf: Vec<f64> = fit_rows.iter().map(|&i| target[i]).collect();
        let yh: &[f64] = held_targets.get(c).map_or(&[], Vec::as_slice);
        if output != TreeOutput::Regression && !(yf.contains(&1.0) && yf.contains(&0.0)) {
            return Err(TrainError::Fit(format!(
                "gbm: class {c} is absent or alone in the training rows"
            )));
        }
        let mut b = GradientBooster::default()
            .set_objective_type(objective())
            .set_iterations(params.max_trees)
            .set_learning_rate(params.learning_rate)
            .set_max_leaves(params.max_leaves)
            .set_max_depth(params.max_depth)
            .set_min_leaf_weight(params.min_leaf_weight)
            .set_l2(params.l2)
            .set_nbins(params.max_bin)
            .set_subsample(params.subsample)
            .set_colsample_bytree(params.colsample)
            .set_seed(seed.wrapping_add(c as u64))
            .set_num_threads(Some(threads.max(1)))
            .set_parallel(threads > 1)
            .set_missing(f64::NAN)
            .set_create_missing_branch(false);
        b.grow_policy = GrowPolicy::LossGuide;
        let eval = if held_n == 0 {
            None
        } else {
            b = b
                .set_evaluation_metric(Some(metric()))
                .set_early_stopping_rounds(Some(params.early_stopping_rounds));
            Some(vec![(Matrix::new(&xh, held_n, cols.len()), yh, &wh[..])])
        };
        b.fit(&Matrix::new(&x, fit_rows.len(), cols.len()), &yf, &w, eval)
            .map_err(|e| TrainError::Fit(format!("gbm: {e}")))?;
        // Keep exactly the trees the model predicts with.
        if let Some(keep) = b.prediction_iteration {
            b.trees.truncate(keep);
        }
        b.prediction_iteration = None;
        boosters.push(b);
    }
    Ok(Gbm {
        boosters,
        output,
        n_features: cols.len(),
    })
}

impl Gbm {
    /// Boosting rounds: the most trees any one booster kept (after early stopping).
    pub fn rounds(&self) -> usize {
        self.boosters
            .iter()
            .map(|b| b.trees.len())
            .max()
            .unwrap_or(0)
    }

    pub fn n_trees(&self) -> usize {
        self.boosters.iter().map(|b| b.trees.len()).sum()
    }

    /// Model outputs, row-major: binary P(positive) (1 per row), multi-class
    /// probabilities (k per row), regression value (1 per row). Computed by forust.
    pub fn predict(&self, cols: &[Vec<f64>]) -> Vec<f64> {
        let n = cols.first().map_or(0, Vec::len);
        let x: Vec<f64> = cols.iter().flatten().copied().collect();
        let data = Matrix::new(&x, n, cols.len());
        let raw: Vec<Vec<f64>> = self
            .boosters
            .iter()
            .map(|b| b.predict(&data, false))
            .collect();
        match self.output {
            TreeOutput::Regression => raw.into_iter().next().unwrap_or_default(),
            TreeOutput::Binary => raw
                .into_iter()
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|r| 1.0 / (1.0 + (-r).exp()))
                .collect(),
            TreeOutput::Multiclass(k) => {
                let mut out = Vec::with_capacity(n * k);
                for i in 0..n {
                    let row: Vec<f64> = raw.iter().map(|r| r[i]).collect();
                    out.extend(softmax(&row));
                }
                out
            }
        }
    }

    /// Total split gain per feature, normalised to sum to 1 (0 for unused features).
    pub fn importance(&self) -> Vec<f64> {
        let mut out = vec![0f64; self.n_features];
        for b in &self.boosters {
            for (j, g) in b.calculate_feature_importance(ImportanceMethod::TotalGain, false) {
                if j < out.len() {
                    out[j] += f64::from(g).max(0.0);
                }
            }
        }
        normalise(&mut out);
        out
    }

    /// The trees as the exporter's ensemble.
    pub fn ensemble(&self) -> Result<TreeEnsemble, TrainError> {
        let mut trees = Vec::new();
        let mut base = Vec::new();
        for (class, b) in self.boosters.iter().enumerate() {
            base.push(b.base_score);
            for (t, tree) in b.trees.iter().enumerate() {
                trees.push(
                    convert(tree, class).map_err(|m| {
                        TrainError::Export(format!("booster {class} tree {t}: {m}"))
                    })?,
                );
            }
        }
        Ok(TreeEnsemble {
            trees,
            base_score: base,
            n_features: self.n_features,
            output: self.output,
        })
    }

    pub fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        export::trees_to_onnx(&self.ensemble()?).map_err(|e| TrainError::Export(e.to_string()))
    }
}

/// Renumbers a tree's nodes breadth-first from the root (the exporter wants 0..n, root 0).
fn convert(tree: &forust_ml::tree::Tree, class: usize) -> Result<export::Tree, String> {
    let mut ids = std::collections::HashMap::new();
    let mut order = vec![0usize];
    let mut i = 0;
    while i < order.len() {
        let id = order[i];
        ids.insert(id, i);
        let node = tree.nodes.get(id).ok_or(format!("node {id} is missing"))?;
        if !node.is_leaf {
            order.push(node.left_child);
            order.push(node.right_child);
        }
        i += 1;
        if order.len() > tree.nodes.len() + 1 {
            return Err("the node graph is not a tree".into());
        }
    }
    let mut nodes = Vec::with_capacity(order.len());
    for id in &order {
        let n = &tree.nodes[*id];
        if n.is_leaf {
            nodes.push(export::Node::Leaf {
                value: f64::from(n.weight_value),
            });
        } else {
            let missing_left = if n.missing_node == n.left_child {
                true
            } else if n.missing_node == n.right_child {
                false
            } else {
                return Err("a separate missing branch is not exported".into());
            };
            nodes.push(export::Node::Split {
                feature: n.split_feature,
                threshold: n.split_value,
                left: ids[&n.left_child],
                right: ids[&n.right_child],
                missing_left,
            });
        }
    }
    Ok(export::Tree { nodes, class })
}

pub fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::MIN, f64::max);
    let e: Vec<f64> = row.iter().map(|r| (r - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

pub fn normalise(v: &mut [f64]) {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.iter_mut().for_each(|x| *x /= total);
    }
}
