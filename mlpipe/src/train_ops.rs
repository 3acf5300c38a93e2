//! `mlpipe train`, `mlpipe models ...` and `mlpipe runs ...`: thin views over the training
//! job, the registry and the run records.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use storage::Store;
use train::tracking::{self, TrainingRun};

/// One model as `mlpipe models list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub model: String,
    pub versions: usize,
    pub latest: Option<u64>,
    pub champion: Option<u64>,
    pub challenger: Option<u64>,
    pub metric: Option<String>,
    pub champion_metric: Option<f64>,
}

pub async fn models(store: &Store) -> Result<Vec<ModelRow>> {
    let mut out = Vec::new();
    for model in registry::models(store).await? {
        let versions = registry::versions(store, &model).await?;
        let champion = registry::alias(store, &model, "champion")
            .await?
            .map(|a| a.version);
        let challenger = registry::alias(store, &model, "challenger")
            .await?
            .map(|a| a.version);
        let champ = champion.and_then(|v| versions.iter().find(|b| b.version == v));
        let metric = champ.and_then(|b| b.tags.get("metric").cloned());
        let champion_metric =
            champ.and_then(|b| metric.as_ref().and_then(|m| b.metrics.get(m)).copied());
        out.push(ModelRow {
            latest: versions.iter().map(|b| b.version).max(),
            versions: versions.len(),
            model,
            champion,
            challenger,
            metric,
            champion_metric,
        });
    }
    Ok(out)
}

/// A model version with its aliases and their history.
pub async fn show(store: &Store, model: &str, version: Option<u64>) -> Result<Value> {
    let versions = registry::versions(store, model).await?;
    if versions.is_empty() {
        bail!("model '{model}' has no versions (run `mlpipe train` or `mlpipe run`)");
    }
    let champion = registry::alias(store, model, "champion").await?;
    let version = match version {
        Some(v) => v,
        None => champion
            .as_ref()
            .map(|a| a.version)
            .or_else(|| versions.iter().map(|b| b.version).max())
            .unwrap_or(1),
    };
    let bundle = registry::bundle(store, model, version)
        .await?
        .with_context(|| format!("model '{model}' has no version {version}"))?;
    let mut history = BTreeMap::new();
    for alias in ["champion", "challenger"] {
        history.insert(alias, registry::history(store, model, alias).await?);
    }
    Ok(json!({
        "bundle": bundle,
        "versions": versions.iter().map(|b| json!({
            "version": b.version, "created_at": b.created_at, "family": b.family,
            "feature_view_version": b.feature_view_version, "training_run": b.training_run,
        })).collect::<Vec<_>>(),
        "champion": champion,
        "challenger": registry::alias(store, model, "challenger").await?,
        "traffic": registry::traffic(store, model).await?,
        "history": history,
        "live": live(store, model, LIVE_WINDOWS).await?,
    }))
}

/// Windows of live performance `models show` prints.
const LIVE_WINDOWS: usize = 5;

/// The newest `n` windows of live performance (delayed labels) the drift stage recorded,
/// newest first: champion and, under a canary or shadow, challenger side by side.
pub async fn live(store: &Store, model: &str, n: usize) -> Result<Vec<Value>> {
    let mut keys: Vec<String> = store
        .list(&records::keys::drift_prefix(model))
        .await?
        .into_iter()
        .map(|i| i.key)
        .filter(|k| k.ends_with("/performance.json"))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys.iter().rev().take(n) {
        let bytes = store.get(key).await?.bytes;
        out.push(
            serde_json::from_slice(&bytes).with_context(|| format!("{key} is not valid JSON"))?,
        );
    }
    Ok(out)
}

/// Sends `share` of `model`'s traffic to its challenger (0 ends the canary).
pub async fn canary(store: &Store, model: &str, share: f64) -> Result<registry::Traffic> {
    Ok(registry::set_canary(store, model, share, &format!("cli:{}", user())).await?)
}

/// Turns shadow scoring by `model`'s challenger on or off.
pub async fn shadow(store: &Store, model: &str, on: bool) -> Result<registry::Traffic> {
    Ok(registry::set_shadow(store, model, on, &format!("cli:{}", user())).await?)
}

pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub async fn promote(
    store: &Store,
    model: &str,
    version: u64,
    reason: Option<String>,
) -> Result<registry::Alias> {
    if registry::bundle(store, model, version).await?.is_none() {
        bail!("model '{model}' has no version {version}");
    }
    let alias = registry::move_alias(
        store,
        model,
        "champion",
        version,
        None,
        &format!("cli:{}", user()),
        reason.as_deref().unwrap_or("manual promotion"),
    )
    .await?;
    Ok(alias)
}

pub async fn rollback(store: &Store, model: &str) -> Result<registry::Alias> {
    Ok(registry::rollback(store, model, "champion", &format!("cli:{}", user())).await?)
}

pub async fn runs(store: &Store) -> Result<Vec<TrainingRun>> {
    Ok(tracking::list_runs(store).await?)
}

/// Finds a run by id or unique prefix.
pub async fn find_run(store: &Store, id: &str) -> Result<TrainingRun> {
    let all = tracking::list_runs(store).await?;
    let hits: Vec<&TrainingRun> = all.iter().filter(|r| r.run_id.starts_with(id)).collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no training run '{id}' (see `mlpipe runs list`)"),
        many => bail!("'{id}' matches {} runs; give more of the id", many.len()),
    }
}

pub async fn run_detail(store: &Store, id: &str) -> Result<Value> {
    let run = find_run(store, id).await?;
    let trials = tracking::read_trials(store, &run.run_id).await?;
    Ok(json!({ "run": run, "trials": trials }))
}

/// Params and test metrics of several runs side by side.
pub async fn compare(store: &Store, ids: &[String]) -> Result<Value> {
    if ids.len() < 2 {
        bail!("compare needs at least two run ids");
    }
    let mut runs = Vec::new();
    for id in ids {
        runs.push(find_run(store, id).await?);
    }
    let params: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    let metrics: BTreeSet<&String> = runs.iter().flat_map(|r| r.test_metrics.keys()).collect();
    let mut rows = Vec::new();
    for p in params {
        rows.push(json!({"kind": "param", "name": p, "values": runs.iter().map(|r| r.params.get(p)).collect::<Vec<_>>()}));
    }
    for m in metrics {
        rows.push(json!({"kind": "metric", "name": m, "values": runs.iter().map(|r| r.test_metrics.get(m)).collect::<Vec<_>>()}));
    }
    Ok(json!({
        "runs": runs.iter().map(|r| json!({
            "run_id": r.run_id, "model": r.model, "feature_version": r.feature_version,
            "started_at": r.started_at, "status": r.status,
            "version": r.registration.as_ref().map(|g| g.version),
        })).collect::<Vec<_>>(),
        "rows": rows,
    }))
}

/// Prints a compare table.
pub fn print_compare(v: &Value) {
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    print!("{:<24}", "");
    for r in &runs {
        print!(" {:>24}", r["run_id"].as_str().unwrap_or("-"));
    }
    println!();
    for row in v["rows"].as_array().cloned().unwrap_or_default() {
        print!("{:<24}", row["name"].as_str().unwrap_or(""));
        for val in row["values"].as_array().cloned().unwrap_or_default() {
            let s = match &val {
                Value::Null => "-".to_string(),
                Value::Number(n) => format!("{:.5}", n.as_f64().unwrap_or(f64::NAN)),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            print!(" {s:>24}");
        }
        println!();
    }
}

/// One-line summary of a training outcome (the JSON the job returns).
pub fn describe_outcome(o: &Value) -> String {
    match o["outcome"].as_str() {
        Some("trained") => format!(
            "model {} version {} ({}), test {} {}, {}: {}",
            o["model"].as_str().unwrap_or("?"),
            o["version"],
            o["family"].as_str().unwrap_or("?"),
            o["metric"].as_str().unwrap_or("?"),
            o["value"]
                .as_f64()
                .map_or("n/a".into(), |v| format!("{v:.4}")),
            if o["promoted"].as_bool() == Some(true) {
                "promoted to champion"
            } else {
                "not promoted"
            },
            o["reason"].as_str().unwrap_or("")
        ),
        Some("already-done") => format!(
            "model {}: run {} already done (version {})",
            o["model"].as_str().unwrap_or("?"),
            o["run"].as_str().unwrap_or("?"),
            o["version"]
        ),
        Some("skipped") => format!(
            "model {}: skipped ({})",
            o["model"].as_str().unwrap_or("?"),
            o["reason"].as_str().unwrap_or("")
        ),
        _ => o.to_string(),
    }
}
