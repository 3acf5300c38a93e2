//! The local stack: every stage in one process on one store, joined by the same events a
//! deployment delivers.
//!
//! Every write through [`LocalStack::store`] is observed; for each created object the stack
//! builds the S3 event-notification JSON S3 itself would send, parses it back through the same
//! envelope parser the Lambda adapters use, looks up the routing table and calls each matching
//! stage's handler. It repeats until no event is pending ("quiet"). Retryable failures are
//! retried a few times with backoff, as a platform would redeliver.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::{ObjectCreated, Stage, parse_envelope, routes_for, s3_notification};
use serde::Serialize;
use serde_json::Value;
use storage::{ObjectInfo, Store};

/// One handler invocation and its result.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub stage: Stage,
    pub key: String,
    pub attempts: u32,
    pub ok: bool,
    /// The last failure may pass on a later redelivery.
    pub retryable: bool,
    /// The handler's outcome (JSON) or its error message.
    pub result: Value,
}

/// Runs stages in-process on a store.
pub struct LocalStack {
    store: Store,
    features: feature_stage::Config,
    train: train::job::JobConfig,
    edge: Option<Arc<publish_stage::EdgeTarget>>,
    pending: Arc<Mutex<VecDeque<ObjectInfo>>>,
    bucket: String,
    max_attempts: u32,
}

impl LocalStack {
    /// Wraps `store` so that every write through [`LocalStack::store`] raises an event.
    pub fn new(store: &Store) -> LocalStack {
        LocalStack::with_config(store, feature_stage::Config::default())
    }

    /// The same stack with the training job configured as `train` says (MLflow, actor).
    pub fn with_train(mut self, train: train::job::JobConfig) -> LocalStack {
        self.train = train;
        self
    }

    /// The same stack with the publish stage writing to `edge` (`None`: it acknowledges
    /// its events as skipped).
    pub fn with_edge(mut self, edge: Option<publish_stage::EdgeTarget>) -> LocalStack {
        self.edge = edge.map(Arc::new);
        self
    }

    /// A stack whose feature stage writes online records as `features` says.
    pub fn with_config(store: &Store, features: feature_stage::Config) -> LocalStack {
        let pending: Arc<Mutex<VecDeque<ObjectInfo>>> = Arc::default();
        let sink = pending.clone();
        let observed = store.with_observer(Arc::new(move |info: &ObjectInfo| {
            if let Ok(mut q) = sink.lock() {
                q.push_back(info.clone());
            }
        }));
        LocalStack {
            bucket: store.bucket_name(),
            store: observed,
            features,
            train: train::job::JobConfig::default(),
            edge: None,
            pending,
            max_attempts: 3,
        }
    }

    /// The observed store: uploads made through it start the pipeline.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Queues an event for an object that already exists (e.g. to re-deliver one).
    pub fn enqueue(&self, info: ObjectInfo) {
        if let Ok(mut q) = self.pending.lock() {
            q.push_back(info);
        }
    }

    /// Delivers pending events, and the events their handlers raise, until none is left.
    /// `on_delivery` sees each invocation as it finishes (progress display).
    pub async fn run_until_quiet(&self, mut on_delivery: impl FnMut(&Delivery)) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        loop {
            let next = self.pending.lock().ok().and_then(|mut q| q.pop_front());
            let Some(info) = next else { break };
            let event = ObjectCreated {
                bucket: self.bucket.clone(),
                key: info.key.clone(),
                size: info.size,
                etag: info.etag.clone(),
                version_id: info.version.clone(),
                sequencer: None,
                event_time: chrono::DateTime::from_timestamp_millis(info.last_modified_ms)
                    .unwrap_or_default(),
            };
            // The same JSON S3 would deliver, through the same parser deployments use.
            let envelope = s3_notification(&event);
            for d in self.deliver(&envelope).await {
                on_delivery(&d);
                deliveries.push(d);
            }
        }
        deliveries
    }

    /// Delivers one envelope (S3 notification, SQS or EventBridge JSON) to every stage whose
    /// route matches. Does not drain follow-up events; see [`LocalStack::run_until_quiet`].
    pub async fn deliver(&self, envelope: &Value) -> Vec<Delivery> {
        let events = match parse_envelope(envelope) {
            Ok(e) => e,
            Err(e) => {
                return vec![Delivery {
                    stage: Stage::Ingest,
                    key: String::new(),
                    attempts: 0,
                    ok: false,
                    retryable: false,
                    result: Value::String(format!("unreadable event: {e}")),
                }];
            }
        };
        let mut out = Vec::new();
        for event in events {
            for route in routes_for(&event.key) {
                out.push(self.invoke(route.stage, &event).await);
            }
        }
        out
    }

    /// One attempt of `stage` on `event`: (ok, retryable, result).
    async fn attempt(&self, stage: Stage, event: &ObjectCreated) -> (bool, bool, Value) {
        match stage {
            Stage::Ingest => match ingest::handle(&self.store, event).await {
                Ok(outcome) => (
                    true,
                    false,
                    serde_json::to_value(outcome).unwrap_or(Value::Null),
                ),
                Err(e) => (false, e.is_retryable(), Value::String(e.to_string())),
            },
            Stage::Train => match train::job::handle(&self.store, &event.key, &self.train).await {
                Ok(outcome) => (
                    true,
                    false,
                    serde_json::to_value(outcome).unwrap_or(Value::Null),
                ),
                Err(e) => (false, e.is_retryable(), Value::String(e.to_string())),
            },
            Stage::Publish => {
                match publish_stage::handle(&self.store, &event.key, self.edge.as_deref()).await {
                    Ok(outcome) => (
                        true,
                        false,
                        serde_json::to_value(outcome).unwrap_or(Value::Null),
                    ),
                    Err(e) => (false, e.is_retryable(), Value::String(e.to_string())),
                }
            }
            // Scheduled, and routed on delayed-label uploads: a delivery runs a check now.
            Stage::Drift => {
                let now = chrono::Utc::now().timestamp_micros();
                match drift::check_all(&self.store, &self.store, now).await {
                    Ok(runs) => (
                        true,
                        false,
                        serde_json::to_value(runs).unwrap_or(Value::Null),
                    ),
                    Err(e) => (false, e.is_retryable(), Value::String(e.to_string())),
                }
            }
            Stage::Features => {
                match feature_stage::handle(&self.store, event, &self.features).await {
                    Ok(outcome) => (
                        true,
                        false,
                        serde_json::to_value(outcome).unwrap_or(Value::Null),
                    ),
                    Err(e) => (false, e.is_retryable(), Value::String(e.to_string())),
                }
            }
        }
    }

    async fn invoke(&self, stage: Stage, event: &ObjectCreated) -> Delivery {
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Bytes the store moves count for this stage; the span is the stage's trace.
            let span = tracing::info_span!("stage", stage = stage.name(), key = %event.key, attempt = attempts);
            let (ok, retryable, result) = telemetry::stage_scope(
                stage.name(),
                tracing::Instrument::instrument(self.attempt(stage, event), span),
            )
            .await;
            if ok || !retryable || attempts >= self.max_attempts {
                return Delivery {
                    stage,
                    key: event.key.clone(),
                    attempts,
                    ok,
                    retryable,
                    result,
                };
            }
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempts))).await;
        }
    }
}
