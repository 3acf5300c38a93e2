//! Request metrics for the edge runtimes (the Worker, the Spin component), which cannot run
//! the OpenTelemetry SDK: counted here per instance and exported as OTLP/HTTP protobuf
//! (`POST {endpoint}/v1/metrics`, `application/x-protobuf`), the form an OpenTelemetry
//! Collector and Prometheus' OTLP receiver take. The metric names, labels and latency
//! buckets are the native server's (`records::metrics`), so the dashboard and the alert
//! rules in `infra/monitoring/` read edge and native traffic alike.
//!
//! Sums and histograms are cumulative since the instance started (its start time is each
//! point's `start_time_unix_nano`) and every instance reports under its own
//! `service.instance.id`, so a restarted isolate is a counter reset, never a double count.
//! The messages below are the subset of `opentelemetry/proto/metrics/v1` and
//! `collector/metrics/v1` this exporter writes, with their field numbers.

use std::collections::BTreeMap;

use records::metrics::{
    INFERENCE_LATENCY, INFERENCE_MODEL_ERRORS, INFERENCE_REQUESTS, INFERENCE_ROWS, LATENCY_BUCKETS,
    help,
};

/// What one instance counted since it started.
#[derive(Debug, Clone)]
pub struct EdgeMetrics {
    start_us: i64,
    last_export_us: i64,
    requests: BTreeMap<(String, u16), u64>,
    rows: BTreeMap<String, u64>,
    model_errors: BTreeMap<String, u64>,
    latency: BTreeMap<String, Latency>,
}

#[derive(Debug, Clone)]
struct Latency {
    /// One count per bucket of [`LATENCY_BUCKETS`], then the overflow (+Inf) bucket.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl EdgeMetrics {
    /// Counting from `start_us` (microseconds since the epoch).
    pub fn new(start_us: i64) -> EdgeMetrics {
        EdgeMetrics {
            start_us,
            last_export_us: start_us,
            requests: BTreeMap::new(),
            rows: BTreeMap::new(),
            model_errors: BTreeMap::new(),
            latency: BTreeMap::new(),
        }
    }

    /// One answered request: the model its path names (`-` for none), the status, the
    /// records predicted and the time to answer. A 500 is a model error (the model could
    /// not be run); other statuses are the caller's or a limit's.
    pub fn record(&mut self, model: &str, status: u16, rows: usize, latency_s: f64) {
        *self.requests.entry((model.into(), status)).or_default() += 1;
        if rows > 0 {
            *self.rows.entry(model.into()).or_default() += rows as u64;
        }
        if status == 500 {
            *self.model_errors.entry(model.into()).or_default() += 1;
        }
        let l = self.latency.entry(model.into()).or_insert_with(|| Latency {
            buckets: vec![0; LATENCY_BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        });
        let latency_s = if latency_s.is_finite() {
            latency_s.max(0.0)
        } else {
            0.0
        };
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| latency_s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        l.buckets[i] += 1;
        l.sum += latency_s;
        l.count += 1;
    }

    /// The export request when `every_us` has passed since the last export (0: always)
    /// and something was counted; marks it exported.
    pub fn due(
        &mut self,
        now_us: i64,
        every_us: i64,
        resource: &[(&str, &str)],
    ) -> Option<Vec<u8>> {
        if self.requests.is_empty() || now_us.saturating_sub(self.last_export_us) < every_us {
            return None;
        }
        self.last_export_us = now_us;
        Some(self.encode(now_us, resource))
    }

    /// `ExportMetricsServiceRequest` with every series, as protobuf bytes.
    pub fn encode(&self, now_us: i64, resource: &[(&str, &str)]) -> Vec<u8> {
        use prost::Message as _;
        let start = nanos(self.start_us);
        let now = nanos(now_us);
        let point = |attributes: Vec<pb::KeyValue>, value: u64| pb::NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: now,
            as_int: Some(i64::try_from(value).unwrap_or(i64::MAX)),
        };
        let sum = |name: &str, points: Vec<pb::NumberDataPoint>| pb::Metric {
            name: name.into(),
            description: help(name).into(),
            unit: String::new(),
            sum: Some(pb::Sum {
                data_points: points,
                aggregation_temporality: CUMULATIVE,
                is_monotonic: true,
            }),
            histogram: None,
        };
        let model = |m: &str| attr("model", m);
        let mut metrics = vec![
            sum(
                INFERENCE_REQUESTS,
                self.requests
                    .iter()
                    .map(|((m, s), n)| point(vec![model(m), attr("status", &s.to_string())], *n))
                    .collect(),
            ),
            pb::Metric {
                name: INFERENCE_LATENCY.into(),
                description: help(INFERENCE_LATENCY).into(),
                unit: String::new(),
                sum: None,
                histogram: Some(pb::Histogram {
                    data_points: self
                        .latency
                        .iter()
                        .map(|(m, l)| pb::HistogramDataPoint {
                            attributes: vec![model(m)],
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            count: l.count,
                            sum: Some(l.sum),
                            bucket_counts: l.buckets.clone(),
                            explicit_bounds: LATENCY_BUCKETS.to_vec(),
                        })
                        .collect(),
                    aggregation_temporality: CUMULATIVE,
                }),
            },
        ];
        if !self.rows.is_empty() {
            metrics.push(sum(
                INFERENCE_ROWS,
                self.rows
                    .iter()
                    .map(|(m, n)| point(vec![model(m)], *n))
                    .collect(),
            ));
        }
        if !self.model_errors.is_empty() {
            metrics.push(sum(
                INFERENCE_MODEL_ERRORS,
                self.model_errors
                    .iter()
                    .map(|(m, n)| point(vec![model(m)], *n))
                    .collect(),
            ));
        }
        pb::ExportMetricsServiceRequest {
            resource_metrics: vec![pb::ResourceMetrics {
                resource: Some(pb::Resource {
                    attributes: resource.iter().map(|(k, v)| attr(k, v)).collect(),
                }),
                scope_metrics: vec![pb::ScopeMetrics {
                    scope: Some(pb::InstrumentationScope {
                        name: "mlpipe-edge".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                    }),
                    metrics,
                }],
            }],
        }
        .encode_to_vec()
    }
}

