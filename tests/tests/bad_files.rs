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
    store_under(CONTRACT).await
}

async fn store_under(contract: &str) -> Store {
    let store = Store::memory();
    let c = Contract::from_toml(contract, "tx.toml").unwrap();
    publish_contract(&store, &c, contract).await.unwrap();
    store
}

/// Ingests `bytes` as `name`; returns the error and checks what must hold for every refusal.
async fn refuse(name: &str, bytes: Vec<u8>) -> (String, String) {
    refuse_in(store().await, name, bytes).await
}

/// [`refuse`] under the sample contract with a `[limits]` table added.
async fn refuse_over_limit(limits: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let contract = format!("{CONTRACT}\n[limits]\n{limits}\n");
    refuse_in(store_under(&contract).await, name, bytes).await
}

async fn refuse_in(store: Store, name: &str, bytes: Vec<u8>) -> (String, String) {
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

// --- Hostile files: each limit is checked before the work it protects, and each ends in a
// quarantine report (checked by `refuse_in`), never a crash or an out-of-memory.

/// An object over `max_file_bytes` is refused from its metadata: not one byte is downloaded.
#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_unread() {
    let store = store_under(&format!("{CONTRACT}\n[limits]\nmax_file_bytes = 1000\n")).await;
    let key = zones::raw("tx", "big.csv");
    let mut body = b"id,amount,note\n".to_vec();
    while body.len() < 5000 {
        body.extend_from_slice(b"1,2.0,padding padding padding\n");
    }
    store.put(&key, body).await.unwrap();
    let faults = std::sync::Arc::new(storage::Faults::none());
    let watched = store.with_faults(faults.clone());
    let err = ingest::ingest_object(&watched, &key).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("limits.max_file_bytes") && err.to_string().contains(&key),
        "{err}"
    );
    let reads: Vec<_> = faults
        .operations()
        .into_iter()
        .filter(|(op, k)| *op == storage::Op::Get && *k == key)
        .collect();
    assert!(reads.is_empty(), "the object was downloaded: {reads:?}");
    let reports = store.list("quarantine/tx/_errors/").await.unwrap();
    assert_eq!(reports.len(), 1);
}

/// A header of 200,000 columns is counted on the bytes, before the parser builds a column
/// for each.
#[tokio::test]
async fn a_csv_header_wider_than_the_limit_is_refused_before_parsing() {
    let mut header: Vec<String> = vec!["id".into(), "amount".into(), "note".into()];
    header.extend((0..200_000).map(|i| format!("c{i}")));
    let body = format!("{}\n1,2.0,x\n", header.join(",")).into_bytes();
    let (rule, msg) = refuse_over_limit("max_columns = 50", "wide.csv", body).await;
    assert_eq!(rule, "max_columns");
    assert!(msg.contains("200003 columns"), "{msg}");
}

#[tokio::test]
async fn a_csv_with_more_rows_than_the_limit_is_refused() {
    let body = b"id,amount,note\n1,1.0,a\n2,2.0,b\n3,3.0,c\n4,4.0,d\n".to_vec();
    let (rule, msg) = refuse_over_limit("max_rows = 3", "long.csv", body).await;
    assert_eq!(rule, "max_rows");
    assert!(msg.contains("limits.max_rows"), "{msg}");
}

/// 100,000 nested arrays would take a recursive parser past its stack; the depth is checked
/// on the bytes first.
#[tokio::test]
async fn deeply_nested_json_lines_are_refused_before_parsing() {
    let mut body =
        b"{\"id\": 1, \"amount\": 2.0, \"note\": \"ok\"}\n{\"id\": 2, \"amount\": 1.0, \"note\": "
            .to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.extend_from_slice(b"}\n");
    let (rule, msg) = refuse("deep.jsonl", body).await;
    assert_eq!(rule, "max_nesting_depth");
    assert!(msg.contains("line 2") && msg.contains("17 levels"), "{msg}");
}

/// Every row naming new keys would make the parser a column for each.
#[tokio::test]
async fn json_lines_with_unbounded_distinct_keys_are_refused_before_parsing() {
    let mut body = Vec::new();
    for i in 0..20_000 {
        body.extend(format!("{{\"id\": {i}, \"amount\": 1.0, \"k{i}\": 1}}\n").bytes());
    }
    let (rule, msg) = refuse_over_limit("max_columns = 50", "keys.jsonl", body).await;
    assert_eq!(rule, "max_columns");
    assert!(
        msg.contains("distinct keys") && msg.contains("line 49"),
        "{msg}"
    );
}

#[tokio::test]
async fn json_lines_with_more_rows_than_the_limit_are_refused() {
    let body = b"{\"id\": 1, \"amount\": 1.0}\n{\"id\": 2, \"amount\": 1.0}\n{\"id\": 3, \"amount\": 1.0}\n".to_vec();
    let (rule, _) = refuse_over_limit("max_rows = 2", "long.jsonl", body).await;
    assert_eq!(rule, "max_rows");
}

/// A small Parquet file that declares much more data than it holds on disk (a million
/// zeros compress to almost nothing) is refused from its footer: rows, row groups and the
/// declared uncompressed size, each before a page is decoded.
#[tokio::test]
async fn parquet_footers_over_the_limits_are_refused_before_decoding() {
    use ingest::polars::prelude::*;
    let n = 1_000_000usize;
    let mut df = df!(
        "id" => vec![0i64; n],
        "amount" => vec![0f64; n],
        "note" => vec!["z"; n],
    )
    .unwrap();
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_compression(ParquetCompression::Zstd(None))
        .with_row_group_size(Some(10_000))
        .finish(&mut df)
        .unwrap();
    assert!(bytes.len() < 1_000_000, "{} bytes on disk", bytes.len());
    for (limit, rule) in [
        ("max_rows = 999999", "max_rows"),
        ("max_row_groups = 99", "max_row_groups"),
        ("max_decoded_bytes = 4000000", "max_decoded_bytes"),
    ] {
        let (got, msg) = refuse_over_limit(limit, "zeros.parquet", bytes.clone()).await;
        assert_eq!(got, rule, "{msg}");
        assert!(msg.contains("footer") || rule == "max_rows", "{msg}");
    }
}
