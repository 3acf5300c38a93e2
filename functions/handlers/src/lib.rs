//! Every stage's handler in one table, built from the routing table.
//!
//! This is the one place that knows every stage crate. The Lambda adapter (`mlpipe-lambda`),
//! the local stack and the queue worker (`mlpipe run`, `mlpipe worker`) all dispatch through
//! [`Table`]: an event goes to the stages whose routing-table rows it matches, each through
//! the one stage runner. A new stage implements `stage::Handler`, adds its routing row and
//! one arm in [`runner`]; the exhaustive match makes a missing arm a compile error.
//!
//! [`Settings`] are what the stages take from their surroundings (the online store, the
//! MLflow server, the edge target, where prediction logs are), read from the environment in
//! one place.

use std::collections::BTreeMap;
use std::sync::Arc;

use events::{Event, Route, Stage, routes_in, routing_table};
use stage::{Attempt, Runner, env};
use storage::Store;

/// What a setting in the environment got wrong.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("MLPIPE_ONLINE_STORE: {0}")]
    Online(#[from] features::OnlineError),
    #[cfg(feature = "train")]
    #[error("MLFLOW_TRACKING_URI: {0}")]
    Train(#[from] train::TrainError),
    #[error("edge target (MLPIPE_EDGE_*): {0}")]
    Edge(#[from] publish_stage::PublishError),
    #[error("{name}: {error}")]
    Store {
        name: &'static str,
        error: storage::StorageError,
    },
}

/// What the stages take from their surroundings.
#[derive(Debug, Default)]
pub struct Settings {
    /// Where the feature stage writes online records besides `online.bin`, and batch
    /// inference reads them (`MLPIPE_ONLINE_STORE`, e.g. `dynamodb://table?region=eu-west-1`).
    pub features: feature_stage::Config,
    /// MLflow and the actor named in alias moves (`MLFLOW_TRACKING_URI`).
    #[cfg(feature = "train")]
    pub train: train::job::JobConfig,
    /// Where the publish stage publishes (`MLPIPE_EDGE_*`); `None`: events are acknowledged
    /// as skipped.
    pub edge: Option<publish_stage::EdgeTarget>,
    /// Where prediction logs are when not in the pipeline store (`MLPIPE_LOGS_STORE`, e.g.
    /// the Worker's R2 bucket through its S3 API).
    pub logs: Option<Store>,
}

impl Settings {
    /// Every stage's settings from the environment.
    pub async fn from_env() -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        for stage in Stage::ALL {
            settings.read(stage).await?;
        }
        Ok(settings)
    }

    /// Only `stage`'s settings, so a function opens no client it never uses.
    pub async fn for_stage(stage: Stage) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        settings.read(stage).await?;
        Ok(settings)
    }

    async fn read(&mut self, stage: Stage) -> Result<(), SettingsError> {
        match stage {
            Stage::Ingest => {}
            // Batch inference reads entities from the online store the feature stage writes.
            Stage::Features | Stage::BatchPredict => {
                if self.features.online.is_some() {
                    return Ok(());
                }
                if let Some(url) = env::var("MLPIPE_ONLINE_STORE") {
                    self.features.online = Some(Arc::new(online::Backend::open(&url).await?));
                }
            }
            #[cfg(feature = "train")]
            Stage::Train => self.train = train::job::JobConfig::from_env()?,
            #[cfg(not(feature = "train"))]
            Stage::Train => {}
            Stage::Publish => self.edge = publish_stage::EdgeTarget::from_env()?,
            Stage::Drift => {
                if let Some(url) = env::var("MLPIPE_LOGS_STORE") {
                    self.logs = Some(Store::open(&url).map_err(|error| SettingsError::Store {
                        name: "MLPIPE_LOGS_STORE",
                        error,
                    })?);
                }
            }
        }
        Ok(())
    }
}

/// `stage`'s handler with its settings. The one match over every stage.
pub fn runner(stage: Stage, settings: &Settings) -> Box<dyn Runner> {
    match stage {
        Stage::Ingest => Box::new(ingest::Ingest),
        Stage::Features => Box::new(feature_stage::Features {
            config: settings.features.clone(),
        }),
        Stage::Train => train_runner(settings),
        Stage::Publish => Box::new(publish_stage::Publish {
            target: settings.edge.clone(),
        }),
        Stage::Drift => Box::new(drift::Drift {
            logs: settings.logs.clone(),
        }),
        Stage::BatchPredict => Box::new(batch_predict::BatchPredict {
            online: settings.features.online.clone(),
        }),
    }
}

