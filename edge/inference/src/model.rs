//! A loaded model: its bundle checked against the bytes it names, the feature-view spec
//! serving evaluates, and the tract plan built and optimised once.

use std::sync::Arc;

use features::FeatureSet;
use registry::{BUNDLE_FORMAT, Bundle};
use tract_onnx::prelude::*;

use crate::error::{BundleError, InferenceError};

/// What the model predicts, from the bundle's `task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

impl Task {
    fn parse(s: &str) -> Result<Task, BundleError> {
        match s {
            "binary-classification" => Ok(Task::Binary),
            "multiclass-classification" => Ok(Task::Multiclass),
            "regression" => Ok(Task::Regression),
            other => Err(BundleError::Bundle(format!("unknown task '{other}'"))),
        }
    }
}

/// An element type at the graph boundary of an imported model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    F32,
    I64,
    Str,
}

impl Elem {
    fn parse(s: &str) -> Option<Elem> {
        Some(match s {
            "f32" => Elem::F32,
            "i64" => Elem::I64,
            "string" => Elem::Str,
            _ => return None,
        })
    }

    /// The Open Inference Protocol datatype of this element type.
    pub fn datatype(self) -> &'static str {
        match self {
            Elem::F32 => "FP32",
            Elem::I64 => "INT64",
            Elem::Str => "BYTES",
        }
    }
}

/// One graph input of an imported model: `[N, width]` of `ty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphInput {
    pub name: String,
    pub ty: Elem,
    pub width: usize,
}

/// How the graph takes its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One `[N, F]` f32 tensor whose columns are the bundle's inputs (models mlpipe trains).
    Matrix,
    /// One graph input per bundle input (models imported from other tools).
    Named(Vec<GraphInput>),
}

/// The values of one graph input for `n` rows, row-major (`n * width` values).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One row's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Predicted class (classification).
    pub label: Option<String>,
    /// Class probabilities in the bundle's class order (classification).
    pub probabilities: Vec<f32>,
    /// Positive-class probability (binary), predicted value (regression), top-class
    /// probability (multi-class).
    pub score: f32,
}

/// A servable model version. Cheap to share (`Arc`); built once per instance.
pub struct Model {
    pub bundle: Bundle,
    pub task: Task,
    /// The feature views' specs, when the bundle came with them (needed by `/v1` predict).
    pub spec: Option<FeatureSet>,
    /// Decision threshold on the positive-class probability (binary).
    pub threshold: f32,
    /// How the graph takes its inputs.
    pub layout: Layout,
    plan: Arc<TypedRunnableModel>,
    width: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("model", &self.bundle.model)
            .field("version", &self.bundle.version)
            .field("task", &self.task)
            .finish()
    }
}

pub use contracts::sha256_hex;

/// Parses and checks `bundle.json`.
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Bundle(e.to_string()))?;
    if !bundle.format_supported() {
        return Err(BundleError::Bundle(format!(
            "format {} is not supported (this build reads formats 1 to {BUNDLE_FORMAT})",
            bundle.format
        )));
    }
    if bundle.inputs.is_empty() {
        return Err(BundleError::Bundle("the bundle lists no inputs".into()));
    }
    Ok(bundle)
}

/// An imported graph's inputs as `[N, width]` of their types: exporters often leave the
/// batch dimension without a name (skl2onnx's `None`), which tract needs as a symbol.
fn with_input_facts(mut m: InferenceModel, layout: &Layout) -> TractResult<InferenceModel> {
    let Layout::Named(inputs) = layout else {
        return Ok(m);
    };
    let n = m.symbols.sym("N");
    let outlets = m.input_outlets()?.to_vec();
    for (ix, outlet) in outlets.iter().enumerate() {
        let name = m.node(outlet.node).name.clone();
        let Some(g) = inputs.iter().find(|g| g.name == name) else {
            return Err(TractError::msg(format!(
                "the graph input '{name}' is not in the bundle"
            )));
        };
        let dt = match g.ty {
            Elem::F32 => f32::datum_type(),
            Elem::I64 => i64::datum_type(),
            Elem::Str => String::datum_type(),
        };
        m.set_input_fact(
            ix,
            InferenceFact::dt_shape(dt, tvec![n.to_dim(), g.width.to_dim()]),
        )?;
    }
    Ok(m)
}

