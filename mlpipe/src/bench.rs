//! Measurements behind `cargo xtask bench features`, run one mode per process so each reports
//! its own peak memory. Not used by the pipeline.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use feature_stage::polars::prelude::*;
use features::{FeatureView, LabelSource, OnlineRecord, ViewSpec};
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Reads the sample CSV as the curated zone would hold it (typed columns, UTC timestamps).
fn read_events(file: &Path) -> Result<DataFrame> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(file.to_path_buf()))?
        .finish()?;
    let times = feature_stage::offline::micros(&df, "timestamp")?;
    let ts = Column::new("timestamp".into(), times).cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))?;
    let mut df = df;
    df.replace("timestamp", ts)?;
    let fraud = df.column("is_fraud")?.cast(&DataType::Boolean)?;
    df.replace("is_fraud", fraud)?;
    Ok(df)
}

fn load_view(project: &Path) -> Result<FeatureView> {
    let loaded = contracts::LoadedProject::load(project)?;
    let views = crate::pipeline::parse_views(&loaded)?;
    views
        .into_iter()
        .next()
        .map(|(v, _)| v)
        .context("the project defines no feature view")
}

/// Seeded label events: random cards of the history at random times inside its range.
fn label_events(events: &DataFrame, n: usize, seed: u64) -> Result<DataFrame> {
    let cards = events.column("card_id")?.str()?.clone();
    let mut distinct: Vec<&str> = cards.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let times = feature_stage::offline::micros(events, "timestamp")?;
    let lo = times.iter().flatten().min().copied().unwrap_or(0);
    let hi = times.iter().flatten().max().copied().unwrap_or(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut card = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut label = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let channels = ["pos", "online", "atm"];
    let categories = ["grocery", "travel", "fuel", "electronics"];
    let mut channel = Vec::with_capacity(n);
    let mut category = Vec::with_capacity(n);
    let mut country = Vec::with_capacity(n);
    for _ in 0..n {
        card.push(distinct[rng.random_range(0..distinct.len())].to_string());
        at.push(rng.random_range(lo..=hi));
        label.push(rng.random_bool(0.01));
        amount.push((rng.random_range(1.0..500.0f64) * 100.0).round() / 100.0);
        channel.push(channels[rng.random_range(0..channels.len())]);
        category.push(categories[rng.random_range(0..categories.len())]);
        country.push("DE");
    }
    let ts = Column::new("timestamp".into(), at).cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))?;
    Ok(DataFrame::new(
        n,
        vec![
            Column::new("card_id".into(), card),
            ts,
            Column::new("amount".into(), amount),
            Column::new("channel".into(), channel),
            Column::new("merchant_category".into(), category),
            Column::new("country".into(), country),
            Column::new("is_fraud".into(), label),
        ],
    )?)
}

fn percentile(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ns.len() - 1) as f64 * p).round() as usize;
    sorted_ns[i] as f64 / 1000.0
}

