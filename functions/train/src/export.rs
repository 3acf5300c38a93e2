//! ONNX export, built with `tract_onnx::pb`'s prost types (no hand-encoded bytes), for the
//! models the edge runs with tract.
//!
//! Trees become one ONNX-ML `TreeEnsembleClassifier` node, written the way tract 0.23
//! evaluates correctly (see docs/research/tract-onnx.md): only `BRANCH_LT` splits; binary
//! models as two classes whose leaves carry `[0, w]` under `SOFTMAX`, so the scores are
//! `[1 - sigmoid(raw), sigmoid(raw)]`; regression as the class-0 score under `NONE` (tract
//! has no `TreeEnsembleRegressor`). Linear models are standard operators with the input
//! imputation and scaling inside the graph, so the edge feeds the raw feature vector.
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
}

/// What a tree ensemble's summed raw score means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeOutput {
    /// Log-odds of the positive class.
    Binary,
    /// The predicted value.
    Regression,
}

/// A sum of trees plus a base score.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeEnsemble {
    pub trees: Vec<Tree>,
    pub base_score: f64,
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
    /// The ensemble's raw score for one f32 row, evaluated as the exported graph does.
    pub fn raw_score(&self, x: &[f32]) -> f64 {
        let mut sum = self.base_score;
        for tree in &self.trees {
            let mut i = 0;
            loop {
                match &tree.nodes[i] {
                    Node::Leaf { value } => {
                        sum += value;
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
    let binary = ensemble.output == TreeOutput::Binary;
    for (t, tree) in ensemble.trees.iter().enumerate() {
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
                    if binary {
                        for (class, w) in [(0, 0.0), (1, *value as f32)] {
                            leaf_tree.push(t as i64);
                            leaf_node.push(n as i64);
                            leaf_class.push(class);
                            leaf_weight.push(w);
                        }
                    } else {
                        leaf_tree.push(t as i64);
                        leaf_node.push(n as i64);
                        leaf_class.push(0);
                        leaf_weight.push(*value as f32);
                    }
                }
            }
        }
    }
    let (labels, base, post) = if binary {
        (vec![0, 1], vec![0.0, ensemble.base_score as f32], "SOFTMAX")
    } else {
        // Three labels keep tract away from its binary special case; only class 0 is used.
        (
            vec![0, 1, 2],
            vec![ensemble.base_score as f32, 0.0, 0.0],
            "NONE",
        )
    };
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
        attr_floats("base_values", base),
        attr_string("post_transform", post),
    ];
    let mut nodes = vec![tree];
    let n = Dim::DimParam("N".into());
    let out_width = if binary {
        nodes.push(node("Identity", "", &["scores"], &[OUTPUT]));
        2
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
    if !binary {
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

/// A linear model over standardised inputs: missing inputs are replaced by `fill` (the
/// training mean), then `z = ((x - mean) / scale) . weights + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub fill: Vec<f32>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Binary: output `[N, 2]` probabilities through a sigmoid; else `[N, 1]` values.
    pub binary: bool,
}

impl LinearModel {
    /// The model's output for one row, computed as the graph does (f32).
    pub fn predict(&self, x: &[f32]) -> f32 {
        let mut z = 0f32;
        for (j, &v) in x.iter().enumerate() {
            let v = if v.is_nan() { self.fill[j] } else { v };
            z += (v - self.mean[j]) / self.scale[j] * self.weights[j];
        }
        z += self.bias;
        if self.binary {
            1.0 / (1.0 + (-z).exp())
        } else {
            z
        }
    }
}

pub fn linear_to_onnx(m: &LinearModel) -> Result<Vec<u8>, ExportError> {
    let f = m.weights.len();
    if [m.fill.len(), m.mean.len(), m.scale.len()]
        .iter()
        .any(|&l| l != f)
    {
        return Err(ExportError::Shape(
            "fill, mean, scale and weights must have one entry per feature".into(),
        ));
    }
    let fi = f as i64;
    let mut nodes = vec![
        node("IsNaN", "", &[INPUT], &["is_nan"]),
        node("Where", "", &["is_nan", "fill", INPUT], &["filled"]),
        node("Sub", "", &["filled", "mean"], &["centred"]),
        node("Div", "", &["centred", "scale"], &["scaled"]),
        node("MatMul", "", &["scaled", "weights"], &["xw"]),
        node("Add", "", &["xw", "bias"], &["z"]),
    ];
    let width = if m.binary {
        nodes.push(node("Sigmoid", "", &["z"], &["p"]));
        nodes.push(node("Neg", "", &["p"], &["minus_p"]));
        nodes.push(node("Add", "", &["minus_p", "one"], &["q"]));
        let mut concat = node("Concat", "", &["q", "p"], &[OUTPUT]);
        concat.attribute = vec![pb::AttributeProto {
            name: "axis".into(),
            r#type: AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        }];
        nodes.push(concat);
        2
    } else {
        nodes.push(node("Identity", "", &["z"], &[OUTPUT]));
        1
    };
    let n = Dim::DimParam("N".into());
    let graph = pb::GraphProto {
        name: "linear".into(),
        node: nodes,
        input: vec![value_info(
            INPUT,
            vec![n.clone(), Dim::DimValue(fi)],
            DataType::Float,
        )],
        output: vec![value_info(
            OUTPUT,
            vec![n, Dim::DimValue(width)],
            DataType::Float,
        )],
        initializer: vec![
            tensor("fill", &[fi], m.fill.clone()),
            tensor("mean", &[fi], m.mean.clone()),
            tensor("scale", &[fi], m.scale.clone()),
            tensor("weights", &[fi, 1], m.weights.clone()),
            tensor("bias", &[1], vec![m.bias]),
            tensor("one", &[1], vec![1.0]),
        ],
        ..Default::default()
    };
    Ok(model(graph).encode_to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use tract_onnx::prelude::*;

    use super::*;

    /// Runs an exported model with tract and returns the output rows.
    fn run_tract(bytes: &[u8], x: &[f32], n: usize, f: usize) -> Vec<Vec<f32>> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let input = tract_ndarray::Array2::from_shape_vec((n, f), x.to_vec()).unwrap();
        let out = plan.run(tvec!(input.into_tensor().into())).unwrap();
        let view = out[0].to_plain_array_view::<f32>().unwrap();
        view.outer_iter()
            .map(|row| row.iter().copied().collect())
            .collect()
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
            trees.push(Tree { nodes });
        }
        TreeEnsemble {
            trees,
            base_score: -1.25,
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
    fn linear_models_run_in_tract_with_imputation_and_scaling_inside() {
        let (n, f) = (200, 5);
        let m = LinearModel {
            fill: vec![0.1, 0.2, 0.3, 0.4, 0.5],
            mean: vec![0.0, 1.0, -1.0, 0.5, 2.0],
            scale: vec![1.0, 2.0, 0.5, 3.0, 1.5],
            weights: vec![0.3, -0.2, 0.8, 0.05, -1.1],
            bias: 0.25,
            binary: true,
        };
        let x = random_rows(5, n, f);
        let out = run_tract(&linear_to_onnx(&m).unwrap(), &x, n, f);
        for (i, row) in out.iter().enumerate() {
            let p = m.predict(&x[i * f..(i + 1) * f]);
            assert!((row[1] - p).abs() <= 1e-6 && (row[0] - (1.0 - p)).abs() <= 1e-6);
        }
        let reg = LinearModel {
            binary: false,
            ..m.clone()
        };
        let out = run_tract(&linear_to_onnx(&reg).unwrap(), &x, n, f);
        for (i, row) in out.iter().enumerate() {
            assert!((row[0] - reg.predict(&x[i * f..(i + 1) * f])).abs() <= 1e-5);
        }
        assert!(linear_to_onnx(&LinearModel { fill: vec![], ..m }).is_err());
    }
}
