//! The one interface every pipeline stage implements, and the one runner every platform
//! adapter calls.
//!
//! A stage is a [`Handler`]: which [`Stage`] it is (its routing-table rows say what
//! triggers it and where it runs), its typed output and error, and `handle(store, event)`.
//! [`run`] does what every stage needs around that and nothing else: the telemetry scope and
//! span, the timing, the run record (`pipeline-runs/`, which also records the stage's
//! metrics) and the retry classification. [`Runner`] erases a handler's types so a table of
//! stages can hold them all (`handlers` builds that table from the routing table; the Lambda
//! adapter, the local stack and the queue worker dispatch through it).
//!
//! Invariant: no platform here — no Lambda, queue or HTTP types; events arrive already
//! parsed into [`Event`].

pub mod env;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

pub use events::{Event, ObjectCreated};
pub use records::Stage;
pub use records::pipeline::{RunOutcome, RunRecord};
use serde::Serialize;
use serde_json::Value;
use storage::Store;

/// A stage's error: whether the same delivery may succeed later.
pub trait StageError: std::error::Error + Send + Sync + 'static {
    /// True for failures of the surroundings (store, network, contention): the platform
    /// should redeliver. False for bad input or configuration: retrying cannot fix it, so
    /// the delivery is reported and acknowledged.
    fn is_retryable(&self) -> bool;

    /// True when the surroundings failed rather than the input: the store, the network,
    /// permissions, a key the store refuses. Retryable or not, a delivery that still fails
    /// on such a failure ends in a dead-letter record ([`dead_letter`]) to redrive once the
    /// cause is fixed, never only in a run record; a refusal of bad input is reported where
    /// its author looks (quarantine, run records) and acknowledged. Every retryable failure
    /// is a fault.
    fn is_fault(&self) -> bool {
        self.is_retryable()
    }
}

/// What a successful run reports in its run record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub outcome: RunOutcome,
    /// The version(s) written or found, when the stage versions what it writes.
    pub version: Option<String>,
    pub message: Option<String>,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
    pub rows_rejected: Option<u64>,
}

/// A stage's typed output: serialisable (it is what adapters return) and summarised in the
/// run record.
pub trait Output: Serialize + Send {
    fn summary(&self) -> Summary;
}

/// One pipeline stage.
pub trait Handler: Send + Sync {
    /// Which stage this is. Its rows in `events::routing_table()` say what triggers it,
    /// where it runs and what it may read and write.
    const STAGE: Stage;
    type Output: Output;
    type Error: StageError;

    /// What the run record is filed under for `event`: the dataset, view or model it
    /// concerns (`_...` when the event names none).
    fn subject(&self, event: &Event) -> String;

    /// Does the stage's work for one event. Must be idempotent: platforms deliver at least
    /// once, so the same event may arrive twice and must do the work once.
    fn handle(
        &self,
        store: &Store,
        event: &Event,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// Runs `handler` once on `event`: in the stage's telemetry scope and span, timed, with its
/// run record written (bookkeeping: a failure to write it is logged, never returned).
pub async fn run<H: Handler>(
    handler: &H,
    store: &Store,
    event: &Event,
) -> Result<H::Output, H::Error> {
    let stage = H::STAGE;
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let trigger = event.trigger();
    let span = tracing::info_span!("stage", stage = stage.name(), trigger = %trigger);
    let result = telemetry::stage_scope(
        stage.name(),
        tracing::Instrument::instrument(handler.handle(store, event), span),
    )
    .await;
    let summary = match &result {
        Ok(output) => output.summary(),
        Err(e) => Summary {
            outcome: if e.is_retryable() {
                RunOutcome::Failed
            } else {
                RunOutcome::Rejected
            },
            message: Some(e.to_string()),
            ..Summary::default()
        },
    };
    store
        .record_run(&RunRecord {
            stage,
            dataset: handler.subject(event),
            trigger_key: trigger,
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome: summary.outcome,
            version: summary.version,
            message: summary.message,
            rows_in: summary.rows_in,
            rows_out: summary.rows_out,
            rows_rejected: summary.rows_rejected,
            peak_memory_bytes: None,
        })
        .await;
    result
}

/// One attempt of a stage on one event, with the types erased.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub ok: bool,
    /// The failure may pass on a redelivery.
    pub retryable: bool,
    /// The surroundings failed (see [`StageError::is_fault`]): a delivery that ends on this
    /// attempt is dead-lettered, retryable or not.
    pub fault: bool,
    /// The stage's output (JSON), or its error message.
    pub result: Value,
}

/// A boxed future, for the object-safe [`Runner`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`Handler`] with its types erased, so one table holds every stage.
pub trait Runner: Send + Sync {
    fn stage(&self) -> Stage;
    /// [`run`], with the output as JSON and the error as its message.
    fn attempt<'a>(&'a self, store: &'a Store, event: &'a Event) -> BoxFuture<'a, Attempt>;
}

impl<H: Handler> Runner for H {
    fn stage(&self) -> Stage {
        H::STAGE
    }

