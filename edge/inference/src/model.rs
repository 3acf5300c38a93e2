//! A loaded model: its bundle checked against the bytes it names, the feature-view spec
//! serving evaluates, and the tract plan built and optimised once.

use std::sync::Arc;

use features::ViewSpec;
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
    /// The feature view's spec, when the bundle came with it (needed by `/v1` predict).
    pub spec: Option<ViewSpec>,
    /// Decision threshold on the positive-class probability (binary).
    pub threshold: f32,
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
    if bundle.format != BUNDLE_FORMAT {
        return Err(BundleError::Bundle(format!(
            "format {} is not supported (expected {BUNDLE_FORMAT})",
            bundle.format
        )));
    }
    if bundle.inputs.is_empty() {
        return Err(BundleError::Bundle("the bundle lists no inputs".into()));
    }
    Ok(bundle)
}

impl Model {
    /// Loads a model from its bundle, ONNX bytes and (optionally) feature-view spec. The ONNX
    /// and spec bytes must hash to what the bundle records: a model that does not match its
    /// bundle is never served.
    pub fn load(
        bundle_json: &[u8],
        onnx: &[u8],
        spec_json: Option<&[u8]>,
    ) -> Result<Model, BundleError> {
        let bundle = parse_bundle(bundle_json)?;
        if let Some(bad) = bundle.inputs.iter().find(|i| i.ty != "f32") {
            return Err(BundleError::Bundle(format!(
                "input '{}' has type '{}'; only f32 inputs are served",
                bad.name, bad.ty
            )));
        }
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
                let spec: ViewSpec =
                    serde_json::from_slice(bytes).map_err(|e| BundleError::Spec(e.to_string()))?;
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
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| BundleError::Model(format!("{e:#}")))?;
        let threshold = bundle.threshold.unwrap_or(0.5) as f32;
        let mut model = Model {
            task,
            spec,
            threshold,
            plan,
            width: 0,
            bundle,
        };
        // One row of missing values tells the output width, and proves the plan runs.
        let probe = vec![f32::NAN; model.n_inputs()];
        let (width, _) = model
            .raw(probe, 1)
            .map_err(|e| BundleError::Model(e.to_string()))?;
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
        let out = self
            .plan
            .run(tvec!(input.into_tensor().into()))
            .map_err(|e| InferenceError::Internal(format!("the model failed to run: {e}")))?;
        let first = out
            .first()
            .ok_or_else(|| InferenceError::Internal("the model has no output".into()))?;
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
