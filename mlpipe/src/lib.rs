//! mlpipe's top floor: the local stack that joins the stages by events, the operations the CLI
//! offers on a project and a store, the sample-data generator and the SQS consumer.
//!
//! Invariant: nothing here is stage logic. Every event the local stack and the worker deliver
//! reaches its stages through the handler table built from the routing table
//! (`handlers::Table`), exactly as a deployment's Lambda adapter does; the CLI's own commands
//! (a drift check by hand, publishing, exports) call the stage crates' library functions.

pub mod bench;
pub mod drift_ops;
pub mod feature_ops;
pub mod pipeline;
pub mod sample;
pub mod soak;
pub mod sqs;
pub mod stack;
pub mod train_ops;
pub mod worker;

use std::path::PathBuf;

/// The sample project shipped in the repository: `./examples/fraud` when run from the
/// repository root, else the copy next to the sources this binary was built from.
pub fn default_project() -> PathBuf {
    let local = PathBuf::from("examples/fraud");
    if local.join("mlpipe.toml").is_file() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/fraud"))
}