#[cfg(feature = "train")]
fn train_runner(settings: &Settings) -> Box<dyn Runner> {
    Box::new(train::job::Train {
        job: settings.train.clone(),
    })
}

/// Without the `train` feature (the Lambda binary), training is a batch job only.
#[cfg(not(feature = "train"))]
fn train_runner(_: &Settings) -> Box<dyn Runner> {
    Box::new(BatchOnly(Stage::Train))
}

/// A stage this build runs only as a batch job: every attempt is refused, not retried.
#[cfg(not(feature = "train"))]
struct BatchOnly(Stage);

#[cfg(not(feature = "train"))]
impl Runner for BatchOnly {
    fn stage(&self) -> Stage {
        self.0
    }

    fn attempt<'a>(&'a self, _: &'a Store, _: &'a Event) -> stage::BoxFuture<'a, Attempt> {
        let message = format!("{} runs as a batch job, not in this binary", self.0);
        Box::pin(async move {
            // A routing mistake of the deployment, not bad input: kept to redrive.
            Attempt {
                ok: false,
                retryable: false,
                fault: true,
                result: serde_json::Value::String(message),
            }
        })
    }
}

/// Every stage of a routing table with its handler.
pub struct Table {
    routes: Vec<Route>,
    runners: BTreeMap<Stage, Box<dyn Runner>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("stages", &self.runners.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Table {
    /// The table of the pipeline's routing table.
    pub fn new(settings: &Settings) -> Table {
        Table::of(routing_table(), settings)
    }

    /// The table of the given routes (tests, or a deployment that runs some stages only).
    pub fn of(routes: Vec<Route>, settings: &Settings) -> Table {
        let mut runners = BTreeMap::new();
        for route in &routes {
            runners
                .entry(route.stage)
                .or_insert_with(|| runner(route.stage, settings));
        }
        Table { routes, runners }
    }

    /// `stage`'s handler, if the table routes to it.
    pub fn runner(&self, stage: Stage) -> Option<&dyn Runner> {
        self.runners.get(&stage).map(|r| r.as_ref())
    }

    /// The stages `event` starts, in table order (a stage listed once even when several of
    /// its rows match).
    pub fn stages_for(&self, event: &Event) -> Vec<Stage> {
        let mut out: Vec<Stage> = Vec::new();
        for route in routes_in(&self.routes, event) {
            if !out.contains(&route.stage) {
                out.push(route.stage);
            }
        }
        out
    }

    /// One attempt of `stage` on `event`; `None` when the table has no such stage.
    pub async fn attempt(&self, stage: Stage, store: &Store, event: &Event) -> Option<Attempt> {
        Some(self.runner(stage)?.attempt(store, event).await)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn object(key: &str) -> Event {
        Event::Object(events::ObjectCreated {
            bucket: "b".into(),
            key: key.into(),
            size: 3,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: Default::default(),
        })
    }

    #[test]
    fn every_routed_stage_has_its_own_handler() {
        let table = Table::new(&Settings::default());
        for route in routing_table() {
            let runner = table.runner(route.stage).unwrap();
            assert_eq!(runner.stage(), route.stage);
        }
        assert_eq!(
            table.stages_for(&object("features/v/v=1/_manifest.json")),
            vec![Stage::Train, Stage::Publish]
        );
        assert!(table.stages_for(&object("curated/tx/a")).is_empty());
    }

    #[tokio::test]
    async fn a_delivery_runs_the_stage_and_reports_rejections_as_not_retryable() {
        let table = Table::new(&Settings::default());
        let store = Store::memory();
        // No contract for the dataset: a rejection, acknowledged.
        store.put("raw/tx/a.csv", "id\n1\n").await.unwrap();
        let attempt = table
            .attempt(Stage::Ingest, &store, &object("raw/tx/a.csv"))
            .await
            .unwrap();
        assert!(!attempt.ok && !attempt.retryable, "{attempt:?}");
        assert!(
            attempt.result.as_str().unwrap().contains("no contract"),
            "{attempt:?}"
        );
        // The run record is written by the runner.
        let runs = store.list("pipeline-runs/ingest/tx/").await.unwrap();
        assert_eq!(runs.len(), 1);
        // Publishing with no edge target is skipped, not failed.
        let attempt = table
            .attempt(
                Stage::Publish,
                &store,
                &object("models/m/aliases/champion.json"),
            )
            .await
            .unwrap();
        assert!(attempt.ok, "{attempt:?}");
        assert_eq!(attempt.result["outcome"], "skipped");
        let _ = serde_json::to_string(&attempt.result).unwrap();
    }
}
