//! The training job around the pure pipeline: which configuration trains on which feature
//! version, loading the table, comparing with the champion, registering, promoting,
//! tracking (store and MLflow). The binary and the local stack both call [`handle`].
//!
//! Idempotent: a run is named by the hash of (training configuration, feature version, code
//! version); a finished run is not repeated, and registration is idempotent by content hash.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use events::Event;
use polars::prelude::*;
use records::keys as zones;
use records::pipeline::FeatureManifest;
use serde::{Deserialize, Serialize};
use storage::Store;

use crate::TrainError;
use crate::config::TrainingConfig;
use crate::data::{Dataset, Split};
use crate::evaluate::{self, Outputs};
use crate::export;
use crate::inputs::{self, Resolved, TrainingSet};
use crate::mlflow::{self, MlflowRun};
use crate::model::{family_name, task_name};
use crate::pipeline::{self, Candidate};
use crate::tracking::{self, ChampionComparison, Registration, TrainingRun};

pub const CODE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use records::keys::{RETRAIN_REQUESTS, TRAINING_DEFINITIONS};
pub use records::monitoring::RetrainRequest;
pub const SPLIT_COLUMN: &str = "__split";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

use contracts::sha256_hex;

/// `definitions/training/<model>/_current.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPointer {
    pub model: String,
    pub view: String,
    pub hash: String,
    pub key: String,
}

fn current_key(model: &str) -> String {
    zones::training_current(model)
}

/// Checks and publishes a training file: the TOML as written, by hash, then the model's
/// current pointer. Returns the parsed configuration and its hash.
pub async fn publish_config(
    store: &Store,
    text: &str,
    file: &str,
) -> Result<(TrainingConfig, String), TrainError> {
    let cfg = TrainingConfig::from_toml(text, file)?;
    let hash = sha256_hex(text.as_bytes());
    let key = zones::training_definition(&cfg.model, &hash);
    store.put_if_absent(&key, text.as_bytes().to_vec()).await?;
    let pointer = ConfigPointer {
        model: cfg.model.clone(),
        view: cfg.view.clone(),
        hash: hash.clone(),
        key,
    };
    let current = current_key(&cfg.model);
    let same = match store.get_opt(&current).await? {
        Some(o) => serde_json::from_slice::<ConfigPointer>(&o.bytes).ok() == Some(pointer.clone()),
        None => false,
    };
    if !same {
        let bytes = serde_json::to_vec_pretty(&pointer).map_err(|e| TrainError::Record {
            key: current.clone(),
            message: e.to_string(),
        })?;
        store.put(&current, bytes).await?;
    }
    Ok((cfg, hash))
}

/// Every model's current training configuration.
pub async fn current_configs(store: &Store) -> Result<Vec<(TrainingConfig, String)>, TrainError> {
    let mut out = Vec::new();
    for info in store.list(TRAINING_DEFINITIONS).await? {
        if !info.key.ends_with("/_current.json") {
            continue;
        }
        let obj = store.get(&info.key).await?;
        let p: ConfigPointer =
            serde_json::from_slice(&obj.bytes).map_err(|e| TrainError::Record {
                key: info.key.clone(),
                message: e.to_string(),
            })?;
        let text = store.get(&p.key).await?;
        let text = String::from_utf8_lossy(&text.bytes).to_string();
        out.push((TrainingConfig::from_toml(&text, &p.key)?, p.hash));
    }
    Ok(out)
}

/// The view and version of a `features/<view>/v=<version>/_manifest.json` key.
pub fn manifest_of_key(key: &str) -> Option<(&str, &str)> {
    zones::feature_manifest_parts(key)
}

async fn read_manifest(store: &Store, key: &str) -> Result<FeatureManifest, TrainError> {
    let obj = store.get(key).await?;
    serde_json::from_slice(&obj.bytes).map_err(|e| TrainError::Record {
        key: key.into(),
        message: e.to_string(),
    })
}

/// Every published version of `view`, oldest first.
pub async fn feature_versions(
    store: &Store,
    view: &str,
) -> Result<Vec<FeatureManifest>, TrainError> {
    let mut out = Vec::new();
    for info in store.list(&zones::features_prefix(view)).await? {
        if manifest_of_key(&info.key).is_some() {
            out.push(read_manifest(store, &info.key).await?);
        }
    }
    out.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.version.cmp(&b.version))
    });
    Ok(out)
}

