//! The training stage (in progress, see issue 4): the project's training configuration and
//! the evaluation metrics every candidate is judged by. Model families, the hyperparameter
//! search, ONNX export and registration (`shared/registry`) build on these.

pub mod config;
pub mod metrics;

pub use config::{ConfigError, Family, Metric, Task, TrainingConfig};
