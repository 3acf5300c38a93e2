use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use features::{EntityState, OnlineRecord, SnapshotStore};
use registry::{Input, NewVersion, ObjectRef};
use stage::StageError as _;

use super::*;

/// An edge that remembers what it was given, in order.
#[derive(Default)]
struct Recorder {
    objects: Mutex<Vec<(String, Vec<u8>)>>,
    entries: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Edge for Recorder {
    fn describe(&self) -> String {
        "recorder".into()
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.objects.lock().unwrap().push((key.into(), bytes));
        Ok(())
    }

    async fn put_entries(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), PublishError> {
        self.entries.lock().unwrap().extend(entries);
        Ok(())
    }
}

async fn registered(store: &Store) -> u64 {
    registered_with(store, Vec::new()).await
}

/// Registers a champion of `m` over view `v@abc` and, after it, `joined`.
async fn registered_with(store: &Store, joined: Vec<registry::ViewVersion>) -> u64 {
    registered_by(store, joined, "r").await
}

/// [`registered_with`] from training run `run` (another run registers another version).
async fn registered_by(store: &Store, joined: Vec<registry::ViewVersion>, run: &str) -> u64 {
    store
        .put("features/v/v=abc/spec.json", b"{\"spec\":1}".to_vec())
        .await
        .unwrap();
    let new = NewVersion {
        task: "binary-classification".into(),
        family: "gbm".into(),
        inputs: vec![Input {
            name: "x".into(),
            ty: "f32".into(),
            width: None,
        }],
        classes: vec!["0".into(), "1".into()],
        threshold: Some(0.5),
        feature_view: "v".into(),
        feature_view_version: "abc".into(),
        feature_spec: ObjectRef {
            key: "features/v/v=abc/spec.json".into(),
            sha256: String::new(),
        },
        dataset_snapshot: "s".into(),
        reference_profile: ObjectRef {
            key: "features/v/profiles/p.parquet".into(),
            sha256: String::new(),
        },
        training_run: run.into(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        joined_views: joined,
        training_table: None,
    };
    let onnx = if run == "r" {
        b"onnx bytes".to_vec()
    } else {
        format!("onnx bytes of {run}").into_bytes()
    };
    let reg = registry::register(store, "m", &onnx, new).await.unwrap();
    let version = reg.bundle().version;
    registry::move_alias(store, "m", "champion", version, None, "test", "first")
        .await
        .unwrap();
    version
}

fn record(entity: &str, last: i64) -> OnlineRecord {
    OnlineRecord {
        view: "v".into(),
        version: "abc".into(),
        entity: entity.into(),
        materialized_at_us: 1,
        state: EntityState {
            last_event_us: Some(last),
            ..EntityState::default()
        },
    }
}

#[tokio::test]
async fn the_champion_is_copied_alias_last_and_recorded_once() {
    let store = Store::memory();
    let version = registered(&store).await;
    let edge = Recorder::default();
    let Outcome::Published(p) = publish_champion(&store, "m", &edge).await.unwrap() else {
        panic!("expected a publication");
    };
    let keys: Vec<String> = edge
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("models/m/{version}/model.onnx"),
            "features/v/v=abc/spec.json".to_string(),
            format!("models/m/{version}/bundle.json"),
            "models/m/aliases/champion.json".to_string(),
        ]
    );
    // The bytes are the store's, and the record names them with their hashes.
    let written = edge.objects.lock().unwrap().clone();
    for (k, bytes) in &written {
        assert_eq!(&store.get(k).await.unwrap().bytes[..], &bytes[..]);
        let o = p.objects.iter().find(|o| &o.key == k).unwrap();
        // sha256_hex is held to the FIPS 180 test vectors in `contracts`.
        assert_eq!(o.sha256, sha256_hex(bytes));
        assert_eq!(o.bytes, bytes.len() as u64);
    }
    assert_eq!(p.version, version.to_string());
    let rec = store.get(&champion_record_key("m", 1)).await.unwrap();
    let back: Publication = serde_json::from_slice(&rec.bytes).unwrap();
    assert_eq!(back, p);
    // A redelivered event: nothing is written again.
    let again = publish_champion(&store, "m", &edge).await.unwrap();
    assert!(matches!(again, Outcome::AlreadyDone(_)));
    assert_eq!(edge.objects.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_model_without_champion_is_a_clear_error() {
    let store = Store::memory();
    let err = publish_champion(&store, "nope", &Recorder::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn online_records_become_edge_entries() {
    let store = Store::memory();
    let snapshot = SnapshotStore::from_records([record("c1", 5), record("c/2", 7)]);
    store
        .put(&online_blob_key("v", "abc"), snapshot.encode().unwrap())
        .await
        .unwrap();
    let edge = Recorder::default();
    let Outcome::Published(p) = publish_online(&store, "v", "abc", &edge).await.unwrap() else {
        panic!("expected a publication");
    };
    assert_eq!(p.entries, 2);
    let entries = edge.entries.lock().unwrap().clone();
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["v/c/2", "v/c1"]);
    for (k, v) in &entries {
        let r = OnlineRecord::decode(v).unwrap();
        assert_eq!(features::online::edge_key(&r.view, &r.entity), *k);
    }
    assert!(matches!(
        publish_online(&store, "v", "abc", &edge).await.unwrap(),
        Outcome::AlreadyDone(_)
    ));
    let err = publish_online(&store, "v", "zzz", &edge).await.unwrap_err();
    assert!(err.to_string().contains("online.bin"), "{err}");
}

#[tokio::test]
async fn a_champion_over_two_views_publishes_both_views_records() {
    let store = Store::memory();
    registered_with(
        &store,
        vec![registry::ViewVersion {
            view: "w".into(),
            version: "def".into(),
        }],
    )
    .await;
    let mut other = record("k1", 3);
    other.view = "w".into();
    other.version = "def".into();
    for (view, version, r) in [("v", "abc", record("c1", 5)), ("w", "def", other)] {
        store
            .put(
                &online_blob_key(view, version),
                SnapshotStore::from_records([r]).encode().unwrap(),
            )
            .await
            .unwrap();
    }
    let edge = Recorder::default();
    let out = publish_models(&store, &["m".to_string()], &edge)
        .await
        .unwrap();
    assert_eq!(
        out.len(),
        3,
        "two views' records, then the champion: {out:?}"
    );
    let keys: Vec<String> = edge
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(keys, vec!["v/c1".to_string(), "w/k1".to_string()]);
}

/// A stand-in for Cloudflare's KV bulk endpoint that checks what a real one checks.
async fn kv_server(seen: Arc<Mutex<Vec<serde_json::Value>>>, fail: bool) -> String {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode};
    type Seen = Arc<Mutex<Vec<serde_json::Value>>>;
    async fn bulk(
        State((seen, fail)): State<(Seen, bool)>,
        UrlPath((account, namespace)): UrlPath<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if fail || auth != "Bearer secret" || account != "acct" || namespace != "ns" {
            return (
                StatusCode::FORBIDDEN,
                r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#
                    .into(),
            );
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        seen.lock().unwrap().push(v);
        (
            StatusCode::OK,
            r#"{"success":true,"errors":[],"result":{"successful_key_count":1}}"#.into(),
        )
    }
    let app = axum::Router::new()
        .route(
            "/client/v4/accounts/{account}/storage/kv/namespaces/{namespace}/bulk",
            axum::routing::put(bulk),
        )
        .with_state((seen, fail));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/client/v4")
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_bulk_writes_use_cloudflares_api_and_surface_its_errors() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = kv_server(seen.clone(), false).await;
    let kv = KvApi::new("acct", "ns", "secret").with_base_url(&url);
    let entries: Vec<(String, Vec<u8>)> = (0..KV_BULK_LIMIT + 5)
        .map(|i| (format!("v/e{i}"), vec![0u8, 1, 2, (i % 256) as u8]))
        .collect();
    kv.bulk_put(&entries).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "two requests for 10,005 entries");
    assert_eq!(seen[0].as_array().unwrap().len(), KV_BULK_LIMIT);
    let last = &seen[1].as_array().unwrap()[4];
    assert_eq!(last["key"], format!("v/e{}", KV_BULK_LIMIT + 4));
    assert_eq!(last["base64"], true);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(last["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, entries[KV_BULK_LIMIT + 4].1);

    let url = kv_server(Arc::new(Mutex::new(Vec::new())), true).await;
    let err = KvApi::new("acct", "ns", "secret")
        .with_base_url(&url)
        .bulk_put(&entries[..1])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("403") && text.contains("Authentication error"),
        "{text}"
    );
}

#[tokio::test]
async fn the_stage_publishes_on_a_champion_alias_event_and_skips_without_a_target() {
    let store = Store::memory();
    registered(&store).await;
    let key = "models/m/aliases/champion.json";
    let skipped = handle::<Recorder>(&store, key, None).await.unwrap();
    assert!(
        matches!(&skipped, StageOutcome::Skipped { reason, .. } if reason.contains("MLPIPE_EDGE_OBJECTS")),
        "{skipped:?}"
    );
    let edge = Recorder::default();
    let out = handle(&store, key, Some(&edge)).await.unwrap();
    assert!(
        matches!(&out, StageOutcome::Published { publication } if publication.kind == "champion"),
        "{out:?}"
    );
    // Redelivered: the record makes it a no-op.
    let again = handle(&store, key, Some(&edge)).await.unwrap();
    assert!(
        matches!(again, StageOutcome::AlreadyDone { .. }),
        "{again:?}"
    );
    assert_eq!(edge.objects.lock().unwrap().len(), 4);
    // A feature manifest that is not JSON is a data error, not a retry.
    store
        .put("features/v/v=abc/_manifest.json", b"{".to_vec())
        .await
        .unwrap();
    let err = handle(&store, "features/v/v=abc/_manifest.json", Some(&edge))
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable() && err.to_string().contains("_manifest.json"),
        "{err}"
    );
}

/// A delayed publication of an older champion move (a slow delivery, a redelivery after a
/// rollback) never replaces the newer alias the edge holds.
#[tokio::test]
async fn an_older_champion_move_never_replaces_a_newer_one_at_the_edge() {
    let store = Store::memory();
    let first = registered(&store).await;
    let older_alias = store
        .get("models/m/aliases/champion.json")
        .await
        .unwrap()
        .bytes;
    // Registering again moves the champion to the new version (move 2).
    let second = registered_by(&store, Vec::new(), "r2").await;
    assert_ne!(first, second);
    let edge = ObjectEdge::new(Store::memory());
    let Outcome::Published(p) = publish_champion(&store, "m", &edge).await.unwrap() else {
        panic!("the newer move publishes");
    };
    assert_eq!(p.version, second.to_string());
    // The older move's delivery, read before the newer one was published.
    store
        .put("models/m/aliases/champion.json", older_alias.clone())
        .await
        .unwrap();
    let out = publish_champion(&store, "m", &edge).await.unwrap();
    assert!(
        matches!(
            out,
            Outcome::Superseded {
                seq: 1,
                edge_seq: 2,
                ..
            }
        ),
        "{out:?}"
    );
    let at_edge: registry::Alias = serde_json::from_slice(
        &edge
            .store
            .get("models/m/aliases/champion.json")
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!((at_edge.version, at_edge.seq), (second, 2));
    assert!(
        store
            .head(&champion_record_key("m", 1))
            .await
            .unwrap()
            .is_none(),
        "a superseded move is not recorded as published"
    );
}

/// Publishers racing with moves in any order leave the latest move at the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_pointer_writes_leave_the_latest_move() {
    let dir = tempfile::tempdir().unwrap();
    for edge in [Store::memory(), Store::local(dir.path()).unwrap()] {
        let mut tasks = Vec::new();
        for seq in [3u64, 1, 7, 5, 2, 8, 6, 4] {
            let edge = edge.clone();
            tasks.push(tokio::spawn(async move {
                let body = serde_json::to_vec(&serde_json::json!({"seq": seq})).unwrap();
                put_pointer_in(&edge, "p.json", body, seq).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let held: serde_json::Value =
            serde_json::from_slice(&edge.get("p.json").await.unwrap().bytes).unwrap();
        assert_eq!(held["seq"], 8);
    }
}
