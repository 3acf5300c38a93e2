//! ONNX-ML operators tract 0.23 lacks, which the common exporters emit (skl2onnx's
//! pipelines, onnxmltools' boosters): `Scaler`, `Imputer`, `OneHotEncoder`, `Binarizer`,
//! `ArrayFeatureExtractor`, `TreeEnsembleRegressor`, `SVMClassifier` and `SVMRegressor`
//! ([`svm`]), registered through tract's operator
//! register ([`onnx`]), so every runtime (native, the Worker, Spin) loads the same graphs.
//!
//! Each is one plain evaluation over the input tensor, written to the ONNX-ML operator
//! specification; `mlpipe/tests/import.rs` holds them to onnxruntime on models skl2onnx
//! exports. (`ZipMap` is not here: it yields a sequence of maps, which tract has no type
//! for; import rewrites the graph to expose the tensor that feeds it.)

use tract_hir::internal::*;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;

mod svm;

/// tract's ONNX front end with the operators of this module registered.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    register(&mut onnx.op_register);
    onnx
}

/// The ONNX-ML operators this module adds, by `op_type`.
pub const ADDED: &[&str] = &[
    "Scaler",
    "Imputer",
    "OneHotEncoder",
    "Binarizer",
    "ArrayFeatureExtractor",
    "TreeEnsembleRegressor",
    "SVMClassifier",
    "SVMRegressor",
];

fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
    reg.insert("Imputer", imputer);
    reg.insert("OneHotEncoder", one_hot_encoder);
    reg.insert("Binarizer", binarizer);
    reg.insert("ArrayFeatureExtractor", array_feature_extractor);
    reg.insert("TreeEnsembleRegressor", tree_ensemble_regressor);
    reg.insert("SVMClassifier", |_, node| {
        built(MlOp::SvmClassifier(Arc::new(svm::Classifier::read(node)?)))
    });
    reg.insert("SVMRegressor", |_, node| {
        built(MlOp::SvmRegressor(Arc::new(svm::Regressor::read(node)?)))
    });
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

fn built(op: MlOp) -> Built {
    Ok((expand(Ml(op)), vec![]))
}

fn scaler(_: &ParsingContext, node: &NodeProto) -> Built {
    built(MlOp::Scaler {
        offset: node.get_attr_opt_vec("offset")?.unwrap_or_default(),
        scale: node.get_attr_opt_vec("scale")?.unwrap_or_default(),
    })
}

fn imputer(_: &ParsingContext, node: &NodeProto) -> Built {
    let floats: Option<Vec<f32>> = node.get_attr_opt_vec("imputed_value_floats")?;
    let ints: Option<Vec<i64>> = node.get_attr_opt_vec("imputed_value_int64s")?;
    match (floats, ints) {
        (Some(values), _) if !values.is_empty() => built(MlOp::ImputeF32 {
            values,
            replaced: node
                .get_attr_opt::<f32>("replaced_value_float")?
                .unwrap_or(f32::NAN),
        }),
        (_, Some(values)) if !values.is_empty() => built(MlOp::ImputeI64 {
            values,
            replaced: node
                .get_attr_opt::<i64>("replaced_value_int64")?
                .unwrap_or(0),
        }),
        _ => bail!("Imputer needs imputed_value_floats or imputed_value_int64s"),
    }
}

fn one_hot_encoder(_: &ParsingContext, node: &NodeProto) -> Built {
    let strings: Option<Vec<String>> = node.get_attr_opt_vec("cats_strings")?;
    let ints: Option<Vec<i64>> = node.get_attr_opt_vec("cats_int64s")?;
    let cats = match (strings, ints) {
        (Some(s), _) if !s.is_empty() => Cats::Strings(s),
        (_, Some(i)) if !i.is_empty() => Cats::Ints(i),
        _ => bail!("OneHotEncoder needs cats_strings or cats_int64s"),
    };
    built(MlOp::OneHot {
        cats,
        zeros: node.get_attr_opt::<i64>("zeros")?.unwrap_or(1) != 0,
    })
}