/// One benchmark mode; returns the JSON line `xtask` reads.
pub async fn features(
    mode: &str,
    file: &Path,
    project: &Path,
    workdir: &Path,
    n: usize,
) -> Result<Value> {
    let view = load_view(project)?;
    let events = read_events(file)?;
    let rows = events.height();
    match mode {
        // The whole offline table: window features, request-time features, encodings, split.
        "windows" => {
            let t = Instant::now();
            let out = feature_stage::build_table(&view, &events, None, None)?;
            let secs = t.elapsed().as_secs_f64();
            Ok(
                json!({"mode": mode, "rows": rows, "features": out.columns.len(),
                "entities": out.states.len(), "secs": secs, "peak_rss_bytes": peak_rss_bytes()}),
            )
        }
        // Point in time: features as of each of `n` label events over the whole history.
        "join" => {
            let labels = label_events(&events, n, 7)?;
            let mut joined = view.clone();
            joined.label = Some(LabelSource::Dataset {
                dataset: "labels".into(),
                entity: view.entity.clone(),
                time: "timestamp".into(),
                column: "is_fraud".into(),
            });
            let t = Instant::now();
            let out = feature_stage::build_table(&joined, &events, Some(&labels), None)?;
            let secs = t.elapsed().as_secs_f64();
            Ok(
                json!({"mode": mode, "rows": out.table.height(), "history": rows, "secs": secs,
                "peak_rss_bytes": peak_rss_bytes()}),
            )
        }
        // Single-entity reads from the embedded store, and read + evaluate.
        "online" => {
            let out = feature_stage::build_table(&view, &events, None, None)?;
            let spec = ViewSpec::new(view.clone(), "bench".into(), out.vocabularies.clone());
            let path = workdir.join("online.redb");
            let _ = std::fs::remove_file(&path);
            let store = online::EmbeddedStore::open(&path)?;
            let now = chrono::Utc::now().timestamp_micros();
            let records: Vec<OnlineRecord> = out
                .states
                .into_iter()
                .map(|(entity, state)| OnlineRecord {
                    view: view.name.clone(),
                    version: "bench".into(),
                    entity,
                    materialized_at_us: now,
                    state,
                })
                .collect();
            let bytes: usize = records
                .iter()
                .map(|r| r.encode().map(|b| b.len()).unwrap_or(0))
                .sum();
            store.put(&records)?;
            let entities: Vec<String> = records.iter().map(|r| r.entity.clone()).collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
            let mut read_ns = Vec::with_capacity(n);
            let mut found = 0usize;
            for _ in 0..n {
                let e = &entities[rng.random_range(0..entities.len())];
                let t = Instant::now();
                let r = store.get(&view.name, e)?;
                read_ns.push(t.elapsed().as_nanos() as u64);
                found += usize::from(r.is_some());
            }
            if found != n {
                bail!("{} reads missed", n - found);
            }
            let last = records
                .iter()
                .filter_map(|r| r.state.last_event_us)
                .max()
                .unwrap_or(now);
            let at = chrono::DateTime::from_timestamp_micros(last + 60_000_000)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default();
            let mut served_ns = Vec::with_capacity(n);
            for _ in 0..n {
                let e = &entities[rng.random_range(0..entities.len())];
                let request: Map<String, Value> = serde_json::from_value(json!({
                    "card_id": e, "timestamp": at, "amount": 42.5, "channel": "online",
                    "merchant_category": "travel", "country": "DE"
                }))?;
                let t = Instant::now();
                let v = features::online_features(&store, &spec, &request, now).await?;
                served_ns.push(t.elapsed().as_nanos() as u64);
                if v.assembled.unknown_entity {
                    bail!("entity {e} unknown");
                }
            }
            read_ns.sort_unstable();
            served_ns.sort_unstable();
            let mut stats = BTreeMap::new();
            stats.insert("read_p50_us", percentile(&read_ns, 0.5));
            stats.insert("read_p99_us", percentile(&read_ns, 0.99));
            stats.insert("served_p50_us", percentile(&served_ns, 0.5));
            stats.insert("served_p99_us", percentile(&served_ns, 0.99));
            Ok(json!({"mode": mode, "reads": n, "entities": entities.len(),
                "mean_record_bytes": bytes / entities.len().max(1), "stats": stats,
                "peak_rss_bytes": peak_rss_bytes()}))
        }
        other => bail!("unknown mode '{other}' (windows, join or online)"),
    }
}

