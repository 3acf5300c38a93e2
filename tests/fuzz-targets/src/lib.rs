//! One function per parser that takes outside input, each taking arbitrary bytes and
//! required never to panic, hang or allocate without bound: the fuzz targets. They run in
//! two ways from the same code:
//!
//! - **replayed**: `tests/fuzz-targets/tests/corpus.rs` runs every committed seed (`corpus/<target>/`) and every
//!   regression input (`regressions/<target>/`) through its target as a plain test, in the
//!   normal build (`cargo xtask test`);
//! - **fuzzed**: `cargo xtask fuzz TARGET --secs N` runs cargo-fuzz (libFuzzer, coverage
//!   guided, nightly) on `fuzz/fuzz_targets/TARGET.rs`, which calls the same function.
//!
//! A target checks what it can about its own answer (a request the server refuses gets a
//! 4xx, never a 5xx), so fuzzing finds wrong answers as well as crashes.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use inference::{Guard, InferenceError, Model, Models, Request, Response, Settings};

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and the corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("oip_json", oip_json),
    ("oip_binary", oip_binary),
    ("grpc_model_infer", grpc_model_infer),
    ("v1_records", v1_records),
    ("authorization", authorization),
    ("traffic_policy", traffic_policy),
    ("event_envelope", event_envelope),
    ("storage_key", storage_key),
    ("contract_toml", contract_toml),
    ("feature_toml", feature_toml),
    ("training_toml", training_toml),
    ("project_toml", project_toml),
    ("ingest_csv", ingest_csv),
    ("ingest_jsonl", ingest_jsonl),
    ("ingest_parquet", ingest_parquet),
    ("online_record", online_record),
    ("model_bundle", model_bundle),
    ("onnx_model", onnx_model),
];

/// The edge fixture: the sample's fraud model (`/v1` through its feature view).
const BUNDLE: &[u8] = include_bytes!("../../../edge/edge-embed/fixture/models/fraud/1/bundle.json");
const ONNX: &[u8] = include_bytes!("../../../edge/edge-embed/fixture/models/fraud/1/model.onnx");
const SPEC: &[u8] = include_bytes!(
    "../../../edge/edge-embed/fixture/features/card_activity/v=543ac0d71b640d0b/spec.json"
);

/// A key the `authorization` target's guard holds (`mlp_<id>_<secret>`).
pub const KEY: &str = "mlp_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn model() -> &'static Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL.get_or_init(|| {
        Arc::new(Model::load(BUNDLE, ONNX, Some(SPEC)).expect("the fixture's model"))
    })
}

struct Fixture;

impl Models for Fixture {
    async fn model(&self, name: &str, version: Option<u64>) -> Result<Arc<Model>, InferenceError> {
        let m = model();
        if name != m.name() || version.is_some_and(|v| v != m.version()) {
            return Err(InferenceError::NotFound(format!("no model {name}")));
        }
        Ok(m.clone())
    }

    fn names(&self) -> Vec<String> {
        vec![model().name().to_string()]
    }
}

/// One request through the service every runtime runs; a 5xx is a bug (the server's
/// fault), since every input here is the client's.
fn serve(
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
    guard: &Guard,
) -> Response {
    let online = features::SnapshotStore::from_records([]);
    let req = Request {
        method,
        path,
        headers,
        body,
        client: Some("127.0.0.1"),
    };
    let response = runtime().block_on(inference::handle(
        &Fixture,
        &online,
        &Settings::default(),
        guard,
        &req,
        1_767_225_600_000_000,
    ));
    assert!(
        response.status < 500,
        "{} {path} answered {}: {}",
        method,
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    response
}

fn open() -> Guard {
    Guard::open()
}

/// Open Inference Protocol `/v2` JSON bodies.
pub fn oip_json(data: &[u8]) {
    serve("POST", "/v2/models/fraud/infer", Vec::new(), data, &open());
}

/// Open Inference Protocol binary bodies: the first two bytes choose the JSON header's
/// length (`Inference-Header-Content-Length`), the rest is the body.
pub fn oip_binary(data: &[u8]) {
    let (len, body) = match data {
        [a, b, rest @ ..] => (
            u16::from_le_bytes([*a, *b]) as usize % (rest.len() + 2),
            rest,
        ),
        _ => (0, data),
    };
    let headers = vec![(
        "inference-header-content-length".to_string(),
        len.to_string(),
    )];
    serve("POST", "/v2/models/fraud/infer", headers, body, &open());
}

/// gRPC `ModelInfer` messages (protobuf bytes, `raw_input_contents` included), converted as
/// the gRPC server converts them and answered by the same service.
pub fn grpc_model_infer(data: &[u8]) {
    use prost::Message as _;
    let Ok(message) = inference_grpc::pb::ModelInferRequest::decode(data) else {
        return;
    };
    let Ok((body, header_length)) = inference_grpc::infer_body(&message) else {
        return;
    };
    let path = format!(
        "/v2/models/{}/infer",
        message.model_name.chars().take(64).collect::<String>()
    );
    let headers = vec![(
        "inference-header-content-length".to_string(),
        header_length.to_string(),
    )];
    if inference::route("POST", &path).is_ok() {
        serve("POST", &path, headers, &body, &open());
    }
}

/// `/v1` record bodies (entity keys, event times, request fields).
pub fn v1_records(data: &[u8]) {
    serve(
        "POST",
        "/v1/models/fraud/predict",
        Vec::new(),
        data,
        &open(),
    );
}

/// A guard holding one key, fresh for each input: the guard counts failed attempts per
/// client address and, after enough of them, refuses that address even the right key
/// (429), which is right for a server and wrong for an oracle that judges one header.
fn keyed_guard() -> Guard {
    {
        let key = records::access::ApiKey {
            id: "0123456789ab".into(),
            name: "fuzz".into(),
            sha256: contracts::sha256_hex(KEY.as_bytes()),
            models: Vec::new(),
            any_version: true,
            rate_per_s: Some(1e9),
            created_at_us: 0,
            expires_at_us: None,
            revoked_at_us: None,
        };
        let keys = Arc::new(inference::Keys::new([key]));
        Guard::keys(keys, Arc::new(inference::auth::Failures::default()))
    }
}

/// `Authorization` headers (and the key format inside them) against a guard holding one key.
pub fn authorization(data: &[u8]) {
    let header = String::from_utf8_lossy(data).into_owned();
    if header.contains(['\r', '\n']) {
        return; // no HTTP runtime delivers a header value with a line break
    }
    let r = serve(
        "GET",
        "/v2/models/fraud",
        vec![("authorization".into(), header.clone())],
        b"",
        &keyed_guard(),
    );
    // Admitted exactly when the header is `Bearer <the key>` (the scheme in any case,
    // space around the token ignored, as RFC 9110 reads it).
    let presented = header
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let admitted = presented == Some(KEY);
    assert_eq!(
        r.status == 200,
        admitted,
        "{header:?} answered {}",
        r.status
    );
    let _ = records::access::key_id(&header);
}

/// The edge's traffic policy (`traffic.json`).
pub fn traffic_policy(data: &[u8]) {
    if let Ok(t) = serde_json::from_slice::<records::models::Traffic>(data) {
        let share = records::models::canary_bucket(&t.model, "entity");
        assert!((0.0..1.0).contains(&share), "{share}");
    }
}

/// Event envelopes: S3 notifications, SQS and SNS wrappers, EventBridge.
pub fn event_envelope(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = events::parse_body(text);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = events::parse_events(&value);
        let _ = events::parse_envelope(&value);
    }
}

