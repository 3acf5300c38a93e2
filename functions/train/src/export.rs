//! ONNX export, built with `tract_onnx::pb`'s prost types (no hand-encoded bytes), for the
//! models the edge runs with tract.
//!
//! Trees become one ONNX-ML `TreeEnsembleClassifier` node, written the way tract 0.23,
//! onnxruntime and ONNX's reference evaluator all evaluate identically (see
//! docs/research/tract-onnx.md): only `BRANCH_LT` splits; binary models as two classes whose
//! leaves carry `[0, w]` under `SOFTMAX`, so the scores are `[1 - sigmoid(raw),
//! sigmoid(raw)]`; regression as the class-0 score under `NONE` (tract has no
//! `TreeEnsembleRegressor`). No `base_values`: each output's base score is folded into the
//! leaves of one tree of that output (every row reaches exactly one leaf of it), because
//! onnxruntime (1.32) drops the class-1 leaf weights of a two-class ensemble that has
//! `base_values` and returns the base score alone for every row.
//!
//! Linear models and networks are standard operators with the input imputation and scaling
//! inside the graph, so the edge feeds the raw feature vector.
//!
//! The model boundary is f32. A tree trained on f32-rounded inputs with an f64 threshold `t`
//! is exported with the smallest f32 `t' >= t`: for every f32 input `x`, `x < t` exactly when
//! `x < t'`, so the exported tree takes the branch training took.

use prost::Message;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension::Value as Dim};
use tract_onnx::pb::{self, attribute_proto::AttributeType, tensor_proto::DataType, type_proto};

/// One node of a binary decision tree: `x[feature] < threshold` goes to `left`.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
        /// Where a missing (NaN) input goes.
        missing_left: bool,
    },
    Leaf {
        value: f64,
    },
}

/// A tree as a node list; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The output (class) this tree's leaves add to; 0 unless multi-class.
    pub class: usize,
}

/// What a tree ensemble's summed raw scores mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeOutput {
    /// Log-odds of the positive class.
    Binary,
    /// One raw score per class, turned into probabilities by a softmax.
    Multiclass(usize),
    /// The predicted value.
    Regression,
}

impl TreeOutput {
    /// Raw scores per row.
    pub fn width(self) -> usize {
        match self {
            TreeOutput::Multiclass(k) => k,
            _ => 1,
        }
    }
}

/// A sum of trees plus a base score per output.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    pub trees: Vec<Tree>,
    /// One per raw score (`output.width()`).
    pub base_score: Vec<f64>,
    pub n_features: usize,
    pub output: TreeOutput,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("tree {tree}: {message}")]
    Tree { tree: usize, message: String },
    #[error("{0}")]
    Shape(String),
}

/// The smallest f32 not below `t`: the f32 threshold equivalent to `x < t` on f32 inputs.
pub fn f32_threshold(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) >= t { r } else { r.next_up() }
}

impl TreeEnsemble {
    /// The ensemble's raw scores for one f32 row, evaluated as the exported graph routes it.
    pub fn raw_scores(&self, x: &[f32]) -> Vec<f64> {
        let mut sum = self.base_score.clone();
        for tree in &self.trees {
            let mut i = 0;
            loop {
                match &tree.nodes[i] {
                    Node::Leaf { value } => {
                        sum[tree.class] += value;
                        break;
                    }
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                        missing_left,
                    } => {
                        let v = x[*feature];
                        let go_left = if v.is_nan() {
                            *missing_left
                        } else {
                            v < f32_threshold(*threshold)
                        };
                        i = if go_left { *left } else { *right };
                    }
                }
            }
        }
        sum
    }

    /// The raw score of a single-output ensemble.
    pub fn raw_score(&self, x: &[f32]) -> f64 {
        self.raw_scores(x)[0]
    }
}

fn attr_ints(name: &str, v: Vec<i64>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    }
}

fn attr_floats(name: &str, v: Vec<f32>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v,
        ..Default::default()
    }
}

