//! The drift stage: compares windows of what a served model sees (its prediction logs) with
//! the reference profile of its training data, writes a report per window, and asks for a
//! retrain when drift holds for the configured number of windows in a row.
//!
//! - `stats`: the statistics, held to scipy's values (`ks_2samp`, `chisquare`,
//!   `wasserstein_distance`, `jensenshannon`) plus PSI.
//! - `config`: the `[drift]` table of the model's training file (tests, thresholds, window).
//! - `reference` / `current`: the two sides; `check`: the verdicts.
//! - [`check_model`]: one model, every complete window not yet reported, idempotent (a
//!   window's report is written create-if-absent and never recomputed).
//!
//! Windows are aligned to multiples of the window length since the epoch (UTC), by request
//! time, and only complete windows are checked, so a rerun finds the same windows.

use std::collections::BTreeMap;

use events::Event;
use serde::{Deserialize, Serialize};
use storage::Store;

pub mod check;
pub mod config;
pub mod current;
pub mod html;
pub mod labels;
pub mod reference;
pub mod stats;

pub use check::{FeatureDrift, Verdict};
pub use config::DriftSettings;

/// Where reports and state go; where prediction logs are; where retrain requests go.
pub use records::keys::{DRIFT, INFERENCE_LOGS as LOGS, RETRAIN_REQUESTS};
pub use records::monitoring::{DriftSummary as WindowOutcome, RetrainRequest};
use stage::StageError as _;
/// Report format version.
pub const REPORT_FORMAT: u32 = 1;
/// At most this many windows are checked in one run (a long outage is caught up over runs).
pub const MAX_WINDOWS_PER_RUN: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Store(#[from] storage::StorageError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
}

impl stage::StageError for DriftError {
    /// True when the same run may succeed later (the store failed, not the data).
    fn is_retryable(&self) -> bool {
        match self {
            DriftError::Store(e) => e.is_retryable(),
            DriftError::Registry(e) => e.is_retryable(),
            _ => false,
        }
    }

    fn is_fault(&self) -> bool {
        match self {
            DriftError::Store(e) => e.is_fault(),
            DriftError::Registry(e) => e.is_fault(),
            other => stage::StageError::is_retryable(other),
        }
    }
}

/// One window's report (`drift/<model>/<run>/report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    pub model: String,
    pub version: u64,
    /// `w=<start, UTC, yyyymmddThhmmZ>`.
    pub run: String,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub window: String,
    /// Where the logs were read (store URL without its query).
    pub logs: String,
    pub log_objects: usize,
    pub skipped_lines: usize,
    pub reference_profile: String,
    pub verdict: Verdict,
    pub features: Vec<FeatureDrift>,
    /// The model's scores against its test-split scores (absent for versions trained before
    /// training stored them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureDrift>,
    pub created_at: String,
}

/// `drift/<model>/<run>/performance.json`: the window's live metric from delayed labels.
pub fn performance_key(model: &str, run: &str) -> String {
    records::keys::drift_performance(model, run)
}

/// A window's live performance, as a run reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerformanceOutcome {
    pub run: String,
    pub labelled: usize,
    pub metric: String,
    pub value: Option<f64>,
    pub test_value: Option<f64>,
    pub degraded: bool,
    /// Computed now (labels arrived or changed), not read back.
    pub updated: bool,
}

/// What a run did for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRun {
    pub model: String,
    /// Windows checked now, with their verdicts.
    pub checked: Vec<WindowOutcome>,
    /// The retrain request written, if drift held long enough.
    pub retrain_request: Option<String>,
    /// Live performance of the windows with delayed labels (newest last).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub performance: Vec<PerformanceOutcome>,
    /// Why nothing was checked, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The run name of the window starting at `start_us`.
pub fn run_name(start_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(start_us)
        .map(|t| format!("w={}", t.format("%Y%m%dT%H%MZ")))
        .unwrap_or_else(|| format!("w={start_us}"))
}

pub fn report_key(model: &str, run: &str) -> String {
    records::keys::drift_report(model, run)
}