/// Storage keys as events and users name them.
pub fn storage_key(data: &[u8]) {
    let key = String::from_utf8_lossy(data);
    let key = events::decode_s3_key(&key);
    use records::keys;
    let _ = keys::dataset_of_raw(&key);
    let _ = keys::feature_manifest_parts(&key);
    let _ = keys::dataset_of_snapshot(&key);
    let _ = keys::traffic_model(&key);
    let _ = keys::champion_alias_model(&key);
    let _ = keys::batch_input_parts(&key);
    let _ = keys::version_of_manifest(&key);
    let store = storage::Store::memory();
    let _ = runtime().block_on(store.head(&key));
}

/// Contract files.
pub fn contract_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = contracts::Contract::from_toml(text, "fuzz.toml");
    }
}

fn fraud_contract() -> &'static BTreeMap<String, contracts::Contract> {
    static C: OnceLock<BTreeMap<String, contracts::Contract>> = OnceLock::new();
    C.get_or_init(|| {
        let text = include_str!("../../../examples/fraud/contracts/transactions.toml");
        let c =
            contracts::Contract::from_toml(text, "transactions.toml").expect("the sample contract");
        BTreeMap::from([(c.dataset.clone(), c)])
    })
}

/// Feature-view files, checked against the sample's contract.
pub fn feature_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = features::FeatureView::from_toml(text, "fuzz.toml", fraud_contract());
    }
}

/// Training files.
pub fn training_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = train::config::TrainingConfig::from_toml(text, "fuzz.toml");
    }
}

/// Project files (`mlpipe.toml`).
pub fn project_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = toml::from_str::<contracts::Project>(text);
    }
}

fn ingest(name: &str, data: &[u8]) {
    static CONTRACT: &str = include_str!("../../../examples/fraud/contracts/transactions.toml");
    let store = storage::Store::memory();
    runtime().block_on(async {
        let c = contracts::Contract::from_toml(CONTRACT, "transactions.toml").expect("contract");
        ingest::definitions::publish_contract(&store, &c, CONTRACT)
            .await
            .expect("publish to memory");
        let key = records::keys::raw("transactions", name);
        store.put(&key, data.to_vec()).await.expect("put to memory");
        // Refusals are answers; a panic or a hang is the bug.
        let _ = ingest::ingest_object(&store, &key).await;
    });
}

/// CSV uploads through the whole ingest stage (decoding, validation, quarantine).
pub fn ingest_csv(data: &[u8]) {
    ingest("upload.csv", data);
}

/// JSON Lines uploads through the whole ingest stage.
pub fn ingest_jsonl(data: &[u8]) {
    ingest("upload.jsonl", data);
}

/// Parquet uploads through the whole ingest stage.
pub fn ingest_parquet(data: &[u8]) {
    ingest("upload.parquet", data);
}

/// Online records, one and a view's blob.
pub fn online_record(data: &[u8]) {
    let _ = features::OnlineRecord::decode(data);
    let _ = features::SnapshotStore::decode(data);
}

/// Model bundles (`bundle.json`) at load, with the fixture's ONNX.
pub fn model_bundle(data: &[u8]) {
    let _ = inference::model::parse_bundle(data);
    let _ = Model::load(data, ONNX, None);
}

/// ONNX bytes at load (with the fixture's bundle) and at import (`mlpipe models import`).
pub fn onnx_model(data: &[u8]) {
    let _ = Model::load(BUNDLE, data, None);
    let _ = onnx_import::prepare("fuzz.onnx", data, &onnx_import::Options::default());
}
