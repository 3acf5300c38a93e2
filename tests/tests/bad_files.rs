//! The bad-file corpus: every kind of unreadable upload gets a clear, specific error, a report
//! in quarantine, no version, and the raw object kept.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use contracts::Contract;
use ingest::IngestError;
use ingest::definitions::publish_contract;
use records::keys as zones;
use stage::StageError as _;
use storage::Store;

const CONTRACT: &str = r#"
dataset = "tx"
[[columns]]
name = "id"
type = "integer"
nullable = false
[[columns]]
name = "amount"
type = "float"
nullable = false
[[columns]]
name = "note"
type = "string"
"#;

async fn store() -> Store {
    let store = Store::memory();
    let c = Contract::from_toml(CONTRACT, "tx.toml").unwrap();
    publish_contract(&store, &c, CONTRACT).await.unwrap();
    store
}

/// Ingests `bytes` as `name`; returns the error and checks what must hold for every refusal.
async fn refuse(name: &str, bytes: Vec<u8>) -> (String, String) {
    let store = store().await;
    let key = zones::raw("tx", name);
    store.put(&key, bytes.clone()).await.unwrap();
    let err = ingest::ingest_object(&store, &key)
        .await
        .expect_err("must be refused");
    assert!(!err.is_retryable(), "a bad file is not retryable: {err}");
    let rule = match &err {
        IngestError::FileRejected { rule, .. } => rule.to_string(),
        IngestError::BatchRejected { .. } => "dataset_rules".to_string(),
        other => panic!("unexpected error kind: {other}"),
    };
    assert!(
        err.to_string().contains(&key),
        "the error names the file: {err}"
    );
    // Nothing committed, the raw object kept as it was, a report in quarantine.
    assert!(store.list("curated/").await.unwrap().is_empty());
    assert!(store.list("snapshots/").await.unwrap().is_empty());
    assert_eq!(
        store.get(&key).await.unwrap().bytes.as_ref(),
        bytes.as_slice()
    );
    let reports = store.list("quarantine/tx/_errors/").await.unwrap();
    assert_eq!(reports.len(), 1, "one error report");
    let report: serde_json::Value =
        serde_json::from_slice(&store.get(&reports[0].key).await.unwrap().bytes).unwrap();
    assert_eq!(report["source"], key);
    assert_eq!(report["rule"], rule.as_str());
    (rule, err.to_string())
}

#[tokio::test]
async fn empty_file() {
    let (rule, msg) = refuse("empty.csv", Vec::new()).await;
    assert_eq!(rule, "empty");
    assert!(msg.contains("0 bytes"), "{msg}");
}

#[tokio::test]
async fn header_only_file() {
    let (rule, msg) = refuse("header.csv", b"id,amount,note\n".to_vec()).await;
    assert_eq!(rule, "dataset_rules");
    assert!(msg.contains("no valid data rows"), "{msg}");
}

#[tokio::test]
async fn binary_file() {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend([0u8; 64]);
    let (rule, msg) = refuse("image.csv", bytes).await;
    assert_eq!(rule, "binary");
    assert!(msg.contains("NUL byte"), "{msg}");
}

#[tokio::test]
async fn not_utf8() {
    let (rule, msg) = refuse("latin1.csv", b"id,amount,note\n1,2.0,caf\xe9\n".to_vec()).await;
    assert_eq!(rule, "encoding");
    assert!(msg.contains("line 2"), "{msg}");
}

#[tokio::test]
async fn wrong_delimiter() {
    let (rule, msg) = refuse("semi.csv", b"id;amount;note\n1;2.0;x\n".to_vec()).await;
    assert_eq!(rule, "missing_columns");
    assert!(
        msg.contains("';'") && msg.contains("csv.delimiter"),
        "{msg}"
    );
}

#[tokio::test]
async fn truncated_file() {
    // Cut inside a quoted field: the quote never closes.
    let (rule, msg) = refuse(
        "cut.csv",
        b"id,amount,note\n1,2.0,\"fine\"\n2,3.0,\"this note was cut".to_vec(),
    )
    .await;
    assert!(
        rule == "malformed" || rule == "dataset_rules",
        "{rule}: {msg}"
    );
}