fn binarizer(_: &ParsingContext, node: &NodeProto) -> Built {
    built(MlOp::Binarizer {
        threshold: node.get_attr_opt::<f32>("threshold")?.unwrap_or(0.0),
    })
}

fn array_feature_extractor(_: &ParsingContext, _: &NodeProto) -> Built {
    built(MlOp::ArrayFeatureExtractor)
}

fn tree_ensemble_regressor(_: &ParsingContext, node: &NodeProto) -> Built {
    let ints = |name: &str| -> TractResult<Vec<i64>> {
        Ok(node.get_attr_opt_vec(name)?.unwrap_or_default())
    };
    let tree_ids = ints("nodes_treeids")?;
    let node_ids = ints("nodes_nodeids")?;
    let feature_ids = ints("nodes_featureids")?;
    let true_ids = ints("nodes_truenodeids")?;
    let false_ids = ints("nodes_falsenodeids")?;
    let missing_true = ints("nodes_missing_value_tracks_true")?;
    let values: Vec<f32> = node.get_attr_opt_vec("nodes_values")?.unwrap_or_default();
    let modes: Vec<String> = node.get_attr_opt_vec("nodes_modes")?.unwrap_or_default();
    let n = tree_ids.len();
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", feature_ids.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_values", values.len()),
        ("nodes_modes", modes.len()),
    ] {
        ensure!(
            len == n,
            "TreeEnsembleRegressor: {name} has {len} entries, nodes_treeids {n}"
        );
    }
    let index = |t: i64, id: i64| -> Option<usize> {
        (0..n).find(|&i| tree_ids[i] == t && node_ids[i] == id)
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mode = match modes[i].as_str() {
            "LEAF" => None,
            "BRANCH_LEQ" => Some(Branch::Leq),
            "BRANCH_LT" => Some(Branch::Lt),
            "BRANCH_GTE" => Some(Branch::Gte),
            "BRANCH_GT" => Some(Branch::Gt),
            "BRANCH_EQ" => Some(Branch::Eq),
            "BRANCH_NEQ" => Some(Branch::Neq),
            other => bail!("TreeEnsembleRegressor: node mode {other}"),
        };
        let (yes, no) = match mode {
            None => (0, 0),
            Some(_) => (
                index(tree_ids[i], true_ids[i])
                    .with_context(|| format!("node {i}: no true node {}", true_ids[i]))?,
                index(tree_ids[i], false_ids[i])
                    .with_context(|| format!("node {i}: no false node {}", false_ids[i]))?,
            ),
        };
        nodes.push(TreeNode {
            mode,
            feature: usize::try_from(feature_ids[i])?,
            value: values[i],
            yes,
            no,
            missing_yes: missing_true.get(i).copied().unwrap_or(0) != 0,
            leaf: Vec::new(),
        });
    }
    let t_tree = ints("target_treeids")?;
    let t_node = ints("target_nodeids")?;
    let t_id = ints("target_ids")?;
    let t_weight: Vec<f32> = node.get_attr_opt_vec("target_weights")?.unwrap_or_default();
    ensure!(
        t_tree.len() == t_node.len() && t_node.len() == t_id.len() && t_id.len() == t_weight.len(),
        "TreeEnsembleRegressor: target_* attributes differ in length"
    );
    for k in 0..t_tree.len() {
        let i = index(t_tree[k], t_node[k])
            .with_context(|| format!("target {k}: no node {} in tree {}", t_node[k], t_tree[k]))?;
        nodes[i].leaf.push((usize::try_from(t_id[k])?, t_weight[k]));
    }
    let mut roots: Vec<(i64, usize)> = Vec::new();
    for (i, &t) in tree_ids.iter().enumerate() {
        if !roots.iter().any(|(r, _)| *r == t) {
            roots.push((t, i));
        }
    }
    let targets = usize::try_from(node.get_attr_opt::<i64>("n_targets")?.unwrap_or(1))?;
    let aggregate = match node
        .get_attr_opt::<String>("aggregate_function")?
        .as_deref()
        .unwrap_or("SUM")
    {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => bail!("TreeEnsembleRegressor: aggregate_function {other}"),
    };
    match node.get_attr_opt::<String>("post_transform")?.as_deref() {
        None | Some("NONE") => {}
        Some(other) => bail!("TreeEnsembleRegressor: post_transform {other} is not supported"),
    }
    let base: Vec<f32> = node.get_attr_opt_vec("base_values")?.unwrap_or_default();
    ensure!(
        base.is_empty() || base.len() == targets,
        "TreeEnsembleRegressor: {} base_values for {targets} targets",
        base.len()
    );
    built(MlOp::Trees(Arc::new(Trees {
        nodes,
        roots: roots.into_iter().map(|(_, i)| i).collect(),
        targets,
        aggregate,
        base,
    })))
}

