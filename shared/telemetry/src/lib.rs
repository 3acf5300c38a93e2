//! Telemetry for every stage and the native server.
//!
//! Libraries record through the OpenTelemetry API only (the functions here); without an
//! installed provider every call is a no-op, so unit tests and embedders pay nothing. The
//! binaries turn on the `sdk` feature and call [`sdk::init`], which installs the providers:
//! OTLP export of traces and metrics when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the
//! Prometheus text the native server serves at `/metrics`.
//!
//! Names and labels are in [`names`]; the Grafana dashboard and the Prometheus rules under
//! `infra/monitoring/` are checked against that list.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// Every metric mlpipe emits (defined in `records::metrics`, where the edge reads it too).
pub use records::metrics as names;
#[cfg(feature = "sdk")]
pub mod sdk;

/// The instrumentation scope of every mlpipe instrument.
pub const SCOPE: &str = "mlpipe";

tokio::task_local! {
    static STAGE: &'static str;
}

/// Runs `fut` as stage `stage`: the bytes the store moves meanwhile count for it.
pub async fn stage_scope<F: Future>(stage: &'static str, fut: F) -> F::Output {
    STAGE.scope(stage, fut).await
}

/// The stage the current task runs (`none` outside [`stage_scope`]).
pub fn current_stage() -> &'static str {
    STAGE.try_with(|s| *s).unwrap_or("none")
}

struct Instruments {
    stage_runs: Counter<u64>,
    stage_rows: Counter<u64>,
    stage_bytes: Counter<u64>,
    stage_duration: Histogram<f64>,
    stage_peak_memory: Gauge<u64>,
    inference_requests: Counter<u64>,
    inference_rows: Counter<u64>,
    inference_model_errors: Counter<u64>,
    inference_latency: Histogram<f64>,
    retrain_requests: Counter<u64>,
    drift_score: Gauge<f64>,
    drift_feature: Gauge<u64>,
    dataset_drift: Gauge<u64>,
    drift_share: Gauge<f64>,
    live_metric: Gauge<f64>,
    test_metric: Gauge<f64>,
}

fn help(name: &str) -> &'static str {
    names::help(name)
}

fn counter(m: &Meter, name: &'static str) -> Counter<u64> {
    m.u64_counter(name).with_description(help(name)).build()
}

fn gauge_f64(m: &Meter, name: &'static str) -> Gauge<f64> {
    m.f64_gauge(name).with_description(help(name)).build()
}

fn gauge_u64(m: &Meter, name: &'static str) -> Gauge<u64> {
    m.u64_gauge(name).with_description(help(name)).build()
}

/// Stage durations run from milliseconds (an idempotent skip) to the 15-minute Lambda limit.
const STAGE_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
];
use names::LATENCY_BUCKETS;

/// Built on first use from the global provider, so [`sdk::init`] must run before any record.
fn instruments() -> &'static Instruments {
    static I: OnceLock<Instruments> = OnceLock::new();
    I.get_or_init(|| {
        let m = opentelemetry::global::meter(SCOPE);
        Instruments {
            stage_runs: counter(&m, names::STAGE_RUNS),
            stage_rows: counter(&m, names::STAGE_ROWS),
            stage_bytes: counter(&m, names::STAGE_BYTES),
            stage_duration: m
                .f64_histogram(names::STAGE_DURATION)
                .with_description(help(names::STAGE_DURATION))
                .with_boundaries(STAGE_BUCKETS.to_vec())
                .build(),
            stage_peak_memory: gauge_u64(&m, names::STAGE_PEAK_MEMORY),
            inference_requests: counter(&m, names::INFERENCE_REQUESTS),
            inference_rows: counter(&m, names::INFERENCE_ROWS),
            inference_model_errors: counter(&m, names::INFERENCE_MODEL_ERRORS),
            inference_latency: m
                .f64_histogram(names::INFERENCE_LATENCY)
                .with_description(help(names::INFERENCE_LATENCY))
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build(),
            retrain_requests: counter(&m, names::RETRAIN_REQUESTS),
            drift_score: gauge_f64(&m, names::DRIFT_SCORE),
            drift_feature: gauge_u64(&m, names::DRIFT_FEATURE_DRIFTED),
            dataset_drift: gauge_u64(&m, names::DRIFT_DATASET_DRIFT),
            drift_share: gauge_f64(&m, names::DRIFT_SHARE),
            live_metric: gauge_f64(&m, names::LIVE_METRIC),
            test_metric: gauge_f64(&m, names::TEST_METRIC),
        }
    })
}

/// Bytes read from or written to the store by the current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Written,
}

pub fn record_bytes(direction: Direction, bytes: u64) {
    let d = match direction {
        Direction::Read => "read",
        Direction::Written => "written",
    };
    instruments().stage_bytes.add(
        bytes,
        &[
            KeyValue::new("stage", current_stage()),
            KeyValue::new("direction", d),
        ],
    );
}