/// `mlpipe bench-train`: a full search on a table (Parquet or CSV) with `label` and a
/// `__split` column; every other numeric or boolean column is a feature. Prints one JSON
/// object: test metrics of the chosen model, models fitted, timings and peak memory.
pub fn train(
    file: &Path,
    label: &str,
    metric: &str,
    config: Option<&Path>,
) -> Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let df = if file.extension().is_some_and(|e| e == "csv") {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(file.to_path_buf()))?
            .finish()?
    } else {
        ParquetReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        )
        .finish()?
    };
    let features: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| {
            let name = c.name().as_str();
            name != label
                && name != "__split"
                && (c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean)
        })
        .map(|c| c.name().to_string())
        .collect();
    let text = match config {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => format!(
            "model = \"bench\"\nview = \"bench\"\nfamilies = [\"gbm\", \"linear\"]\nmetric = \"{metric}\"\nclass_weight = \"none\"\n"
        ),
    };
    let cfg = train::TrainingConfig::from_toml(&text, "bench training file")?;
    let load_secs = started.elapsed().as_secs_f64();
    let search_started = std::time::Instant::now();
    let (ds, cand) = train::job::train_table(
        &df,
        &features,
        label,
        Some("__split"),
        &cfg,
        &|line: &str| eprintln!("{line}"),
    )?;
    let secs = search_started.elapsed().as_secs_f64();
    let fits: usize = cand.trials.iter().map(|t| t.rungs.len()).sum::<usize>() + 1;
    let families: Vec<&str> = cfg
        .families
        .iter()
        .map(|f| train::model::family_name(*f))
        .collect();
    let flat = |k: &str| cand.test_metrics.get(k).copied().unwrap_or(f64::NAN);
    Ok(serde_json::json!({
        "test_roc_auc": flat("roc_auc"),
        "test_pr_auc": flat("pr_auc"),
        "test_log_loss": flat("log_loss"),
        "rows": ds.n_rows(),
        "features": ds.n_features(),
        "train_rows": ds.rows(train::data::Split::Train).len(),
        "families": families,
        "best": cand.params,
        "metric": cand.metric.name(),
        "value": cand.main,
        "test": cand.test_metrics,
        "fits": fits,
        "trials": cand.trials.len(),
        "load_secs": load_secs,
        "secs": secs,
        "timings": cand.timings,
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}

/// Column names of the drift benchmark's data.
fn drift_columns(features: usize) -> Vec<String> {
    (0..features).map(|i| format!("f{i:02}")).collect()
}

/// `bench-drift --mode generate`: seeded reference and current tables of `features`
/// numeric columns (the current one with a quarter of its columns shifted) as Parquet,
/// which both sides of the benchmark read.
pub fn drift_generate(dir: &Path, reference: usize, rows: usize, features: usize) -> Result<Value> {
    std::fs::create_dir_all(dir)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261127);
    let names = drift_columns(features);
    let mut table = |n: usize, shift: bool| -> Result<DataFrame> {
        let cols: Vec<Column> = names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let moved = shift && j % 4 == 0;
                let (mean, sd) = (j as f64, 1.0 + j as f64 / 10.0);
                // f32, as prediction logs carry model inputs.
                let v: Vec<f32> = (0..n)
                    .map(|_| {
                        let u: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                        (mean + sd * u * 1.7 + if moved { 0.5 * sd } else { 0.0 }) as f32
                    })
                    .collect();
                Column::new(name.as_str().into(), v)
            })
            .collect();
        Ok(DataFrame::new(n, cols)?)
    };
    for (file, n, shift) in [
        ("reference.parquet", reference, false),
        ("current.parquet", rows, true),
    ] {
        let mut df = table(n, shift)?;
        let f = std::fs::File::create(dir.join(file))?;
        ParquetWriter::new(f).finish(&mut df)?;
    }
    Ok(json!({"reference": reference, "rows": rows, "features": features}))
}

/// `bench-drift --mode check`: reads both tables and runs the drift stage's check (the
/// default tests, or KS on every column with `ks`), as one window against the reference.
pub fn drift_check(dir: &Path, test: &str) -> Result<Value> {
    let t0 = Instant::now();
    let read = |file: &str| -> Result<DataFrame> {
        let f = std::fs::File::open(dir.join(file))
            .with_context(|| format!("{file}: run --mode generate first"))?;
        Ok(ParquetReader::new(f).finish()?)
    };
    let reference_df = read("reference.parquet")?;
    let mut current_df = read("current.parquet")?;
    let names: Vec<String> = reference_df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let values = |df: &DataFrame, n: &str| -> Result<Vec<f64>> {
        Ok(df
            .column(n)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .flatten()
            .collect())
    };
    let mut reference = drift::reference::Reference::default();
    let mut window = drift::current::Window::new(0, 1);
    window.rows = current_df.height();
    for n in &names {
        let mut v = values(&reference_df, n)?;
        v.sort_by(f64::total_cmp);
        let deciles = (0..=10).map(|i| v[(i * (v.len() - 1)) / 10]).collect();
        reference.numeric.insert(
            n.clone(),
            drift::reference::NumericRef {
                count: v.len() as f64,
                null_rate: 0.0,
                deciles,
                values: v,
            },
        );
        // Column by column, each freed once copied: the table and the window are never both
        // whole in memory.
        let c = current_df.drop_in_place(n)?;
        let v: Vec<f32> = c
            .cast(&DataType::Float32)?
            .f32()?
            .iter()
            .flatten()
            .collect();
        drop(c);
        window.numeric.insert(n.clone(), v);
    }
    drop(current_df);
    let read_s = t0.elapsed().as_secs_f64();
    let mut settings = drift::DriftSettings::default();
    if test == "ks" {
        for n in &names {
            settings.features.insert(
                n.clone(),
                drift::config::FeatureRule {
                    test: Some(drift::config::Test::Ks),
                    ..Default::default()
                },
            );
        }
    }
    let layout = drift::current::Layout {
        numeric: names.clone(),
        encoded: BTreeMap::new(),
    };
    let t1 = Instant::now();
    let (features, verdict) = drift::check::check(&settings, &layout, &reference, &window);
    let check_s = t1.elapsed().as_secs_f64();
    Ok(json!({
        "secs": t0.elapsed().as_secs_f64(),
        "read_secs": read_s,
        "check_secs": check_s,
        "rows": window.rows,
        "features_drifted": verdict.features_drifted,
        "features": features.len(),
        "test": format!("{:?}", features.first().map(|f| f.test)),
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}
