//! Compiles the Open Inference Protocol's `.proto` with protox (a Rust protobuf compiler:
//! no `protoc` to download) into prost messages, a tonic server and a client (the load
//! generator of `cargo xtask bench edge`), and keeps the encoded
//! descriptor set for gRPC server reflection.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let bytes = fds.encode_to_vec();
    std::fs::write(out.join("inference_descriptor.bin"), &bytes)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_transport(false)
        .compile_fds(prost::Message::decode(&bytes[..])?)?;
    Ok(())
}