/// What one training run did, for the CLI and the pipeline report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum TrainOutcome {
    Trained {
        model: String,
        run: String,
        version: u64,
        family: String,
        metric: String,
        value: Option<f64>,
        test_metrics: BTreeMap<String, f64>,
        promoted: bool,
        reason: String,
    },
    AlreadyDone {
        model: String,
        run: String,
        version: Option<u64>,
    },
    Skipped {
        model: String,
        reason: String,
    },
}

/// Options from the environment.
#[derive(Debug, Clone, Default)]
pub struct JobConfig {
    /// Log to this MLflow server too (`MLFLOW_TRACKING_URI`).
    pub mlflow: Option<mlflow::Client>,
    /// Who moves aliases, for the history (`train:<run>` by default).
    pub actor: Option<String>,
}

impl JobConfig {
    pub fn from_env() -> Result<JobConfig, TrainError> {
        Ok(JobConfig {
            mlflow: mlflow::Client::from_env().transpose()?,
            actor: None,
        })
    }
}

/// The training stage: a feature-view manifest or a retrain request -> search, evaluation,
/// a registered ONNX model, alias moves and run records. A batch job in deployments
/// (`train-job`); in-process in the local stack.
#[derive(Debug, Clone, Default)]
pub struct Train {
    pub job: JobConfig,
}

/// Every model a training event concerned, and what happened to each.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TrainRun(pub Vec<TrainOutcome>);

impl stage::Output for TrainRun {
    fn summary(&self) -> stage::Summary {
        let trained: Vec<String> = self
            .0
            .iter()
            .filter_map(|t| match t {
                TrainOutcome::Trained { model, version, .. } => Some(format!("{model}/{version}")),
                _ => None,
            })
            .collect();
        if trained.is_empty() {
            stage::summary_of(false, None)
        } else {
            stage::summary_of(true, Some(trained.join(",")))
        }
    }
}

impl stage::Handler for Train {
    const STAGE: stage::Stage = stage::Stage::Train;
    type Output = TrainRun;
    type Error = TrainError;

    fn subject(&self, event: &Event) -> String {
        event
            .key()
            .and_then(manifest_of_key)
            .map_or("_requests", |(view, _)| view)
            .to_string()
    }

    async fn handle(&self, store: &Store, event: &Event) -> Result<TrainRun, TrainError> {
        handle_inner(store, &event.trigger(), &self.job)
            .await
            .map(TrainRun)
    }
}

/// Handles one object-created event (a feature manifest or a retrain request) through the
/// stage runner (run record, telemetry), as every adapter does.
pub async fn handle(
    store: &Store,
    key: &str,
    job: &JobConfig,
) -> Result<Vec<TrainOutcome>, TrainError> {
    let stage = Train { job: job.clone() };
    stage::run(&stage, store, &Event::for_key(key))
        .await
        .map(|run| run.0)
}

async fn handle_inner(
    store: &Store,
    key: &str,
    job: &JobConfig,
) -> Result<Vec<TrainOutcome>, TrainError> {
    if let Some((view, _)) = manifest_of_key(key) {
        let manifest = read_manifest(store, key).await?;
        let mut out = Vec::new();
        for (cfg, hash) in current_configs(store).await? {
            if !cfg.views().any(|v| v == view) {
                continue;
            }
            if !cfg.train_on_new_features {
                out.push(TrainOutcome::Skipped {
                    model: cfg.model.clone(),
                    reason: "train_on_new_features = false".into(),
                });
                continue;
            }
            // One view: this version. Several: the current version of each, once every
            // view is computed from its newest data (one run per combination).
            let set = if cfg.join.is_empty() {
                TrainingSet::single(manifest.clone())
            } else {
                match inputs::current_set(store, &cfg).await? {
                    Resolved::Ready(set) => *set,
                    Resolved::Waiting(reason) => {
                        out.push(TrainOutcome::Skipped {
                            model: cfg.model.clone(),
                            reason,
                        });
                        continue;
                    }
                }
            };
            out.push(train_version(store, &cfg, &hash, &set, key, job).await?);
        }
        return Ok(out);
    }
    if key.starts_with(RETRAIN_REQUESTS) && key.ends_with(".json") {
        let obj = store.get(key).await?;
        let req: RetrainRequest =
            serde_json::from_slice(&obj.bytes).map_err(|e| TrainError::Record {
                key: key.into(),
                message: format!("not a retrain request: {e}"),
            })?;
        return Ok(vec![retrain(store, &req, key, job).await?]);
    }
    Err(TrainError::Config(format!(
        "{key} is neither a feature manifest nor a retrain request"
    )))
}

