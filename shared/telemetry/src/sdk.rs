//! The providers, for binaries: logs through `tracing`, traces and metrics over OTLP
//! (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set, and
//! the Prometheus text exposition for servers that are scraped.
//!
//! The Prometheus side is a push exporter that renders each collection to text (the
//! `opentelemetry-prometheus` crate is discontinued upstream); a scrape forces a collection
//! first, so `/metrics` is never older than the request.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// JSON lines without timestamps (CloudWatch adds them): Lambda functions.
    LambdaJson,
    /// JSON lines: batch jobs and servers.
    Json,
    /// Human-readable lines on stderr at `default_level` unless `MLPIPE_LOG` sets a filter.
    Stderr { default_level: &'static str },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `service.name` of every span and metric.
    pub service: &'static str,
    pub logs: Logs,
    /// Keep a Prometheus text rendering (servers scraped at `/metrics`).
    pub prometheus: bool,
    /// OTLP base URL (`/v1/metrics` and `/v1/traces` are appended); `None`: the standard
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT` variables decide.
    pub otlp_endpoint: Option<String>,
}

impl Options {
    pub fn new(service: &'static str, logs: Logs) -> Options {
        Options {
            service,
            logs,
            prometheus: false,
            otlp_endpoint: None,
        }
    }
}

/// The installed providers; flush them before the process (or a Lambda invocation) ends.
#[derive(Debug, Clone)]
pub struct Telemetry {
    meter: SdkMeterProvider,
    tracer: Option<SdkTracerProvider>,
    prometheus: Option<Arc<Mutex<String>>>,
    /// Where OTLP goes, if anywhere.
    pub otlp: Option<String>,
}

fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

/// This process: the Lambda sandbox's log stream, else the host name and process id.
fn instance_id() -> String {
    std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            format!("{host}-{}", std::process::id())
        })
}

/// Installs the global tracing subscriber and the OpenTelemetry providers. A bad OTLP
/// setting is reported on stderr and leaves that export off: telemetry never stops a stage.
pub fn init(options: Options) -> Telemetry {
    let resource = Resource::builder()
        .with_service_name(options.service)
        .with_attributes([
            KeyValue::new("service.namespace", "mlpipe"),
            // Concurrent Lambda sandboxes (or replicas) must not write the same series.
            KeyValue::new("service.instance.id", instance_id()),
        ])
        .build();
    use opentelemetry_otlp::WithExportConfig as _;
    let explicit = options
        .otlp_endpoint
        .as_deref()
        .map(|e| e.trim_end_matches('/').to_string());
    let otlp = explicit.clone().or_else(otlp_endpoint);
    let mut meter = SdkMeterProvider::builder().with_resource(resource.clone());
    let mut tracer = None;
    if otlp.is_some() {
        let mut metrics = opentelemetry_otlp::MetricExporter::builder().with_http();
        let mut spans = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(base) = &explicit {
            metrics = metrics.with_endpoint(format!("{base}/v1/metrics"));
            spans = spans.with_endpoint(format!("{base}/v1/traces"));
        }
        match metrics.build() {
            Ok(exporter) => meter = meter.with_periodic_exporter(exporter),
            Err(e) => eprintln!("telemetry: OTLP metrics are off: {e}"),
        }
        match spans.build() {
            Ok(exporter) => {
                tracer = Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(resource)
                        .build(),
                )
            }
            Err(e) => eprintln!("telemetry: OTLP traces are off: {e}"),
        }
    }
    let prometheus = options.prometheus.then(|| {
        let text = Arc::new(Mutex::new(String::new()));
        let reader = PeriodicReader::builder(PrometheusText(text.clone()))
            .with_interval(Duration::from_secs(60))
            .build();
        meter = std::mem::replace(&mut meter, SdkMeterProvider::builder()).with_reader(reader);
        text
    });
    let meter = meter.build();
    opentelemetry::global::set_meter_provider(meter.clone());
    if let Some(t) = &tracer {
        opentelemetry::global::set_tracer_provider(t.clone());
    }

    // Each layer filters for itself: the log level a user picks for stderr (`warn` by
    // default on the CLI) must not decide which spans reach OTLP, or the stages' info spans
    // were never exported unless the logs were verbose too.
    let otel_layer = tracer.as_ref().map(|t| {
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer(crate::SCOPE))
            .with_filter(LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(otel_layer);
    // A subscriber set already (tests, an embedding program) is kept.
    let _ = match options.logs {
        Logs::LambdaJson => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_target(false)
                    .without_time()
                    .with_filter(
                        EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                    ),
            )
            .try_init(),
        Logs::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_target(false)
                    .with_filter(
                        EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                    ),
            )
            .try_init(),
        Logs::Stderr { default_level } => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(
                        EnvFilter::try_from_env("MLPIPE_LOG")
                            .unwrap_or_else(|_| default_level.into()),
                    ),
            )
            .try_init(),
    };
    Telemetry {
        meter,
        tracer,
        prometheus,
        otlp,
    }
}

impl Telemetry {
    /// Exports what is pending (a Lambda must call this before its invocation returns:
    /// the sandbox may freeze before the next periodic export). Blocking.
    pub fn flush(&self) {
        if let Err(e) = self.meter.force_flush() {
            tracing::debug!(error = %e, "metrics flush");
        }
        if let Some(t) = &self.tracer
            && let Err(e) = t.force_flush()
        {
            tracing::debug!(error = %e, "traces flush");
        }
    }

    /// [`Telemetry::flush`] off the async threads.
    pub async fn flush_async(&self) {
        let t = self.clone();
        let _ = tokio::task::spawn_blocking(move || t.flush()).await;
    }

    /// Runs one invocation of `stage` (a Lambda event, a batch job): in the stage's scope and
    /// span, then exports its telemetry before returning, since a Lambda sandbox may freeze
    /// (or end) right after.
    pub async fn invocation<F: std::future::Future>(
        &self,
        stage: &'static str,
        fut: F,
    ) -> F::Output {
        let span = tracing::info_span!("invocation", stage);
        let out = crate::stage_scope(stage, tracing::Instrument::instrument(fut, span)).await;
        self.flush_async().await;
        out
    }

    /// The current metrics in the Prometheus text format (0.0.4), collected now; `None`
    /// unless [`Options::prometheus`] was set. Blocking.
    pub fn prometheus_text(&self) -> Option<String> {
        let text = self.prometheus.as_ref()?;
        let _ = self.meter.force_flush();
        Some(text.lock().map(|t| t.clone()).unwrap_or_default())
    }

    /// Flushes and stops the providers.
    pub fn shutdown(&self) {
        let _ = self.meter.shutdown();
        if let Some(t) = &self.tracer {
            let _ = t.shutdown();
        }
    }
}

/// Renders each collection as Prometheus text into the shared string.
#[derive(Debug)]
struct PrometheusText(Arc<Mutex<String>>);

impl PushMetricExporter for PrometheusText {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let text = render(metrics);
        if let Ok(mut t) = self.0.lock() {
            *t = text;
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_name(k: &str) -> String {
    k.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().to_string(),
        other => other.to_string(),
    }
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = attrs
        .map(|kv| {
            format!(
                "{}=\"{}\"",
                label_name(kv.key.as_str()),
                escape(&value_text(&kv.value))
            )
        })
        .collect();
    parts.sort();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{x}")
    }
}

/// Prometheus text of one collection: counters and gauges as samples, histograms as
/// cumulative `_bucket{le}` plus `_sum` and `_count`.
pub fn render(metrics: &ResourceMetrics) -> String {
    trait AsF64: Copy {
        fn as_f64(self) -> f64;
    }
    impl AsF64 for f64 {
        fn as_f64(self) -> f64 {
            self
        }
    }
    impl AsF64 for u64 {
        fn as_f64(self) -> f64 {
            self as f64
        }
    }
    impl AsF64 for i64 {
        fn as_f64(self) -> f64 {
            self as f64
        }
    }
    fn data<T: AsF64>(out: &mut String, name: &str, help: &str, d: &MetricData<T>) {
        let kind = match d {
            MetricData::Gauge(_) => "gauge",
            MetricData::Sum(s) if s.is_monotonic() => "counter",
            MetricData::Sum(_) => "gauge",
            MetricData::Histogram(_) => "histogram",
            MetricData::ExponentialHistogram(_) => return,
        };
        let _ = writeln!(out, "# HELP {name} {}", help.replace('\n', " "));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        match d {
            MetricData::Gauge(g) => {
                for p in g.data_points() {
                    let v = p.value().as_f64();
                    let _ = writeln!(out, "{name}{} {}", labels(p.attributes(), None), number(v));
                }
            }
            MetricData::Sum(s) => {
                for p in s.data_points() {
                    let v = p.value().as_f64();
                    let _ = writeln!(out, "{name}{} {}", labels(p.attributes(), None), number(v));
                }
            }
            MetricData::Histogram(h) => {
                for p in h.data_points() {
                    let mut cumulative = 0u64;
                    let bounds: Vec<f64> = p.bounds().collect();
                    for (i, c) in p.bucket_counts().enumerate() {
                        cumulative += c;
                        let le = bounds.get(i).map_or("+Inf".to_string(), |b| number(*b));
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {cumulative}",
                            labels(p.attributes(), Some(("le", le)))
                        );
                    }
                    let sum = p.sum().as_f64();
                    let l = labels(p.attributes(), None);
                    let _ = writeln!(out, "{name}_sum{l} {}", number(sum));
                    let _ = writeln!(out, "{name}_count{l} {}", p.count());
                }
            }
            MetricData::ExponentialHistogram(_) => {}
        }
    }
    let mut out = String::new();
    for scope in metrics.scope_metrics() {
        for m in scope.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => data(&mut out, m.name(), m.description(), d),
                AggregatedMetrics::U64(d) => data(&mut out, m.name(), m.description(), d),
                AggregatedMetrics::I64(d) => data(&mut out, m.name(), m.description(), d),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// One process, one global provider: the Prometheus text and the OTLP export are checked
    /// in the same test, against a real HTTP listener standing in for a collector.
    #[test]
    fn prometheus_text_and_otlp_export_carry_the_recorded_values() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<(String, usize)>();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                // Read the head, then the body by Content-Length.
                loop {
                    let n = s.read(&mut chunk).unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len || n == 0 {
                            let first = text.lines().next().unwrap_or_default().to_string();
                            let _ = tx.send((first, buf.len() - end - 4));
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                );
            }
        });
        let t = init(Options {
            prometheus: true,
            otlp_endpoint: Some(format!("http://{addr}")),
            ..Options::new("telemetry-test", Logs::Json)
        });
        assert!(t.otlp.is_some());
        crate::record_stage(&crate::StageRun {
            stage: "ingest",
            outcome: "committed",
            duration: Duration::from_millis(1500),
            rows_in: Some(120),
            rows_out: Some(117),
            rows_rejected: Some(3),
            peak_memory_bytes: Some(42 << 20),
        });
        crate::record_inference("fraud", 200, 4, Duration::from_micros(800));
        crate::record_drift_feature("fraud", "amount", "wasserstein", Some(0.31), true);
        {
            let span = tracing::info_span!("stage", stage = "ingest");
            let _g = span.enter();
            tracing::info!("inside a span");
        }
        let text = t.prometheus_text().unwrap();
        for line in [
            "# TYPE mlpipe_stage_runs_total counter",
            "mlpipe_stage_runs_total{outcome=\"ok\",stage=\"ingest\"} 1",
            "mlpipe_stage_rows_total{kind=\"rejected\",stage=\"ingest\"} 3",
            "mlpipe_stage_duration_seconds_bucket{stage=\"ingest\",le=\"1\"} 0",
            "mlpipe_stage_duration_seconds_bucket{stage=\"ingest\",le=\"2.5\"} 1",
            "mlpipe_stage_duration_seconds_bucket{stage=\"ingest\",le=\"+Inf\"} 1",
            "mlpipe_stage_duration_seconds_count{stage=\"ingest\"} 1",
            "mlpipe_stage_peak_memory_bytes{stage=\"ingest\"} 44040192",
            "mlpipe_inference_requests_total{model=\"fraud\",status=\"200\"} 1",
            "mlpipe_inference_rows_total{model=\"fraud\"} 4",
            "mlpipe_drift_score{feature=\"amount\",model=\"fraud\",test=\"wasserstein\"} 0.31",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        t.flush();
        // Both signals reach the collector, each a non-empty protobuf body.
        let mut seen = std::collections::BTreeMap::new();
        while seen.len() < 2 {
            let (first, body) = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("the collector got only {seen:?}"));
            let path = first
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            assert!(body > 0, "{first}: empty body");
            seen.insert(path, body);
        }
        assert_eq!(
            seen.keys().collect::<Vec<_>>(),
            ["/v1/metrics", "/v1/traces"],
            "{seen:?}"
        );
    }
}
