//! Bring-your-own ONNX: a model exported by another tool (skl2onnx, onnxmltools, a
//! PyTorch or TensorFlow float graph) made servable and registered as the next version of a
//! model, with a bundle generated from the graph (`mlpipe models import`).
//!
//! What import does, in order:
//! 1. reads the graph's inputs (name, element type, `[N, width]` shape) and outputs;
//! 2. picks the output serving reads: the class probabilities of a classifier (skl2onnx
//!    emits an int64 or string label first and the probabilities second), the value of a
//!    regressor; when the probabilities come as a `ZipMap` (a sequence of maps, which tract
//!    has no type for), the tensor that feeds the `ZipMap` instead, with its class labels;
//! 3. prunes every node that output does not need (the label path with its casts and
//!    lookups), so the stored graph computes exactly what is served;
//! 4. refuses, naming them, operators neither tract nor `inference::ml_ops` runs, and
//!    inputs it cannot feed (doubles, a fixed batch size, rank above 2);
//! 5. loads the result in `inference::Model` (every runtime's loader) and runs one row;
//! 6. registers it (`registry::register`, idempotent by content) and optionally promotes it.
//!
//! Task, classes and threshold come from flags or are inferred: classes from the `ZipMap`
//! or the classifier node's labels, the task from their count (none: regression).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use registry::{Input, NewVersion, ObjectRef};
use tract_onnx::pb::{self, tensor_proto::DataType, type_proto};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} is not an ONNX model: {1}")]
    Decode(String, String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Usage(String),
    #[error("the rewritten model does not load or run in tract: {0}")]
    Load(String),
    #[error("registry: {0}")]
    Registry(#[from] registry::RegistryError),
}

/// What the user says about the model (`None`: inferred from the graph).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `binary-classification`, `multiclass-classification` or `regression` (also accepted:
    /// `binary`, `multiclass`, `classification`).
    pub task: Option<String>,
    pub classes: Option<Vec<String>>,
    pub threshold: Option<f64>,
    /// Recorded in the bundle (`family`); default `imported`.
    pub family: Option<String>,
}

/// A model ready to register.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The servable graph (pruned to the served output).
    pub onnx: Vec<u8>,
    pub version: NewVersion,
    /// The served output's name in the original graph.
    pub output: String,
    /// What import changed, one line each.
    pub rewrites: Vec<String>,
}

const TASKS: [&str; 3] = [
    "binary-classification",
    "multiclass-classification",
    "regression",
];

fn unsupported(m: impl Into<String>) -> ImportError {
    ImportError::Unsupported(m.into())
}

/// Every operator the servable graph may use: tract's ONNX operators and ours.
pub fn supported_operators() -> BTreeSet<String> {
    let mut ops: BTreeSet<String> = inference::ml_ops::onnx()
        .op_register
        .0
        .keys()
        .cloned()
        .collect();
    ops.extend(inference::ml_ops::ADDED.iter().map(|s| s.to_string()));
    ops
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// Class labels a node names (`classlabels_strings` or `classlabels_int64s`).
fn labels_of(node: &pb::NodeProto) -> Option<Vec<String>> {
    if let Some(a) = attr(node, "classlabels_strings").filter(|a| !a.strings.is_empty()) {
        return Some(
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        );
    }
    attr(node, "classlabels_int64s")
        .filter(|a| !a.ints.is_empty())
        .map(|a| a.ints.iter().map(i64::to_string).collect())
}

fn tensor_type(v: &pb::ValueInfoProto) -> Option<&type_proto::Tensor> {
    match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(t),
    }
}

/// Declared dims: `Some(n)` fixed, `None` symbolic or unknown.
fn dims(t: &type_proto::Tensor) -> Option<Vec<Option<i64>>> {
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Some(v),
                _ => None,
            })
            .collect(),
    )
}

fn normalize_task(task: &str) -> Result<String, ImportError> {
    Ok(match task {
        "binary" | "binary-classification" => "binary-classification",
        "multiclass" | "multi-class" | "multiclass-classification" => "multiclass-classification",
        "regression" => "regression",
        "classification" => "classification",
        other => {
            return Err(ImportError::Usage(format!(
                "--task '{other}': use binary, multiclass, classification or regression"
            )));
        }
    }
    .to_string())
}