/// One stage invocation, as its run record describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageRun<'a> {
    pub stage: &'a str,
    /// `committed`, `already-done`, `skipped`, `rejected` or `failed` (run-record words).
    pub outcome: &'a str,
    pub duration: Duration,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
    pub rows_rejected: Option<u64>,
    pub peak_memory_bytes: Option<u64>,
}

/// The metric word for a run-record outcome: `ok`, `skipped`, `rejected` or `failed`.
pub fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "committed" | "ok" | "published" | "checked" => "ok",
        "already-done" | "skipped" => "skipped",
        "rejected" => "rejected",
        _ => "failed",
    }
}

pub fn record_stage(run: &StageRun) {
    let i = instruments();
    let stage = KeyValue::new("stage", run.stage.to_string());
    i.stage_runs.add(
        1,
        &[
            stage.clone(),
            KeyValue::new("outcome", outcome_label(run.outcome)),
        ],
    );
    i.stage_duration
        .record(run.duration.as_secs_f64(), std::slice::from_ref(&stage));
    for (kind, n) in [
        ("in", run.rows_in),
        ("out", run.rows_out),
        ("rejected", run.rows_rejected),
    ] {
        if let Some(n) = n {
            i.stage_rows
                .add(n, &[stage.clone(), KeyValue::new("kind", kind)]);
        }
    }
    if let Some(peak) = run.peak_memory_bytes {
        i.stage_peak_memory.record(peak, &[stage]);
    }
}

/// The process's peak resident memory (`VmHWM`), where the OS reports it (Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// One inference request: its model (`-` when the path named none), HTTP status, records
/// predicted and the time to answer.
pub fn record_inference(model: &str, status: u16, rows: usize, latency: Duration) {
    let i = instruments();
    let m = KeyValue::new("model", model.to_string());
    i.inference_requests
        .add(1, &[m.clone(), KeyValue::new("status", status.to_string())]);
    if rows > 0 {
        i.inference_rows.add(rows as u64, std::slice::from_ref(&m));
    }
    // A 500 is the model failing to run (the edge counts it the same way).
    if status == 500 {
        i.inference_model_errors.add(1, std::slice::from_ref(&m));
    }
    i.inference_latency.record(latency.as_secs_f64(), &[m]);
}

/// One feature's verdict in the latest window.
pub fn record_drift_feature(
    model: &str,
    feature: &str,
    test: &str,
    score: Option<f64>,
    drifted: bool,
) {
    let i = instruments();
    if let Some(s) = score.filter(|s| s.is_finite()) {
        i.drift_score.record(
            s,
            &[
                KeyValue::new("model", model.to_string()),
                KeyValue::new("feature", feature.to_string()),
                KeyValue::new("test", test.to_string()),
            ],
        );
    }
    i.drift_feature.record(
        u64::from(drifted),
        &[
            KeyValue::new("model", model.to_string()),
            KeyValue::new("feature", feature.to_string()),
        ],
    );
}

/// The dataset verdict of the latest judged window.
pub fn record_dataset_drift(model: &str, drifted: bool, share: f64) {
    let i = instruments();
    let m = [KeyValue::new("model", model.to_string())];
    i.dataset_drift.record(u64::from(drifted), &m);
    i.drift_share.record(share, &m);
}

/// A retrain request written (`reason`: `drift` or `performance`).
pub fn record_retrain(model: &str, reason: &str) {
    instruments().retrain_requests.add(
        1,
        &[
            KeyValue::new("model", model.to_string()),
            KeyValue::new("reason", reason.to_string()),
        ],
    );
}

/// The live metric of the latest labelled window beside the model's test metric.
pub fn record_live_metric(model: &str, metric: &str, live: f64, test: Option<f64>) {
    let i = instruments();
    let attrs = [
        KeyValue::new("model", model.to_string()),
        KeyValue::new("metric", metric.to_string()),
    ];
    if live.is_finite() {
        i.live_metric.record(live, &attrs);
    }
    if let Some(t) = test.filter(|t| t.is_finite()) {
        i.test_metric.record(t, &attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_word_maps_to_a_label_the_rules_know() {
        for (word, label) in [
            ("committed", "ok"),
            ("already-done", "skipped"),
            ("rejected", "rejected"),
            ("failed", "failed"),
            ("something new", "failed"),
        ] {
            assert_eq!(outcome_label(word), label);
        }
    }

    #[tokio::test]
    async fn the_stage_scope_names_the_stage_for_nested_calls() {
        assert_eq!(current_stage(), "none");
        let inner = stage_scope("ingest", async { current_stage() }).await;
        assert_eq!(inner, "ingest");
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().is_some_and(|b| b > 1 << 20));
        }
    }

    #[test]
    fn names_are_unique_and_prometheus_legal() {
        let mut seen = std::collections::BTreeSet::new();
        for m in names::ALL {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == names::Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
        }
    }
}