/// The layout the bundle's inputs describe, checked.
fn layout_of(bundle: &Bundle) -> Result<Layout, BundleError> {
    let named = bundle.inputs.iter().filter(|i| i.width.is_some()).count();
    if named == 0 {
        if let Some(bad) = bundle.inputs.iter().find(|i| i.ty != "f32") {
            return Err(BundleError::Bundle(format!(
                "input '{}' has type '{}'; a feature-matrix model takes f32 columns only",
                bad.name, bad.ty
            )));
        }
        return Ok(Layout::Matrix);
    }
    if named != bundle.inputs.len() {
        return Err(BundleError::Bundle(
            "some inputs have a width and some do not: a bundle lists either graph inputs or matrix columns".into(),
        ));
    }
    let mut out = Vec::with_capacity(named);
    for i in &bundle.inputs {
        let ty = Elem::parse(&i.ty).ok_or_else(|| {
            BundleError::Bundle(format!(
                "input '{}' has type '{}'; graph inputs are f32, i64 or string",
                i.name, i.ty
            ))
        })?;
        let width = i
            .width
            .and_then(|w| usize::try_from(w).ok())
            .filter(|w| (1..=1 << 20).contains(w))
            .ok_or_else(|| {
                BundleError::Bundle(format!("input '{}' has an invalid width", i.name))
            })?;
        out.push(GraphInput {
            name: i.name.clone(),
            ty,
            width,
        });
    }
    Ok(Layout::Named(out))
}

