//! The local stack: every stage in one process on one store, joined by the same events a
//! deployment delivers.
//!
//! Every write through [`LocalStack::store`] is observed; for each created object the stack
//! builds the S3 event-notification JSON S3 itself would send, parses it back through the same
//! envelope parser the Lambda adapter uses, and hands it to every stage whose routing-table row
//! matches, through the same table of handlers (`handlers::Table`) and the same stage runner.
//! It repeats until no event is pending ("quiet"). Retryable failures are retried a few times
//! with backoff, as a platform would redeliver; a delivery still failing after that leaves a
//! dead-letter record (`dead-letters/<stage>/`), as a platform's dead-letter queue would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::{Event, ObjectCreated, Stage, parse_events, s3_notification};
use handlers::{Settings, Table};
use records::pipeline::DeadLetter;
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

/// What [`LocalStack::redrive`] did with one dead-letter record.
#[derive(Debug, Clone, Serialize)]
pub struct Redriven {
    /// The record's key.
    pub record: String,
    pub stage: Option<Stage>,
    pub trigger_key: String,
    /// The re-delivery (`None`: not attempted, see `note`).
    pub delivery: Option<Delivery>,
    pub note: Option<String>,
}

/// Runs stages in-process on a store.
pub struct LocalStack {
    store: Store,
    settings: Settings,
    table: Table,
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
        self.settings.train = train;
        self.table = Table::new(&self.settings);
        self
    }

    /// The same stack with the publish stage writing to `edge` (`None`: it acknowledges
    /// its events as skipped).
    pub fn with_edge(mut self, edge: Option<publish_stage::EdgeTarget>) -> LocalStack {
        self.settings.edge = edge;
        self.table = Table::new(&self.settings);
        self
    }

    /// A stack whose stages take `settings` (the queue worker's, read from the environment).
    pub fn with_settings(mut self, settings: Settings) -> LocalStack {
        self.table = Table::new(&settings);
        self.settings = settings;
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
        let settings = Settings {
            features,
            ..Settings::default()
        };
        LocalStack {
            bucket: store.bucket_name(),
            store: observed,
            table: Table::new(&settings),
            settings,
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
            let event = self.object_event(&info);
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
        let events = match parse_events(envelope) {
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
            for stage in self.table.stages_for(&event) {
                out.push(self.invoke(stage, &event).await);
            }
        }
        out
    }

    async fn invoke(&self, stage: Stage, event: &Event) -> Delivery {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = match self.table.attempt(stage, &self.store, event).await {
                Some(a) => a,
                None => stage::Attempt {
                    ok: false,
                    retryable: false,
                    fault: true,
                    result: Value::String(format!("no handler for stage {stage}")),
                },
            };
            if attempt.ok || !attempt.retryable || attempts >= self.max_attempts {
                // Retries spent, or a fault no retry fixes (a refused key, denied access):
                // kept to redrive. A refusal of bad input is only reported.
                if !attempt.ok && (attempt.retryable || attempt.fault) {
                    stage::dead_letter(&self.store, stage, event, attempts, &attempt.result).await;
                }
                return Delivery {
                    stage,
                    key: event.trigger(),
                    attempts,
                    ok: attempt.ok,
                    retryable: attempt.retryable,
                    result: attempt.result,
                };
            }
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempts))).await;
        }
    }

    /// Re-delivers the events of the dead-letter records (`dead-letters/<stage>/`, of one
    /// stage or all) to the stage each failed in, with the usual retries, then the events
    /// their work raises until quiet. Each record is archived under
    /// `dead-letters/_redriven/<stage>/` with the outcome and removed; a delivery that fails
    /// again for good leaves a new record, as the first did.
    pub async fn redrive(
        &self,
        stage: Option<Stage>,
    ) -> Result<Vec<Redriven>, storage::StorageError> {
        let prefix = match stage {
            Some(s) => format!("{}{}/", records::keys::DEAD_LETTERS, s.name()),
            None => records::keys::DEAD_LETTERS.to_string(),
        };
        let mut infos: Vec<ObjectInfo> = self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter(|i| !i.key.starts_with(records::keys::REDRIVEN) && i.key.ends_with(".json"))
            .collect();
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out = Vec::new();
        for info in infos {
            let Some(object) = self.store.get_opt(&info.key).await? else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<DeadLetter>(&object.bytes) else {
                out.push(Redriven {
                    record: info.key.clone(),
                    stage: None,
                    trigger_key: String::new(),
                    delivery: None,
                    note: Some("not a dead-letter record: left in place".into()),
                });
                continue;
            };
            let event = match self.event_for(&record.trigger_key).await? {
                Some(e) => e,
                None => {
                    out.push(Redriven {
                        record: info.key.clone(),
                        stage: Some(record.stage),
                        trigger_key: record.trigger_key.clone(),
                        delivery: None,
                        note: Some(format!(
                            "{} no longer exists: left in place",
                            record.trigger_key
                        )),
                    });
                    continue;
                }
            };
            let delivery = self.invoke(record.stage, &event).await;
            let archived = records::keys::redriven(&info.key);
            let body = serde_json::to_vec_pretty(&serde_json::json!({
                "dead_letter": record,
                "redriven_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "delivery": delivery,
            }))
            .unwrap_or_default();
            // Archive first: a crash between the two leaves both, never neither.
            self.store.put(&archived, body).await?;
            self.store.delete(&info.key).await?;
            out.push(Redriven {
                record: info.key,
                stage: Some(record.stage),
                trigger_key: record.trigger_key,
                delivery: Some(delivery),
                note: None,
            });
        }
        Ok(out)
    }

    /// The event a trigger key stands for: an object's (as it is now), or a schedule's.
    async fn event_for(&self, trigger: &str) -> Result<Option<Event>, storage::StorageError> {
        if let Some(at) = trigger.strip_prefix("schedule@") {
            return Ok(chrono::DateTime::parse_from_rfc3339(at)
                .ok()
                .map(|at| Event::Schedule {
                    at: at.with_timezone(&chrono::Utc),
                }));
        }
        let Some(info) = self.store.head(trigger).await? else {
            return Ok(None);
        };
        Ok(Some(Event::Object(self.object_event(&info))))
    }

    /// The object-created event S3 would raise for `info`.
    fn object_event(&self, info: &ObjectInfo) -> ObjectCreated {
        ObjectCreated {
            bucket: self.bucket.clone(),
            key: info.key.clone(),
            size: info.size,
            etag: info.etag.clone(),
            version_id: info.version.clone(),
            sequencer: None,
            event_time: chrono::DateTime::from_timestamp_millis(info.last_modified_ms)
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use storage::Faults;

    use super::*;

    /// A fault no retry fixes (the store denies ingest's first write) is tried once, not
    /// retried, and kept in a dead-letter record, which a redrive delivers once the cause is
    /// gone; a transient failure is retried and passes with no record.
    #[tokio::test]
    async fn a_permanent_fault_is_dead_lettered_after_one_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = Vec::new();
        crate::sample::generate(
            &crate::sample::SampleOptions {
                rows: 200,
                bad_rows: 0,
                ..Default::default()
            },
            &mut csv,
        )
        .unwrap();
        let file = dir.path().join("day.csv");
        std::fs::write(&file, csv).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fraud");
        let mut project = contracts::LoadedProject::load(&root).unwrap();
        project.project.training.clear();
        project.training_files.clear();
        project.feature_files.clear();

        for (plan, retried) in [
            (Faults::none().deny(storage::Op::Put, 2), false),
            (Faults::none().fail(storage::Op::Put, 2), true),
        ] {
            let healthy = Store::memory();
            crate::pipeline::push_project(&healthy, &project)
                .await
                .unwrap();
            let faults = Arc::new(plan);
            let stack = LocalStack::new(&healthy.with_faults(faults.clone()));
            crate::pipeline::upload(&stack, "transactions", &file)
                .await
                .unwrap();
            let deliveries = stack.run_until_quiet(|_| {}).await;
            let ingest = deliveries
                .iter()
                .find(|d| d.stage == Stage::Ingest)
                .unwrap();
            let letters = healthy.list("dead-letters/ingest/").await.unwrap();
            if retried {
                assert!(ingest.ok && ingest.attempts == 2, "{ingest:?}");
                assert!(letters.is_empty(), "{letters:?}");
                continue;
            }
            assert!(
                !ingest.ok && !ingest.retryable && ingest.attempts == 1,
                "{ingest:?}"
            );
            assert_eq!(faults.injected(), 1);
            assert_eq!(letters.len(), 1, "{letters:?}");
            let redriven = stack.redrive(Some(Stage::Ingest)).await.unwrap();
            let delivery = redriven[0].delivery.as_ref().unwrap();
            assert!(delivery.ok, "{redriven:?}");
            assert_eq!(delivery.result["outcome"], "committed");
            assert!(
                healthy
                    .list("dead-letters/ingest/")
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