/// Categories of a one-hot encoder.
#[derive(Debug, Clone, PartialEq)]
enum Cats {
    Strings(Vec<String>),
    Ints(Vec<i64>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Branch {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
struct TreeNode {
    /// `None`: a leaf.
    mode: Option<Branch>,
    feature: usize,
    value: f32,
    yes: usize,
    no: usize,
    missing_yes: bool,
    /// A leaf's (target, weight) contributions.
    leaf: Vec<(usize, f32)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Trees {
    nodes: Vec<TreeNode>,
    roots: Vec<usize>,
    targets: usize,
    aggregate: Aggregate,
    base: Vec<f32>,
}

impl Trees {
    fn leaf(&self, root: usize, row: &[f32]) -> TractResult<&TreeNode> {
        let mut i = root;
        for _ in 0..=self.nodes.len() {
            let node = &self.nodes[i];
            let Some(mode) = node.mode else {
                return Ok(node);
            };
            let x = *row
                .get(node.feature)
                .with_context(|| format!("feature {} of a {}-wide row", node.feature, row.len()))?;
            let yes = if x.is_nan() {
                node.missing_yes
            } else {
                match mode {
                    Branch::Leq => x <= node.value,
                    Branch::Lt => x < node.value,
                    Branch::Gte => x >= node.value,
                    Branch::Gt => x > node.value,
                    Branch::Eq => x == node.value,
                    Branch::Neq => x != node.value,
                }
            };
            i = if yes { node.yes } else { node.no };
        }
        bail!("a tree has a cycle")
    }

    fn eval(&self, x: &[f32], rows: usize, width: usize) -> TractResult<Vec<f32>> {
        let k = self.targets;
        let mut out = vec![0f32; rows * k];
        for r in 0..rows {
            let row = &x[r * width..(r + 1) * width];
            let mut acc: Vec<Option<f32>> = vec![None; k];
            for &root in &self.roots {
                for &(t, w) in &self.leaf(root, row)?.leaf {
                    let slot = acc
                        .get_mut(t)
                        .with_context(|| format!("target {t} of {k}"))?;
                    *slot = Some(match (self.aggregate, *slot) {
                        (_, None) => w,
                        (Aggregate::Sum | Aggregate::Average, Some(a)) => a + w,
                        (Aggregate::Min, Some(a)) => a.min(w),
                        (Aggregate::Max, Some(a)) => a.max(w),
                    });
                }
            }
            for (t, v) in acc.into_iter().enumerate() {
                let mut v = v.unwrap_or(0.0);
                if self.aggregate == Aggregate::Average && !self.roots.is_empty() {
                    v /= self.roots.len() as f32;
                }
                out[r * k + t] = v + self.base.get(t).copied().unwrap_or(0.0);
            }
        }
        Ok(out)
    }
}

/// One added operator, evaluated over plain tensors.
#[derive(Debug, Clone, PartialEq)]
enum MlOp {
    Scaler { offset: Vec<f32>, scale: Vec<f32> },
    ImputeF32 { values: Vec<f32>, replaced: f32 },
    ImputeI64 { values: Vec<i64>, replaced: i64 },
    OneHot { cats: Cats, zeros: bool },
    Binarizer { threshold: f32 },
    ArrayFeatureExtractor,
    Trees(Arc<Trees>),
    SvmClassifier(Arc<svm::Classifier>),
    SvmRegressor(Arc<svm::Regressor>),
}

impl MlOp {
    fn name(&self) -> &'static str {
        match self {
            MlOp::Scaler { .. } => "Scaler",
            MlOp::ImputeF32 { .. } | MlOp::ImputeI64 { .. } => "Imputer",
            MlOp::OneHot { .. } => "OneHotEncoder",
            MlOp::Binarizer { .. } => "Binarizer",
            MlOp::ArrayFeatureExtractor => "ArrayFeatureExtractor",
            MlOp::Trees(_) => "TreeEnsembleRegressor",
            MlOp::SvmClassifier(_) => "SVMClassifier",
            MlOp::SvmRegressor(_) => "SVMRegressor",
        }
    }

    /// Outputs: a classifier's label and scores, one tensor for the others.
    fn outputs(&self) -> usize {
        match self {
            MlOp::SvmClassifier(_) => 2,
            _ => 1,
        }
    }

    fn arity(&self) -> usize {
        match self {
            MlOp::ArrayFeatureExtractor => 2,
            _ => 1,
        }
    }

    /// Each output's type and shape from the inputs'.
    fn output_facts(
        &self,
        dt: DatumType,
        shape: &[TDim],
        second: Option<&[TDim]>,
    ) -> TVec<(DatumType, TVec<TDim>)> {
        let rows = || shape.first().cloned().unwrap_or_else(|| 1.to_dim());
        match self {
            MlOp::SvmClassifier(c) => tvec![
                (c.labels.datum_type(), tvec![rows()]),
                (DatumType::F32, tvec![rows(), c.width.to_dim()]),
            ],
            MlOp::SvmRegressor(_) => tvec![(DatumType::F32, tvec![rows(), 1.to_dim()])],
            _ => tvec![self.output(dt, shape, second)],
        }
    }

    /// The one output's type and shape from the inputs' (`None`: the extra axis's size is
    /// unknown).
    fn output(
        &self,
        dt: DatumType,
        shape: &[TDim],
        second: Option<&[TDim]>,
    ) -> (DatumType, TVec<TDim>) {
        let mut out: TVec<TDim> = shape.iter().cloned().collect();
        match self {
            MlOp::SvmClassifier(_) | MlOp::SvmRegressor(_) => {
                self.output_facts(dt, shape, second).swap_remove(0)
            }
            MlOp::Scaler { .. } | MlOp::ImputeF32 { .. } | MlOp::Binarizer { .. } => {
                (DatumType::F32, out)
            }
            MlOp::ImputeI64 { .. } => (DatumType::I64, out),
            MlOp::OneHot { cats, .. } => {
                let k = match cats {
                    Cats::Strings(s) => s.len(),
                    Cats::Ints(i) => i.len(),
                };
                out.push(k.to_dim());
                (DatumType::F32, out)
            }
            MlOp::ArrayFeatureExtractor => {
                let k: TDim = second
                    .map(|s| s.iter().fold(1.to_dim(), |a, d| a * d.clone()))
                    .unwrap_or_else(|| 1.to_dim());
                if let Some(last) = out.last_mut() {
                    *last = k;
                } else {
                    out.push(k);
                }
                (dt, out)
            }
            MlOp::Trees(t) => {
                let n = shape.first().cloned().unwrap_or_else(|| 1.to_dim());
                (DatumType::F32, tvec![n, t.targets.to_dim()])
            }
        }
    }

    /// Every output of the operator.
    fn eval_all(&self, inputs: &[TValue]) -> TractResult<TVec<Tensor>> {
        match self {
            MlOp::SvmClassifier(c) => {
                let (labels, scores) = c.eval(&inputs[0])?;
                Ok(tvec![labels, scores])
            }
            MlOp::SvmRegressor(r) => Ok(tvec![r.eval(&inputs[0])?]),
            _ => Ok(tvec![self.eval(inputs)?]),
        }
    }

    fn eval(&self, inputs: &[TValue]) -> TractResult<Tensor> {
        let x = &inputs[0];
        let shape = x.shape().to_vec();
        let width = shape.last().copied().unwrap_or(1).max(1);
        let per = |v: &[f32], j: usize| -> f32 {
            match v.len() {
                0 => 0.0,
                1 => v[0],
                _ => v[j % v.len()],
            }
        };
        Ok(match self {
            MlOp::Scaler { offset, scale } => {
                let f = x.cast_to::<f32>()?;
                let view = f.to_plain_array_view::<f32>()?;
                let v: Vec<f32> = view
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let j = i % width;
                        let s = if scale.is_empty() { 1.0 } else { per(scale, j) };
                        (x - per(offset, j)) * s
                    })
                    .collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into_tensor()
            }
            MlOp::ImputeF32 { values, replaced } => {
                let f = x.cast_to::<f32>()?;
                let view = f.to_plain_array_view::<f32>()?;
                let v: Vec<f32> = view
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        let hit = if replaced.is_nan() {
                            x.is_nan()
                        } else {
                            x == *replaced
                        };
                        if hit { per(values, i % width) } else { x }
                    })
                    .collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into_tensor()
            }
            MlOp::ImputeI64 { values, replaced } => {
                let f = x.cast_to::<i64>()?;
                let view = f.to_plain_array_view::<i64>()?;
                let v: Vec<i64> = view
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        if x == *replaced {
                            let j = i % width;
                            match values.len() {
                                1 => values[0],
                                _ => values[j % values.len()],
                            }
                        } else {
                            x
                        }
                    })
                    .collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into_tensor()
            }
            MlOp::OneHot { cats, zeros } => {
                let (k, hits): (usize, Vec<Option<usize>>) = match cats {
                    Cats::Strings(c) => {
                        let view = x
                            .to_plain_array_view::<String>()
                            .context("OneHotEncoder with cats_strings takes a string tensor")?;
                        (
                            c.len(),
                            view.iter().map(|s| c.iter().position(|c| c == s)).collect(),
                        )
                    }
                    Cats::Ints(c) => {
                        let f = x.cast_to::<i64>()?;
                        let view = f.to_plain_array_view::<i64>()?;
                        (
                            c.len(),
                            view.iter().map(|s| c.iter().position(|c| c == s)).collect(),
                        )
                    }
                };
                let mut v = vec![0f32; hits.len() * k];
                for (i, hit) in hits.iter().enumerate() {
                    match hit {
                        Some(j) => v[i * k + j] = 1.0,
                        None if !zeros => bail!("OneHotEncoder: a value is not a known category"),
                        None => {}
                    }
                }
                let mut out = shape;
                out.push(k);
                tract_ndarray::ArrayD::from_shape_vec(out, v)?.into_tensor()
            }
            MlOp::Binarizer { threshold } => {
                let f = x.cast_to::<f32>()?;
                let view = f.to_plain_array_view::<f32>()?;
                let v: Vec<f32> = view
                    .iter()
                    .map(|&x| if x > *threshold { 1.0 } else { 0.0 })
                    .collect();
                tract_ndarray::ArrayD::from_shape_vec(shape, v)?.into_tensor()
            }
            MlOp::ArrayFeatureExtractor => {
                let idx = inputs[1].cast_to::<i64>()?;
                let idx: Vec<usize> = idx
                    .to_plain_array_view::<i64>()?
                    .iter()
                    .map(|&i| usize::try_from(i).ok().filter(|&i| i < width))
                    .collect::<Option<_>>()
                    .context("ArrayFeatureExtractor: an index is outside the last axis")?;
                let mut out = shape.clone();
                match out.last_mut() {
                    Some(last) => *last = idx.len(),
                    None => out.push(idx.len()),
                }
                match x.datum_type() {
                    DatumType::String => pick::<String>(x, &idx, width, out)?,
                    DatumType::I64 => pick::<i64>(x, &idx, width, out)?,
                    DatumType::F64 => pick::<f64>(x, &idx, width, out)?,
                    _ => {
                        let f = x.cast_to::<f32>()?.into_owned();
                        pick::<f32>(&f, &idx, width, out)?
                    }
                }
            }
            MlOp::Trees(trees) => {
                let f = x.cast_to::<f32>()?;
                let view = f.to_plain_array_view::<f32>()?;
                let flat: Vec<f32> = view.iter().copied().collect();
                let rows = if shape.len() <= 1 {
                    1
                } else {
                    flat.len() / width
                };
                let v = trees.eval(&flat, rows, width)?;
                tract_ndarray::Array2::from_shape_vec((rows, trees.targets), v)?.into_tensor()
            }
            MlOp::SvmClassifier(_) | MlOp::SvmRegressor(_) => self.eval_all(inputs)?.swap_remove(0),
        })
    }
}

