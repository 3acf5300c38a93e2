//! Every record that crosses a stage boundary, and every key of the storage layout.
//!
//! Stages never call each other: they meet at objects. The shape of each object one stage
//! writes and another reads is defined here once, so renaming a field fails to compile in
//! every writer and reader at the same time, and the key layout (`docs/storage.md`) has one
//! source. The routing table, the stages, the edge runtimes and the CLI all use this crate.
//!
//! Invariants: plain data (serde only) — no storage, no async, no clock, no I/O — so the
//! edge builds it for wasm32; each JSON record that can outlive a release carries a format
//! number or reads leniently (`#[serde(default)]`) so older objects stay readable.

pub mod access;
pub mod keys;
pub mod metrics;
pub mod models;
pub mod monitoring;
pub mod pipeline;
pub mod publish;
pub mod serving;
pub mod stage;

pub use stage::Stage;
