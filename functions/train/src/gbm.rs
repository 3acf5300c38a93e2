//! Gradient-boosted trees with the `perpetual` crate, and their conversion to the exported
//! tree ensemble.
//!
//! Binary classification and regression fit one booster; multi-class fits one log-loss
//! booster per class (one-vs-rest) and the model's probabilities are the softmax of their
//! raw scores, which is exactly what one multi-target ONNX ensemble with a softmax computes.
//! perpetual's own extras that ONNX could not reproduce are switched off: its automatic
//! class weights (we pass our own weights), the fold-averaged probabilities (we use the
//! sigmoid of the raw score) and the ridge regression head.

use perpetual::booster::config::ImportanceMethod;
use perpetual::objective::Objective;
use perpetual::{ColumnarMatrix, PerpetualBooster};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::export::{self, TreeEnsemble, TreeOutput};

/// perpetual's only real knob: the budget sets the learning rate (`10^-budget`) and with it
/// how many trees grow before its built-in stopping rule ends training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmParams {
    pub budget: f32,
    pub max_bin: u16,
}

impl Default for GbmParams {
    fn default() -> GbmParams {
        GbmParams {
            budget: 0.5,
            max_bin: 256,
        }
    }
}

/// A fitted tree model.
pub struct Gbm {
    boosters: Vec<PerpetualBooster>,
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

fn matrix(cols: &[Vec<f64>]) -> ColumnarMatrix<'_, f64> {
    let rows = cols.first().map_or(0, Vec::len);
    ColumnarMatrix::new(cols.iter().map(Vec::as_slice).collect(), None, rows)
}

/// Fits on column-major `cols` with targets `y` (0/1, class index or value) and weights.
pub fn fit(
    cols: &[Vec<f64>],
    y: &[f64],
    weights: &[f64],
    output: TreeOutput,
    params: &GbmParams,
    threads: usize,
    seed: u64,
) -> Result<Gbm, TrainError> {
    let data = matrix(cols);
    let targets: Vec<Vec<f64>> = match output {
        TreeOutput::Binary | TreeOutput::Regression => vec![y.to_vec()],
        TreeOutput::Multiclass(k) => (0..k)
            .map(|c| {
                y.iter()
                    .map(|v| f64::from(u8::from(*v as usize == c)))
                    .collect()
            })
            .collect(),
    };
    let objective = match output {
        TreeOutput::Regression => Objective::SquaredLoss,
        _ => Objective::LogLoss,
    };
    let mut boosters = Vec::with_capacity(targets.len());
    for (c, target) in targets.iter().enumerate() {
        let logloss = output != TreeOutput::Regression;
        if logloss && !(target.contains(&1.0) && target.contains(&0.0)) {
            return Err(TrainError::Fit(format!(
                "gbm: class {c} is absent or alone in the training rows"
            )));
        }
        let mut b = PerpetualBooster::default()
            .set_objective(objective.clone())
            .set_budget(params.budget)
            .set_max_bin(params.max_bin)
            .set_num_threads(Some(threads.max(1)))
            .set_seed(seed)
            .set_create_missing_branch(false);
        b.cfg.auto_class_weights = false;
        b.fit_columnar(&data, target, Some(weights), None)
            .map_err(|e| TrainError::Fit(format!("gbm: {e}")))?;
        b.regression_head = None;
        boosters.push(b);
    }
    Ok(Gbm {
        boosters,
        output,
        n_features: cols.len(),
    })
}

impl Gbm {
    pub fn n_trees(&self) -> usize {
        self.boosters
            .iter()
            .map(|b| b.get_prediction_trees().len())
            .sum()
    }

    /// Model outputs, row-major: binary P(positive) (1 per row), multi-class
    /// probabilities (k per row), regression value (1 per row). Computed by perpetual.
    pub fn predict(&self, cols: &[Vec<f64>]) -> Vec<f64> {
        let data = matrix(cols);
        let raw: Vec<Vec<f64>> = self
            .boosters
            .iter()
            .map(|b| b.predict_columnar(&data, false))
            .collect();
        let n = data.rows;
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
            for (t, tree) in b.get_prediction_trees().iter().enumerate() {
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

/// perpetual keys nodes by arbitrary ids in a map; the exporter wants 0..n with the root 0.
fn convert(tree: &perpetual::tree::core::Tree, class: usize) -> Result<export::Tree, String> {
    let mut ids = std::collections::HashMap::new();
    let mut order = vec![0usize];
    let mut i = 0;
    while i < order.len() {
        let id = order[i];
        ids.insert(id, i);
        let node = tree.nodes.get(&id).ok_or(format!("node {id} is missing"))?;
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
        let n = &tree.nodes[id];
        if n.is_leaf {
            nodes.push(export::Node::Leaf {
                value: f64::from(n.weight_value),
            });
        } else {
            if n.left_cats.is_some() {
                return Err("categorical splits are not exported".into());
            }
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
