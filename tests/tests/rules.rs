//! Every validation rule, one row (or batch) breaking it, checked by rule name and column.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use contracts::Contract;
use ingest::definitions::publish_contract;
use ingest::{IngestError, IngestOutcome};
use records::keys as zones;
use storage::Store;

const CONTRACT: &str = r#"
dataset = "rules"
event_time = "at"
primary_key = ["id"]
[rules]
min_rows = 1
[[columns]]
name = "id"
type = "integer"
nullable = false
min = 0
max = 1000
[[columns]]
name = "code"
type = "string"
pattern = "[A-Z]{3}"
min_length = 3
max_length = 3
[[columns]]
name = "email"
type = "string"
unique = true
[[columns]]
name = "level"
type = "categorical"
values = ["low", "high"]
[[columns]]
name = "score"
type = "float"
[[columns]]
name = "flag"
type = "boolean"
boolean = { true_values = ["ja"], false_values = ["nein"] }
[[columns]]
name = "at"
type = "timestamp"
not_before = "2020-01-01T00:00:00Z"
not_after = "2030-01-01T00:00:00Z"
"#;

async fn ingest(contract: &str, csv: &str) -> (Store, Result<IngestOutcome, IngestError>) {
    let store = Store::memory();
    let c = Contract::from_toml(contract, "rules.toml").unwrap();
    publish_contract(&store, &c, contract).await.unwrap();
    let key = zones::raw(&c.dataset, "batch.csv");
    store.put(&key, csv.to_string()).await.unwrap();
    let out = ingest::ingest_object(&store, &key).await;
    (store, out)
}

