//! Feature-store operations the CLI offers: online reads and training-set exports. Thin: the
//! computation is the feature stage's (`feature_stage::build_table`) and the shared evaluator's
//! (`features::online_features`).

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use feature_stage::polars::prelude::*;
use features::{FeatureKind, FeatureVector, LabelSource, SnapshotStore, ViewSpec};
use records::pipeline::{FeatureManifest, Snapshot};
use serde::Serialize;
use serde_json::{Map, Value};
use storage::Store;

use crate::pipeline::latest_view_version;

/// One line describing what a feature computes.
pub fn describe_kind(kind: &FeatureKind) -> String {
    let secs = |us: i64| {
        let s = us / 1_000_000;
        match s {
            s if s % 86_400 == 0 => format!("{}d", s / 86_400),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        }
    };
    match kind {
        FeatureKind::Column { column } => format!("request field {column}"),
        FeatureKind::Encoded {
            column, encoding, ..
        } => format!("{encoding:?} encoding of {column}").to_lowercase(),
        FeatureKind::Aggregate {
            agg: features::Agg::Last,
            column,
            window_us,
            ..
        } if *window_us == features::UNBOUNDED_US => format!(
            "latest value of {} within the ttl",
            column.as_deref().unwrap_or("events")
        ),
        FeatureKind::Aggregate {
            agg,
            column,
            window_us,
            bucket_us,
        } => format!(
            "{agg:?}({}) over {} in {} buckets",
            column.as_deref().unwrap_or("events"),
            secs(*window_us),
            secs(*bucket_us)
        )
        .to_lowercase(),
        FeatureKind::TimeSincePrevious => "seconds since the previous event".into(),
        FeatureKind::TimePart { part } => format!("{part:?} of the event time").to_lowercase(),
        FeatureKind::Ratio { a, b } => format!("{a} / {b}"),
        FeatureKind::Difference { a, b } => format!("{a} - {b}"),
    }
}

async fn latest(store: &Store, view: &str) -> Result<(FeatureManifest, ViewSpec)> {
    let manifest = latest_view_version(store, view).await?.with_context(|| {
        format!(
            "feature view '{view}' has no computed version in {} (run the pipeline first)",
            store.url()
        )
    })?;
    let spec = feature_stage::load_spec(store, &manifest).await?;
    Ok((manifest, spec))
}

/// What `mlpipe features get` prints.
#[derive(Debug, Serialize)]
pub struct Served {
    pub view: String,
    pub version: String,
    /// Where the record came from: the online store's URL or the version's `online.bin`.
    pub source: String,
    #[serde(flatten)]
    pub vector: FeatureVector,
}

fn field_value(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(text.to_string()),
    }
}

/// Reads an entity's online record and evaluates the newest version of `view` for a request
/// made of the entity key and `fields`, at `at` (RFC 3339) or now.
pub async fn online_get(
    store: &Store,
    online_url: Option<&str>,
    view: &str,
    entity: &[(String, String)],
    fields: &[(String, String)],
    at: Option<&str>,
) -> Result<Served> {
    let (manifest, spec) = latest(store, view).await?;
    let mut request = Map::new();
    for column in &spec.view.entity {
        let value = entity
            .iter()
            .find(|(k, _)| k == column)
            .map(|(_, v)| v.clone())
            .with_context(|| format!("give the entity key with --entity {column}=VALUE"))?;
        request.insert(column.clone(), Value::String(value));
    }
    for (k, v) in fields {
        request.insert(k.clone(), field_value(v));
    }
    if let (Some(at), Some(column)) = (at, &spec.view.event_time) {
        request.insert(column.clone(), Value::String(at.to_string()));
    }
    let now = chrono::Utc::now().timestamp_micros();
    let (source, vector) = match online_url {
        Some(url) => {
            let backend = online::Backend::open(url)
                .await
                .with_context(|| format!("opening online store {}", storage::redact_url(url)))?;
            let v = features::online_features(&backend, &spec, &request, now).await?;
            (backend.describe(), v)
        }
        None => {
            let part = manifest
                .online_snapshot
                .as_ref()
                .with_context(|| format!("version {} has no online records", manifest.version))?;
            let snapshot = SnapshotStore::decode(&store.get(&part.key).await?.bytes)?;
            let v = features::online_features(&snapshot, &spec, &request, now).await?;
            (part.key.clone(), v)
        }
    };
    Ok(Served {
        view: view.to_string(),
        version: manifest.version,
        source,
        vector,
    })
}

/// What a training-set export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub version: String,
    pub rows: usize,
    pub features: usize,
}

fn read_table(path: &Path) -> Result<DataFrame> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let df = match ext.as_str() {
        "parquet" | "pq" => ParquetReader::new(Cursor::new(bytes)).finish()?,
        "csv" | "txt" | "" => CsvReadOptions::default()
            .with_has_header(true)
            .into_reader_with_file_handle(Cursor::new(bytes))
            .finish()?,
        other => bail!(
            "{}: unsupported labels format '.{other}' (use .csv or .parquet)",
            path.display()
        ),
    };
    Ok(df)
}

/// Writes a point-in-time training set for `view` to `out` (Parquet).
pub async fn training_set(
    store: &Store,
    view: &str,
    out: &Path,
    labels: Option<&Path>,
    time_column: Option<&str>,
    label_column: Option<&str>,
) -> Result<Exported> {
    let (manifest, spec) = latest(store, view).await?;
    let Some(labels) = labels else {
        let bytes = store.get(&manifest.table.key).await?.bytes;
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
        return Ok(Exported {
            version: manifest.version,
            rows: manifest.rows.rows as usize,
            features: manifest.features.len(),
        });
    };
    let mut definition = spec.view.clone();
    if definition.entity.is_empty() || definition.event_time.is_none() {
        bail!("view '{view}' has no entity and event time: a labels file has nothing to join on");
    }
    let time = time_column
        .map(str::to_string)
        .or_else(|| definition.event_time.clone())
        .unwrap_or_default();
    let column = label_column
        .map(str::to_string)
        .or_else(|| definition.label.as_ref().map(|l| l.column().to_string()))
        .context("give the label column with --label-column")?;
    let label_df = read_table(labels)?;
    for needed in definition.entity.iter().chain([&time, &column]) {
        if label_df.column(needed).is_err() {
            bail!(
                "{}: no column '{needed}' (columns: {})",
                labels.display(),
                label_df
                    .get_column_names()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    definition.label = Some(LabelSource::Dataset {
        dataset: labels.display().to_string(),
        entity: definition.entity.clone(),
        time,
        column,
    });
    let snapshot = Snapshot {
        format: 1,
        dataset: manifest.snapshot.dataset.clone(),
        hash: manifest.snapshot.hash.clone(),
        versions: manifest.snapshot.versions.clone(),
        contract_lineage: 0,
        created_at: String::new(),
    };
    let events =
        feature_stage::load_snapshot(store, &snapshot, &feature_stage::event_columns(&spec.view))
            .await?;
    let table = tokio::task::spawn_blocking(move || {
        feature_stage::build_table(
            &definition,
            &events,
            Some(&label_df),
            Some(&spec.vocabularies),
        )
    })
    .await??;
    let mut df = table.table;
    let mut file =
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    ParquetWriter::new(&mut file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    Ok(Exported {
        version: manifest.version,
        rows: df.height(),
        features: table.columns.len(),
    })
}
