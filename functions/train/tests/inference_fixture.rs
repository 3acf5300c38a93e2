//! The serving core's tests run a checked-in ONNX model (so `inference` does not depend on
//! the training crate); this keeps that file equal to what training exports for the network
//! the tests describe.

use train::export::{Dense, Head, Network, network_to_onnx};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../edge/inference/tests/fixtures/logistic.onnx"
);

/// p = sigmoid(x0 - 2 x1 + 0.5 x2 + 0.1), missing values filled with 1.
fn network() -> Network {
    Network {
        fill: vec![1.0; 3],
        mean: vec![0.0; 3],
        scale: vec![1.0; 3],
        layers: vec![Dense {
            inputs: 3,
            outputs: 1,
            weights: vec![1.0, -2.0, 0.5],
            bias: vec![0.1],
        }],
        head: Head::Sigmoid,
    }
}

#[test]
fn the_inference_fixture_is_the_export_of_its_network() {
    let onnx = network_to_onnx(&network()).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("MLPIPE_WRITE_FIXTURES").is_some() {
        std::fs::write(FIXTURE, &onnx).unwrap_or_else(|e| panic!("{FIXTURE}: {e}"));
    }
    let stored = std::fs::read(FIXTURE).unwrap_or_else(|e| panic!("{FIXTURE}: {e}"));
    assert!(
        stored == onnx,
        "{FIXTURE} differs from the export; regenerate it with \
         MLPIPE_WRITE_FIXTURES=1 cargo test -p train --test inference_fixture"
    );
}