/// The columns `idx` of every row of `x` (`width` values per row), shaped `out`.
fn pick<T: Datum + Clone>(
    x: &Tensor,
    idx: &[usize],
    width: usize,
    out: Vec<usize>,
) -> TractResult<Tensor> {
    let flat: Vec<T> = x.to_plain_array_view::<T>()?.iter().cloned().collect();
    let rows = flat.len() / width;
    let mut v = Vec::with_capacity(rows * idx.len());
    for r in 0..rows {
        for &i in idx {
            v.push(flat[r * width + i].clone());
        }
    }
    Ok(tract_ndarray::ArrayD::from_shape_vec(out, v)?.into_tensor())
}

/// The inference-side wrapper: type rules, then one typed node.
#[derive(Debug, Clone)]
struct Ml(MlOp);

impl Expansion for Ml {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, self.0.arity())?;
        check_output_arity(outputs, self.0.outputs())?;
        let op = &self.0;
        match op {
            MlOp::SvmClassifier(_) | MlOp::SvmRegressor(_) => {
                s.given(&inputs[0].shape, move |s, shape| {
                    for (o, (dt, out)) in op
                        .output_facts(DatumType::F32, &shape, None)
                        .into_iter()
                        .enumerate()
                    {
                        s.equals(&outputs[o].datum_type, dt)?;
                        s.equals(&outputs[o].shape, out)?;
                    }
                    Ok(())
                })
            }
            MlOp::ArrayFeatureExtractor => {
                s.equals(&outputs[0].datum_type, &inputs[0].datum_type)?;
                s.given_2(&inputs[0].shape, &inputs[1].shape, move |s, a, b| {
                    let (_, shape) = op.output(DatumType::F32, &a, Some(&b));
                    s.equals(&outputs[0].shape, shape)
                })
            }
            _ => {
                s.given(&inputs[0].datum_type, move |s, dt| {
                    let (out, _) = op.output(dt, &[], None);
                    s.equals(&outputs[0].datum_type, out)
                })?;
                s.given(&inputs[0].shape, move |s, shape| {
                    let (_, out) = op.output(DatumType::F32, &shape, None);
                    s.equals(&outputs[0].shape, out)
                })
            }
        }
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.outputs())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, Typed(self.0.clone()), inputs)
    }
}