/// Trains `req.model` on the feature version of its (label) view built from `req.snapshot`
/// (or the newest), with the newest version of any view joined onto it.
pub async fn retrain(
    store: &Store,
    req: &RetrainRequest,
    trigger: &str,
    job: &JobConfig,
) -> Result<TrainOutcome, TrainError> {
    let (cfg, hash) = current_configs(store)
        .await?
        .into_iter()
        .find(|(c, _)| c.model == req.model)
        .ok_or_else(|| {
            TrainError::Config(format!(
                "model '{}' has no published training file",
                req.model
            ))
        })?;
    let versions = feature_versions(store, &cfg.view).await?;
    let manifest = match &req.snapshot {
        Some(s) => versions
            .into_iter()
            .rev()
            .find(|m| m.snapshot.hash == *s || m.snapshot.hash.starts_with(s.as_str()))
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "view '{}' has no version built from snapshot {s}",
                    cfg.view
                ))
            })?,
        None => versions.into_iter().last().ok_or_else(|| {
            TrainError::Config(format!("view '{}' has no feature version yet", cfg.view))
        })?,
    };
    let set = TrainingSet {
        label: manifest,
        joined: inputs::joined_versions(store, &cfg).await?,
    };
    train_version(store, &cfg, &hash, &set, trigger, job).await
}

/// The run id of training `config_hash` on `feature_version` with this code.
pub fn run_id(model: &str, config_hash: &str, feature_version: &str) -> String {
    let h =
        sha256_hex(format!("{model}\n{config_hash}\n{feature_version}\n{CODE_VERSION}").as_bytes());
    format!("{model}-{}", &h[..16])
}

/// Loads a feature version's training table as a dataset for `cfg`.
pub async fn load_dataset(
    store: &Store,
    cfg: &TrainingConfig,
    manifest: &FeatureManifest,
) -> Result<Dataset, TrainError> {
    inputs::load(store, cfg, &TrainingSet::single(manifest.clone()))
        .await
        .map(|(ds, _)| ds)
}

fn rows_per_split(ds: &Dataset) -> BTreeMap<String, u64> {
    let mut rows = BTreeMap::new();
    for (name, part) in [
        ("train", Split::Train),
        ("validation", Split::Validation),
        ("test", Split::Test),
    ] {
        rows.insert(name.to_string(), ds.rows(part).len() as u64);
    }
    rows.insert("unlabelled".into(), ds.unlabelled as u64);
    rows
}