#[tokio::test]
async fn too_many_fields() {
    let (rule, msg) = refuse(
        "ragged.csv",
        b"id,amount,note\n1,2.0,x,extra,more\n".to_vec(),
    )
    .await;
    assert_eq!(rule, "malformed", "{msg}");
}

#[tokio::test]
async fn unknown_extension() {
    let (rule, msg) = refuse("data.xlsx", b"PK\x03\x04".to_vec()).await;
    assert_eq!(rule, "format");
    assert!(msg.contains("format"), "{msg}");
}

#[tokio::test]
async fn broken_parquet_and_json() {
    let (rule, _) = refuse("x.parquet", b"PAR1 not really".to_vec()).await;
    assert_eq!(rule, "malformed");
    let (rule, _) = refuse("x.jsonl", b"{\"id\": 1, \"amount\": \n".to_vec()).await;
    assert_eq!(rule, "malformed");
}

/// A nested JSON value where the contract expects text is kept as its text, not a crash.
#[tokio::test]
async fn nested_json_where_text_is_expected() {
    let store = store().await;
    let key = zones::raw("tx", "nested.jsonl");
    store
        .put(
            &key,
            "{\"id\": 1, \"amount\": 2.0, \"note\": {\"a\": [1, 2]}}\n",
        )
        .await
        .unwrap();
    let out = ingest::ingest_object(&store, &key).await.unwrap();
    let ingest::IngestOutcome::Committed { rows, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!((rows.read, rows.valid), (1, 1));
}

/// Row-level problems do not refuse the file: the rows go to quarantine with reasons.
#[tokio::test]
async fn huge_field_and_wrong_types_are_row_errors() {
    let store = store().await;
    let huge = "x".repeat(100_000);
    let text = format!("id,amount,note\n1,2.0,ok\n2,3.0,{huge}\nthree,4.0,x\n4,four,x\n5,,x\n");
    let key = zones::raw("tx", "rows.csv");
    store.put(&key, text).await.unwrap();
    let out = ingest::ingest_object(&store, &key).await.unwrap();
    let ingest::IngestOutcome::Committed { version, rows, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!((rows.read, rows.valid, rows.quarantined), (5, 1, 4));
    let reasons = store
        .get(&zones::quarantine_reasons("tx", &version))
        .await
        .unwrap()
        .bytes;
    let reasons: Vec<serde_json::Value> = reasons
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let find = |row: u64| {
        reasons
            .iter()
            .find(|r| r["row"] == row)
            .unwrap_or_else(|| panic!("row {row}: {reasons:?}"))
    };
    assert_eq!(find(2)["rule"], "max_field_bytes");
    assert!(
        find(2)["value"].as_str().unwrap().len() < 300,
        "reported values are cut"
    );
    assert_eq!(
        (find(3)["column"].as_str(), find(3)["rule"].as_str()),
        (Some("id"), Some("type"))
    );
    assert_eq!(
        (find(4)["column"].as_str(), find(4)["rule"].as_str()),
        (Some("amount"), Some("type"))
    );
    assert_eq!(
        (find(5)["column"].as_str(), find(5)["rule"].as_str()),
        (Some("amount"), Some("not_null"))
    );
    // The quarantined rows keep every raw value.
    let rows_parquet = store
        .get(&zones::quarantine_rows("tx", &version))
        .await
        .unwrap()
        .bytes;
    let df = tests::read_parquet(rows_parquet.as_ref());
    assert_eq!(df.height(), 4);
    assert_eq!(
        df.column("amount").unwrap().str().unwrap().get(2),
        Some("four")
    );
}

#[tokio::test]
async fn missing_contract_is_reported_not_retried() {
    let store = Store::memory();
    store.put("raw/nobody/a.csv", "a\n1\n").await.unwrap();
    let err = ingest::ingest_object(&store, "raw/nobody/a.csv")
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::NoContract { .. }), "{err}");
    assert!(!err.is_retryable());
}
