//! Every failure a request can meet, as a typed error with its HTTP status.

use serde_json::json;

/// A request's failure. Each becomes a JSON body `{"error": "..."}` (the Open Inference
/// Protocol's error shape) with the status of its kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    /// Malformed request: bad JSON, wrong shape or datatype, unknown input.
    #[error("{0}")]
    BadRequest(String),
    /// Unknown route, model or version.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Body or batch over the configured limits.
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but unusable values: non-finite numbers, bad field values.
    #[error("{0}")]
    Unprocessable(String),
    /// No model to serve yet, or the model or the online store could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server itself (the model failed to run).
    #[error("{0}")]
    Internal(String),
}

impl InferenceError {
    pub fn status(&self) -> u16 {
        match self {
            InferenceError::BadRequest(_) => 400,
            InferenceError::NotFound(_) => 404,
            InferenceError::MethodNotAllowed(_) => 405,
            InferenceError::TooLarge(_) => 413,
            InferenceError::Unprocessable(_) => 422,
            InferenceError::Unavailable(_) => 503,
            InferenceError::Internal(_) => 500,
        }
    }

    /// `{"error": message}`.
    pub fn body(&self) -> Vec<u8> {
        json!({ "error": self.to_string() })
            .to_string()
            .into_bytes()
    }
}

/// Why a model bundle could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle.json is not a valid bundle: {0}")]
    Bundle(String),
    #[error("model.onnx does not match the bundle: sha256 is {actual}, the bundle says {expected}")]
    ModelHash { expected: String, actual: String },
    #[error("spec.json does not match the bundle: sha256 is {actual}, the bundle says {expected}")]
    SpecHash { expected: String, actual: String },
    #[error("spec.json is not a valid feature-view spec: {0}")]
    Spec(String),
    #[error("the feature view's columns {spec:?} differ from the model's inputs {model:?}")]
    Inputs {
        spec: Vec<String>,
        model: Vec<String>,
    },
    #[error("tract cannot load model.onnx: {0}")]
    Model(String),
    #[error("{0}")]
    Archive(String),
}

impl From<BundleError> for InferenceError {
    fn from(e: BundleError) -> InferenceError {
        InferenceError::Unavailable(format!("the model bundle cannot be served: {e}"))
    }
}