/// Measures the current champion on the candidate's test rows with tract, when its inputs
/// are all columns of this table.
async fn compare_with_champion(
    store: &Store,
    model: &str,
    ds: &Dataset,
    cand: &Candidate,
    actor: &str,
) -> Result<Option<ChampionComparison>, TrainError> {
    let Some(mut alias) = registry::alias(store, model, "champion").await? else {
        return Ok(None);
    };
    if alias.by == actor {
        // This run already promoted its candidate (an earlier delivery that ended before its
        // record): compare with the champion it replaced, as that delivery did.
        let Some(previous) = alias.previous else {
            return Ok(None);
        };
        alias.version = previous;
    }
    let metric = cand.metric.name().to_string();
    let not_comparable = |why: String| ChampionComparison {
        version: alias.version,
        metric: metric.clone(),
        champion: None,
        candidate: cand.main,
        not_comparable: Some(why),
    };
    let Some(bundle) = registry::bundle(store, model, alias.version).await? else {
        return Ok(Some(not_comparable(
            "the champion's bundle is missing".into(),
        )));
    };
    if bundle.task != task_name(ds.task) || bundle.classes != ds.classes {
        return Ok(Some(not_comparable(
            "the champion predicts a different task or classes".into(),
        )));
    }
    let mut cols = Vec::new();
    for input in &bundle.inputs {
        match ds.features.iter().position(|f| *f == input.name) {
            Some(j) => cols.push(j),
            None => {
                return Ok(Some(not_comparable(format!(
                    "the champion's input '{}' is not in this feature version",
                    input.name
                ))));
            }
        }
    }
    let onnx = store.get(&bundle.model_key).await?.bytes;
    let projected = Dataset {
        features: cols.iter().map(|&j| ds.features[j].clone()).collect(),
        cols: cols.iter().map(|&j| ds.cols[j].clone()).collect(),
        ..ds.clone()
    };
    let test = ds.rows(Split::Test);
    let task = ds.task;
    let onnx_bytes = onnx.to_vec();
    let p = tokio::task::spawn_blocking(move || {
        pipeline::onnx_outputs(&onnx_bytes, &projected, &test, task)
    })
    .await
    .map_err(|e| TrainError::Fit(e.to_string()))??;
    let test = ds.rows(Split::Test);
    let y = ds.targets(&test);
    let o = Outputs {
        task,
        k: ds.n_classes(),
        y: &y,
        p: &p,
    };
    let value = evaluate::score(cand.metric, o, bundle.threshold.unwrap_or(0.5));
    Ok(Some(ChampionComparison {
        version: alias.version,
        metric,
        champion: value,
        candidate: cand.main,
        not_comparable: None,
    }))
}

/// Whether the promotion rule holds, and why (or why not).
pub fn promotion_decision(
    cfg: &TrainingConfig,
    cand: &Candidate,
    champion: Option<&ChampionComparison>,
) -> (bool, String) {
    let m = cand.metric;
    let name = m.name();
    let Some(value) = cand.main else {
        return (false, format!("{name} is undefined on the test split"));
    };
    if let Some(floor) = cfg.promotion.min_metric {
        let ok = if m.higher_is_better() {
            value >= floor
        } else {
            value <= floor
        };
        if !ok {
            return (
                false,
                format!("{name} {value:.5} does not reach min_metric {floor}"),
            );
        }
    }
    if !cfg.promotion.auto {
        return (false, "automatic promotion is off".into());
    }
    match champion {
        None => (true, format!("first champion ({name} {value:.5})")),
        Some(c) => match (c.not_comparable.as_ref(), c.champion) {
            (Some(why), _) => (
                false,
                format!("champion v{} not comparable: {why}", c.version),
            ),
            (None, None) => (
                true,
                format!(
                    "champion v{}'s {name} is undefined on this test set",
                    c.version
                ),
            ),
            (None, Some(ch)) => {
                let gain = if m.higher_is_better() {
                    value - ch
                } else {
                    ch - value
                };
                if gain >= cfg.promotion.min_improvement {
                    (
                        true,
                        format!(
                            "{name} {value:.5} vs champion v{} {ch:.5} (gain {gain:+.5})",
                            c.version
                        ),
                    )
                } else {
                    (
                        false,
                        format!(
                            "{name} {value:.5} vs champion v{} {ch:.5}: gain {gain:+.5} below min_improvement {}",
                            c.version, cfg.promotion.min_improvement
                        ),
                    )
                }
            }
        },
    }
}