/// The HTML page beside a report.
pub fn html_key(model: &str, run: &str) -> String {
    records::keys::drift_html(model, run)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The model's drift settings from its current training file (defaults without one).
pub async fn settings(store: &Store, model: &str) -> Result<DriftSettings, DriftError> {
    #[derive(Deserialize)]
    struct Pointer {
        key: String,
    }
    let current = format!("definitions/training/{model}/_current.json");
    let Some(obj) = store.get_opt(&current).await? else {
        return Ok(DriftSettings::default());
    };
    let p: Pointer = serde_json::from_slice(&obj.bytes).map_err(|e| DriftError::Invalid {
        key: current.clone(),
        message: e.to_string(),
    })?;
    let text = store.get(&p.key).await?;
    DriftSettings::from_training_toml(&String::from_utf8_lossy(&text.bytes), &p.key)
}

/// The hour prefixes of `model`'s logs that overlap `[start_us, end_us)`.
fn hour_prefixes(model: &str, start_us: i64, end_us: i64) -> Vec<String> {
    const HOUR: i64 = 3_600_000_000;
    let mut out = Vec::new();
    let mut h = start_us.div_euclid(HOUR) * HOUR;
    while h < end_us {
        if let Some(t) = chrono::DateTime::from_timestamp_micros(h) {
            out.push(format!(
                "{LOGS}{model}/date={}/hour={}/",
                t.format("%Y-%m-%d"),
                t.format("%H")
            ));
        }
        h += HOUR;
    }
    out
}

/// Reads the window's logs from `logs`.
async fn read_window(
    logs: &Store,
    model: &str,
    layout: &current::Layout,
    start_us: i64,
    end_us: i64,
    labels: Option<&labels::Labels>,
) -> Result<current::Window, DriftError> {
    let mut window = current::Window::new(start_us, end_us);
    for prefix in hour_prefixes(model, start_us, end_us) {
        for info in logs.list(&prefix).await? {
            let obj = logs.get(&info.key).await?;
            window.add_lines_joined(&String::from_utf8_lossy(&obj.bytes), layout, labels);
        }
    }
    Ok(window)
}

/// The live performance of one window: read back when the labels did not change since it
/// was computed, else computed from `window` (or the window's logs, read again) and written.
/// `None` when no prediction of the window has a label yet.
#[allow(clippy::too_many_arguments)]
async fn window_performance(
    store: &Store,
    logs: &Store,
    bundle: &registry::Bundle,
    settings: &DriftSettings,
    labels: &labels::Labels,
    run: &str,
    (start_us, end_us): (i64, i64),
    window: Option<&current::Window>,
) -> Result<Option<(labels::Performance, bool)>, DriftError> {
    let key = performance_key(&bundle.model, run);
    let previous: Option<labels::Performance> = match store.get_opt(&key).await? {
        Some(o) => Some(
            serde_json::from_slice(&o.bytes).map_err(|e| DriftError::Invalid {
                key: key.clone(),
                message: e.to_string(),
            })?,
        ),
        None => None,
    };
    if let Some(p) = previous.filter(|p| p.labels_fingerprint == labels.fingerprint) {
        return Ok(Some((p, false)));
    }
    let read;
    let window = match window {
        Some(w) => w,
        None => {
            read = read_window(
                logs,
                &bundle.model,
                &current::Layout::default(),
                start_us,
                end_us,
                Some(labels),
            )
            .await?;
            &read
        }
    };
    if window.joined.rows.is_empty() && window.challenger.joined.rows.is_empty() {
        return Ok(None);
    }
    let rule = &settings.performance;
    let metric = rule.metric_for(&bundle.task);
    let metrics = labels::live_metrics(&bundle.task, &bundle.classes, &window.joined.rows);
    let value = metrics.get(&metric).copied();
    let test_value = bundle.metrics.get(&metric).copied();
    let lower = labels::lower_is_better(&metric);
    let labelled = window.joined.rows.len();
    let (degraded, rule_text) = match (value, rule.floor, test_value) {
        _ if labelled < rule.min_labels => (
            false,
            format!(
                "not judged: {labelled} labelled predictions, fewer than {}",
                rule.min_labels
            ),
        ),
        (None, _, _) => (false, format!("{metric} is undefined on these labels")),
        (Some(v), Some(f), _) => (
            if lower { v > f } else { v < f },
            format!("{metric} {} floor {f}", if lower { "<=" } else { ">=" }),
        ),
        (Some(v), None, Some(t)) => {
            let limit = if lower {
                t * (1.0 + rule.max_drop)
            } else {
                t * (1.0 - rule.max_drop)
            };
            (
                if lower { v > limit } else { v < limit },
                format!(
                    "{metric} within {:.0}% of the test value {t:.5} ({} {limit:.5})",
                    rule.max_drop * 100.0,
                    if lower { "<=" } else { ">=" }
                ),
            )
        }
        (Some(_), None, None) => (
            false,
            format!("no floor and no test {metric} to compare with"),
        ),
    };
    let p = labels::Performance {
        format: REPORT_FORMAT,
        model: bundle.model.clone(),
        version: bundle.version,
        run: run.to_string(),
        window_start_us: start_us,
        window_end_us: end_us,
        predictions: window.rows,
        labelled,
        metric: metric.clone(),
        value,
        test_value,
        degraded,
        rule: rule_text,
        metrics,
        label_objects: labels.objects,
        skipped_label_rows: labels.skipped_rows,
        label_problems: labels.problems.clone(),
        labels_fingerprint: labels.fingerprint.clone(),
        created_at: now_rfc3339(),
        challenger: challenger_performance(bundle, &metric, &window.challenger),
    };
    let bytes = serde_json::to_vec_pretty(&p).map_err(|e| DriftError::Invalid {
        key: key.clone(),
        message: e.to_string(),
    })?;
    store.put(&key, bytes).await?;
    if let Some(v) = value {
        telemetry::record_live_metric(&bundle.model, &metric, v, test_value);
    }
    Ok(Some((p, true)))
}

/// The challenger's side of a window, with the champion's task, classes and judged metric
/// (a challenger is trained for the same task on the same labels).
fn challenger_performance(
    bundle: &registry::Bundle,
    metric: &str,
    c: &current::ChallengerWindow,
) -> Option<labels::ArmPerformance> {
    let version = c.version?;
    let metrics = labels::live_metrics(&bundle.task, &bundle.classes, &c.joined.rows);
    Some(labels::ArmPerformance {
        version,
        predictions: c.rows,
        labelled: c.joined.rows.len(),
        value: metrics.get(metric).copied(),
        metrics,
    })
}

/// What a check of the serving model needs, read once.
struct Champion {
    alias: registry::Alias,
    bundle: registry::Bundle,
    settings: DriftSettings,
    layout: current::Layout,
    profile_key: String,
    reference: reference::Reference,
    reference_scores: Option<reference::NumericRef>,
}

async fn champion(store: &Store, model: &str) -> Result<Option<Champion>, DriftError> {
    let Some(alias) = registry::alias(store, model, "champion").await? else {
        return Ok(None);
    };
    let bundle = registry::bundle(store, model, alias.version)
        .await?
        .ok_or_else(|| {
            DriftError::Missing(format!("model '{model}' has no version {}", alias.version))
        })?;
    if bundle.feature_spec.key.is_empty() || bundle.reference_profile.key.is_empty() {
        // An imported model: no feature view and no training reference to compare with.
        tracing::info!(
            model,
            "the champion was imported without a reference profile: no drift check"
        );
        return Ok(None);
    }
    let settings = settings(store, model).await?;
    let spec_bytes = store.get(&bundle.feature_spec.key).await?.bytes;
    let spec =
        features::FeatureSet::from_json(&spec_bytes).map_err(|message| DriftError::Invalid {
            key: bundle.feature_spec.key.clone(),
            message,
        })?;
    let layout = current::Layout::from_set(&spec);
    let profile_key = bundle.reference_profile.key.clone();
    let profile = store.get(&profile_key).await?.bytes;
    let reference = reference::read_profile(&profile, &profile_key)?;
    let scores_key = registry::version_key(model, alias.version, registry::REFERENCE_SCORES);
    let reference_scores = match store.get_opt(&scores_key).await? {
        Some(o) => Some(reference::read_scores(&o.bytes, &scores_key)?),
        None => None,
    };
    Ok(Some(Champion {
        alias,
        bundle,
        settings,
        layout,
        profile_key,
        reference,
        reference_scores,
    }))
}

/// A drift check of a table of model inputs (one row per record, values in `inputs` order,
/// `None` = missing; e.g. a held-out slice) against `model`'s champion reference, with the
/// same tests and rules as a window of prediction logs. The report is written as
/// `drift/<model>/<run>/report.{json,html}`; the same table gives the same verdict.
pub async fn check_table(
    store: &Store,
    model: &str,
    run: &str,
    inputs: &[String],
    rows: &[Vec<Option<f64>>],
) -> Result<Report, DriftError> {
    let c = champion(store, model)
        .await?
        .ok_or_else(|| DriftError::Missing(format!("model '{model}' has no champion")))?;
    let mut window = current::Window::new(0, 1);
    let mut lines = String::new();
    for row in rows {
        let features: serde_json::Map<String, serde_json::Value> = inputs
            .iter()
            .zip(row)
            .map(|(k, v)| (k.clone(), v.map_or(serde_json::Value::Null, |x| x.into())))
            .collect();
        lines.push_str(&serde_json::json!({"at_us": 0, "features": features}).to_string());
        lines.push('\n');
    }
    window.add_lines(&lines, &c.layout);
    let (features, verdict) = check::check(&c.settings, &c.layout, &c.reference, &window);
    let report = Report {
        format: REPORT_FORMAT,
        model: model.into(),
        version: c.alias.version,
        run: run.into(),
        window_start_us: 0,
        window_end_us: 0,
        window: "table".into(),
        logs: "(a table of model inputs)".into(),
        log_objects: 0,
        skipped_lines: window.skipped_lines,
        reference_profile: c.profile_key,
        verdict,
        features,
        prediction: None,
        created_at: now_rfc3339(),
    };
    let bytes = serde_json::to_vec_pretty(&report).map_err(|e| DriftError::Invalid {
        key: report_key(model, run),
        message: e.to_string(),
    })?;
    store
        .put(&html_key(model, run), html::render(&report).into_bytes())
        .await?;
    store.put(&report_key(model, run), bytes).await?;
    Ok(report)
}

/// Checks `model`'s champion over every complete window not reported yet (at most
/// [`MAX_WINDOWS_PER_RUN`], newest last), at time `now_us`; `logs` holds the prediction
/// logs (the pipeline's store, or e.g. the Worker's R2 bucket).
pub async fn check_model(
    store: &Store,
    logs: &Store,
    model: &str,
    now_us: i64,
) -> Result<ModelRun, DriftError> {
    let mut run = ModelRun {
        model: model.into(),
        checked: Vec::new(),
        retrain_request: None,
        performance: Vec::new(),
        note: None,
    };
    let Some(Champion {
        alias,
        bundle,
        settings,
        layout,
        profile_key,
        reference,
        reference_scores,
    }) = champion(store, model).await?
    else {
        run.note = Some("no champion to watch".into());
        return Ok(run);
    };

    let w = settings.window_us();
    let last_end = now_us.div_euclid(w) * w;
    // The windows needed: enough for the streak rule, newest last; with labels, also the
    // windows whose performance late labels may change.
    let span = settings.consecutive.clamp(1, MAX_WINDOWS_PER_RUN);
    let labels = labels::read(store, model).await?;
    let with_labels = (!labels.rows.is_empty()).then_some(&labels);
    let lookback = match with_labels {
        Some(_) => settings
            .performance
            .lookback
            .max(span)
            .min(MAX_WINDOWS_PER_RUN),
        None => span,
    };
    // Per window of the streak: (dataset drift, performance degraded).
    let mut streak: Vec<(bool, bool)> = Vec::new();
    for i in (0..lookback).rev() {
        let end = last_end - i as i64 * w;
        let start = end - w;
        let in_span = i < span;
        let name = run_name(start);
        let key = report_key(model, &name);
        let mut fresh: Option<current::Window> = None;
        let report: Option<Report> = match store.get_opt(&key).await? {
            Some(o) => Some(
                serde_json::from_slice(&o.bytes).map_err(|e| DriftError::Invalid {
                    key: key.clone(),
                    message: e.to_string(),
                })?,
            ),
            // Older windows never checked are left alone: the streak does not reach them.
            None if !in_span => None,
            None => {
                let window = read_window(logs, model, &layout, start, end, with_labels).await?;
                let (features, verdict) = check::check(&settings, &layout, &reference, &window);
                let prediction = reference_scores
                    .as_ref()
                    .map(|r| check::prediction(&settings, r, &window));
                let report = Report {
                    format: REPORT_FORMAT,
                    model: model.into(),
                    version: alias.version,
                    run: name.clone(),
                    window_start_us: start,
                    window_end_us: end,
                    window: settings.window.clone(),
                    logs: logs.url().split('?').next().unwrap_or_default().to_string(),
                    log_objects: window.objects,
                    skipped_lines: window.skipped_lines,
                    reference_profile: profile_key.clone(),
                    verdict,
                    features,
                    prediction,
                    created_at: now_rfc3339(),
                };
                let bytes =
                    serde_json::to_vec_pretty(&report).map_err(|e| DriftError::Invalid {
                        key: key.clone(),
                        message: e.to_string(),
                    })?;
                // The page first: a report that exists always has its page.
                store
                    .put(&html_key(model, &name), html::render(&report).into_bytes())
                    .await?;
                store.put_if_absent(&key, bytes).await?;
                record_metrics(&report);
                run.checked.push(WindowOutcome {
                    run: name.clone(),
                    report: key.clone(),
                    rows: report.verdict.rows,
                    judged: report.verdict.judged,
                    dataset_drift: report.verdict.dataset_drift,
                    features_drifted: report.verdict.features_drifted,
                    features_tested: report.verdict.features_tested,
                });
                fresh = Some(window);
                Some(report)
            }
        };
        let Some(report) = report else { continue };
        let mut degraded = false;
        if let Some(l) = with_labels
            && let Some((p, updated)) = window_performance(
                store,
                logs,
                &bundle,
                &settings,
                l,
                &name,
                (start, end),
                fresh.as_ref(),
            )
            .await?
        {
            degraded = p.degraded;
            run.performance.push(PerformanceOutcome {
                run: name.clone(),
                labelled: p.labelled,
                metric: p.metric,
                value: p.value,
                test_value: p.test_value,
                degraded,
                updated,
            });
        }
        if in_span {
            streak.push((report.verdict.dataset_drift, degraded));
        }
    }
    if streak.len() >= settings.consecutive && streak.iter().all(|(d, p)| *d || *p) {
        // One request per streak: named by the window that completed it, and only when no
        // request was written for an overlapping streak.
        let first = last_end - settings.consecutive as i64 * w;
        let mut recent = false;
        for i in 0..settings.consecutive {
            let k = retrain_key(model, &run_name(first + i as i64 * w));
            recent |= store.head(&k).await?.is_some();
        }
        if !recent {
            let (what, label) = if streak.iter().all(|(d, _)| *d) {
                ("dataset drift", "drift")
            } else if streak.iter().all(|(_, p)| *p) {
                ("live performance below its rule", "performance")
            } else {
                ("dataset drift or live performance below its rule", "drift")
            };
            let name = run_name(last_end - w);
            let key = retrain_key(model, &name);
            let request = RetrainRequest {
                model: model.to_string(),
                snapshot: None,
                reason: Some(format!(
                    "{label}: {what} in {} consecutive {} windows up to {name}",
                    settings.consecutive, settings.window
                )),
            };
            let body = serde_json::to_vec(&request).map_err(|e| DriftError::Invalid {
                key: key.clone(),
                message: e.to_string(),
            })?;
            if let storage::Created::Created(_) = store.put_if_absent(&key, body).await? {
                telemetry::record_retrain(model, label);
            }
            run.retrain_request = Some(key);
        }
    }
    Ok(run)
}

/// The window's verdicts as gauges (the newest window checked wins).
fn record_metrics(report: &Report) {
    for f in report.features.iter().chain(&report.prediction) {
        let test = serde_json::to_value(f.test)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        telemetry::record_drift_feature(&report.model, &f.feature, &test, f.score, f.drifted);
    }
    if report.verdict.judged {
        telemetry::record_dataset_drift(
            &report.model,
            report.verdict.dataset_drift,
            report.verdict.drift_share,
        );
    }
}

/// The retrain request key for a streak completed by window `run`.
pub fn retrain_key(model: &str, run: &str) -> String {
    records::keys::retrain_request(model, run)
}

/// The drift stage: on its schedule (or a delayed-label upload), every model with a
/// champion is checked at the event's time; logs come from each model's `[drift] logs`
/// store, else from `logs`, else from the pipeline store.
#[derive(Debug, Clone, Default)]
pub struct Drift {
    pub logs: Option<Store>,
}

/// Every model a check concerned, and what it found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct DriftRun(pub Vec<ModelRun>);

impl stage::Output for DriftRun {
    fn summary(&self) -> stage::Summary {
        let rows: usize = self
            .0
            .iter()
            .flat_map(|r| r.checked.iter().map(|w| w.rows))
            .sum();
        let unchecked = self.0.iter().any(|r| {
            r.checked.is_empty()
                && r.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("not checked"))
        });
        stage::Summary {
            outcome: if unchecked {
                stage::RunOutcome::Rejected
            } else {
                stage::RunOutcome::Committed
            },
            rows_in: Some(rows as u64),
            ..stage::Summary::default()
        }
    }
}