    fn attempt<'a>(&'a self, store: &'a Store, event: &'a Event) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            match run(self, store, event).await {
                Ok(output) => Attempt {
                    ok: true,
                    retryable: false,
                    fault: false,
                    result: serde_json::to_value(&output).unwrap_or(Value::Null),
                },
                Err(e) => {
                    if e.is_retryable() {
                        tracing::warn!(stage = H::STAGE.name(), error = %e, "retryable failure");
                    } else {
                        tracing::error!(stage = H::STAGE.name(), error = %e, "rejected");
                    }
                    Attempt {
                        ok: false,
                        retryable: e.is_retryable(),
                        fault: e.is_fault() || e.is_retryable(),
                        result: Value::String(e.to_string()),
                    }
                }
            }
        })
    }
}

/// Keeps a delivery that ended on a fault: `dead-letters/<stage>/<time>-<hash of the
/// trigger>.json`, the typed record `mlpipe redrive` re-delivers once the cause is fixed.
/// Bookkeeping: a failure to write it is logged and the key is `None`.
pub async fn dead_letter(
    store: &Store,
    stage: Stage,
    event: &Event,
    attempts: u32,
    error: &Value,
) -> Option<String> {
    use sha2::Digest as _;
    let failed_at = chrono::Utc::now();
    let record = records::pipeline::DeadLetter {
        stage,
        trigger_key: event.trigger(),
        attempts,
        error: error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_string),
        failed_at: failed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let hash = hex::encode(sha2::Sha256::digest(record.trigger_key.as_bytes()));
    let id = format!("{}-{}", failed_at.format("%Y%m%dT%H%M%S%.3fZ"), &hash[..16]);
    let key = records::keys::dead_letter(stage.name(), &id);
    let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
    match store.put(&key, body).await {
        Ok(_) => {
            tracing::error!(stage = stage.name(), key, error = %record.error, "dead-lettered");
            Some(key)
        }
        Err(e) => {
            tracing::warn!(error = %e, key, "could not write the dead-letter record");
            None
        }
    }
}

/// A summary of a run whose outputs each either wrote something or found it done.
pub fn summary_of(committed: bool, version: Option<String>) -> Summary {
    Summary {
        outcome: if committed {
            RunOutcome::Committed
        } else {
            RunOutcome::AlreadyDone
        },
        version,
        ..Summary::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom ({retryable})")]
    struct Boom {
        retryable: bool,
    }

    impl StageError for Boom {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
    }

    #[derive(Serialize)]
    struct Done {
        rows: u64,
    }

    impl Output for Done {
        fn summary(&self) -> Summary {
            Summary {
                rows_out: Some(self.rows),
                ..summary_of(true, Some("v1".into()))
            }
        }
    }

    /// Fails with the error named by the key's file name, or writes one row.
    struct Probe;

    impl Handler for Probe {
        const STAGE: Stage = Stage::Ingest;
        type Output = Done;
        type Error = Boom;

        fn subject(&self, _: &Event) -> String {
            "tx".into()
        }

        async fn handle(&self, _: &Store, event: &Event) -> Result<Done, Boom> {
            match event.key() {
                Some(k) if k.ends_with("retry") => Err(Boom { retryable: true }),
                Some(k) if k.ends_with("bad") => Err(Boom { retryable: false }),
                _ => Ok(Done { rows: 7 }),
            }
        }
    }

    fn object(key: &str) -> Event {
        Event::Object(ObjectCreated {
            bucket: "b".into(),
            key: key.into(),
            size: 1,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: chrono::DateTime::default(),
        })
    }

    async fn records(store: &Store) -> Vec<RunRecord> {
        let mut out = Vec::new();
        for info in store.list("pipeline-runs/ingest/tx/").await.unwrap() {
            let bytes = store.get(&info.key).await.unwrap().bytes;
            out.push(serde_json::from_slice(&bytes).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn every_attempt_is_classified_and_recorded_once() {
        let store = Store::memory();
        let runner: &dyn Runner = &Probe;
        assert_eq!(runner.stage(), Stage::Ingest);
        let ok = runner.attempt(&store, &object("raw/tx/a")).await;
        assert!(ok.ok && !ok.retryable, "{ok:?}");
        assert_eq!(ok.result["rows"], 7);
        let retry = runner.attempt(&store, &object("raw/tx/retry")).await;
        assert!(!retry.ok && retry.retryable, "{retry:?}");
        let bad = runner.attempt(&store, &object("raw/tx/bad")).await;
        assert!(!bad.ok && !bad.retryable, "{bad:?}");
        assert_eq!(bad.result, Value::String("boom (false)".into()));

        let mut seen: Vec<(String, RunOutcome, Option<u64>)> = records(&store)
            .await
            .into_iter()
            .map(|r| {
                assert_eq!(r.stage, Stage::Ingest);
                (r.trigger_key, r.outcome, r.rows_out)
            })
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                ("raw/tx/a".into(), RunOutcome::Committed, Some(7)),
                ("raw/tx/bad".into(), RunOutcome::Rejected, None),
                ("raw/tx/retry".into(), RunOutcome::Failed, None),
            ]
        );
    }
}