/// Trains `cfg` on one feature version (or one combination of view versions): the whole job.
pub async fn train_version(
    store: &Store,
    cfg: &TrainingConfig,
    config_hash: &str,
    set: &TrainingSet,
    trigger: &str,
    job: &JobConfig,
) -> Result<TrainOutcome, TrainError> {
    let manifest = &set.label;
    let run = run_id(&cfg.model, config_hash, &set.version());
    if let Some(prev) = tracking::read_run(store, &run).await?
        && prev.status == "finished"
    {
        return Ok(TrainOutcome::AlreadyDone {
            model: cfg.model.clone(),
            run,
            version: prev.registration.map(|r| r.version),
        });
    }
    let mut record = TrainingRun {
        run_id: run.clone(),
        status: "running".into(),
        model: cfg.model.clone(),
        view: manifest.view.clone(),
        feature_version: set.version(),
        dataset_snapshot: set.snapshots(),
        trigger: trigger.into(),
        config_hash: config_hash.into(),
        code_version: CODE_VERSION.into(),
        started_at: now(),
        finished_at: None,
        task: None,
        metric: None,
        rows: BTreeMap::new(),
        best_trial: None,
        params: BTreeMap::new(),
        test_metrics: BTreeMap::new(),
        interval: None,
        threshold: None,
        importance: Vec::new(),
        champion: None,
        registration: None,
        timings_s: BTreeMap::new(),
        artifacts: Vec::new(),
        trials: 0,
        error: None,
        mlflow: None,
        selection: None,
    };
    tracking::write_run(store, &record).await?;
    let start_ms = chrono::Utc::now().timestamp_millis();
    match train_and_register(store, cfg, set, &mut record, job).await {
        Ok(outcome) => {
            record.status = "finished".into();
            record.finished_at = Some(now());
            if let (Some(client), TrainOutcome::Trained { version, .. }) = (&job.mlflow, &outcome) {
                match log_mlflow(store, client, &record, *version, start_ms).await {
                    Ok(id) => record.mlflow = Some(id),
                    Err(e) => {
                        tracing::warn!(error = %e, "MLflow logging failed");
                        record.mlflow = Some(format!("error: {e}"));
                    }
                }
            }
            tracking::write_run(store, &record).await?;
            Ok(outcome)
        }
        Err(e) => {
            record.status = "failed".into();
            record.finished_at = Some(now());
            record.error = Some(e.to_string());
            tracking::write_run(store, &record).await?;
            Err(e)
        }
    }
}

