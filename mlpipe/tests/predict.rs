//! `mlpipe predict` and the batch stage (`mlpipe upload --batch`, on the local stack):
//! batch inference on the champion `mlpipe run` trained, held to independent readings:
//! tract on the training table's own feature rows (feature vectors, and raw records
//! point-in-time, which must reproduce the training join), the native server's `/v1` (raw
//! records against the online state), the errors file for the sample's planted bad rows,
//! and memory that stays flat while the input grows.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use feature_stage::polars::prelude::*;
use serde_json::{Value, json};

mod common;

/// `mlpipe predict ... --json`, which must succeed: its summary.
fn predict(store: &Path, args: &[&str]) -> Value {
    let out = common::cli(store, &[&["predict", "--json"], args].concat());
    serde_json::from_str(&out).unwrap()
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().cast(&DataType::String).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

/// Event times in microseconds, whether stored as timestamps or as RFC 3339 text.
fn times(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap();
    match c.dtype() {
        DataType::Datetime(_, tz) => c
            .cast(&DataType::Datetime(TimeUnit::Microseconds, tz.clone()))
            .unwrap()
            .cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect(),
        _ => strings(df, name)
            .iter()
            .map(|t| {
                features::spec::parse_time_us(t)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
    }
}

fn floats(df: &DataFrame, name: &str) -> Vec<f64> {
    let c = df.column(name).unwrap().cast(&DataType::Float64).unwrap();
    c.f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

/// The champion's training table (every curated event with its point-in-time features)
/// and tract's probabilities on its rows, keyed by (card, time) where that key is unique.
fn training_rows(store: &Path) -> (DataFrame, Vec<String>, HashMap<(String, String), f64>) {
    let (_, bundle) = common::champion(store);
    let inputs = common::input_names(&bundle);
    let view = bundle["feature_view"].as_str().unwrap();
    let version = bundle["feature_view_version"].as_str().unwrap();
    let table = read_parquet(&store.join(format!("features/{view}/v={version}/table.parquet")));
    let onnx = std::fs::read(store.join(bundle["model_key"].as_str().unwrap())).unwrap();
    let n = table.height();
    let mut x = vec![0f32; n * inputs.len()];
    for (j, name) in inputs.iter().enumerate() {
        for (i, v) in floats(&table, name).into_iter().enumerate() {
            x[i * inputs.len() + j] = v as f32;
        }
    }
    let direct = train::export::run_onnx(&onnx, &x, n, inputs.len()).unwrap();
    let cards = strings(&table, "card_id");
    let times = times(&table, "timestamp");
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for k in cards.iter().cloned().zip(times.iter().cloned()) {
        *seen.entry(k).or_default() += 1;
    }
    let by_key = cards
        .into_iter()
        .zip(times)
        .zip(direct)
        .filter(|(k, _)| seen[k] == 1)
        .map(|(k, p)| (k, f64::from(p[1])))
        .collect();
    (table, inputs, by_key)
}

fn errors_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_predictions_match_the_training_join_the_model_file_and_v1() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::run_pipeline(dir.path());
    let (table, _, direct) = training_rows(&store);
    let out = dir.path().join("out");

    // Raw records point-in-time: the training join again, so every valid event's
    // probability is tract's on its training-table row; the planted bad rows are refused
    // with file, row, column and rule, and every other row is scored.
    let raw = store.join("raw/transactions/transactions.csv");
    let pit = out.join("pit.parquet");
    let s = predict(
        &store,
        &[
            "--model",
            "fraud",
            "--input",
            raw.to_str().unwrap(),
            "--output",
            pit.to_str().unwrap(),
            "--point-in-time",
            "--chunk-rows",
            "3000",
        ],
    );
    assert_eq!(s["mode"], "point-in-time", "{s}");
    assert!(s["chunks"].as_u64().unwrap() > 1, "{s}");
    assert_eq!(
        s["scored"].as_u64().unwrap() + s["errors"].as_u64().unwrap(),
        s["rows"].as_u64().unwrap()
    );
    let errors = errors_of(&out.join("pit_errors.jsonl"));
    assert_eq!(errors.len() as u64, s["errors"].as_u64().unwrap());
    assert!(!errors.is_empty(), "the sample plants invalid rows");
    for e in &errors {
        assert!(
            e["file"].as_str().unwrap().ends_with("transactions.csv")
                && e["row"].as_u64().unwrap() >= 1
                && !e["column"].as_str().unwrap().is_empty()
                && !e["rule"].as_str().unwrap().is_empty(),
            "{e}"
        );
    }
    let got = read_parquet(&pit);
    assert_eq!(got.height() as u64, s["scored"].as_u64().unwrap());
    for column in [
        "row",
        "card_id",
        "timestamp",
        "prediction",
        "probability_true",
        "model",
        "version",
    ] {
        assert!(got.column(column).is_ok(), "no column {column}");
    }
    let keys = strings(&got, "card_id")
        .into_iter()
        .zip(times(&got, "timestamp"));
    let mut compared = 0;
    for (key, p) in keys.zip(floats(&got, "probability_true")) {
        if let Some(want) = direct.get(&key) {
            assert!((p - want).abs() <= 1e-6, "{key:?}: {p} vs {want}");
            compared += 1;
        }
    }
    assert!(
        compared > table.height() * 9 / 10,
        "{compared} of {}",
        table.height()
    );

    // Ready feature vectors (the training table itself, as Parquet): tract's, row by row.
    let vectors = out.join("vectors.parquet");
    let table_path = dir.path().join("table.parquet");
    ParquetWriter::new(std::fs::File::create(&table_path).unwrap())
        .finish(&mut table.clone())
        .unwrap();
    let s = predict(
        &store,
        &[
            "--model",
            "fraud@1",
            "--input",
            table_path.to_str().unwrap(),
            "--output",
            vectors.to_str().unwrap(),
        ],
    );
    assert_eq!(s["mode"], "feature-vectors", "{s}");
    assert_eq!(s["errors"], 0);
    let got = read_parquet(&vectors);
    let rows: Vec<f64> = floats(&got, "row");
    assert_eq!(rows.first(), Some(&1.0));
    let keys: Vec<(String, String)> = strings(&got, "card_id")
        .into_iter()
        .zip(times(&got, "timestamp"))
        .collect();
    for (key, p) in keys.iter().zip(floats(&got, "probability_true")) {
        if let Some(want) = direct.get(key) {
            assert!((p - want).abs() <= 1e-6, "{key:?}: {p} vs {want}");
        }
    }

    // Raw records against the online state: the cards' latest records moved to now score
    // exactly as /v1 scores them on the native server; a record from before its card's
    // last event is refused with the point-in-time hint.
    let records = recent_records(&raw, 12);
    let jsonl = dir.path().join("recent.jsonl");
    let mut text = String::new();
    for r in &records {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    let mut old = records[0].clone();
    old["timestamp"] = json!("2026-01-01T00:00:00Z");
    text.push_str(&serde_json::to_string(&old).unwrap());
    text.push('\n');
    std::fs::write(&jsonl, text).unwrap();
    let online = out.join("online.parquet");
    let s = predict(
        &store,
        &[
            "--model",
            "fraud:champion",
            "--input",
            jsonl.to_str().unwrap(),
            "--output",
            online.to_str().unwrap(),
        ],
    );
    assert_eq!(s["mode"], "online", "{s}");
    assert_eq!(s["scored"], records.len(), "{s}");
    let errors = errors_of(&out.join("online_errors.jsonl"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["row"], records.len() + 1);
    assert_eq!(errors[0]["column"], "timestamp");
    assert!(
        errors[0]["rule"]
            .as_str()
            .unwrap()
            .contains("--point-in-time")
    );
    let batch = floats(&read_parquet(&online), "probability_true");
    // Without an online store (as on a cloud store without --online) the entities come from
    // the newest feature version's online.bin: the same records here, so the same scores.
    let snapshot = out.join("snapshot.parquet");
    predict(
        &store,
        &[
            "--online",
            "none",
            "--model",
            "fraud",
            "--input",
            jsonl.to_str().unwrap(),
            "--output",
            snapshot.to_str().unwrap(),
        ],
    );
    assert_eq!(floats(&read_parquet(&snapshot), "probability_true"), batch);

    // The batch stage on the same records: the same code through the stage interface, its
    // output under batch-output/ with the manifest last, once however often delivered.
    let stage = batch_stage(&store, &jsonl, &[]);
    let folder = store.join("batch-output/fraud/recent.jsonl");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folder.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(stage["outcome"], "committed", "{stage}");
    assert_eq!(manifest["input"], "batch-input/fraud/recent.jsonl");
    assert_eq!(manifest["mode"], "online");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["scored"], records.len());
    assert_eq!(
        manifest["predictions"],
        "batch-output/fraud/recent.jsonl/predictions.parquet"
    );
    assert_eq!(
        floats(
            &read_parquet(&folder.join("predictions.parquet")),
            "probability_true"
        ),
        batch
    );
    let errors = errors_of(&folder.join("errors.jsonl"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["file"], "batch-input/fraud/recent.jsonl");
    assert_eq!(errors[0]["column"], "timestamp");
    let written = std::fs::metadata(folder.join("_manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = batch_stage(&store, &jsonl, &[]);
    assert_eq!(again["outcome"], "already-done", "{again}");
    assert_eq!(
        std::fs::metadata(folder.join("_manifest.json"))
            .unwrap()
            .modified()
            .unwrap(),
        written
    );
    // Historical records under point-in-time/: the training join, as --point-in-time.
    let head: Vec<String> = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .take(400)
        .map(str::to_string)
        .collect();
    let history = dir.path().join("history.csv");
    std::fs::write(&history, head.join("\n") + "\n").unwrap();
    let stage = batch_stage(&store, &history, &["--point-in-time"]);
    assert_eq!(stage["outcome"], "committed", "{stage}");
    assert_eq!(stage["mode"], "point-in-time", "{stage}");
    let got = read_parquet(
        &store.join("batch-output/fraud/point-in-time/history.csv/predictions.parquet"),
    );
    let keys = strings(&got, "card_id")
        .into_iter()
        .zip(times(&got, "timestamp"));
    let mut compared = 0;
    for (key, p) in keys.zip(floats(&got, "probability_true")) {
        if let Some(want) = direct.get(&key) {
            assert!((p - want).abs() <= 1e-6, "stage {key:?}: {p} vs {want}");
            compared += 1;
        }
    }
    assert!(compared > 300, "{compared} of {}", got.height());

    // One process at a time on the embedded online store: the server starts after.
    let (_server, url) = common::native_server(&store);
    let v1: Value = reqwest::Client::new()
        .post(format!("{url}/v1/models/fraud/predict"))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served: Vec<f64> = v1["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v1}"))
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    assert_eq!(served.len(), batch.len());
    for (b, v) in batch.iter().zip(&served) {
        assert!((b - v).abs() <= 1e-6, "batch {b} vs /v1 {v}");
    }
}

/// `mlpipe upload FILE --batch fraud [ARGS] --json` on the local stack: the batch stage's
/// output for the upload.
fn batch_stage(store: &Path, file: &Path, args: &[&str]) -> Value {
    let out = common::cli(
        store,
        &[
            &[
                "upload",
                file.to_str().unwrap(),
                "--batch",
                "fraud",
                "--json",
            ],
            args,
        ]
        .concat(),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let deliveries = v["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{v}");
    assert_eq!(deliveries[0]["stage"], "batch-predict", "{v}");
    deliveries[0]["result"].clone()
}

/// The latest raw record of each of `n` cards with its time moved to a second ago (after
/// every materialized event, within the server's clock-skew allowance).
fn recent_records(raw: &Path, n: usize) -> Vec<Value> {
    let mut reader = csv_rows(raw);
    let header = reader.remove(0);
    let mut latest: Vec<(String, Vec<String>)> = Vec::new();
    for row in reader {
        let card = row[header.iter().position(|h| h == "card_id").unwrap()].clone();
        if card.is_empty() {
            continue;
        }
        if let Some(entry) = latest.iter_mut().find(|(c, _)| *c == card) {
            entry.1 = row;
        } else if latest.len() < n {
            latest.push((card, row));
        }
    }
    let now = chrono::Utc::now() - chrono::Duration::seconds(1);
    latest
        .into_iter()
        .map(|(_, row)| {
            let mut m = serde_json::Map::new();
            for (k, v) in header.iter().zip(row) {
                let value = match v.parse::<f64>() {
                    Ok(x) if k != "card_id" && k != "merchant_id" => json!(x),
                    _ => json!(v),
                };
                m.insert(k.clone(), value);
            }
            m.insert(
                "timestamp".into(),
                json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
            m.remove("is_fraud");
            Value::Object(m)
        })
        .collect()
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Memory stays flat while the input grows: the peak resident memory of scoring a file
/// several times larger than a cap exceeds that of scoring a small one by less than the cap
/// (rows are read, scored and written a chunk at a time).
#[test]
fn memory_stays_flat_while_the_input_grows() {
    const CAP_MIB: f64 = 12.0;
    let dir = tempfile::tempdir().unwrap();
    let store = common::run_pipeline(dir.path());
    let (table, inputs, _) = training_rows(&store);
    let header = inputs.join(",");
    let rows: Vec<String> = (0..table.height())
        .map(|i| {
            inputs
                .iter()
                .map(|c| {
                    let v = table.column(c).unwrap().get(i).unwrap();
                    match v {
                        AnyValue::Null => String::new(),
                        v => v.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let write = |path: &PathBuf, bytes: usize| {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        writeln!(f, "{header}").unwrap();
        let mut written = 0;
        'fill: loop {
            for r in &rows {
                writeln!(f, "{r}").unwrap();
                written += r.len() + 1;
                if written >= bytes {
                    break 'fill;
                }
            }
        }
    };
    let small = dir.path().join("small.csv");
    let large = dir.path().join("large.csv");
    write(&small, 1 << 20);
    let large_bytes = ((4.0 * CAP_MIB) as usize) << 20;
    write(&large, large_bytes);
    let peak = |input: &Path, out: &str| -> (f64, u64) {
        let s = predict(
            &store,
            &[
                "--model",
                "fraud",
                "--input",
                input.to_str().unwrap(),
                "--output",
                dir.path().join(out).to_str().unwrap(),
                "--chunk-rows",
                "2048",
            ],
        );
        (
            s["peak_rss_mib"].as_f64().unwrap(),
            s["scored"].as_u64().unwrap(),
        )
    };
    let (base, _) = peak(&small, "small.parquet");
    let (grown, scored) = peak(&large, "large.parquet");
    let size_mib = std::fs::metadata(&large).unwrap().len() as f64 / f64::from(1 << 20);
    eprintln!(
        "peak resident memory: {base:.1} MiB for 1 MiB of input, {grown:.1} MiB for {size_mib:.0} MiB ({scored} rows)"
    );
    assert!(size_mib >= 4.0 * CAP_MIB);
    assert!(
        grown - base < CAP_MIB,
        "peak memory grew {:.1} MiB (cap {CAP_MIB} MiB) for {size_mib:.0} MiB of input",
        grown - base
    );
}
