//! Every failure a request can meet, as a typed error with its HTTP status.

use serde_json::json;

/// A request's failure. Each becomes a JSON body `{"error": "..."}` (the Open Inference
/// Protocol's error shape) with the status of its kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    /// Malformed request: bad JSON, wrong shape or datatype, unknown input.
    #[error("{0}")]
    BadRequest(String),
    /// No API key, or one this server does not know (answered with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// A known key that may not do this: revoked, expired, or not scoped to the model.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown route, model or version.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Body or batch over the configured limits.
    #[error("{0}")]
    TooLarge(String),
    /// The request (its body) did not arrive in time.
    #[error("{0}")]
    Timeout(String),
    /// The server is at its limit of requests in flight; retry after `retry_after_s`.
    #[error("{message}")]
    Overloaded { message: String, retry_after_s: u64 },
    /// Over a rate limit; the client may retry after `retry_after_s` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
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
            InferenceError::Unauthorized(_) => 401,
            InferenceError::Forbidden(_) => 403,
            InferenceError::TooManyRequests { .. } => 429,
            InferenceError::Timeout(_) => 408,
            InferenceError::Overloaded { .. } => 503,
            InferenceError::NotFound(_) => 404,
            InferenceError::MethodNotAllowed(_) => 405,
            InferenceError::TooLarge(_) => 413,
            InferenceError::Unprocessable(_) => 422,
            InferenceError::Unavailable(_) => 503,
            InferenceError::Internal(_) => 500,
        }
    }

    /// Headers the status needs: `WWW-Authenticate` on 401 (RFC 6750), `Retry-After` on 429.
    pub fn headers(&self) -> Vec<(String, String)> {
        match self {
            InferenceError::Unauthorized(_) => {
                vec![("www-authenticate".into(), "Bearer realm=\"mlpipe\"".into())]
            }
            InferenceError::TooManyRequests { retry_after_s, .. }
            | InferenceError::Overloaded { retry_after_s, .. } => {
                vec![("retry-after".into(), retry_after_s.to_string())]
            }
            _ => Vec::new(),
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
