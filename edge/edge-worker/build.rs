//! Compiles the registry objects in `MLPIPE_EMBED_DIR` into the binary (none when unset);
//! see the `edge-embed` crate.

fn main() {
    match edge_embed::generate() {
        Ok(0) => {}
        Ok(n) => println!("cargo:warning=embedded {n} registry objects from MLPIPE_EMBED_DIR"),
        Err(e) => {
            eprintln!("error: cannot embed a model: {e}");
            std::process::exit(1);
        }
    }
}
