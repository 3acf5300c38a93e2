//! The routing table: the single source of which stage runs on which event, and what each
//! stage may read and write. The handler table (`handlers::Table`) dispatches with it in the
//! Lambda adapter, the local stack and the queue worker; the hand-written Terraform (its
//! EventBridge rules and least-privilege IAM policies) is checked against it by
//! `tests/tests/deploy.rs`, and `mlpipe routes --json` prints it.

use records::keys::{
    API_KEYS, BATCH_INPUT, BATCH_OUTPUT, DEFINITIONS, DRIFT, FEATURES, INFERENCE_LOGS, LABELS,
    MODELS, PIPELINE_RUNS, PUBLISHED, RAW, REQUESTS, RETRAIN_REQUESTS, RUNS, SNAPSHOTS,
};
use records::keys::{CURATED, QUARANTINE};
use serde::Serialize;

use crate::Event;

pub use records::Stage;

/// Where a stage runs in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A Lambda function (in-process in the local stack).
    Function,
    /// A container job on a batch queue (in-process in the local stack).
    BatchJob,
}

/// What starts a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// An object created under `prefix` whose key ends with `suffix` (empty: any), and whose
    /// size is within `min_size..max_size` bytes when those are set (EventBridge matches
    /// `detail.object.size` numerically): one stage can then run as a function for small
    /// objects and as a batch job for large ones, with one row for each.
    Object {
        prefix: String,
        suffix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_size: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_size: Option<u64>,
    },
    /// An EventBridge schedule expression (`rate(1 hour)`, `cron(...)`).
    Schedule { expression: String },
}

impl Trigger {
    /// Whether an object with this key (of any size) may start the stage. As the deployed
    /// EventBridge rule reads it: `prefix` alone, or the wildcard `<prefix>*<suffix>`, in
    /// which prefix and suffix cannot overlap (`models/traffic.json` is not
    /// `models/*/traffic.json`); `tests/tests/terraform_apply.rs` holds the two together.
    pub fn matches_key(&self, key: &str) -> bool {
        match self {
            Trigger::Object { prefix, suffix, .. } => {
                key.len() >= prefix.len() + suffix.len()
                    && key.starts_with(prefix.as_str())
                    && key.ends_with(suffix.as_str())
            }
            Trigger::Schedule { .. } => false,
        }
    }

    /// Whether `event` starts the stage: an object by key and size, a schedule by any
    /// schedule trigger.
    pub fn matches(&self, event: &Event) -> bool {
        match (self, event) {
            (
                Trigger::Object {
                    min_size, max_size, ..
                },
                Event::Object(o),
            ) => {
                self.matches_key(&o.key)
                    && min_size.is_none_or(|min| o.size >= min)
                    && max_size.is_none_or(|max| o.size < max)
            }
            (Trigger::Schedule { .. }, Event::Schedule { .. }) => true,
            _ => false,
        }
    }
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub stage: Stage,
    pub target: Target,
    pub triggers: Vec<Trigger>,
    /// Key prefixes the stage reads.
    pub reads: Vec<&'static str>,
    /// Key prefixes the stage writes.
    pub writes: Vec<&'static str>,
}

fn object(prefix: &str, suffix: &str) -> Trigger {
    Trigger::Object {
        prefix: prefix.into(),
        suffix: suffix.into(),
        min_size: None,
        max_size: None,
    }
}

/// Batch-inference inputs below this size run in a function (a Lambda: its memory, `/tmp`
/// and 15 minutes hold them); larger ones run as a batch job. 64 MiB of CSV is about half a
/// million rows of the sample, scored in well under a minute.
pub const BATCH_FUNCTION_MAX_BYTES: u64 = 64 << 20;

fn batch_predict(target: Target) -> Route {
    let (min_size, max_size) = match target {
        Target::Function => (None, Some(BATCH_FUNCTION_MAX_BYTES)),
        Target::BatchJob => (Some(BATCH_FUNCTION_MAX_BYTES), None),
    };
    Route {
        stage: Stage::BatchPredict,
        target,
        triggers: vec![Trigger::Object {
            prefix: BATCH_INPUT.into(),
            suffix: String::new(),
            min_size,
            max_size,
        }],
        // Models for the bundle, features for the online records' snapshot and the view,
        // snapshots and curated data for point-in-time scoring.
        reads: vec![BATCH_INPUT, MODELS, FEATURES, SNAPSHOTS, CURATED],
        writes: vec![BATCH_OUTPUT, PIPELINE_RUNS],
    }
}