fn reasons(store_bytes: &[u8]) -> Vec<(u64, String, String)> {
    store_bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            (
                v["row"].as_u64().unwrap(),
                v["column"].as_str().unwrap().to_string(),
                v["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_row_rule_is_reported_with_row_column_and_rule() {
    let csv = "\
id,code,email,level,score,flag,at
1,ABC,a@x,low,1.5,ja,2024-01-01T00:00:00Z
-5,ABC,b@x,low,1.5,true,2024-01-01T00:00:00Z
three,ABC,c@x,low,1.5,true,2024-01-01T00:00:00Z
,ABC,d@x,low,1.5,true,2024-01-01T00:00:00Z
5,abc,e@x,low,1.5,true,2024-01-01T00:00:00Z
6,ABCD,f@x,low,1.5,true,2024-01-01T00:00:00Z
7,ABC,a@x,low,1.5,true,2024-01-01T00:00:00Z
8,ABC,h@x,medium,1.5,true,2024-01-01T00:00:00Z
9,ABC,i@x,low,inf,true,2024-01-01T00:00:00Z
10,ABC,j@x,low,1.5,vielleicht,2024-01-01T00:00:00Z
11,ABC,k@x,low,1.5,nein,1999-12-31T23:59:59Z
12,ABC,l@x,low,1.5,true,tomorrow
1,ABC,m@x,low,1.5,true,2024-01-01T00:00:00Z
13,ABC,n@x,LOW,1.5,true,2024-01-01T00:00:00Z
";
    let (store, out) = ingest(CONTRACT, csv).await;
    let IngestOutcome::Committed { version, rows, .. } = out.unwrap() else {
        panic!()
    };
    let got = reasons(
        &store
            .get(&zones::quarantine_reasons("rules", &version))
            .await
            .unwrap()
            .bytes,
    );
    let expect = [
        (2, "id", "range"),
        (3, "id", "type"),
        (4, "id", "not_null"),
        (5, "code", "pattern"),
        (6, "code", "pattern"),
        (6, "code", "length"),
        (7, "email", "unique"),
        (8, "level", "allowed_values"),
        (9, "score", "finite"),
        (10, "flag", "type"),
        (11, "at", "range"),
        (12, "at", "type"),
        (13, "id", "unique_key"),
        (14, "level", "allowed_values"),
    ];
    for (row, column, rule) in expect {
        assert!(
            got.iter()
                .any(|(r, c, n)| *r == row && c == column && n == rule),
            "row {row} {column} {rule} not in {got:?}"
        );
    }
    assert_eq!(got.len(), expect.len(), "no other findings: {got:?}");
    assert_eq!((rows.read, rows.valid, rows.quarantined), (14, 1, 13));
}

#[tokio::test]
async fn dataset_rules_reject_or_warn() {
    let csv = "id,code,email,level,score,flag,at\n1,ABC,a@x,low,,true,2024-01-01T00:00:00Z\n2,ABC,b@x,low,,true,2024-01-01T00:00:00Z\n3,ABC,c@x,low,2,true,2024-01-01T00:00:00Z\n";
    let strict = CONTRACT.replace(
        "min_rows = 1",
        "min_rows = 1\nmax_null_fraction = { score = 0.5 }",
    );
    let (_, out) = ingest(&strict, csv).await;
    let err = out.unwrap_err().to_string();
    assert!(
        err.contains("max_null_fraction") && err.contains("'score'") && err.contains("66.7%"),
        "{err}"
    );

    let warn = strict.replace("min_rows = 1", "min_rows = 1\non_fail = \"warn\"");
    let (store, out) = ingest(&warn, csv).await;
    let IngestOutcome::Committed { version, .. } = out.unwrap() else {
        panic!()
    };
    let m: records::pipeline::Manifest = serde_json::from_slice(
        &store
            .get(&zones::curated_manifest("rules", &version))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(m.findings.len(), 1, "{:?}", m.findings);

    let (_, out) = ingest(&CONTRACT.replace("min_rows = 1", "min_rows = 10"), csv).await;
    assert!(
        out.unwrap_err()
            .to_string()
            .contains("min_rows: 3 valid rows; at least 10")
    );

    let (_, out) = ingest(
        &CONTRACT.replace("min_rows = 1", "min_rows = 1\nfreshness = \"7d\""),
        csv,
    )
    .await;
    assert!(out.unwrap_err().to_string().contains("freshness"));

    let (_, out) = ingest(
        &format!("extra_columns = \"reject\"\n{CONTRACT}"),
        &csv.replace("id,code", "id,surprise,code")
            .replace("\n1,", "\n1,x,")
            .replace("\n2,", "\n2,x,")
            .replace("\n3,", "\n3,x,"),
    )
    .await;
    let err = out.unwrap_err();
    assert!(
        matches!(
            &err,
            IngestError::FileRejected {
                rule: "extra_columns",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn renamed_missing_and_extra_columns() {
    let contract = "dataset = \"r\"\n[[columns]]\nname = \"amount\"\nsource = \"Amount (USD)\"\ntype = \"float\"\nnullable = false\n[[columns]]\nname = \"note\"\ntype = \"string\"\n";
    let (store, out) = ingest(contract, "Amount (USD),other\n1.5,x\n").await;
    let IngestOutcome::Committed { version, .. } = out.unwrap() else {
        panic!()
    };
    let m: records::pipeline::Manifest = serde_json::from_slice(
        &store
            .get(&zones::curated_manifest("r", &version))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(m.dropped_columns, vec!["other".to_string()]);
    assert_eq!(m.missing_columns, vec!["note".to_string()]);
    let df = tests::read_parquet(&store.get(&m.parts[0].key).await.unwrap().bytes);
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(names, vec!["amount", "note"]);
}

#[tokio::test]
async fn json_lines_and_parquet_inputs() {
    let contract = "dataset = \"j\"\nevent_time = \"at\"\n[[columns]]\nname = \"id\"\ntype = \"integer\"\nnullable = false\n[[columns]]\nname = \"at\"\ntype = \"timestamp\"\n[[columns]]\nname = \"ok\"\ntype = \"boolean\"\n";
    let store = Store::memory();
    let c = Contract::from_toml(contract, "j.toml").unwrap();
    publish_contract(&store, &c, contract).await.unwrap();
    let jsonl = "{\"id\": 1, \"at\": \"2024-01-01T00:00:00Z\", \"ok\": true}\n{\"id\": \"x\", \"at\": \"2024-01-02\", \"ok\": false}\n{\"id\": 3, \"at\": null, \"ok\": null}\n";
    store.put("raw/j/a.jsonl", jsonl).await.unwrap();
    let IngestOutcome::Committed { rows, version, .. } =
        ingest::ingest_object(&store, "raw/j/a.jsonl")
            .await
            .unwrap()
    else {
        panic!()
    };
    assert_eq!((rows.read, rows.valid, rows.quarantined), (3, 2, 1));
    // The curated Parquet itself, uploaded again as a Parquet source, ingests cleanly.
    let m: records::pipeline::Manifest = serde_json::from_slice(
        &store
            .get(&zones::curated_manifest("j", &version))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    let part = store.get(&m.parts[0].key).await.unwrap().bytes;
    store.put("raw/j/b.parquet", part).await.unwrap();
    let IngestOutcome::Committed { rows, .. } = ingest::ingest_object(&store, "raw/j/b.parquet")
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((rows.read, rows.valid), (2, 2));
}
