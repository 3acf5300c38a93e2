//! Embeds the API's documentation at build time, so `/docs` and `/openapi.json` work
//! offline and in a locked-down cluster: the OpenAPI document (`edge/openapi.yaml`,
//! converted to JSON) and Swagger UI's page assets, taken from the Swagger UI release that
//! the crates.io package `utoipa-swagger-ui-vendored` ships (no download at build time).

use std::io::Read as _;
use std::path::PathBuf;

/// The Swagger UI files `/docs` serves, by their name in the release's `dist/`.
const ASSETS: [&str; 2] = ["swagger-ui.css", "swagger-ui-bundle.js"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let spec = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../openapi.yaml");
    println!("cargo:rerun-if-changed={}", spec.display());
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&spec)?)
        .map_err(|e| format!("{}: {e}", spec.display()))?;
    let json: serde_json::Value = serde_json::to_value(&yaml)?;
    std::fs::write(out.join("openapi.json"), serde_json::to_vec(&json)?)?;

    let zip = utoipa_swagger_ui_vendored::SWAGGER_UI_VENDORED;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))?;
    let names: Vec<String> = (0..archive.len())
        .map(|i| -> Result<String, zip::result::ZipError> {
            Ok(archive.by_index(i)?.name()?.to_string())
        })
        .collect::<Result<_, _>>()?;
    for asset in ASSETS {
        // The release's own `<root>/dist/<asset>` (not a flavor's copy deeper down).
        let name = names
            .iter()
            .find(|n| {
                n.strip_suffix(asset)
                    .is_some_and(|dir| dir.ends_with("/dist/") && dir.matches('/').count() == 2)
            })
            .ok_or_else(|| format!("the vendored Swagger UI has no dist/{asset}"))?;
        let mut bytes = Vec::new();
        archive.by_name(name)?.read_to_end(&mut bytes)?;
        std::fs::write(out.join(asset), bytes)?;
    }
    Ok(())
}