fn attr_strings(name: &str, v: Vec<&str>) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: v.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn attr_string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Vec<Dim>, elem: DataType) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .into_iter()
                        .map(|d| Dimension {
                            value: Some(d),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], values: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: values,
        ..Default::default()
    }
}

fn node(op: &str, domain: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        domain: domain.into(),
        name: outputs[0].into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(graph: pb::GraphProto) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 8,
        producer_name: "mlpipe".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: vec![
            pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            },
            pb::OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: 3,
            },
        ],
        graph: Some(graph),
        ..Default::default()
    }
}

/// Name of the input tensor (`[N, n_features]`, f32) of every exported model.
pub const INPUT: &str = "features";
/// Name of the output tensor: `[N, 2]` class probabilities (binary) or `[N, 1]` values.
pub const OUTPUT: &str = "output";

/// Exports a tree ensemble. Output `output`: binary `[N, 2]` probabilities (negative,
/// positive); regression `[N, 1]`.
pub fn trees_to_onnx(ensemble: &TreeEnsemble) -> Result<Vec<u8>, ExportError> {
    let mut tree_ids = Vec::new();
    let mut node_ids = Vec::new();
    let mut feature_ids = Vec::new();
    let mut modes = Vec::new();
    let mut values = Vec::new();
    let mut true_ids = Vec::new();
    let mut false_ids = Vec::new();
    let mut missing_true = Vec::new();
    let mut leaf_tree = Vec::new();
    let mut leaf_node = Vec::new();
    let mut leaf_class = Vec::new();
    let mut leaf_weight = Vec::new();
    let regression = ensemble.output == TreeOutput::Regression;
    if let TreeOutput::Multiclass(k) = ensemble.output
        && (k < 3 || ensemble.trees.iter().any(|t| t.class >= k))
    {
        return Err(ExportError::Shape(format!(
            "a multi-class ensemble needs at least 3 classes and trees within them (k = {k})"
        )));
    }
    if ensemble.base_score.len() != ensemble.output.width() {
        return Err(ExportError::Shape(format!(
            "{} base scores for {} outputs",
            ensemble.base_score.len(),
            ensemble.output.width()
        )));
    }
    // The output (class id) each base score goes to, and the tree whose leaves carry it:
    // the first tree of that output, or a one-leaf tree added for an output without one.
    let outputs: Vec<usize> = match ensemble.output {
        TreeOutput::Binary => vec![1],
        TreeOutput::Multiclass(k) => (0..k).collect(),
        TreeOutput::Regression => vec![0],
    };
    let mut trees = ensemble.trees.clone();
    let mut carrier = Vec::new();
    for (i, &class) in outputs.iter().enumerate() {
        let tree_class = if ensemble.output == TreeOutput::Binary {
            0
        } else {
            class
        };
        let t = match trees.iter().position(|t| t.class == tree_class) {
            Some(t) => t,
            None => {
                trees.push(Tree {
                    nodes: vec![Node::Leaf { value: 0.0 }],
                    class: tree_class,
                });
                trees.len() - 1
            }
        };
        carrier.push((t, class, ensemble.base_score[i]));
    }
    let base_of = |t: usize, class: usize| -> f64 {
        carrier
            .iter()
            .filter(|(ct, cc, _)| *ct == t && *cc == class)
            .map(|(_, _, b)| *b)
            .sum()
    };
    for (t, tree) in trees.iter().enumerate() {
        if tree.nodes.is_empty() {
            return Err(ExportError::Tree {
                tree: t,
                message: "has no nodes".into(),
            });
        }
        for (n, node) in tree.nodes.iter().enumerate() {
            tree_ids.push(t as i64);
            node_ids.push(n as i64);
            match node {
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    missing_left,
                } => {
                    if *feature >= ensemble.n_features
                        || *left >= tree.nodes.len()
                        || *right >= tree.nodes.len()
                    {
                        return Err(ExportError::Tree {
                            tree: t,
                            message: format!("node {n} refers outside the tree or the features"),
                        });
                    }
                    feature_ids.push(*feature as i64);
                    modes.push("BRANCH_LT");
                    values.push(f32_threshold(*threshold));
                    true_ids.push(*left as i64);
                    false_ids.push(*right as i64);
                    missing_true.push(i64::from(*missing_left));
                }
                Node::Leaf { value } => {
                    feature_ids.push(0);
                    modes.push("LEAF");
                    values.push(0.0);
                    true_ids.push(0);
                    false_ids.push(0);
                    missing_true.push(0);
                    match ensemble.output {
                        TreeOutput::Binary => {
                            let w = (*value + base_of(t, 1)) as f32;
                            for (class, w) in [(0, 0.0), (1, w)] {
                                leaf_tree.push(t as i64);
                                leaf_node.push(n as i64);
                                leaf_class.push(class);
                                leaf_weight.push(w);
                            }
                        }
                        _ => {
                            leaf_tree.push(t as i64);
                            leaf_node.push(n as i64);
                            leaf_class.push(tree.class as i64);
                            leaf_weight.push((*value + base_of(t, tree.class)) as f32);
                        }
                    }
                }
            }
        }
    }
    let (labels, post, width) = match ensemble.output {
        TreeOutput::Binary => (vec![0, 1], "SOFTMAX", 2),
        TreeOutput::Multiclass(k) => ((0..k as i64).collect(), "SOFTMAX", k),
        // Three labels keep tract away from its binary special case; only class 0 is used.
        TreeOutput::Regression => (vec![0, 1, 2], "NONE", 1),
    };
    if ensemble.output == TreeOutput::Regression {
        // ONNX's reference evaluator reads a classifier whose leaves name one class id as
        // binary and returns `1 - score` in column 0; zero weights for classes 1 and 2 on
        // the first leaf keep it (and every runtime) on the plain per-class sums. They sit
        // beside that leaf's entry: tract wants a leaf's entries together.
        let (t, n) = (leaf_tree[0], leaf_node[0]);
        for class in [2, 1] {
            leaf_tree.insert(1, t);
            leaf_node.insert(1, n);
            leaf_class.insert(1, class);
            leaf_weight.insert(1, 0.0);
        }
    }
    let mut tree = node(
        "TreeEnsembleClassifier",
        "ai.onnx.ml",
        &[INPUT],
        &["label", "scores"],
    );
    tree.attribute = vec![
        attr_ints("nodes_treeids", tree_ids),
        attr_ints("nodes_nodeids", node_ids),
        attr_ints("nodes_featureids", feature_ids),
        attr_strings("nodes_modes", modes),
        attr_floats("nodes_values", values),
        attr_ints("nodes_truenodeids", true_ids),
        attr_ints("nodes_falsenodeids", false_ids),
        attr_ints("nodes_missing_value_tracks_true", missing_true),
        attr_ints("class_treeids", leaf_tree),
        attr_ints("class_nodeids", leaf_node),
        attr_ints("class_ids", leaf_class),
        attr_floats("class_weights", leaf_weight),
        attr_ints("classlabels_int64s", labels),
        attr_string("post_transform", post),
    ];
    let mut nodes = vec![tree];
    let n = Dim::DimParam("N".into());
    let out_width = if !regression {
        nodes.push(node("Identity", "", &["scores"], &[OUTPUT]));
        width as i64
    } else {
        // Keep column 0 of the [N, 3] scores.
        let mut slice = node(
            "Slice",
            "",
            &["scores", "starts", "ends", "axes"],
            &[OUTPUT],
        );
        slice.name = "value".into();
        nodes.push(slice);
        1
    };
    let mut initializer = Vec::new();
    if regression {
        for (name, v) in [("starts", 0i64), ("ends", 1), ("axes", 1)] {
            initializer.push(pb::TensorProto {
                name: name.into(),
                dims: vec![1],
                data_type: DataType::Int64 as i32,
                int64_data: vec![v],
                ..Default::default()
            });
        }
    }
    let graph = pb::GraphProto {
        name: "trees".into(),
        node: nodes,
        input: vec![value_info(
            INPUT,
            vec![n.clone(), Dim::DimValue(ensemble.n_features as i64)],
            DataType::Float,
        )],
        output: vec![value_info(
            OUTPUT,
            vec![n, Dim::DimValue(out_width)],
            DataType::Float,
        )],
        initializer,
        ..Default::default()
    };
    Ok(model(graph).encode_to_vec())
}