/// The whole table. Later stages add their rows here and nowhere else.
pub fn routing_table() -> Vec<Route> {
    vec![
        Route {
            stage: Stage::Ingest,
            target: Target::Function,
            triggers: vec![object(RAW, "")],
            reads: vec![RAW, DEFINITIONS, CURATED, QUARANTINE],
            writes: vec![CURATED, QUARANTINE, SNAPSHOTS, PIPELINE_RUNS],
        },
        Route {
            stage: Stage::Features,
            target: Target::Function,
            triggers: vec![object(SNAPSHOTS, ".json")],
            reads: vec![SNAPSHOTS, DEFINITIONS, CURATED, FEATURES],
            writes: vec![FEATURES, PIPELINE_RUNS],
        },
        Route {
            stage: Stage::Train,
            target: Target::BatchJob,
            triggers: vec![
                object(FEATURES, "/_manifest.json"),
                object(RETRAIN_REQUESTS, ".json"),
            ],
            reads: vec![FEATURES, DEFINITIONS, MODELS, REQUESTS, RUNS],
            writes: vec![MODELS, RUNS, PIPELINE_RUNS],
        },
        Route {
            stage: Stage::Publish,
            target: Target::Function,
            // Train listens on feature manifests too: EventBridge delivers to both. A
            // created or revoked API key republishes the key set the edge checks; a changed
            // traffic policy publishes the challenger it names and the policy.
            triggers: vec![
                object(MODELS, "/aliases/champion.json"),
                object(MODELS, "/traffic.json"),
                object(FEATURES, "/_manifest.json"),
                object(API_KEYS, ".json"),
            ],
            reads: vec![MODELS, FEATURES, PUBLISHED, API_KEYS],
            writes: vec![PUBLISHED, PIPELINE_RUNS],
        },
        Route {
            stage: Stage::Drift,
            target: Target::Function,
            // Prediction logs arrive one object per request: a schedule, not their events.
            // Delayed labels are few, large uploads: each re-evaluates the recent windows.
            triggers: vec![
                Trigger::Schedule {
                    expression: "rate(1 hour)".into(),
                },
                object(LABELS, ""),
            ],
            reads: vec![
                MODELS,
                FEATURES,
                DEFINITIONS,
                INFERENCE_LOGS,
                LABELS,
                DRIFT,
                RETRAIN_REQUESTS,
            ],
            writes: vec![DRIFT, RETRAIN_REQUESTS, PIPELINE_RUNS],
        },
        batch_predict(Target::Function),
        batch_predict(Target::BatchJob),
    ]
}

/// Every route one of whose object triggers matches `key` (several stages may listen on
/// one prefix).
pub fn routes_for(key: &str) -> Vec<Route> {
    routing_table()
        .into_iter()
        .filter(|r| r.triggers.iter().any(|t| t.matches_key(key)))
        .collect()
}

/// Every route `event` starts, in table order: object events by key and size, schedule
/// events every scheduled stage.
pub fn routes_for_event(event: &Event) -> Vec<Route> {
    routes_in(&routing_table(), event)
}

