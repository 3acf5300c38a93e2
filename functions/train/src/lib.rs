//! The training stage (in progress, see issue 4): the project's training configuration, the
//! evaluation metrics every candidate is judged by, and the ONNX export tract runs. Model families, the hyperparameter
//! search, ONNX export and registration (`shared/registry`) build on these.

pub mod config;
pub mod export;
pub mod metrics;

pub use config::{ConfigError, Family, Metric, Task, TrainingConfig};