/// Reads, rewrites and checks `bytes` (named `file` in messages).
pub fn prepare(file: &str, bytes: &[u8], opts: &Options) -> Result<Prepared, ImportError> {
    let mut model = pb::ModelProto::decode(bytes)
        .map_err(|e| ImportError::Decode(file.to_string(), e.to_string()))?;
    let mut graph = model
        .graph
        .take()
        .ok_or_else(|| ImportError::Decode(file.to_string(), "it has no graph".into()))?;
    let mut rewrites = Vec::new();

    // 1. Inputs: those not fed by an initializer (older exporters list weights as inputs).
    let initialized: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = Vec::new();
    for v in graph
        .input
        .iter()
        .filter(|v| !initialized.contains(v.name.as_str()))
    {
        let t = tensor_type(v)
            .ok_or_else(|| unsupported(format!("input '{}' is not a tensor", v.name)))?;
        let ty = match DataType::try_from(t.elem_type) {
            Ok(DataType::Float) => "f32",
            Ok(DataType::Int64) => "i64",
            Ok(DataType::String) => "string",
            other => {
                return Err(unsupported(format!(
                    "input '{}' has element type {other:?}: served inputs are float (f32), int64 or string; export it with FloatTensorType",
                    v.name
                )));
            }
        };
        let shape = dims(t).unwrap_or_default();
        let width = match shape.as_slice() {
            [None] => 1,
            [None, Some(w)] => *w,
            [Some(b), ..] => {
                return Err(unsupported(format!(
                    "input '{}' has a fixed batch size of {b}: export it with a dynamic first dimension (None / 'N')",
                    v.name
                )));
            }
            other => {
                return Err(unsupported(format!(
                    "input '{}' has shape {}: served inputs are [N, width] with a fixed width",
                    v.name,
                    show_dims(other)
                )));
            }
        };
        if shape.len() == 1 {
            return Err(unsupported(format!(
                "input '{}' is one-dimensional ([N]): served inputs are [N, width]; export it as [None, 1]",
                v.name
            )));
        }
        inputs.push(Input {
            name: v.name.clone(),
            ty: ty.into(),
            width: Some(width as u64),
        });
    }
    if inputs.is_empty() {
        return Err(unsupported("the graph has no inputs"));
    }

    // 2. The served output.
    let producer: BTreeMap<&str, &pb::NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut task = opts.task.as_deref().map(normalize_task).transpose()?;
    let is_zipmap = |name: &str| producer.get(name).is_some_and(|n| n.op_type == "ZipMap");
    let float_output = |v: &pb::ValueInfoProto| {
        tensor_type(v).is_some_and(|t| {
            matches!(
                DataType::try_from(t.elem_type),
                Ok(DataType::Float | DataType::Double)
            )
        })
    };
    let candidates: Vec<&pb::ValueInfoProto> = graph
        .output
        .iter()
        .filter(|o| is_zipmap(&o.name) || float_output(o))
        .collect();
    let chosen = match (task.as_deref(), candidates.as_slice()) {
        (_, []) => {
            return Err(unsupported(format!(
                "no output holds probabilities or values (outputs: {})",
                graph
                    .output
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // A classifier's probabilities follow its label; a regressor has one float output.
        (_, [one]) => *one,
        (Some("regression"), [first, ..]) => *first,
        (_, many) => *many.last().unwrap_or(&many[0]),
    };
    let mut output = chosen.name.clone();
    let original_output = output.clone();
    let mut classes_found: Option<Vec<String>> = None;
    if let Some(zip) = producer
        .get(output.as_str())
        .filter(|n| n.op_type == "ZipMap")
    {
        classes_found = labels_of(zip);
        let fed = zip
            .input
            .first()
            .cloned()
            .ok_or_else(|| unsupported(format!("ZipMap '{}' has no input", zip.name)))?;
        rewrites.push(format!(
            "output '{output}' is a ZipMap (a sequence of maps): serving its input '{fed}', the probability tensor"
        ));
        output = fed;
    }
    if task.as_deref() == Some("regression") && classes_found.is_some() {
        return Err(ImportError::Usage(
            "--task regression, but the model's output is class probabilities".into(),
        ));
    }
    // Classes from a classifier node when no ZipMap named them.
    if classes_found.is_none() && task.as_deref() != Some("regression") {
        classes_found = graph
            .node
            .iter()
            .filter(|n| n.op_type.ends_with("Classifier"))
            .find_map(labels_of);
    }
    let classes = match (&opts.classes, classes_found) {
        (Some(given), Some(found)) if *given != found => {
            return Err(ImportError::Usage(format!(
                "--classes {} differs from the classes the model names ({})",
                given.join(","),
                found.join(",")
            )));
        }
        (Some(given), _) => given.clone(),
        (None, Some(found)) => found,
        (None, None) => Vec::new(),
    };
    let task = match (task.take().as_deref(), classes.len()) {
        (Some("regression"), 0) | (None, 0) => "regression".to_string(),
        (Some("regression"), _) => {
            return Err(ImportError::Usage(
                "--task regression, but --classes names classes".into(),
            ));
        }
        (Some(t), 0) => {
            return Err(ImportError::Usage(format!(
                "--task {t}: the model names no classes; pass --classes A,B,..."
            )));
        }
        (_, 1) => {
            return Err(ImportError::Usage(
                "a classifier needs at least 2 classes".into(),
            ));
        }
        (wanted, k) => {
            let inferred = if k == 2 {
                "binary-classification"
            } else {
                "multiclass-classification"
            };
            if let Some(t) = wanted
                && t != "classification"
                && t != inferred
            {
                return Err(ImportError::Usage(format!(
                    "--task {t}, but the model has {k} classes"
                )));
            }
            inferred.to_string()
        }
    };
    if !TASKS.contains(&task.as_str()) {
        return Err(ImportError::Usage(format!("task '{task}'")));
    }

    // 3. Prune to what the output needs.
    let before = graph.node.len();
    let mut needed: BTreeSet<String> = BTreeSet::from([output.clone()]);
    let mut keep = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
        }
    }
    let mut i = 0;
    graph.node.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
    graph.initializer.retain(|t| needed.contains(&t.name));
    let feeds: BTreeSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let unused: Vec<String> = feeds
        .iter()
        .filter(|n| !needed.contains(**n))
        .map(|s| s.to_string())
        .collect();
    if !unused.is_empty() {
        return Err(unsupported(format!(
            "inputs {} do not reach output '{output}'",
            unused.join(", ")
        )));
    }
    if graph.node.len() < before {
        rewrites.push(format!(
            "pruned {} nodes that output '{output}' does not need (of {before})",
            before - graph.node.len()
        ));
    }
    graph.output = vec![pb::ValueInfoProto {
        name: output.clone(),
        ..Default::default()
    }];
    graph.value_info.retain(|v| needed.contains(&v.name));

    // Forms tract evaluates differently from onnxruntime, rewritten to equivalent ones.
    for node in &mut graph.node {
        if let Some(note) = binary_logistic_trees(node) {
            rewrites.push(note);
        }
    }

    // 4. Operators.
    let ops = supported_operators();
    let mut missing: BTreeMap<String, String> = BTreeMap::new();
    for node in &graph.node {
        if !ops.contains(&node.op_type) {
            missing
                .entry(node.op_type.clone())
                .or_insert_with(|| node.name.clone());
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|(op, node)| format!("{op} (node '{node}')"))
            .collect();
        return Err(unsupported(format!(
            "the model uses operators tract cannot run: {}",
            list.join(", ")
        )));
    }
    model.graph = Some(graph);
    let onnx = model.encode_to_vec();

    let version = NewVersion {
        threshold: (task == "binary-classification").then(|| opts.threshold.unwrap_or(0.5)),
        task,
        family: opts.family.clone().unwrap_or_else(|| "imported".into()),
        inputs,
        classes,
        feature_view: String::new(),
        feature_view_version: String::new(),
        feature_spec: ObjectRef {
            key: String::new(),
            sha256: String::new(),
        },
        dataset_snapshot: String::new(),
        reference_profile: ObjectRef {
            key: String::new(),
            sha256: String::new(),
        },
        training_run: String::new(),
        metrics: BTreeMap::new(),
        joined_views: Vec::new(),
        training_table: None,
        tags: BTreeMap::from([
            (
                "imported_from".to_string(),
                format!("{} {}", model.producer_name, model.producer_version)
                    .trim()
                    .to_string(),
            ),
            ("source_sha256".into(), inference::model::sha256_hex(bytes)),
            ("served_output".into(), original_output.clone()),
        ]),
    };
    // 5. The loaders every runtime uses must take it and run a row. A binary classifier
    // whose output is the positive class's probability alone (`[N, 1]`, as a sigmoid
    // head exports) gets the `[1 - p, p]` pair serving reads.
    let onnx = match check(&onnx, &version) {
        Ok(_) => onnx,
        Err(ImportError::Load(e))
            if version.task == "binary-classification"
                && e.contains("outputs 1 values per row") =>
        {
            let paired = pair_binary_output(&onnx, &output)?;
            check(&paired, &version)?;
            rewrites.push(format!(
                "output '{output}' holds the positive class's probability p alone: served as [1 - p, p]"
            ));
            paired
        }
        Err(e) => return Err(e),
    };
    Ok(Prepared {
        onnx,
        version,
        output: original_output,
        rewrites,
    })
}

/// A two-class `TreeEnsembleClassifier` whose leaves all score one class under `LOGISTIC`
/// (skl2onnx's gradient boosting): onnxruntime reads it as `[1 - sigmoid(raw), sigmoid(raw)]`
/// with `raw` the leaf sum plus `base_values[0]`; tract 0.23 refuses its `base_values`.
/// Rewritten to the form every runtime agrees on (as `train::export` writes trees): each
/// leaf scores `[0, w]` under `SOFTMAX`, which is the same pair, with the base score folded
/// into the leaves of the first tree (every row reaches exactly one of them).
fn binary_logistic_trees(node: &mut pb::NodeProto) -> Option<String> {
    if node.op_type != "TreeEnsembleClassifier" {
        return None;
    }
    let labels = labels_of(node)?;
    let post = attr(node, "post_transform")
        .map(|a| a.s.clone())
        .unwrap_or_default();
    let ids = attr(node, "class_ids")?.ints.clone();
    if labels.len() != 2
        || post != b"LOGISTIC"
        || ids.is_empty()
        || ids.iter().any(|c| *c != ids[0])
    {
        return None;
    }
    let trees = attr(node, "class_treeids")?.ints.clone();
    let nodes = attr(node, "class_nodeids")?.ints.clone();
    let weights = attr(node, "class_weights")?.floats.clone();
    if trees.len() != ids.len() || nodes.len() != ids.len() || weights.len() != ids.len() {
        return None;
    }
    let base = attr(node, "base_values")
        .and_then(|a| a.floats.first().copied())
        .unwrap_or(0.0);
    let first = *trees.first()?;
    let (mut t2, mut n2, mut c2, mut w2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..ids.len() {
        let w = weights[k] + if trees[k] == first { base } else { 0.0 };
        for (class, weight) in [(0, 0.0), (1, w)] {
            t2.push(trees[k]);
            n2.push(nodes[k]);
            c2.push(class);
            w2.push(weight);
        }
    }
    node.attribute.retain(|a| {
        !matches!(
            a.name.as_str(),
            "base_values"
                | "class_ids"
                | "class_treeids"
                | "class_nodeids"
                | "class_weights"
                | "post_transform"
        )
    });
    let ints = |name: &str, v: Vec<i64>| pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    };
    node.attribute.push(ints("class_treeids", t2));
    node.attribute.push(ints("class_nodeids", n2));
    node.attribute.push(ints("class_ids", c2));
    node.attribute.push(pb::AttributeProto {
        name: "class_weights".into(),
        r#type: pb::attribute_proto::AttributeType::Floats as i32,
        floats: w2,
        ..Default::default()
    });
    node.attribute.push(pb::AttributeProto {
        name: "post_transform".into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: b"SOFTMAX".to_vec(),
        ..Default::default()
    });
    Some(format!(
        "TreeEnsembleClassifier '{}': binary LOGISTIC leaves with base_values rewritten as [0, w] leaves under SOFTMAX (the same probabilities)",
        node.name
    ))
}

/// Appends `[1 - p, p]` after a `[N, 1]` probability output.
fn pair_binary_output(onnx: &[u8], output: &str) -> Result<Vec<u8>, ImportError> {
    let mut model = pb::ModelProto::decode(onnx)
        .map_err(|e| ImportError::Decode(output.to_string(), e.to_string()))?;
    let Some(graph) = model.graph.as_mut() else {
        return Err(unsupported("the graph is gone"));
    };
    let (one, negative, paired) = ("mlpipe_one", "mlpipe_one_minus_p", "mlpipe_probabilities");
    graph.initializer.push(pb::TensorProto {
        name: one.into(),
        dims: vec![],
        data_type: DataType::Float as i32,
        float_data: vec![1.0],
        ..Default::default()
    });
    graph.node.push(pb::NodeProto {
        op_type: "Sub".into(),
        name: negative.into(),
        input: vec![one.into(), output.into()],
        output: vec![negative.into()],
        ..Default::default()
    });
    graph.node.push(pb::NodeProto {
        op_type: "Concat".into(),
        name: paired.into(),
        input: vec![negative.into(), output.into()],
        output: vec![paired.into()],
        attribute: vec![pb::AttributeProto {
            name: "axis".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        }],
        ..Default::default()
    });
    graph.output = vec![pb::ValueInfoProto {
        name: paired.into(),
        ..Default::default()
    }];
    Ok(model.encode_to_vec())
}

fn show_dims(d: &[Option<i64>]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Loads the prepared graph as serving will (a bundle for it, hashed), running one row.
fn check(onnx: &[u8], v: &NewVersion) -> Result<inference::Model, ImportError> {
    let bundle = registry::Bundle {
        format: registry::BUNDLE_FORMAT,
        model: "import-check".into(),
        version: 0,
        created_at: String::new(),
        content_hash: inference::model::sha256_hex(onnx),
        model_key: String::new(),
        task: v.task.clone(),
        family: v.family.clone(),
        inputs: v.inputs.clone(),
        classes: v.classes.clone(),
        threshold: v.threshold,
        feature_view: String::new(),
        feature_view_version: String::new(),
        feature_spec: v.feature_spec.clone(),
        dataset_snapshot: String::new(),
        reference_profile: v.reference_profile.clone(),
        training_run: String::new(),
        metrics: BTreeMap::new(),
        tags: v.tags.clone(),
        views: Vec::new(),
        training_table: None,
    };
    let json = serde_json::to_vec(&bundle).map_err(|e| ImportError::Load(e.to_string()))?;
    inference::Model::load(&json, onnx, None).map_err(|e| ImportError::Load(e.to_string()))
}

/// What [`import`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    pub model: String,
    pub version: u64,
    /// False: the same graph was registered before (that version).
    pub new: bool,
    pub task: String,
    pub classes: Vec<String>,
    pub inputs: Vec<Input>,
    pub output: String,
    pub rewrites: Vec<String>,
    pub promoted: bool,
}

/// Prepares `bytes` and registers it as the next version of `name`; `promote` moves the
/// champion to it (recorded as `by`).
pub async fn import(
    store: &storage::Store,
    name: &str,
    file: &str,
    bytes: &[u8],
    opts: &Options,
    promote: Option<&str>,
) -> Result<Imported, ImportError> {
    let prepared = prepare(file, bytes, opts)?;
    let registered =
        registry::register(store, name, &prepared.onnx, prepared.version.clone()).await?;
    let new = matches!(registered, registry::Registered::Created(_));
    let bundle = registered.bundle().clone();
    if let Some(by) = promote {
        registry::move_alias(
            store,
            name,
            "champion",
            bundle.version,
            None,
            by,
            &format!("imported from {file}"),
        )
        .await?;
    }
    Ok(Imported {
        model: name.to_string(),
        version: bundle.version,
        new,
        task: bundle.task,
        classes: bundle.classes,
        inputs: bundle.inputs,
        output: prepared.output,
        rewrites: prepared.rewrites,
        promoted: promote.is_some(),
    })
}
