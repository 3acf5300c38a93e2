//! Model serving for every runtime (the Cloudflare Worker, the Spin component, the native
//! server): a model bundle loaded from bytes and checked against its sha256, the tract plan
//! built once per instance, requests validated against the bundle's signature, features
//! assembled by the shared evaluator, and the Open Inference Protocol (KServe v2) REST API
//! plus `/v1/models/{name}/predict`, behind API keys (`auth`), with request metrics the
//! edge runtimes export as OTLP (`edge_metrics`).
//!
//! No tokio, no file system, no clock: the runtime passes the time and supplies models and
//! the online store through traits, so the same code builds for wasm32 and native.

pub mod auth;
pub mod edge_metrics;
pub mod error;
pub mod ml_ops;
pub mod model;
pub mod oip;
pub mod registry_models;
pub mod service;

pub use auth::{Guard, Keys};
pub use error::{BundleError, InferenceError};
pub use model::{Column, Elem, GraphInput, Layout, Model, Prediction, Task};
pub use service::{Models, PredictionLog, Request, Response, Settings, handle, route};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