async fn train_and_register(
    store: &Store,
    cfg: &TrainingConfig,
    set: &TrainingSet,
    record: &mut TrainingRun,
    job: &JobConfig,
) -> Result<TrainOutcome, TrainError> {
    let manifest = &set.label;
    let started = Instant::now();
    let (ds, joined) = inputs::load(store, cfg, set).await?;
    let ds = Arc::new(ds);
    record
        .timings_s
        .insert("load_s".into(), started.elapsed().as_secs_f64());
    record.task = Some(task_name(ds.task).into());
    record.metric = Some(cfg.metric_for(ds.task).name().into());
    record.rows = rows_per_split(&ds);
    tracing::info!(model = %cfg.model, view = %manifest.view, version = %set.version(), rows = ds.n_rows(), features = ds.n_features(), task = task_name(ds.task), "training");
    let (ds2, cfg2) = (ds.clone(), cfg.clone());
    let model_name = cfg.model.clone();
    let cand = tokio::task::spawn_blocking(move || {
        pipeline::train(
            &ds2,
            &cfg2,
            &|line: &str| tracing::info!(model = %model_name, "{line}"),
        )
    })
    .await
    .map_err(|e| TrainError::Fit(format!("training task: {e}")))??;
    let run = record.run_id.clone();
    record.trials = cand.trials.len();
    record.best_trial = Some(cand.best_trial);
    record.selection = Some(cand.selection.clone());
    record.params = cand.params.flat().into_iter().collect();
    record.test_metrics = cand.test_metrics.clone();
    record.interval = cand.interval;
    record.threshold = cand.threshold;
    record.importance = cand.importance.clone();
    record.timings_s.extend(cand.timings.clone());
    tracking::write_trials(store, &run, &cand.trials).await?;

    let actor = job.actor.clone().unwrap_or_else(|| format!("train:{run}"));
    let champion = compare_with_champion(store, &cfg.model, &ds, &cand, &actor).await?;
    record.champion = champion.clone();

    let mut metrics = cand.test_metrics.clone();
    if let Some(i) = cand.interval {
        metrics.insert(format!("{}_ci_low", cand.metric.name()), i.low);
        metrics.insert(format!("{}_ci_high", cand.metric.name()), i.high);
    }
    metrics.insert("onnx_max_abs_diff".into(), cand.parity);
    let mut tags: BTreeMap<String, String> = cand.params.flat().into_iter().collect();
    tags.insert("code_version".into(), CODE_VERSION.into());
    tags.insert("metric".into(), cand.metric.name().into());
    tags.insert("selection".into(), cand.selection.describe());
    tags.insert(
        "importance".into(),
        serde_json::to_string(&cand.importance.iter().take(20).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    // One view: its spec and profile. Several: the joined feature set, table and profile.
    let (feature_spec, reference_profile, training_table) = match &joined {
        None => (
            registry::ObjectRef {
                key: manifest.spec.key.clone(),
                sha256: manifest.spec.sha256.clone(),
            },
            registry::ObjectRef {
                key: manifest.profile.key.clone(),
                sha256: manifest.profile.sha256.clone(),
            },
            None,
        ),
        Some(j) => {
            let o = inputs::write_joined(store, &cfg.model, j).await?;
            (o.spec, o.profile, Some(o.table))
        }
    };
    let new = registry::NewVersion {
        task: task_name(cand.task).into(),
        family: family_name(cand.params.family()).into(),
        inputs: cand
            .features
            .iter()
            .map(|f| registry::Input {
                name: f.clone(),
                ty: "f32".into(),
                width: None,
            })
            .collect(),
        classes: cand.classes.clone(),
        threshold: cand.threshold,
        feature_view: manifest.view.clone(),
        feature_view_version: manifest.version.clone(),
        feature_spec,
        dataset_snapshot: record.dataset_snapshot.clone(),
        reference_profile,
        training_run: run.clone(),
        metrics,
        tags,
        joined_views: set
            .joined
            .iter()
            .map(|m| registry::ViewVersion {
                view: m.view.clone(),
                version: m.version.clone(),
            })
            .collect(),
        training_table,
    };
    let registered = registry::register(store, &cfg.model, &cand.onnx, new).await?;
    let bundle = registered.bundle().clone();
    let version = bundle.version;
    // The drift stage's reference for prediction drift: at most 100,000 test scores, evenly
    // strided (the same model gives the same scores, so a re-registration rewrites the same).
    let stride = cand.test_scores.len().div_ceil(100_000).max(1);
    let scores: Vec<f32> = cand.test_scores.iter().step_by(stride).copied().collect();
    store
        .put(
            &registry::version_key(&cfg.model, version, registry::REFERENCE_SCORES),
            serde_json::to_vec(&serde_json::json!({"format": 1, "scores": scores}))
                .unwrap_or_default(),
        )
        .await?;
    record.artifacts = vec![
        bundle.model_key.clone(),
        registry::version_key(&cfg.model, version, registry::BUNDLE),
        tracking::trial_key(&run, 0).replace("0000.json", ""),
    ];

    let (rule_holds, reason) = promotion_decision(cfg, &cand, champion.as_ref());
    let current_alias = registry::alias(store, &cfg.model, "champion").await?;
    let current = current_alias.as_ref().map(|a| a.version);
    let (promoted, alias, reason) = if let Some(own) = current_alias
        .as_ref()
        .filter(|a| a.version == version && a.by == actor)
    {
        // This run's own move, made by an earlier delivery that ended before its record:
        // finish what follows the move and report it as that delivery would have.
        registry::complete_move(store, own).await?;
        (true, Some("champion".to_string()), own.reason.clone())
    } else if current == Some(version) {
        (
            false,
            Some("champion".to_string()),
            format!("v{version} is already champion"),
        )
    } else if rule_holds {
        match registry::move_alias(
            store,
            &cfg.model,
            "champion",
            version,
            Some(current),
            &actor,
            &reason,
        )
        .await
        {
            Ok(_) => (true, Some("champion".to_string()), reason),
            Err(registry::RegistryError::Conflict { found, .. }) => (
                false,
                None,
                format!("champion moved concurrently (now {found:?}); not promoted"),
            ),
            Err(e) => return Err(e.into()),
        }
    } else {
        let challenger = registry::alias(store, &cfg.model, "challenger")
            .await?
            .map(|a| a.version);
        if challenger != Some(version) {
            registry::move_alias(
                store,
                &cfg.model,
                "challenger",
                version,
                None,
                &actor,
                &reason,
            )
            .await?;
        }
        (false, Some("challenger".to_string()), reason)
    };
    record.registration = Some(Registration {
        version,
        outcome: match registered {
            registry::Registered::Created(_) => "created".into(),
            // This run's own registration, by a delivery that ended before its record.
            registry::Registered::Existing(b) if b.training_run == run => "created".into(),
            registry::Registered::Existing(_) => "existing".into(),
        },
        promoted,
        alias,
        reason: reason.clone(),
    });
    tracing::info!(model = %cfg.model, version, promoted, reason = %reason, "registered");
    Ok(TrainOutcome::Trained {
        model: cfg.model.clone(),
        run,
        version,
        family: family_name(cand.params.family()).into(),
        metric: cand.metric.name().into(),
        value: cand.main,
        test_metrics: cand.test_metrics.clone(),
        promoted,
        reason,
    })
}

async fn log_mlflow(
    store: &Store,
    client: &mlflow::Client,
    record: &TrainingRun,
    version: u64,
    start_ms: i64,
) -> Result<String, TrainError> {
    let mut params: Vec<(String, String)> = record.params.clone().into_iter().collect();
    params.extend([
        ("view".to_string(), record.view.clone()),
        (
            "feature_version".to_string(),
            record.feature_version.clone(),
        ),
        (
            "dataset_snapshot".to_string(),
            record.dataset_snapshot.clone(),
        ),
        ("config_hash".to_string(), record.config_hash.clone()),
        ("code_version".to_string(), record.code_version.clone()),
    ]);
    let mut metrics: Vec<(String, f64, i64)> = record
        .test_metrics
        .iter()
        .map(|(k, v)| (format!("test_{k}"), *v, 0))
        .collect();
    for t in tracking::read_trials(store, &record.run_id).await? {
        for r in &t.rungs {
            if let Some(v) = r.metric {
                metrics.push((
                    format!(
                        "trial_{:03}_valid_{}",
                        t.id,
                        record.metric.as_deref().unwrap_or("metric")
                    ),
                    v,
                    r.rung as i64,
                ));
            }
        }
    }
    for (k, v) in &record.timings_s {
        metrics.push((format!("time_{k}"), *v, 0));
    }
    let onnx = store
        .get(&registry::version_key(&record.model, version, "model.onnx"))
        .await?;
    let bundle = store
        .get(&registry::version_key(
            &record.model,
            version,
            registry::BUNDLE,
        ))
        .await?;
    let run = MlflowRun {
        experiment: record.model.clone(),
        run_name: record.run_id.clone(),
        mlpipe_run: record.run_id.clone(),
        start_ms,
        end_ms: chrono::Utc::now().timestamp_millis(),
        params,
        metrics,
        tags: vec![
            (
                "mlpipe.task".into(),
                record.task.clone().unwrap_or_default(),
            ),
            ("mlpipe.model_version".into(), version.to_string()),
        ],
        artifacts: vec![
            ("model/model.onnx".into(), onnx.bytes.to_vec()),
            ("model/bundle.json".into(), bundle.bytes.to_vec()),
        ],
        register: Some((record.model.clone(), version)),
    };
    let logged = client.log(&run).await?;
    Ok(format!(
        "experiment {} run {}{}",
        logged.experiment_id,
        logged.run_id,
        logged
            .model_version
            .map(|v| format!(" model version {v}"))
            .unwrap_or_default()
    ))
}

/// Trains on `rows` of a plain table (the benchmark and tests): no store involved.
pub fn train_table(
    df: &DataFrame,
    features: &[String],
    label: &str,
    split: Option<&str>,
    cfg: &TrainingConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Dataset, Candidate), TrainError> {
    let ds = Dataset::from_frame(
        df,
        features,
        label,
        split,
        cfg.task,
        cfg.positive_class.as_deref(),
    )?;
    let cand = pipeline::train(&ds, cfg, progress)?;
    Ok((ds, cand))
}

/// Exported model outputs for a dataset (used by `mlpipe models` and tests).
pub fn predict_onnx(
    onnx: &[u8],
    x: &[f32],
    n: usize,
    f: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    export::run_onnx(onnx, x, n, f).map_err(TrainError::Export)
}
