//! Batch inference: every row of a file scored by one registered model, the way `/v1` and
//! `/v2` score one request.
//!
//! A row is either a ready feature vector (the input has every model input as a column) or
//! a raw record (the fields the model's feature view reads). Raw records are scored one of
//! two ways, never mixed:
//! - **online** (default): against the entity's current online record, as `/v1` does. A
//!   record older than the entity's last materialized event is refused (its row goes to the
//!   errors file): the online state already holds later events, which would leak into its
//!   features. Score such records with point-in-time instead.
//! - **point-in-time**: from the curated data of the view's dataset with the training join
//!   (`feature_stage::build_table`, the records as label events, the model's vocabularies),
//!   so each record sees only events strictly before its own time.
//!
//! Input is read and scored in chunks (CSV and JSON Lines line by line, Parquet by row
//! slices) and predictions are written as they come, so memory holds one chunk, not the
//! file. Rows that fail validation are written to the errors file with the file, row (1 =
//! the first data row), column and rule, and the other rows are scored.

mod entities;
mod input;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use feature_stage::polars::prelude::*;
use features::{FeatureSet, LabelSource, OnlineStore, ViewSpec};
use inference::Model;
use serde::Serialize;
use serde_json::Value;
use storage::Store;

pub use entities::Entities;
pub use input::{Format, Row};
pub use stage::{BatchPredict, POINT_IN_TIME, StageOutcome};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}")]
    Usage(String),
    #[error("model {model}: {message}")]
    Model { model: String, message: String },
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("writing {path}: {message}")]
    Output { path: String, message: String },
    #[error("store: {0}")]
    Store(#[from] storage::StorageError),
    #[error("features: {0}")]
    Features(String),
    #[error("the online store failed: {0}")]
    Online(#[from] features::OnlineError),
}

impl BatchError {
    /// Whether retrying the same work may succeed (the store or the online store failed).
    pub fn is_retryable(&self) -> bool {
        match self {
            BatchError::Store(e) => e.is_retryable(),
            BatchError::Online(_) => true,
            _ => false,
        }
    }
}

/// Which version of a model: `NAME` (the champion), `NAME@VERSION` or `NAME:ALIAS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub selector: Selector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Alias(String),
    Version(u64),
}

impl std::str::FromStr for ModelRef {
    type Err = BatchError;

    fn from_str(s: &str) -> Result<ModelRef, BatchError> {
        let bad = || {
            BatchError::Usage(format!(
                "'{s}' is not a model reference: NAME, NAME@VERSION or NAME:ALIAS"
            ))
        };
        let (name, selector) = if let Some((name, v)) = s.split_once('@') {
            (name, Selector::Version(v.parse().map_err(|_| bad())?))
        } else if let Some((name, alias)) = s.split_once(':') {
            if alias.is_empty() {
                return Err(bad());
            }
            (name, Selector::Alias(alias.to_string()))
        } else {
            (s, Selector::Alias("champion".into()))
        };
        if name.is_empty() || name.contains(['/', '@', ':']) {
            return Err(bad());
        }
        Ok(ModelRef {
            name: name.to_string(),
            selector,
        })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.selector {
            Selector::Alias(a) => write!(f, "{}:{a}", self.name),
            Selector::Version(v) => write!(f, "{}@{v}", self.name),
        }
    }
}

/// Loads the model a reference names from the registry (bundle, ONNX and feature spec,
/// checked against the bundle's hashes, as serving loads them).
pub async fn load_model(store: &Store, r: &ModelRef) -> Result<Model, BatchError> {
    let fail = |message: String| BatchError::Model {
        model: r.to_string(),
        message,
    };
    let version = match &r.selector {
        Selector::Version(v) => *v,
        Selector::Alias(a) => {
            registry::alias(store, &r.name, a)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail(format!("no alias '{a}' (is the model trained?)")))?
                .version
        }
    };
    let bundle = registry::bundle(store, &r.name, version)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(format!("no version {version}")))?;
    let bundle_json = serde_json::to_vec(&bundle).map_err(|e| fail(e.to_string()))?;
    let onnx = store.get(&bundle.model_key).await?.bytes;
    // An imported model has no feature spec (its key is empty).
    let spec = if bundle.feature_spec.key.is_empty() {
        None
    } else {
        store
            .get_opt(&bundle.feature_spec.key)
            .await?
            .map(|o| o.bytes)
    };
    Model::load(&bundle_json, &onnx, spec.as_deref()).map_err(|e| fail(e.to_string()))
}

