//! Every metric mlpipe emits, with its labels: the single list the dashboards, the alert
//! rules and their test are checked against. Names are the Prometheus names as exposed at
//! the native server's `/metrics` (and as Prometheus' OTLP receiver stores them). Here, in
//! the wasm-safe records crate, so the edge runtimes (which cannot run the OpenTelemetry
//! SDK) emit the same names; `telemetry::names` re-exports it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const STAGE_RUNS: &str = "mlpipe_stage_runs_total";
pub const STAGE_ROWS: &str = "mlpipe_stage_rows_total";
pub const STAGE_BYTES: &str = "mlpipe_stage_bytes_total";
pub const STAGE_DURATION: &str = "mlpipe_stage_duration_seconds";
pub const STAGE_PEAK_MEMORY: &str = "mlpipe_stage_peak_memory_bytes";
pub const INFERENCE_REQUESTS: &str = "mlpipe_inference_requests_total";
pub const INFERENCE_ROWS: &str = "mlpipe_inference_rows_total";
pub const INFERENCE_LATENCY: &str = "mlpipe_inference_latency_seconds";
pub const INFERENCE_MODEL_ERRORS: &str = "mlpipe_inference_model_errors_total";
pub const RETRAIN_REQUESTS: &str = "mlpipe_retrain_requests_total";
pub const DRIFT_SCORE: &str = "mlpipe_drift_score";
pub const DRIFT_FEATURE_DRIFTED: &str = "mlpipe_drift_feature_drifted";
pub const DRIFT_DATASET_DRIFT: &str = "mlpipe_drift_dataset_drift";
pub const DRIFT_SHARE: &str = "mlpipe_drift_share";
pub const LIVE_METRIC: &str = "mlpipe_live_metric";
pub const TEST_METRIC: &str = "mlpipe_test_metric";

pub const ALL: &[Metric] = &[
    Metric {
        name: STAGE_RUNS,
        kind: Kind::Counter,
        labels: &["stage", "outcome"],
        help: "Stage invocations by outcome (ok, skipped, rejected, failed).",
    },
    Metric {
        name: STAGE_ROWS,
        kind: Kind::Counter,
        labels: &["stage", "kind"],
        help: "Rows a stage read (in), wrote (out) or rejected to quarantine (rejected).",
    },
    Metric {
        name: STAGE_BYTES,
        kind: Kind::Counter,
        labels: &["stage", "direction"],
        help: "Object bytes a stage read or wrote.",
    },
    Metric {
        name: STAGE_DURATION,
        kind: Kind::Histogram,
        labels: &["stage"],
        help: "Wall time of a stage invocation, in seconds.",
    },
    Metric {
        name: STAGE_PEAK_MEMORY,
        kind: Kind::Gauge,
        labels: &["stage"],
        help: "Peak resident memory of the process after a stage invocation, in bytes.",
    },
    Metric {
        name: INFERENCE_REQUESTS,
        kind: Kind::Counter,
        labels: &["model", "status"],
        help: "Inference requests by model and HTTP status.",
    },
    Metric {
        name: INFERENCE_ROWS,
        kind: Kind::Counter,
        labels: &["model"],
        help: "Records predicted.",
    },
    Metric {
        name: INFERENCE_LATENCY,
        kind: Kind::Histogram,
        labels: &["model"],
        help: "Time to answer an inference request (parse, features, model, encode), in seconds.",
    },
    Metric {
        name: INFERENCE_MODEL_ERRORS,
        kind: Kind::Counter,
        labels: &["model"],
        help: "Inference requests whose model could not be run (answered 500).",
    },
    Metric {
        name: RETRAIN_REQUESTS,
        kind: Kind::Counter,
        labels: &["model", "reason"],
        help: "Retrain requests written by the drift stage (reason: drift or performance).",
    },
    Metric {
        name: DRIFT_SCORE,
        kind: Kind::Gauge,
        labels: &["model", "feature", "test"],
        help: "Latest window's drift score per feature: the p-value (ks, chisquare) or the distance.",
    },
    Metric {
        name: DRIFT_FEATURE_DRIFTED,
        kind: Kind::Gauge,
        labels: &["model", "feature"],
        help: "1 when the feature drifted in the latest window.",
    },
    Metric {
        name: DRIFT_DATASET_DRIFT,
        kind: Kind::Gauge,
        labels: &["model"],
        help: "1 when the latest judged window drifted as a dataset.",
    },
    Metric {
        name: DRIFT_SHARE,
        kind: Kind::Gauge,
        labels: &["model"],
        help: "Share of tested features that drifted in the latest window.",
    },
    Metric {
        name: LIVE_METRIC,
        kind: Kind::Gauge,
        labels: &["model", "metric"],
        help: "The model's metric on labelled predictions of the latest window with labels.",
    },
    Metric {
        name: TEST_METRIC,
        kind: Kind::Gauge,
        labels: &["model", "metric"],
        help: "The serving model's metric on its test split at training time.",
    },
];

/// The metric called `name`, if mlpipe emits it.
pub fn find(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|m| m.name == name)
}

/// The help text of `name` (empty for a name not in [`ALL`]).
pub fn help(name: &str) -> &'static str {
    find(name).map_or("", |m| m.help)
}

/// Upper bounds of the inference latency histogram, in seconds: inference answers in well
/// under a millisecond to a few hundred. The native server and the edge use the same.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