impl Model {
    /// Loads a model from its bundle, ONNX bytes and (optionally) feature spec: a view's
    /// `spec.json` or, for a model over several views, its feature set. The ONNX
    /// and spec bytes must hash to what the bundle records: a model that does not match its
    /// bundle is never served.
    pub fn load(
        bundle_json: &[u8],
        onnx: &[u8],
        spec_json: Option<&[u8]>,
    ) -> Result<Model, BundleError> {
        let bundle = parse_bundle(bundle_json)?;
        let layout = layout_of(&bundle)?;
        let task = Task::parse(&bundle.task)?;
        let classes = bundle.classes.len();
        match task {
            Task::Binary if classes != 2 => {
                return Err(BundleError::Bundle(format!(
                    "a binary classifier needs 2 classes, the bundle lists {classes}"
                )));
            }
            Task::Multiclass if classes < 3 => {
                return Err(BundleError::Bundle(format!(
                    "a multi-class classifier needs at least 3 classes, the bundle lists {classes}"
                )));
            }
            _ => {}
        }
        let actual = sha256_hex(onnx);
        if !actual.eq_ignore_ascii_case(&bundle.content_hash) {
            return Err(BundleError::ModelHash {
                expected: bundle.content_hash.clone(),
                actual,
            });
        }
        let spec = match spec_json {
            None => None,
            Some(bytes) => {
                let actual = sha256_hex(bytes);
                if !actual.eq_ignore_ascii_case(&bundle.feature_spec.sha256) {
                    return Err(BundleError::SpecHash {
                        expected: bundle.feature_spec.sha256.clone(),
                        actual,
                    });
                }
                let spec = FeatureSet::from_json(bytes).map_err(BundleError::Spec)?;
                let columns = spec.output_columns();
                let names: Vec<String> = bundle.inputs.iter().map(|i| i.name.clone()).collect();
                if columns != names {
                    return Err(BundleError::Inputs {
                        spec: columns,
                        model: names,
                    });
                }
                Some(spec)
            }
        };
        let plan = crate::ml_ops::onnx()
            .model_for_read(&mut &onnx[..])
            .and_then(|m| with_input_facts(m, &layout))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| BundleError::Model(format!("{e:#}")))?;
        let threshold = bundle.threshold.unwrap_or(0.5) as f32;
        let mut model = Model {
            task,
            spec,
            threshold,
            layout,
            plan,
            width: 0,
            bundle,
        };
        // One row tells the output width, and proves the plan runs: missing values for a
        // model mlpipe trained, zeros and empty strings for an imported one.
        let probed = match &model.layout {
            Layout::Matrix => model.raw(vec![f32::NAN; model.n_inputs()], 1),
            Layout::Named(inputs) => {
                let columns = inputs
                    .iter()
                    .map(|i| match i.ty {
                        Elem::F32 => Column::F32(vec![0.0; i.width]),
                        Elem::I64 => Column::I64(vec![0; i.width]),
                        Elem::Str => Column::Str(vec![String::new(); i.width]),
                    })
                    .collect();
                model.raw_columns(columns, 1)
            }
        };
        let (width, _) = probed.map_err(|e| BundleError::Model(e.to_string()))?;
        let expected = match task {
            Task::Regression => 1,
            _ => classes,
        };
        if width != expected {
            return Err(BundleError::Model(format!(
                "the model outputs {width} values per row, its task needs {expected}"
            )));
        }
        model.width = width;
        Ok(model)
    }

    pub fn name(&self) -> &str {
        &self.bundle.model
    }

    /// Whether the model takes one graph input per bundle input (an imported model).
    pub fn is_imported(&self) -> bool {
        matches!(self.layout, Layout::Named(_))
    }

    pub fn version(&self) -> u64 {
        self.bundle.version
    }

    pub fn n_inputs(&self) -> usize {
        self.bundle.inputs.len()
    }

    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.bundle.inputs.iter().map(|i| i.name.as_str())
    }

    /// Runs the plan on `n` rows (row-major `x`): (values per row, the values).
    fn raw(&self, x: Vec<f32>, n: usize) -> Result<(usize, Vec<f32>), InferenceError> {
        let f = self.n_inputs();
        let input = tract_ndarray::Array2::from_shape_vec((n, f), x)
            .map_err(|e| InferenceError::Internal(format!("model input: {e}")))?;
        self.run(tvec!(input.into_tensor().into()), n)
    }

    /// Runs the plan of an imported model on `n` rows, one column per graph input.
    fn raw_columns(
        &self,
        columns: Vec<Column>,
        n: usize,
    ) -> Result<(usize, Vec<f32>), InferenceError> {
        let Layout::Named(inputs) = &self.layout else {
            return Err(InferenceError::Internal(
                "this model takes one feature matrix, not named inputs".into(),
            ));
        };
        if columns.len() != inputs.len() {
            return Err(InferenceError::Internal(format!(
                "{} columns for {} graph inputs",
                columns.len(),
                inputs.len()
            )));
        }
        let mut tensors: TVec<TValue> = tvec!();
        for (input, column) in inputs.iter().zip(columns) {
            let shape = (n, input.width);
            let wrong = |e: tract_ndarray::ShapeError| {
                InferenceError::Internal(format!("input '{}': {e}", input.name))
            };
            let tensor = match (input.ty, column) {
                (Elem::F32, Column::F32(v)) => tract_ndarray::Array2::from_shape_vec(shape, v)
                    .map_err(wrong)?
                    .into_tensor(),
                (Elem::I64, Column::I64(v)) => tract_ndarray::Array2::from_shape_vec(shape, v)
                    .map_err(wrong)?
                    .into_tensor(),
                (Elem::Str, Column::Str(v)) => tract_ndarray::Array2::from_shape_vec(shape, v)
                    .map_err(wrong)?
                    .into_tensor(),
                _ => {
                    return Err(InferenceError::Internal(format!(
                        "input '{}' got values of another type",
                        input.name
                    )));
                }
            };
            tensors.push(tensor.into());
        }
        self.run(tensors, n)
    }

    fn run(&self, inputs: TVec<TValue>, n: usize) -> Result<(usize, Vec<f32>), InferenceError> {
        let out = self
            .plan
            .run(inputs)
            .map_err(|e| InferenceError::Internal(format!("the model failed to run: {e}")))?;
        let first = out
            .first()
            .ok_or_else(|| InferenceError::Internal("the model has no output".into()))?;
        let first = first
            .cast_to::<f32>()
            .map_err(|e| InferenceError::Internal(format!("the model's output: {e}")))?;
        let view = first
            .to_plain_array_view::<f32>()
            .map_err(|e| InferenceError::Internal(format!("the model's output: {e}")))?;
        let values: Vec<f32> = view.iter().copied().collect();
        if n == 0 || !values.len().is_multiple_of(n) {
            return Err(InferenceError::Internal(format!(
                "the model returned {} values for {n} rows",
                values.len()
            )));
        }
        Ok((values.len() / n, values))
    }

    /// Predictions for `n` rows of row-major f32 features (NaN = missing).
    pub fn predict(&self, x: Vec<f32>, n: usize) -> Result<Vec<Prediction>, InferenceError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if x.len() != n * self.n_inputs() {
            return Err(InferenceError::Internal(format!(
                "{} values for {n} rows of {} inputs",
                x.len(),
                self.n_inputs()
            )));
        }
        let (width, values) = self.raw(x, n)?;
        self.finish(width, values)
    }

    /// Predictions for `n` rows of an imported model's graph inputs, in the bundle's order.
    pub fn predict_columns(
        &self,
        columns: Vec<Column>,
        n: usize,
    ) -> Result<Vec<Prediction>, InferenceError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let (width, values) = self.raw_columns(columns, n)?;
        self.finish(width, values)
    }

    fn finish(&self, width: usize, values: Vec<f32>) -> Result<Vec<Prediction>, InferenceError> {
        if width != self.width {
            return Err(InferenceError::Internal(format!(
                "the model returned {width} values per row, expected {}",
                self.width
            )));
        }
        let classes = &self.bundle.classes;
        Ok(values
            .chunks(width)
            .map(|row| match self.task {
                Task::Regression => Prediction {
                    label: None,
                    probabilities: Vec::new(),
                    score: row[0],
                },
                Task::Binary => {
                    let p = row[1];
                    let positive = p >= self.threshold;
                    Prediction {
                        label: Some(classes[usize::from(positive)].clone()),
                        probabilities: row.to_vec(),
                        score: p,
                    }
                }
                Task::Multiclass => {
                    let (best, p) = row
                        .iter()
                        .copied()
                        .enumerate()
                        .fold((0, f32::MIN), |a, (i, p)| if p > a.1 { (i, p) } else { a });
                    Prediction {
                        label: Some(classes[best].clone()),
                        probabilities: row.to_vec(),
                        score: p,
                    }
                }
            })
            .collect())
    }
}