/// One fully connected layer: `y = x . weights + bias`, `weights` row-major `[inputs, outputs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// What turns the last layer's output into the model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// One logit -> `[1 - p, p]`.
    Sigmoid,
    /// One logit per class -> class probabilities.
    Softmax,
    /// The value itself (regression).
    Identity,
}

/// A feed-forward network over standardised inputs (a linear model is one layer): missing
/// inputs are replaced by `fill` (the training mean), then `(x - mean) / scale`, then the
/// layers with ReLU between them, then the head.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub fill: Vec<f32>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub layers: Vec<Dense>,
    pub head: Head,
}

impl Network {
    pub fn n_features(&self) -> usize {
        self.fill.len()
    }

    /// Width of the model output.
    pub fn output_width(&self) -> usize {
        match self.head {
            Head::Sigmoid => 2,
            _ => self.layers.last().map_or(0, |l| l.outputs),
        }
    }

    /// The standardised (imputed, centred, scaled) copy of one row.
    pub fn standardise(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(j, &v)| {
                let v = if v.is_nan() { self.fill[j] } else { v };
                (v - self.mean[j]) / self.scale[j]
            })
            .collect()
    }

    /// The model output for one row, computed on the host in f32 as the graph computes it.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut h = self.standardise(x);
        for (i, l) in self.layers.iter().enumerate() {
            let mut z = l.bias.clone();
            for (a, &hv) in h.iter().enumerate() {
                let w = &l.weights[a * l.outputs..(a + 1) * l.outputs];
                for (zo, wo) in z.iter_mut().zip(w) {
                    *zo += hv * wo;
                }
            }
            if i + 1 < self.layers.len() {
                z.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = z;
        }
        match self.head {
            Head::Sigmoid => {
                let p = 1.0 / (1.0 + (-h[0]).exp());
                vec![1.0 - p, p]
            }
            Head::Softmax => {
                let mx = h.iter().copied().fold(f32::MIN, f32::max);
                let z: f32 = h.iter().map(|v| (v - mx).exp()).sum();
                h.iter().map(|v| (v - mx).exp() / z).collect()
            }
            Head::Identity => h,
        }
    }

    fn check(&self) -> Result<(), ExportError> {
        let f = self.fill.len();
        if self.mean.len() != f || self.scale.len() != f {
            return Err(ExportError::Shape(
                "fill, mean and scale must have one entry per feature".into(),
            ));
        }
        let mut width = f;
        for (i, l) in self.layers.iter().enumerate() {
            if l.inputs != width
                || l.weights.len() != l.inputs * l.outputs
                || l.bias.len() != l.outputs
            {
                return Err(ExportError::Shape(format!(
                    "layer {i}: shapes do not chain ({} inputs expected)",
                    width
                )));
            }
            width = l.outputs;
        }
        let want = match self.head {
            Head::Sigmoid | Head::Identity => width == 1,
            Head::Softmax => width >= 3,
        };
        if self.layers.is_empty() || !want {
            return Err(ExportError::Shape(format!(
                "{:?} head cannot follow a last layer of width {width}",
                self.head
            )));
        }
        Ok(())
    }
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// Exports a network; output `[N, 2]` (sigmoid head), `[N, k]` (softmax) or `[N, 1]`.
pub fn network_to_onnx(m: &Network) -> Result<Vec<u8>, ExportError> {
    m.check()?;
    let fi = m.n_features() as i64;
    let mut nodes = vec![
        node("IsNaN", "", &[INPUT], &["is_nan"]),
        node("Where", "", &["is_nan", "fill", INPUT], &["filled"]),
        node("Sub", "", &["filled", "mean"], &["centred"]),
        node("Div", "", &["centred", "scale"], &["h0"]),
    ];
    let mut initializer = vec![
        tensor("fill", &[fi], m.fill.clone()),
        tensor("mean", &[fi], m.mean.clone()),
        tensor("scale", &[fi], m.scale.clone()),
        tensor("one", &[1], vec![1.0]),
    ];
    let mut h = "h0".to_string();
    for (i, l) in m.layers.iter().enumerate() {
        let (w, b, xw, z) = (
            format!("w{i}"),
            format!("b{i}"),
            format!("xw{i}"),
            format!("z{i}"),
        );
        initializer.push(tensor(
            &w,
            &[l.inputs as i64, l.outputs as i64],
            l.weights.clone(),
        ));
        initializer.push(tensor(&b, &[l.outputs as i64], l.bias.clone()));
        nodes.push(node("MatMul", "", &[&h, &w], &[&xw]));
        nodes.push(node("Add", "", &[&xw, &b], &[&z]));
        h = z;
        if i + 1 < m.layers.len() {
            let a = format!("a{i}");
            nodes.push(node("Relu", "", &[&h], &[&a]));
            h = a;
        }
    }
    match m.head {
        Head::Sigmoid => {
            nodes.push(node("Sigmoid", "", &[&h], &["p"]));
            nodes.push(node("Neg", "", &["p"], &["minus_p"]));
            nodes.push(node("Add", "", &["minus_p", "one"], &["q"]));
            let mut concat = node("Concat", "", &["q", "p"], &[OUTPUT]);
            concat.attribute = vec![attr_int("axis", 1)];
            nodes.push(concat);
        }
        Head::Softmax => {
            let mut softmax = node("Softmax", "", &[&h], &[OUTPUT]);
            softmax.attribute = vec![attr_int("axis", 1)];
            nodes.push(softmax);
        }
        Head::Identity => nodes.push(node("Identity", "", &[&h], &[OUTPUT])),
    }
    let n = Dim::DimParam("N".into());
    let graph = pb::GraphProto {
        name: "network".into(),
        node: nodes,
        input: vec![value_info(
            INPUT,
            vec![n.clone(), Dim::DimValue(fi)],
            DataType::Float,
        )],
        output: vec![value_info(
            OUTPUT,
            vec![n, Dim::DimValue(m.output_width() as i64)],
            DataType::Float,
        )],
        initializer,
        ..Default::default()
    };
    Ok(model(graph).encode_to_vec())
}