impl stage::Handler for Drift {
    const STAGE: stage::Stage = stage::Stage::Drift;
    type Output = DriftRun;
    type Error = DriftError;

    fn subject(&self, _: &Event) -> String {
        "_models".into()
    }

    async fn handle(&self, store: &Store, event: &Event) -> Result<DriftRun, DriftError> {
        let now_us = match event {
            Event::Schedule { at } => at.timestamp_micros(),
            Event::Object(_) => chrono::Utc::now().timestamp_micros(),
        };
        let logs = self.logs.as_ref().unwrap_or(store);
        check_models(store, logs, now_us).await.map(DriftRun)
    }
}

/// Every model with a champion, checked at `now_us`, through the stage runner (run record,
/// telemetry) as the scheduled stage runs it.
pub async fn check_all(
    store: &Store,
    default_logs: &Store,
    now_us: i64,
) -> Result<Vec<ModelRun>, DriftError> {
    let stage = Drift {
        logs: Some(default_logs.clone()),
    };
    let at = chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    stage::run(&stage, store, &Event::Schedule { at })
        .await
        .map(|run| run.0)
}

/// Every model with a champion, checked at `now_us`; each model's logs come from its
/// `[drift] logs` store when set, else from `default_logs`.
pub async fn check_models(
    store: &Store,
    default_logs: &Store,
    now_us: i64,
) -> Result<Vec<ModelRun>, DriftError> {
    let mut out = Vec::new();
    let mut opened: BTreeMap<String, Store> = BTreeMap::new();
    for model in registry::models(store).await? {
        // One model's bad settings or data must not stop the others' checks; a store
        // failure fails the run so it is retried.
        let failed = |e: DriftError| -> Result<ModelRun, DriftError> {
            if e.is_retryable() {
                return Err(e);
            }
            tracing::error!(model = %model, error = %e, "drift check failed");
            Ok(ModelRun {
                model: model.clone(),
                checked: Vec::new(),
                retrain_request: None,
                performance: Vec::new(),
                note: Some(format!("not checked: {e}")),
            })
        };
        let s = match settings(store, &model).await {
            Ok(s) => s,
            Err(e) => {
                out.push(failed(e)?);
                continue;
            }
        };
        let logs = match &s.logs {
            Some(url) => match opened.get(url) {
                Some(l) => l.clone(),
                None => match Store::open(url) {
                    Ok(l) => {
                        opened.insert(url.clone(), l.clone());
                        l
                    }
                    Err(e) => {
                        out.push(failed(DriftError::Config {
                            file: format!("definitions/training/{model}"),
                            message: format!(
                                "[drift] logs = {}: {e}",
                                url.split('?').next().unwrap_or_default()
                            ),
                        })?);
                        continue;
                    }
                },
            },
            None => default_logs.clone(),
        };
        match check_model(store, &logs, &model, now_us).await {
            Ok(run) => out.push(run),
            Err(e) => out.push(failed(e)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use registry::{Input, NewVersion, ObjectRef};

    use super::*;

    #[tokio::test]
    async fn a_model_that_cannot_be_checked_does_not_stop_the_run() {
        let store = Store::memory();
        let missing = |key: &str| ObjectRef {
            key: key.into(),
            sha256: String::new(),
        };
        let new = NewVersion {
            task: "binary-classification".into(),
            family: "gbm".into(),
            inputs: vec![Input {
                name: "x".into(),
                ty: "f32".into(),
                width: None,
            }],
            classes: vec!["0".into(), "1".into()],
            threshold: Some(0.5),
            feature_view: "v".into(),
            feature_view_version: "abc".into(),
            feature_spec: missing("features/v/v=abc/spec.json"),
            dataset_snapshot: "s".into(),
            reference_profile: missing("features/v/profiles/p.parquet"),
            training_run: "r".into(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            joined_views: Vec::new(),
            training_table: None,
        };
        let reg = registry::register(&store, "m", b"onnx", new).await.unwrap();
        registry::move_alias(
            &store,
            "m",
            "champion",
            reg.bundle().version,
            None,
            "t",
            "t",
        )
        .await
        .unwrap();
        let runs = check_all(&store, &store, 3_600_000_000).await.unwrap();
        assert_eq!(runs.len(), 1);
        let note = runs[0].note.as_deref().unwrap();
        assert!(
            note.starts_with("not checked") && note.contains("spec.json"),
            "{note}"
        );
        assert!(runs[0].checked.is_empty());
    }
}
