//! The batch stage: a file uploaded under `batch-input/<model>/` scored by the model's
//! champion with the same code as `mlpipe predict`, into `batch-output/<model>/<input>/`
//! (`predictions.parquet`, `errors.jsonl` when a row was refused, and `_manifest.json`
//! last, create-if-absent: the commit marker, so an input delivered twice is scored once).
//!
//! Inputs under `batch-input/<model>/point-in-time/` are scored point-in-time from the
//! curated data; others as `/v1` scores them (raw records against the online state) or as
//! ready feature vectors. The input is streamed to a temporary file and the predictions
//! streamed back up in parts, so memory holds one chunk of rows whichever target runs it
//! (the routing table sends small inputs to a function and large ones to a batch job).

use std::sync::Arc;

use events::Event;
use records::keys::{self, BATCH_ERRORS, BATCH_MANIFEST, BATCH_PREDICTIONS};
use records::pipeline::{BATCH_MANIFEST_FORMAT, BatchManifest};
use serde::Serialize;
use stage::{Handler, Output, Stage, StageError, Summary};
use storage::{Created, Store};

use crate::{BatchError, DEFAULT_CHUNK_ROWS, Entities, Job, ModelRef, Selector, errors_path};

/// The folder under an input's model that selects point-in-time scoring.
pub const POINT_IN_TIME: &str = "point-in-time/";

/// The batch stage, with the online store raw records are scored against (`None`: the
/// newest feature version's `online.bin`).
#[derive(Clone, Default)]
pub struct BatchPredict {
    pub online: Option<Arc<online::Backend>>,
}

/// What one delivery did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StageOutcome {
    Committed {
        manifest_key: String,
        #[serde(flatten)]
        manifest: Box<BatchManifest>,
    },
    /// The input's manifest was already there: scored by an earlier delivery.
    AlreadyDone { manifest_key: String },
}

impl Output for StageOutcome {
    fn summary(&self) -> Summary {
        match self {
            StageOutcome::Committed { manifest, .. } => Summary {
                version: Some(manifest.version.to_string()),
                rows_in: Some(manifest.rows),
                rows_out: Some(manifest.scored),
                rows_rejected: Some(manifest.errors),
                ..stage::summary_of(true, None)
            },
            StageOutcome::AlreadyDone { .. } => stage::summary_of(false, None),
        }
    }
}

impl StageError for BatchError {
    fn is_retryable(&self) -> bool {
        BatchError::is_retryable(self)
    }

    fn is_fault(&self) -> bool {
        match self {
            BatchError::Store(e) => e.is_fault(),
            other => other.is_retryable(),
        }
    }
}

impl Handler for BatchPredict {
    const STAGE: Stage = Stage::BatchPredict;
    type Output = StageOutcome;
    type Error = BatchError;

    fn subject(&self, event: &Event) -> String {
        match event {
            Event::Object(o) => keys::batch_input_parts(&o.key)
                .map(|(model, _)| model.to_string())
                .unwrap_or_else(|| "_unknown".into()),
            Event::Schedule { .. } => "_schedule".into(),
        }
    }

    async fn handle(&self, store: &Store, event: &Event) -> Result<StageOutcome, BatchError> {
        let Event::Object(object) = event else {
            return Err(BatchError::Usage(
                "batch inference starts from an object under batch-input/, not a schedule".into(),
            ));
        };
        let key = object.key.as_str();
        let (Some((model_name, input)), Some(folder)) =
            (keys::batch_input_parts(key), keys::batch_output(key))
        else {
            return Err(BatchError::Usage(format!(
                "{key}: batch inputs go under {}<model>/<file>",
                keys::BATCH_INPUT
            )));
        };
        let manifest_key = format!("{folder}{BATCH_MANIFEST}");
        if store.head(&manifest_key).await?.is_some() {
            return Ok(StageOutcome::AlreadyDone { manifest_key });
        }
        let point_in_time = input.starts_with(POINT_IN_TIME);
        let model = Arc::new(
            crate::load_model(
                store,
                &ModelRef {
                    name: model_name.to_string(),
                    selector: Selector::Alias("champion".into()),
                },
            )
            .await?,
        );
        let local_io = |message: String| BatchError::Output {
            path: "a temporary folder".into(),
            message,
        };
        let dir = tempfile::tempdir().map_err(|e| local_io(e.to_string()))?;
        // The file keeps its name: its extension says its format.
        let file_name = input.rsplit('/').next().unwrap_or(input);
        let local = dir.path().join(file_name);
        let info = store.download(key, &local).await?;
        let entities =
            Entities::open(store, &model, &local, point_in_time, self.online.clone()).await?;
        let output = dir.path().join(BATCH_PREDICTIONS);
        // Records without an event time are scored as of the upload, so a redelivery
        // computes what the first delivery did.
        let uploaded_us = object.event_time.timestamp_micros();
        let job = Job {
            input: local,
            name: Some(key.to_string()),
            output: output.clone(),
            point_in_time,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            now_us: if uploaded_us > 0 {
                uploaded_us
            } else {
                chrono::Utc::now().timestamp_micros()
            },
        };
        tracing::info!(
            input = key,
            model = model.name(),
            version = model.version(),
            entities = %entities.describe(),
            bytes = info.size,
            "scoring"
        );
        let summary = crate::run(model, store, &entities, &job, |rows, bytes| {
            tracing::debug!(rows, bytes, "chunk scored");
        })
        .await?;
        let predictions = format!("{folder}{BATCH_PREDICTIONS}");
        store.upload(&predictions, &output).await?;
        let errors_file = match summary.errors_file {
            Some(_) => {
                let k = format!("{folder}{BATCH_ERRORS}");
                store.upload(&k, &errors_path(&output)).await?;
                Some(k)
            }
            None => None,
        };
        let manifest = BatchManifest {
            format: BATCH_MANIFEST_FORMAT,
            input: key.to_string(),
            input_size: info.size,
            input_etag: info.etag,
            model: summary.model,
            version: summary.version,
            mode: serde_json::to_value(summary.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            rows: summary.rows,
            scored: summary.scored,
            errors: summary.errors,
            predictions,
            errors_file,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| BatchError::Output {
            path: manifest_key.clone(),
            message: e.to_string(),
        })?;
        Ok(match store.put_if_absent(&manifest_key, body).await? {
            Created::Created(_) => StageOutcome::Committed {
                manifest_key,
                manifest: Box::new(manifest),
            },
            // A concurrent delivery committed first; its outputs are the ones described.
            Created::AlreadyExists => StageOutcome::AlreadyDone { manifest_key },
        })
    }
}
