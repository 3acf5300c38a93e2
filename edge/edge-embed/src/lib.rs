//! Build-time embedding of small models for the edge runtimes.
//!
//! An edge build may carry its model inside the binary instead of reading it from R2 or
//! over HTTP: no storage round trip on a cold start, and no binding to configure. The
//! source is a folder laid out like the registry, which is exactly what
//! `mlpipe publish --objects DIR --model NAME` writes (`models/<name>/aliases/champion.json`,
//! `models/<name>/<version>/{bundle.json,model.onnx}`, the feature spec under `features/`).
//! A build script calls [`generate`]; with `MLPIPE_EMBED_DIR` unset it embeds nothing and
//! the runtime reads its storage as before.
//!
//! Only small models belong in a Worker (its whole script is limited to a few MiB
//! compressed), so the total is capped (`MLPIPE_EMBED_MAX_BYTES`, default
//! [`DEFAULT_MAX_BYTES`]); a bigger folder fails the build with a message saying so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Default cap on the embedded bytes: 2 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 20;

/// One file to embed: its registry key and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub path: PathBuf,
    pub bytes: u64,
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Object>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            // Alias history and publication records are not served.
            if rel.ends_with("/_history") || rel == "online" || rel == "published" {
                continue;
            }
            walk(root, &path, out)?;
        } else {
            let bytes = entry.metadata().map_err(|e| format!("{rel}: {e}"))?.len();
            out.push(Object {
                key: rel,
                path,
                bytes,
            });
        }
    }
    Ok(())
}

/// The registry objects under `dir` (`models/` and `features/`), checked: at least one
/// champion alias, and at most `max_bytes` in all.
pub fn collect(dir: &Path, max_bytes: u64) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for top in ["models", "features"] {
        let d = dir.join(top);
        if d.is_dir() {
            walk(dir, &d, &mut out)?;
        }
    }
    if !out
        .iter()
        .any(|o| o.key.starts_with("models/") && o.key.ends_with("/aliases/champion.json"))
    {
        return Err(format!(
            "{} holds no models/<name>/aliases/champion.json: fill it with `mlpipe publish --objects {} --model NAME`",
            dir.display(),
            dir.display()
        ));
    }
    let total: u64 = out.iter().map(|o| o.bytes).sum();
    if total > max_bytes {
        return Err(format!(
            "{} holds {total} bytes of registry objects, over the embedding limit of {max_bytes} (MLPIPE_EMBED_MAX_BYTES): serve this model from storage instead",
            dir.display()
        ));
    }
    Ok(out)
}

/// Rust source defining `pub static OBJECTS: &[(&str, &[u8])]` over `objects`.
pub fn source(objects: &[Object]) -> String {
    let mut s = String::from(
        "/// Registry objects embedded at build time (edge-embed).\npub static OBJECTS: &[(&str, &[u8])] = &[\n",
    );
    for o in objects {
        let _ = writeln!(
            s,
            "    ({:?}, include_bytes!({:?})),",
            o.key,
            o.path.to_string_lossy()
        );
    }
    s.push_str("];\n");
    s
}

/// For a build script: writes `$OUT_DIR/embedded.rs` from `MLPIPE_EMBED_DIR` (empty when
/// unset) and tells cargo when to run again. Returns the number of objects embedded.
pub fn generate() -> Result<usize, String> {
    println!("cargo:rerun-if-env-changed=MLPIPE_EMBED_DIR");
    println!("cargo:rerun-if-env-changed=MLPIPE_EMBED_MAX_BYTES");
    let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set: call from a build script")?;
    let objects = match std::env::var_os("MLPIPE_EMBED_DIR").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let dir = dir
                .canonicalize()
                .map_err(|e| format!("MLPIPE_EMBED_DIR {}: {e}", dir.display()))?;
            let max = match std::env::var("MLPIPE_EMBED_MAX_BYTES") {
                Ok(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("MLPIPE_EMBED_MAX_BYTES={v} is not a byte count"))?,
                Err(_) => DEFAULT_MAX_BYTES,
            };
            let objects = collect(&dir, max)?;
            for o in &objects {
                println!("cargo:rerun-if-changed={}", o.path.display());
            }
            objects
        }
    };
    let file = Path::new(&out).join("embedded.rs");
    std::fs::write(&file, source(&objects)).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(objects.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, key: &str, bytes: &[u8]) {
        let p = root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn a_published_folder_becomes_embedded_objects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "models/m/aliases/champion.json", b"{}");
        put(root, "models/m/aliases/_history/champion/1.json", b"{}");
        put(root, "models/m/1/bundle.json", b"{}");
        put(root, "models/m/1/model.onnx", b"onnx");
        put(root, "features/v/v=a/spec.json", b"{}");
        put(root, "online/v/c1", b"record");
        put(root, "published/models/m/champion-00000001.json", b"{}");
        let objects = collect(root, 1 << 20).unwrap();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "models/m/1/bundle.json",
                "models/m/1/model.onnx",
                "models/m/aliases/champion.json",
                "features/v/v=a/spec.json",
            ]
        );
        let src = source(&objects);
        assert!(
            src.contains("(\"models/m/1/model.onnx\", include_bytes!("),
            "{src}"
        );
        assert_eq!(src.matches("include_bytes!").count(), 4);
    }

    #[test]
    fn no_champion_or_too_big_fails_the_build_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "models/m/1/model.onnx", b"onnx");
        let e = collect(dir.path(), 1 << 20).unwrap_err();
        assert!(e.contains("champion.json"), "{e}");
        put(dir.path(), "models/m/aliases/champion.json", b"{}");
        let e = collect(dir.path(), 3).unwrap_err();
        assert!(e.contains("MLPIPE_EMBED_MAX_BYTES"), "{e}");
        assert_eq!(source(&[]).matches("include_bytes!").count(), 0);
    }
}