/// The model label of a request: the model its path names, or `-`.
pub fn model_label(method: &str, path: &str) -> String {
    match crate::service::route(method, path) {
        Ok(r) => r.protected().flatten().unwrap_or("-").to_string(),
        Err(_) => "-".into(),
    }
}

/// The URL metrics are posted to: the OTLP base endpoint with `/v1/metrics` appended, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read by every OpenTelemetry SDK.
pub fn metrics_url(endpoint: &str) -> String {
    format!("{}/v1/metrics", endpoint.trim_end_matches('/'))
}

/// `OTEL_EXPORTER_OTLP_HEADERS` (`k1=v1,k2=v2`, values percent-decoded where they can be)
/// as header pairs; malformed entries are skipped.
pub fn otlp_headers(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

const CUMULATIVE: i32 = 2;

fn nanos(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0).saturating_mul(1_000)
}

fn attr(key: &str, value: &str) -> pb::KeyValue {
    pb::KeyValue {
        key: key.into(),
        value: Some(pb::AnyValue {
            string_value: Some(value.into()),
        }),
    }
}

/// The OTLP messages written, field numbers as in opentelemetry-proto (v1).
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceMetrics {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeMetrics {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `AnyValue`'s `string_value` arm of its `oneof` (the only one written).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
    }

    /// `Metric` with its `sum` (7) and `histogram` (9) arms of the `data` oneof.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(string, tag = "3")]
        pub unit: String,
        #[prost(message, optional, tag = "7")]
        pub sum: Option<Sum>,
        #[prost(message, optional, tag = "9")]
        pub histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sum {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
        #[prost(bool, tag = "3")]
        pub is_monotonic: bool,
    }

    /// `NumberDataPoint` with the `as_int` (6) arm of its `value` oneof.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NumberDataPoint {
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(sfixed64, optional, tag = "6")]
        pub as_int: Option<i64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<HistogramDataPoint>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramDataPoint {
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(fixed64, tag = "4")]
        pub count: u64,
        #[prost(double, optional, tag = "5")]
        pub sum: Option<f64>,
        #[prost(fixed64, repeated, tag = "6")]
        pub bucket_counts: Vec<u64>,
        #[prost(double, repeated, tag = "7")]
        pub explicit_bounds: Vec<f64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn requests_are_counted_by_model_and_status_with_the_native_buckets() {
        let mut m = EdgeMetrics::new(1_000_000);
        m.record("fraud", 200, 8, 0.003);
        m.record("fraud", 200, 1, 7.0);
        m.record("fraud", 500, 0, 0.001);
        m.record("-", 404, 0, 0.0001);
        assert!(m.due(1_500_000, 10_000_000, &[]).is_none(), "not yet due");
        let bytes = m
            .due(20_000_000, 10_000_000, &[("service.name", "t")])
            .unwrap();
        assert!(
            m.due(20_000_001, 10_000_000, &[]).is_none(),
            "just exported"
        );
        let req = pb::ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let by_name = |n: &str| metrics.iter().find(|x| x.name == n).unwrap();
        let requests = by_name(INFERENCE_REQUESTS).sum.as_ref().unwrap();
        assert!(requests.is_monotonic);
        assert_eq!(requests.data_points.len(), 3);
        let ok = requests
            .data_points
            .iter()
            .find(|p| {
                p.attributes
                    .iter()
                    .any(|a| a.value.as_ref().unwrap().string_value.as_deref() == Some("200"))
            })
            .unwrap();
        assert_eq!(ok.as_int, Some(2));
        assert_eq!(ok.start_time_unix_nano, 1_000_000_000);
        let h = &by_name(INFERENCE_LATENCY)
            .histogram
            .as_ref()
            .unwrap()
            .data_points;
        let fraud = h
            .iter()
            .find(|p| {
                p.attributes[0]
                    .value
                    .as_ref()
                    .unwrap()
                    .string_value
                    .as_deref()
                    == Some("fraud")
            })
            .unwrap();
        assert_eq!(fraud.count, 3);
        assert_eq!(fraud.bucket_counts.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(
            *fraud.bucket_counts.last().unwrap(),
            1,
            "7 s is past the last bound"
        );
        assert_eq!(fraud.bucket_counts.iter().sum::<u64>(), 3);
        let errors = by_name(INFERENCE_MODEL_ERRORS).sum.as_ref().unwrap();
        assert_eq!(errors.data_points[0].as_int, Some(1));
        assert_eq!(
            by_name(INFERENCE_ROWS).sum.as_ref().unwrap().data_points[0].as_int,
            Some(9)
        );
    }

    #[test]
    fn labels_endpoints_and_headers_read_as_the_sdk_reads_them() {
        assert_eq!(model_label("POST", "/v2/models/fraud/infer"), "fraud");
        assert_eq!(model_label("GET", "/v2/health/live"), "-");
        assert_eq!(model_label("GET", "/nope"), "-");
        assert_eq!(metrics_url("http://c:4318/"), "http://c:4318/v1/metrics");
        assert_eq!(
            otlp_headers("Authorization=Bearer%20x, api-key=k=v,bad"),
            vec![
                ("Authorization".to_string(), "Bearer x".to_string()),
                ("api-key".to_string(), "k=v".to_string())
            ]
        );
    }
}