/// The typed node that evaluates an [`MlOp`].
#[derive(Debug, Clone, PartialEq)]
struct Typed(MlOp);

// tract compares nodes for equality (to share identical ones); an op with a NaN parameter
// (an Imputer's default `replaced_value_float`) is then never merged with another, which
// is only a missed sharing.
impl Eq for Typed {}

impl Op for Typed {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for Typed {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        Ok(self
            .0
            .eval_all(&inputs)?
            .into_iter()
            .map(Tensor::into_tvalue)
            .collect())
    }
}

impl TypedOp for Typed {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = inputs[0].shape.to_tvec();
        let second = inputs.get(1).map(|f| f.shape.to_tvec());
        Ok(self
            .0
            .output_facts(inputs[0].datum_type, &shape, second.as_deref())
            .into_iter()
            .map(|(dt, out)| TypedFact::dt_shape(dt, out))
            .collect())
    }

    as_op!();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(op: &MlOp, inputs: Vec<Tensor>) -> Tensor {
        let inputs: Vec<TValue> = inputs.into_iter().map(|t| t.into_tvalue()).collect();
        op.eval(&inputs).unwrap()
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn element_wise_operators_follow_the_onnx_ml_spec() {
        let x = tract_ndarray::arr2(&[[1f32, 10.0], [3.0, f32::NAN]]).into_tensor();
        let scaled = run(
            &MlOp::Scaler {
                offset: vec![1.0, 2.0],
                scale: vec![2.0, 0.5],
            },
            vec![x.clone()],
        );
        assert_eq!(floats(&scaled)[..3], [0.0, 4.0, 4.0]);
        let imputed = run(
            &MlOp::ImputeF32 {
                values: vec![7.0, 8.0],
                replaced: f32::NAN,
            },
            vec![x.clone()],
        );
        assert_eq!(floats(&imputed), [1.0, 10.0, 3.0, 8.0]);
        let binary = run(&MlOp::Binarizer { threshold: 2.0 }, vec![x]);
        assert_eq!(floats(&binary)[..3], [0.0, 1.0, 1.0]);
    }

    #[test]
    fn one_hot_appends_an_axis_and_zeros_unknown_categories() {
        let x = tract_ndarray::arr2(&[["b".to_string()], ["z".to_string()]]).into_tensor();
        let op = MlOp::OneHot {
            cats: Cats::Strings(vec!["a".into(), "b".into(), "c".into()]),
            zeros: true,
        };
        let out = run(&op, vec![x.clone()]);
        assert_eq!(out.shape(), &[2, 1, 3]);
        assert_eq!(floats(&out), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        let strict = MlOp::OneHot {
            cats: Cats::Strings(vec!["a".into()]),
            zeros: false,
        };
        let inputs = vec![x.into_tvalue()];
        assert!(strict.eval(&inputs).is_err());
        let picked = run(
            &MlOp::ArrayFeatureExtractor,
            vec![
                tract_ndarray::arr2(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_tensor(),
                tract_ndarray::arr1(&[2i64, 0]).into_tensor(),
            ],
        );
        assert_eq!(picked.shape(), &[2, 2]);
        assert_eq!(floats(&picked), [3.0, 1.0, 6.0, 4.0]);
    }

    #[test]
    fn tree_regressors_average_follow_missing_values_and_add_the_base() {
        // Two stumps on feature 0: x <= 1 (missing goes left) -> 10 else 20; x < 5 -> 1 else 3.
        let leaf = |w: f32| TreeNode {
            mode: None,
            feature: 0,
            value: 0.0,
            yes: 0,
            no: 0,
            missing_yes: false,
            leaf: vec![(0, w)],
        };
        let split = |mode, value, yes, no, missing_yes| TreeNode {
            mode: Some(mode),
            feature: 0,
            value,
            yes,
            no,
            missing_yes,
            leaf: vec![],
        };
        let trees = Trees {
            nodes: vec![
                split(Branch::Leq, 1.0, 1, 2, true),
                leaf(10.0),
                leaf(20.0),
                split(Branch::Lt, 5.0, 4, 5, false),
                leaf(1.0),
                leaf(3.0),
            ],
            roots: vec![0, 3],
            targets: 1,
            aggregate: Aggregate::Average,
            base: vec![100.0],
        };
        let x = [1.0f32, 6.0, f32::NAN];
        let out = trees.eval(&x, 3, 1).unwrap();
        assert_eq!(out, [105.5, 111.5, 106.5]);
    }
}
