//! The routing table: the single source of which stage runs on which event, and what each
//! stage may read and write. The local stack dispatches with it; Terraform's EventBridge
//! rules and least-privilege IAM policies are generated from it (`mlpipe routes --json`).

use serde::Serialize;

/// A pipeline stage. Stages never call each other; they meet at objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Raw upload -> validated, versioned Parquet, quarantine, dataset snapshot.
    Ingest,
    /// Dataset snapshot -> offline feature table, online store, reference profile.
    Features,
    /// Feature-view manifest or retrain request -> search, evaluation, ONNX model,
    /// registered version, alias moves, run records.
    Train,
    /// Champion alias move or feature-view manifest -> the champion's bundle or the
    /// version's online records where the edge reads them, and a publication record.
    Publish,
    /// Schedule -> prediction-log windows against the champion's reference profile,
    /// reports, retrain requests when drift holds.
    Drift,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Features => "features",
            Stage::Train => "train",
            Stage::Publish => "publish",
            Stage::Drift => "drift",
        }
    }
}

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
    /// An object created under `prefix` whose key ends with `suffix` (empty: any).
    Object { prefix: String, suffix: String },
    /// An EventBridge schedule expression (`rate(1 hour)`, `cron(...)`).
    Schedule { expression: String },
}

impl Trigger {
    pub fn matches_key(&self, key: &str) -> bool {
        match self {
            Trigger::Object { prefix, suffix } => {
                key.starts_with(prefix.as_str()) && key.ends_with(suffix.as_str())
            }
            Trigger::Schedule { .. } => false,
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
    }
}

/// The whole table. Later stages add their rows here and nowhere else.
pub fn routing_table() -> Vec<Route> {
    vec![
        Route {
            stage: Stage::Ingest,
            target: Target::Function,
            triggers: vec![object("raw/", "")],
            reads: vec!["raw/", "definitions/", "curated/", "quarantine/"],
            writes: vec!["curated/", "quarantine/", "snapshots/", "pipeline-runs/"],
        },
        Route {
            stage: Stage::Features,
            target: Target::Function,
            triggers: vec![object("snapshots/", ".json")],
            reads: vec!["snapshots/", "definitions/", "curated/", "features/"],
            writes: vec!["features/", "pipeline-runs/"],
        },
        Route {
            stage: Stage::Train,
            target: Target::BatchJob,
            triggers: vec![
                object("features/", "/_manifest.json"),
                object("requests/retrain/", ".json"),
            ],
            reads: vec!["features/", "definitions/", "models/", "requests/", "runs/"],
            writes: vec!["models/", "runs/", "pipeline-runs/"],
        },
        Route {
            stage: Stage::Publish,
            target: Target::Function,
            // Train listens on feature manifests too: EventBridge delivers to both.
            triggers: vec![
                object("models/", "/aliases/champion.json"),
                object("features/", "/_manifest.json"),
            ],
            reads: vec!["models/", "features/", "published/"],
            writes: vec!["published/", "pipeline-runs/"],
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
                Trigger::Object {
                    prefix: "labels/".into(),
                    suffix: String::new(),
                },
            ],
            reads: vec![
                "models/",
                "features/",
                "definitions/",
                "inference-logs/",
                "labels/",
                "drift/",
                "requests/retrain/",
            ],
            writes: vec!["drift/", "requests/retrain/", "pipeline-runs/"],
        },
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
        assert!(routes_for("models/fraud/3/bundle.json").is_empty());
        assert_eq!(
            routes_for("requests/retrain/r1.json")[0].stage,
            Stage::Train
        );
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
