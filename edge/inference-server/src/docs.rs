//! The API's documentation, served by the native server without a key: `GET /openapi.json`
//! (the OpenAPI document, `edge/openapi.yaml` as JSON) and `GET /docs`, Swagger UI over it,
//! whose "Authorize" button takes an API key so "Try it out" calls the API with it. Every
//! byte is embedded at build time (see `build.rs`): nothing is fetched from a CDN, so the
//! page works offline and in a locked-down cluster.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The OpenAPI document as JSON.
pub const OPENAPI_JSON: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json"));
const CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css"));
const BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js"));

/// The page: relative links, so it also works behind a path prefix (`/api/docs` loads
/// `/api/docs/...` and `/api/openapi.json`).
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlpipe inference API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-initializer.js"></script>
</body>
</html>
"##;

/// Swagger UI's start: the document beside the page; the key entered under "Authorize" is
/// kept across reloads in this browser only.
const INIT: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: false,
  });
};
"##;

/// Scripts and styles from this server only (Swagger UI sets inline styles), calls to this
/// server only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn reply(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn page() -> Response {
    reply("text/html; charset=utf-8", PAGE.as_bytes())
}

async fn openapi() -> Response {
    reply("application/json", OPENAPI_JSON)
}

/// The names `GET /docs/{file}` serves (the OpenAPI document lists the same).
pub const FILES: [&str; 3] = [
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-initializer.js",
];

async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "swagger-ui.css" => reply("text/css; charset=utf-8", CSS),
        "swagger-ui-bundle.js" => reply("text/javascript; charset=utf-8", BUNDLE),
        "swagger-initializer.js" => reply("text/javascript; charset=utf-8", INIT.as_bytes()),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "error": format!("no documentation file '{name}'") }).to_string(),
        )
            .into_response(),
    }
}

/// `/docs`, `/docs/{file}` and `/openapi.json`, open to every caller.
pub fn routes<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/docs", axum::routing::get(page))
        .route("/docs/{file}", axum::routing::get(file))
        .route("/openapi.json", axum::routing::get(openapi))
}