/// Runs an exported model with tract over row-major f32 rows and returns the output rows:
/// the same engine the edge runs, used for parity tests and champion comparisons.
pub fn run_onnx(bytes: &[u8], x: &[f32], n: usize, f: usize) -> Result<Vec<Vec<f32>>, String> {
    use tract_onnx::prelude::*;
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("tract cannot load the model: {e}"))?;
    let input =
        tract_ndarray::Array2::from_shape_vec((n, f), x.to_vec()).map_err(|e| e.to_string())?;
    let out = plan
        .run(tvec!(input.into_tensor().into()))
        .map_err(|e| format!("tract run failed: {e}"))?;
    let view = out[0]
        .to_plain_array_view::<f32>()
        .map_err(|e| e.to_string())?;
    Ok(view
        .outer_iter()
        .map(|row| row.iter().copied().collect())
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::{RngExt, SeedableRng};

    use super::*;

    fn run_tract(bytes: &[u8], x: &[f32], n: usize, f: usize) -> Vec<Vec<f32>> {
        run_onnx(bytes, x, n, f).unwrap()
    }

    /// A random ensemble of depth-3 trees over `f` features, NaN routing included.
    fn random_ensemble(seed: u64, f: usize, output: TreeOutput) -> super::TreeEnsemble {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut trees = Vec::new();
        for _ in 0..20 {
            let mut nodes = Vec::new();
            // Complete binary tree of depth 3: 7 splits, 8 leaves, children at 2i+1, 2i+2.
            for i in 0..15 {
                if i < 7 {
                    nodes.push(super::Node::Split {
                        feature: rng.random_range(0..f),
                        // f64 thresholds that are not f32-representable.
                        threshold: rng.random_range(-2.0..2.0f64) + 1e-9,
                        left: 2 * i + 1,
                        right: 2 * i + 2,
                        missing_left: rng.random_bool(0.5),
                    });
                } else {
                    nodes.push(super::Node::Leaf {
                        value: rng.random_range(-0.3..0.3f64),
                    });
                }
            }
            trees.push(Tree {
                nodes,
                class: trees.len() % output.width(),
            });
        }
        TreeEnsemble {
            trees,
            base_score: (0..output.width()).map(|c| -1.25 + c as f64).collect(),
            n_features: f,
            output,
        }
    }

    fn random_rows(seed: u64, n: usize, f: usize) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n * f)
            .map(|_| {
                if rng.random_bool(0.05) {
                    f32::NAN
                } else {
                    rng.random_range(-2.5..2.5f32)
                }
            })
            .collect()
    }

    /// onnxruntime ignores a two-class ensemble's leaves when `base_values` is present, so
    /// the base scores live in the leaves (families.rs checks onnxruntime itself).
    #[test]
    fn tree_exports_fold_the_base_scores_into_the_leaves() {
        for output in [
            TreeOutput::Binary,
            TreeOutput::Multiclass(3),
            TreeOutput::Regression,
        ] {
            let bytes = trees_to_onnx(&random_ensemble(2, 4, output)).unwrap();
            let model = pb::ModelProto::decode(&bytes[..]).unwrap();
            let node = &model.graph.unwrap().node[0];
            assert_eq!(node.op_type, "TreeEnsembleClassifier");
            assert!(
                node.attribute.iter().all(|a| a.name != "base_values"),
                "{output:?}"
            );
        }
        // An output without trees still gets its base score, from a one-leaf tree.
        let mut only_class_0 = random_ensemble(4, 3, TreeOutput::Multiclass(3));
        only_class_0.trees.retain(|t| t.class == 0);
        let x = random_rows(9, 20, 3);
        let got = run_tract(&trees_to_onnx(&only_class_0).unwrap(), &x, 20, 3);
        for (i, row) in got.iter().enumerate() {
            let raw = only_class_0.raw_scores(&x[i * 3..(i + 1) * 3]);
            let max = raw.iter().copied().fold(f64::MIN, f64::max);
            let sum: f64 = raw.iter().map(|r| (r - max).exp()).sum();
            for c in 0..3 {
                let want = (raw[c] - max).exp() / sum;
                assert!((f64::from(row[c]) - want).abs() < 1e-5, "row {i}: {row:?}");
            }
        }
    }

    #[test]
    fn thresholds_round_up_to_the_equivalent_f32() {
        let t = 0.1f64; // not an f32
        let t32 = f32_threshold(t);
        assert!(f64::from(t32) >= t);
        assert!(f64::from(t32.next_down()) < t);
        for x in [t32.next_down(), t32, t32.next_up()] {
            assert_eq!(f64::from(x) < t, x < t32, "{x}");
        }
        assert_eq!(f32_threshold(0.5), 0.5);
    }

    #[test]
    fn binary_trees_run_in_tract_as_trained() {
        let (n, f) = (500, 6);
        let model = random_ensemble(1, f, TreeOutput::Binary);
        let x = random_rows(2, n, f);
        let out = run_tract(&trees_to_onnx(&model).unwrap(), &x, n, f);
        let mut worst = 0f64;
        for (i, row) in out.iter().enumerate() {
            let raw = model.raw_score(&x[i * f..(i + 1) * f]);
            let p = 1.0 / (1.0 + (-raw).exp());
            worst = worst.max((f64::from(row[1]) - p).abs());
            assert!((row[0] + row[1] - 1.0).abs() < 1e-5);
        }
        assert!(worst <= 1e-5, "max abs difference {worst}");
    }

    #[test]
    fn regression_trees_run_in_tract_as_trained() {
        let (n, f) = (300, 4);
        let model = random_ensemble(3, f, TreeOutput::Regression);
        let x = random_rows(4, n, f);
        let out = run_tract(&trees_to_onnx(&model).unwrap(), &x, n, f);
        for (i, row) in out.iter().enumerate() {
            let want = model.raw_score(&x[i * f..(i + 1) * f]);
            assert_eq!(row.len(), 1);
            assert!((f64::from(row[0]) - want).abs() <= 1e-5, "row {i}");
        }
    }

    #[test]
    fn multiclass_trees_run_in_tract_as_trained() {
        let (n, f, k) = (300, 5, 4);
        let model = random_ensemble(6, f, TreeOutput::Multiclass(k));
        let x = random_rows(7, n, f);
        let out = run_tract(&trees_to_onnx(&model).unwrap(), &x, n, f);
        for (i, row) in out.iter().enumerate() {
            let raw = model.raw_scores(&x[i * f..(i + 1) * f]);
            let m = raw.iter().copied().fold(f64::MIN, f64::max);
            let z: f64 = raw.iter().map(|r| (r - m).exp()).sum();
            for c in 0..k {
                let p = (raw[c] - m).exp() / z;
                assert!((f64::from(row[c]) - p).abs() <= 1e-5, "row {i} class {c}");
            }
        }
    }

    fn random_network(seed: u64, f: usize, hidden: &[usize], out: usize, head: Head) -> Network {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut dims = vec![f];
        dims.extend_from_slice(hidden);
        dims.push(out);
        let layers = dims
            .windows(2)
            .map(|d| Dense {
                inputs: d[0],
                outputs: d[1],
                weights: (0..d[0] * d[1])
                    .map(|_| rng.random_range(-0.5..0.5f32))
                    .collect(),
                bias: (0..d[1]).map(|_| rng.random_range(-0.1..0.1f32)).collect(),
            })
            .collect();
        Network {
            fill: (0..f).map(|j| j as f32 * 0.1).collect(),
            mean: (0..f).map(|j| j as f32 * 0.3 - 0.5).collect(),
            scale: (0..f).map(|j| 0.5 + j as f32).collect(),
            layers,
            head,
        }
    }

    #[test]
    fn networks_run_in_tract_with_imputation_and_scaling_inside() {
        let (n, f) = (200, 5);
        let x = random_rows(5, n, f);
        for (seed, hidden, out, head) in [
            (1, vec![], 1, Head::Sigmoid),
            (2, vec![], 1, Head::Identity),
            (3, vec![8, 4], 1, Head::Sigmoid),
            (4, vec![6], 3, Head::Softmax),
            (5, vec![7], 1, Head::Identity),
        ] {
            let m = random_network(seed, f, &hidden, out, head);
            let got = run_tract(&network_to_onnx(&m).unwrap(), &x, n, f);
            for (i, row) in got.iter().enumerate() {
                let want = m.forward(&x[i * f..(i + 1) * f]);
                assert_eq!(row.len(), want.len());
                for (a, b) in row.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-5, "{head:?} row {i}: {a} vs {b}");
                }
            }
        }
        let bad = Network {
            fill: vec![],
            ..random_network(1, f, &[], 1, Head::Sigmoid)
        };
        assert!(network_to_onnx(&bad).is_err());
        let bad_head = random_network(1, f, &[], 2, Head::Softmax);
        assert!(network_to_onnx(&bad_head).is_err());
    }
}