/// How raw records get their features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every model input is a column of the input.
    FeatureVectors,
    /// Raw records against the entity's current online record.
    Online,
    /// Raw records point-in-time from the curated data.
    PointInTime,
}

/// One batch: what to score and where to write.
#[derive(Debug, Clone)]
pub struct Job {
    pub input: PathBuf,
    /// What the summary and the errors file call the input (the store key when the batch
    /// stage scores a downloaded copy); `None`: the input's path.
    pub name: Option<String>,
    pub output: PathBuf,
    /// Score raw records point-in-time from the curated data instead of the online state.
    pub point_in_time: bool,
    /// Rows per chunk.
    pub chunk_rows: usize,
    /// The scoring time for online records without an event time (microseconds).
    pub now_us: i64,
}

/// Rows scored at once by default: large enough that the model runs batched, small enough
/// that a chunk of wide records stays a few MiB.
pub const DEFAULT_CHUNK_ROWS: usize = 4096;

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub model: String,
    pub version: u64,
    pub mode: Mode,
    pub input: String,
    pub output: String,
    pub rows: u64,
    pub scored: u64,
    pub errors: u64,
    /// The errors file, when a row was refused.
    pub errors_file: Option<String>,
    pub chunks: u64,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub file: String,
    /// 1 = the first data row.
    pub row: u64,
    pub column: String,
    pub rule: String,
}

/// The errors file beside an output: `scores.parquet` -> `scores_errors.jsonl`.
pub fn errors_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "predictions".into());
    output.with_file_name(format!("{stem}_errors.jsonl"))
}