/// [`routes_for_event`] over a given table.
pub fn routes_in(table: &[Route], event: &Event) -> Vec<Route> {
    table
        .iter()
        .filter(|r| r.triggers.iter().any(|t| t.matches(event)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_uploads_go_to_ingest_only() {
        let stages: Vec<_> = routes_for("raw/tx/a.csv").iter().map(|r| r.stage).collect();
        assert_eq!(stages, vec![Stage::Ingest]);
        assert!(routes_for("curated/tx/v=1/_manifest.json").is_empty());
        let stages: Vec<_> = routes_for("snapshots/tx/abc.json")
            .iter()
            .map(|r| r.stage)
            .collect();
        assert_eq!(stages, vec![Stage::Features]);
        let stages: Vec<_> = routes_for("features/card/v=abc/_manifest.json")
            .iter()
            .map(|r| r.stage)
            .collect();
        assert_eq!(stages, vec![Stage::Train, Stage::Publish]);
        assert!(routes_for("features/card/v=abc/table.parquet").is_empty());
        let stages: Vec<_> = routes_for("models/fraud/aliases/champion.json")
            .iter()
            .map(|r| r.stage)
            .collect();
        assert_eq!(stages, vec![Stage::Publish]);
        assert!(routes_for("models/fraud/aliases/challenger.json").is_empty());
        assert_eq!(
            routes_for("models/fraud/traffic.json")[0].stage,
            Stage::Publish
        );
        assert!(routes_for("models/fraud/3/bundle.json").is_empty());
        assert_eq!(
            routes_for("requests/retrain/r1.json")[0].stage,
            Stage::Train
        );
        // Prefix and suffix do not overlap, as in EventBridge's `models/*/traffic.json`.
        assert!(routes_for("models/traffic.json").is_empty());
        assert!(routes_for("features/_manifest.json").is_empty());
    }

    fn object_event(key: &str, size: u64) -> Event {
        Event::Object(crate::ObjectCreated {
            bucket: "b".into(),
            key: key.into(),
            size,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: chrono::DateTime::default(),
        })
    }

    #[test]
    fn a_stage_can_run_as_a_function_below_a_size_and_as_a_batch_job_above() {
        // Batch inference: two rows, one target each, split at one size.
        let table = routing_table();
        let targets = |size| -> Vec<(Stage, Target)> {
            routes_in(&table, &object_event("batch-input/m/a.parquet", size))
                .iter()
                .map(|r| (r.stage, r.target))
                .collect()
        };
        let max = BATCH_FUNCTION_MAX_BYTES;
        assert_eq!(targets(10), vec![(Stage::BatchPredict, Target::Function)]);
        assert_eq!(
            targets(max - 1),
            vec![(Stage::BatchPredict, Target::Function)]
        );
        assert_eq!(targets(max), vec![(Stage::BatchPredict, Target::BatchJob)]);
        assert!(routes_in(&table, &object_event("raw/m/a.csv", 10)).len() == 1);
        // The size bounds appear in `mlpipe routes --json` only when set.
        let function = table
            .iter()
            .find(|r| r.stage == Stage::BatchPredict && r.target == Target::Function)
            .unwrap_or_else(|| unreachable!());
        let json = serde_json::to_value(function).unwrap_or_default();
        assert_eq!(json["triggers"][0]["max_size"], max);
        assert!(json["triggers"][0].get("min_size").is_none());
    }

    #[test]
    fn schedules_start_the_scheduled_stages_only() {
        let stages: Vec<Stage> = routes_for_event(&Event::Schedule {
            at: chrono::DateTime::default(),
        })
        .iter()
        .map(|r| r.stage)
        .collect();
        assert_eq!(stages, vec![Stage::Drift]);
        let stages: Vec<Stage> = routes_for_event(&object_event("labels/fraud/a.csv", 1))
            .iter()
            .map(|r| r.stage)
            .collect();
        assert_eq!(stages, vec![Stage::Drift]);
    }

    #[test]
    fn every_prefix_a_route_names_is_a_zone_of_the_layout() {
        for route in routing_table() {
            for p in route.reads.iter().chain(&route.writes) {
                assert!(
                    records::keys::PREFIXES.iter().any(|z| p.starts_with(z)),
                    "{}: {p} is not under a zone of records::keys",
                    route.stage
                );
            }
        }
    }

    #[test]
    fn every_stage_writes_where_its_triggers_do_not_loop() {
        for route in routing_table() {
            for t in &route.triggers {
                if let Trigger::Object { prefix, .. } = t {
                    assert!(
                        !route.writes.iter().any(|w| w.starts_with(prefix.as_str())),
                        "{:?} writes under its own trigger {prefix}",
                        route.stage
                    );
                    assert!(
                        route.reads.iter().any(|r| prefix.starts_with(r)),
                        "{:?} must read what triggers it",
                        route.stage
                    );
                }
            }
        }
    }
}