/// Scores `job.input` with `model` and writes `job.output` (Parquet). `online` serves the
/// entities' records (online mode); `store` the curated data (point-in-time). `progress`
/// gets (rows done, bytes of input read) after each chunk.
pub async fn run<S: OnlineStore>(
    model: Arc<Model>,
    store: &Store,
    online: &S,
    job: &Job,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary, BatchError> {
    let file = job
        .name
        .clone()
        .unwrap_or_else(|| job.input.display().to_string());
    let mut reader =
        input::Reader::open(&job.input, job.chunk_rows.max(1)).map_err(|e| match e {
            BatchError::Input { message, .. } => BatchError::Input {
                path: file.clone(),
                message,
            },
            e => e,
        })?;
    let columns = reader.columns().to_vec();
    if model.is_imported() {
        return Err(BatchError::Usage(format!(
            "model {} was imported from another tool (named graph inputs): batch inference takes models mlpipe trained; score it through /v2/models/{}/infer",
            model.name(),
            model.name()
        )));
    }
    let inputs: Vec<String> = model.input_names().map(str::to_string).collect();
    let spec = model.spec.clone();
    let vectors = inputs.iter().all(|i| columns.contains(i));
    let mode = match (vectors, job.point_in_time, &spec) {
        (true, false, _) => Mode::FeatureVectors,
        (true, true, _) => {
            return Err(BatchError::Usage(format!(
                "{file} holds ready feature vectors: --point-in-time applies to raw records"
            )));
        }
        (false, _, None) => {
            return Err(BatchError::Usage(format!(
                "{file} lacks model inputs ({}) and model {} has no feature view to compute them from raw records",
                missing(&inputs, &columns),
                model.name()
            )));
        }
        (false, false, Some(_)) => Mode::Online,
        (false, true, Some(_)) => Mode::PointInTime,
    };
    // Point-in-time: each view's curated history, loaded once (as training loads it).
    let history = match (mode, &spec) {
        (Mode::PointInTime, Some(spec)) => {
            let mut h = Vec::with_capacity(spec.views.len());
            for view in &spec.views {
                h.push(history(store, view).await?);
            }
            Some(h)
        }
        _ => None,
    };
    let keys = key_columns(spec.as_ref(), &columns);
    let mut writer = output::Writer::create(&job.output, &model, &keys)?;
    let errors_file = errors_path(&job.output);
    let mut errors = output::Errors::new(&errors_file);
    let mut summary = Summary {
        model: model.name().to_string(),
        version: model.version(),
        mode,
        input: file.clone(),
        output: job.output.display().to_string(),
        rows: 0,
        scored: 0,
        errors: 0,
        errors_file: None,
        chunks: 0,
    };
    while let Some(chunk) = reader.next_chunk()? {
        summary.chunks += 1;
        summary.rows += chunk.len() as u64;
        let mut refused = Vec::new();
        let (chunk, unreadable): (Vec<Row>, Vec<Row>) =
            chunk.into_iter().partition(|r| r.problem.is_none());
        for row in &unreadable {
            refused.push(row.error(&file, "", row.problem.as_deref().unwrap_or("unreadable")));
        }
        let (rows, x) = match (mode, &spec) {
            (Mode::FeatureVectors, _) => vectors_of(&chunk, &inputs, &file, &mut refused),
            (Mode::Online, Some(spec)) => {
                online_vectors(spec, online, &chunk, job.now_us, &file, &mut refused).await?
            }
            (Mode::PointInTime, Some(spec)) => match &history {
                Some(h) => pit_vectors(spec, h, &chunk, &file, &mut refused)?,
                None => (Vec::new(), Vec::new()),
            },
            _ => (Vec::new(), Vec::new()),
        };
        let predictions = model
            .predict(x, rows.len())
            .map_err(|e| BatchError::Model {
                model: model.name().to_string(),
                message: e.to_string(),
            })?;
        summary.scored += rows.len() as u64;
        summary.errors += refused.len() as u64;
        writer.write(&rows, &predictions)?;
        errors.write(&refused)?;
        progress(summary.rows, reader.bytes_read());
    }
    writer.finish()?;
    if errors.finish()? {
        summary.errors_file = Some(errors_file.display().to_string());
    }
    Ok(summary)
}

fn missing(wanted: &[String], have: &[String]) -> String {
    let m: Vec<&str> = wanted
        .iter()
        .filter(|w| !have.contains(w))
        .map(String::as_str)
        .collect();
    if m.len() > 8 {
        format!("{}, ... ({} in all)", m[..8].join(", "), m.len())
    } else {
        m.join(", ")
    }
}

/// The input's key columns the output repeats: the view's entity columns and event time
/// when the input has them, and an `id` column if there is one.
fn key_columns(spec: Option<&FeatureSet>, columns: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    if let Some(spec) = spec {
        for v in &spec.views {
            keys.extend(v.view.entity.iter().cloned());
        }
        keys.extend(spec.first().view.event_time.iter().cloned());
    }
    keys.push("id".into());
    let mut out = Vec::new();
    for k in keys {
        if columns.contains(&k) && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Ready feature vectors: numbers (or null for missing) in every model input.
fn vectors_of(
    chunk: &[Row],
    inputs: &[String],
    file: &str,
    refused: &mut Vec<RowError>,
) -> (Vec<Row>, Vec<f32>) {
    let mut rows = Vec::with_capacity(chunk.len());
    let mut x = Vec::with_capacity(chunk.len() * inputs.len());
    'rows: for row in chunk {
        let start = x.len();
        for name in inputs {
            let v = match row.fields.get(name) {
                None | Some(Value::Null) => f32::NAN,
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(v) if v.is_finite() => v as f32,
                    _ => {
                        x.truncate(start);
                        refused.push(row.error(file, name, "is not a finite number"));
                        continue 'rows;
                    }
                },
                Some(Value::Bool(b)) => f32::from(u8::from(*b)),
                Some(other) => {
                    x.truncate(start);
                    refused.push(row.error(
                        file,
                        name,
                        &format!("must be a number (model input), got {other}"),
                    ));
                    continue 'rows;
                }
            };
            x.push(v);
        }
        rows.push(row.clone());
    }
    (rows, x)
}

/// Raw records against the online state, as `/v1` computes them (each view's entity record);
/// a record older than an entity's last materialized event is refused.
async fn online_vectors<S: OnlineStore>(
    spec: &FeatureSet,
    online: &S,
    chunk: &[Row],
    now_us: i64,
    file: &str,
    refused: &mut Vec<RowError>,
) -> Result<(Vec<Row>, Vec<f32>), BatchError> {
    let mut rows = Vec::with_capacity(chunk.len());
    let mut x = Vec::new();
    for row in chunk {
        let field = |e: features::EvalError| match e {
            features::EvalError::Field { field, message } => Ok(row.error(file, &field, &message)),
            features::EvalError::Online(o) => Err(BatchError::Online(o)),
        };
        let at = match spec.event_time_us(&row.fields) {
            Ok(at) => at.unwrap_or(now_us),
            Err(e) => {
                refused.push(field(e)?);
                continue;
            }
        };
        let found = match spec.lookup(online, &row.fields).await {
            Ok(found) => found,
            Err(e) => {
                refused.push(field(e)?);
                continue;
            }
        };
        let latest = found
            .iter()
            .filter_map(|(_, r)| r.as_ref()?.state.last_event_us)
            .max();
        if let Some(last) = latest
            && at < last
        {
            let column = spec.first().view.event_time.clone().unwrap_or_default();
            refused.push(row.error(
                file,
                &column,
                &format!(
                    "is before the entity's last materialized event ({}): the online state holds later events; score historical records with --point-in-time",
                    format_time_us(last)
                ),
            ));
            continue;
        }
        match spec.evaluate(&row.fields, &found, at) {
            Ok(a) => {
                x.extend(a.model_input());
                rows.push(row.clone());
            }
            Err(e) => refused.push(field(e)?),
        }
    }
    Ok((rows, x))
}

fn format_time_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(
        || us.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

/// The curated events of the view's dataset (its latest snapshot), for point-in-time.
async fn history(store: &Store, spec: &ViewSpec) -> Result<DataFrame, BatchError> {
    let snapshot = feature_stage::latest_snapshot(store, &spec.view.dataset)
        .await
        .map_err(|e| BatchError::Features(e.to_string()))?
        .ok_or_else(|| {
            BatchError::Features(format!(
                "dataset '{}' has no curated data for point-in-time features",
                spec.view.dataset
            ))
        })?;
    feature_stage::load_snapshot(store, &snapshot, &feature_stage::event_columns(&spec.view))
        .await
        .map_err(|e| BatchError::Features(e.to_string()))
}

/// The label column point-in-time queries carry (the join needs one; it is not read).
const QUERY_LABEL: &str = "__mlpipe_query";
/// The column of the queries' times.
const QUERY_TIME: &str = "__mlpipe_time";

/// Raw records point-in-time: the records become the label events of the training join,
/// each view evaluated from its own dataset's history (`histories`, in view order).
fn pit_vectors(
    spec: &FeatureSet,
    histories: &[DataFrame],
    chunk: &[Row],
    file: &str,
    refused: &mut Vec<RowError>,
) -> Result<(Vec<Row>, Vec<f32>), BatchError> {
    let first = spec.first();
    let Some(time) = first.view.event_time.clone() else {
        return Err(BatchError::Usage(format!(
            "view '{}' has no event time: point-in-time needs one",
            first.view.name
        )));
    };
    // Validate first, as online scoring would: every view's entity key and the event time.
    let mut rows: Vec<Row> = Vec::with_capacity(chunk.len());
    let mut times = Vec::with_capacity(chunk.len());
    for row in chunk {
        let checked = spec
            .views
            .iter()
            .filter(|v| !v.view.entity.is_empty())
            .try_for_each(|v| v.entity_key(&row.fields).map(|_| ()))
            .and_then(|_| spec.event_time_us(&row.fields));
        match checked {
            Ok(Some(t)) => {
                rows.push(row.clone());
                times.push(t);
            }
            Ok(None) => refused.push(row.error(
                file,
                &time,
                "is missing: point-in-time scoring needs each record's event time",
            )),
            Err(features::EvalError::Field { field, message }) => {
                refused.push(row.error(file, &field, &message))
            }
            Err(features::EvalError::Online(o)) => return Err(BatchError::Online(o)),
        }
    }
    if rows.is_empty() {
        return Ok((rows, Vec::new()));
    }
    // Each record's time as the label view reads it (its own event time, or a labels
    // dataset's time column), in one column every view joins on.
    let mut queries = input::frame(&rows, &[QUERY_LABEL])
        .map_err(|e| BatchError::Features(format!("the records as a table: {e}")))?;
    let times_error = |e: PolarsError| BatchError::Features(format!("the records' times: {e}"));
    let at = Column::new(QUERY_TIME.into(), times.clone())
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .map_err(times_error)?;
    queries.with_column(at).map_err(times_error)?;
    // The tables are in time order (stable, as here): put them back in input order.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| times[i]);
    let width = spec.output_columns().len();
    let mut sorted = vec![0f32; rows.len() * width];
    let mut offset = 0;
    for (view_spec, history) in spec.views.iter().zip(histories) {
        let view = as_of_queries(&view_spec.view, QUERY_TIME);
        let table = feature_stage::build_table(
            &view,
            history,
            Some(&queries),
            Some(&view_spec.vocabularies),
        )
        .map_err(|e| BatchError::Features(format!("view '{}': {e}", view.name)))?;
        for name in view_spec.output_columns() {
            let c = table
                .table
                .column(&name)
                .and_then(|c| c.cast(&DataType::Float64))
                .map_err(|e| BatchError::Features(format!("feature '{name}': {e}")))?;
            let values = c
                .f64()
                .map_err(|e| BatchError::Features(format!("feature '{name}': {e}")))?;
            for (k, v) in values.iter().enumerate() {
                sorted[k * width + offset] = v.map_or(f32::NAN, |v| v as f32);
            }
            offset += 1;
        }
    }
    let mut x = vec![0f32; rows.len() * width];
    for (k, &i) in order.iter().enumerate() {
        x[i * width..(i + 1) * width].copy_from_slice(&sorted[k * width..(k + 1) * width]);
    }
    Ok((rows, x))
}

/// `view` with the records as its label events, at their time column `time`.
fn as_of_queries(view: &features::FeatureView, time: &str) -> features::FeatureView {
    let mut view = view.clone();
    view.label = Some(LabelSource::Dataset {
        dataset: "records".into(),
        entity: view.entity.clone(),
        time: time.to_string(),
        column: QUERY_LABEL.into(),
    });
    view
}

mod output {
    use super::*;
    use std::io::Write as _;

    type ParquetBatches = feature_stage::polars::io::parquet::write::BatchedWriter<std::fs::File>;

    /// The predictions file, written chunk by chunk.
    pub struct Writer {
        path: PathBuf,
        inner: Option<ParquetBatches>,
        keys: Vec<String>,
        classes: Vec<String>,
        regression: bool,
        model: String,
        version: u64,
    }

    fn io(path: &Path, e: impl std::fmt::Display) -> BatchError {
        BatchError::Output {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    impl Writer {
        pub fn create(path: &Path, model: &Model, keys: &[String]) -> Result<Writer, BatchError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io(path, e))?;
            }
            Ok(Writer {
                path: path.to_path_buf(),
                inner: None,
                keys: keys.to_vec(),
                classes: model.bundle.classes.clone(),
                regression: model.task == inference::Task::Regression,
                model: model.name().to_string(),
                version: model.version(),
            })
        }

        fn frame(
            &self,
            rows: &[Row],
            predictions: &[inference::Prediction],
        ) -> PolarsResult<DataFrame> {
            let n = rows.len();
            let mut columns: Vec<Column> = vec![Column::new(
                "row".into(),
                rows.iter().map(|r| r.number).collect::<Vec<u64>>(),
            )];
            for key in &self.keys {
                let text: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| match r.fields.get(key) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => Some(other.to_string()),
                    })
                    .collect();
                columns.push(Column::new(key.as_str().into(), text));
            }
            if self.regression {
                columns.push(Column::new(
                    "prediction".into(),
                    predictions.iter().map(|p| p.score).collect::<Vec<f32>>(),
                ));
            } else {
                columns.push(Column::new(
                    "prediction".into(),
                    predictions
                        .iter()
                        .map(|p| p.label.clone().unwrap_or_default())
                        .collect::<Vec<String>>(),
                ));
                for (c, class) in self.classes.iter().enumerate() {
                    columns.push(Column::new(
                        format!("probability_{class}").as_str().into(),
                        predictions
                            .iter()
                            .map(|p| p.probabilities.get(c).copied().unwrap_or(f32::NAN))
                            .collect::<Vec<f32>>(),
                    ));
                }
            }
            columns.push(Column::new("model".into(), vec![self.model.as_str(); n]));
            columns.push(Column::new("version".into(), vec![self.version; n]));
            DataFrame::new(n, columns)
        }

        pub fn write(
            &mut self,
            rows: &[Row],
            predictions: &[inference::Prediction],
        ) -> Result<(), BatchError> {
            let df = self
                .frame(rows, predictions)
                .map_err(|e| io(&self.path, e))?;
            if self.inner.is_none() {
                let file = std::fs::File::create(&self.path).map_err(|e| io(&self.path, e))?;
                let writer = ParquetWriter::new(file)
                    .batched(df.schema())
                    .map_err(|e| io(&self.path, e))?;
                self.inner = Some(writer);
            }
            if let Some(w) = self.inner.as_mut()
                && df.height() > 0
            {
                w.write_batch(&df).map_err(|e| io(&self.path, e))?;
            }
            Ok(())
        }

        pub fn finish(mut self) -> Result<(), BatchError> {
            if self.inner.is_none() {
                // No chunk at all (an empty input): still a valid, empty file.
                self.write(&[], &[])?;
            }
            if let Some(w) = self.inner.take() {
                w.finish().map_err(|e| io(&self.path, e))?;
            }
            Ok(())
        }
    }

    /// The errors file, created at the first refused row.
    pub struct Errors {
        path: PathBuf,
        file: Option<std::io::BufWriter<std::fs::File>>,
    }

    impl Errors {
        pub fn new(path: &Path) -> Errors {
            // A stale errors file from an earlier run would be read as this run's.
            let _ = std::fs::remove_file(path);
            Errors {
                path: path.to_path_buf(),
                file: None,
            }
        }

        pub fn write(&mut self, errors: &[RowError]) -> Result<(), BatchError> {
            for e in errors {
                if self.file.is_none() {
                    let f = std::fs::File::create(&self.path).map_err(|e| io(&self.path, e))?;
                    self.file = Some(std::io::BufWriter::new(f));
                }
                if let Some(f) = self.file.as_mut() {
                    let line = serde_json::to_string(e).map_err(|e| io(&self.path, e))?;
                    writeln!(f, "{line}").map_err(|e| io(&self.path, e))?;
                }
            }
            Ok(())
        }

        /// Whether any row was refused.
        pub fn finish(self) -> Result<bool, BatchError> {
            match self.file {
                Some(mut f) => {
                    f.flush().map_err(|e| io(&self.path, e))?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_references_parse_and_refuse_nonsense() {
        let r: ModelRef = "fraud".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.selector, Selector::Alias("champion".into()));
        let r: ModelRef = "fraud@3".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.selector, Selector::Version(3));
        let r: ModelRef = "fraud:challenger".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), "fraud:challenger");
        for bad in ["", "@3", "fraud@x", "fraud:", "a/b"] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_errors_file_sits_beside_the_output() {
        assert_eq!(
            errors_path(Path::new("/tmp/out/scores.parquet")),
            Path::new("/tmp/out/scores_errors.jsonl")
        );
    }
}
