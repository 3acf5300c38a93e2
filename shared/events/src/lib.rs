//! Events: the one internal object-created type every handler takes, the envelopes
//! deployments deliver it in, and the routing table that says which stage runs on which key.
//!
//! Deliveries understood by [`parse_envelope`]:
//! - S3 event-notification JSON (`{"Records":[{"eventSource":"aws:s3",...}]}`), as S3 invokes a
//!   Lambda directly and as the local stack emits it;
//! - SQS events whose message bodies hold S3 notifications (S3 -> SQS -> Lambda), and raw SQS
//!   message bodies (the `mlpipe worker` queue consumer);
//! - EventBridge "Object Created" events from S3 (`source: aws.s3`);
//! - S3's `s3:TestEvent`, which yields no events.
//!
//! Keys in S3 notifications are URL-encoded (form encoding: `+` is a space); they are decoded
//! here. EventBridge carries keys as they are.
//!
//! Invariant: this crate knows no stage's code and no storage backend; it only describes
//! events and routes.

mod routing;

pub use routing::{
    Route, Stage, Target, Trigger, routes_for, routes_for_event, routes_in, routing_table,
};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The internal event: one object was created in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCreated {
    pub bucket: String,
    /// Decoded object key.
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// Orders events for one key (S3's `sequencer`), when the source provides it.
    pub sequencer: Option<String>,
    pub event_time: DateTime<Utc>,
}

/// What starts one delivery of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// An object was created.
    Object(ObjectCreated),
    /// A schedule fired (EventBridge "Scheduled Event") at `at`.
    Schedule { at: DateTime<Utc> },
}

impl Event {
    /// The created object's key, for object events.
    pub fn key(&self) -> Option<&str> {
        match self {
            Event::Object(o) => Some(&o.key),
            Event::Schedule { .. } => None,
        }
    }

    /// An object event that names only its key (what a batch job's `--key` or a direct
    /// library call knows): no bucket, size or etag, created now.
    pub fn for_key(key: &str) -> Event {
        Event::Object(ObjectCreated {
            bucket: String::new(),
            key: key.to_string(),
            size: 0,
            etag: None,
            version_id: None,
            sequencer: None,
            event_time: Utc::now(),
        })
    }

    /// What a run record names as its trigger: the key, or `schedule@<time>`.
    pub fn trigger(&self) -> String {
        match self {
            Event::Object(o) => o.key.clone(),
            Event::Schedule { at } => format!(
                "schedule@{}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        }
    }
}

/// Parses a delivery into events: a scheduled EventBridge event (`detail-type: "Scheduled
/// Event"`) is one [`Event::Schedule`]; anything else goes through [`parse_envelope`].
pub fn parse_events(value: &Value) -> Result<Vec<Event>, EventError> {
    if value.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        let at = value
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        return Ok(vec![Event::Schedule { at }]);
    }
    Ok(parse_envelope(value)?
        .into_iter()
        .map(Event::Object)
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("unrecognised event envelope: {0}")]
    Unrecognised(String),
    #[error("S3 record {index}: {message}")]
    BadRecord { index: usize, message: String },
}

/// Parses whatever a deployment delivered into internal events. Records that are not
/// object-created events (deletes, test events) are skipped.
pub fn parse_envelope(value: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        let first_source = records
            .first()
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(Value::as_str);
        return match first_source {
            Some("aws:sqs") => parse_sqs(value),
            // SNS -> Lambda wraps the S3 notification in Sns.Message.
            Some("aws:sns") => {
                let mut out = Vec::new();
                for r in records {
                    if let Some(msg) = r.pointer("/Sns/Message").and_then(Value::as_str) {
                        out.extend(parse_body(msg)?);
                    }
                }
                Ok(out)
            }
            _ => parse_s3(value),
        };
    }
    if value.get("detail-type").is_some() && value.get("source").is_some() {
        return parse_eventbridge(value);
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    // The internal type itself (used by the local stack's `--event` option and tests).
    if let Ok(event) = serde_json::from_value::<ObjectCreated>(value.clone()) {
        return Ok(vec![event]);
    }
    Err(EventError::Unrecognised(truncate(&value.to_string(), 200)))
}

/// Parses one message body (from SQS or SNS): an S3 notification, an EventBridge event or a
/// test event.
pub fn parse_body(body: &str) -> Result<Vec<ObjectCreated>, EventError> {
    let value: Value = serde_json::from_str(body)?;
    parse_envelope(&value)
}

/// The fields of an S3 notification record a handler needs. Parsed leniently (rather than
/// with `aws_lambda_events::S3EventRecord`, which requires fields such as `userIdentity`),
/// because S3-compatible servers (moto, MinIO, R2 event forwarding) omit some of them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    event_time: Option<DateTime<Utc>>,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: NameOnly,
    object: S3RecordObject,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3RecordObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    e_tag: Option<String>,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

fn parse_s3(value: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    let records = value
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (index, raw) in records.into_iter().enumerate() {
        let r: S3Record = serde_json::from_value(raw).map_err(|e| EventError::BadRecord {
            index,
            message: e.to_string(),
        })?;
        let name = r.event_name.as_deref().unwrap_or("");
        if !name.starts_with("ObjectCreated:") && !name.starts_with("s3:ObjectCreated:") {
            continue;
        }
        out.push(ObjectCreated {
            bucket: r.s3.bucket.name,
            key: decode_s3_key(&r.s3.object.key),
            size: r.s3.object.size.unwrap_or(0),
            etag: r.s3.object.e_tag,
            version_id: r.s3.object.version_id,
            sequencer: r.s3.object.sequencer,
            event_time: r.event_time.unwrap_or_else(Utc::now),
        });
    }
    Ok(out)
}

fn parse_sqs(value: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    let event: SqsEvent = serde_json::from_value(value.clone())?;
    let mut out = Vec::new();
    for message in &event.records {
        if let Some(body) = &message.body {
            out.extend(parse_body(body)?);
        }
    }
    Ok(out)
}

/// The `detail` of an S3 "Object Created" EventBridge event.
#[derive(Debug, Deserialize)]
struct S3Detail {
    bucket: NameOnly,
    object: S3DetailObject,
}

#[derive(Debug, Deserialize)]
struct NameOnly {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3DetailObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

fn parse_eventbridge(value: &Value) -> Result<Vec<ObjectCreated>, EventError> {
    let event: EventBridgeEvent<Value> = serde_json::from_value(value.clone())?;
    if event.source != "aws.s3" || event.detail_type != "Object Created" {
        return Ok(Vec::new());
    }
    let detail: S3Detail = serde_json::from_value(event.detail)?;
    Ok(vec![ObjectCreated {
        bucket: detail.bucket.name,
        key: detail.object.key,
        size: detail.object.size.unwrap_or(0),
        etag: detail.object.etag,
        version_id: detail.object.version_id,
        sequencer: detail.object.sequencer,
        event_time: event.time.unwrap_or_else(Utc::now),
    }])
}

/// Decodes an S3 notification key: form encoding, so `+` is a space and `%2B` a plus.
pub fn decode_s3_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Encodes a key the way S3 does in notifications (the inverse of [`decode_s3_key`]).
pub fn encode_s3_key(key: &str) -> String {
    const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(key, FORM)
        .to_string()
        .replace(' ', "+")
}

/// Builds the S3 event-notification JSON for one created object, exactly the shape S3 sends
/// (key URL-encoded), so the local stack exercises the same parsing path as a deployment.
pub fn s3_notification(event: &ObjectCreated) -> Value {
    let mut record = S3EventRecord::default();
    record.event_version = Some("2.1".into());
    record.event_source = Some("aws:s3".into());
    record.aws_region = Some("local".into());
    record.event_time = event.event_time;
    record.event_name = Some("ObjectCreated:Put".into());
    record.s3.schema_version = Some("1.0".into());
    record.s3.configuration_id = Some("mlpipe-local".into());
    record.s3.bucket.name = Some(event.bucket.clone());
    record.s3.bucket.arn = Some(format!("arn:aws:s3:::{}", event.bucket));
    record.s3.object.key = Some(encode_s3_key(&event.key));
    record.s3.object.size = Some(event.size as i64);
    record.s3.object.e_tag = event.etag.clone();
    record.s3.object.version_id = event.version_id.clone();
    record.s3.object.sequencer = event.sequencer.clone();
    let mut s3_event = S3Event::default();
    s3_event.records = vec![record];
    serde_json::to_value(&s3_event).unwrap_or(Value::Null)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn s3_notification_fixture_decodes_keys() {
        let events = parse_envelope(&fixture("s3-put.json")).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].bucket, "mlpipe-dev");
        assert_eq!(events[0].key, "raw/transactions/day 1+2.csv");
        assert_eq!(events[0].size, 1024);
        assert_eq!(
            events[0].etag.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn sqs_wrapped_notifications_and_test_events() {
        let events = parse_envelope(&fixture("sqs-s3.json")).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].key, "raw/transactions/2024/01/02.csv");
    }

    #[test]
    fn eventbridge_object_created() {
        let events = parse_envelope(&fixture("eventbridge-s3.json")).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].key, "raw/transactions/upload.csv");
        assert_eq!(events[0].size, 5);
    }

    /// Keys with `=`, spaces, `+`, `%` and non-ASCII characters: classic notifications
    /// carry them form-encoded (AWS: "red flower.jpg" becomes "red+flower.jpg") and are
    /// decoded; EventBridge carries them as they are (S3's EventBridge pages document no
    /// encoding, and keys such as `test+b.png` arrive literally), so they are never decoded,
    /// or `+` would become a space. The training job's `Ref::key` comes from the same
    /// `detail.object.key` through the input transformer: the raw key it reads as is.
    #[test]
    fn keys_arrive_decoded_from_notifications_and_as_they_are_from_eventbridge() {
        for key in [
            "raw/transactions/day=2026-12-05/part 1+2.csv",
            "raw/tx/%41 100% é.csv",
            "raw/données/日本.csv",
            "features/card/v=abc/_manifest.json",
        ] {
            let mut n = fixture("s3-put.json");
            n["Records"][0]["s3"]["object"]["key"] = encode_s3_key(key).into();
            assert_eq!(parse_envelope(&n).unwrap()[0].key, key, "notification");
            let mut e = fixture("eventbridge-s3.json");
            e["detail"]["object"]["key"] = key.into();
            assert_eq!(parse_envelope(&e).unwrap()[0].key, key, "EventBridge");
            // SQS around a notification: the same decoding.
            let body = n.to_string();
            let sqs = serde_json::json!({"Records": [{"messageId": "m", "receiptHandle": "r",
                "body": body, "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:1:q",
                "awsRegion": "eu-west-1"}]});
            assert_eq!(parse_envelope(&sqs).unwrap()[0].key, key, "SQS");
        }
        assert_eq!(encode_s3_key("a b+c=d"), "a+b%2Bc%3Dd");
    }

    #[test]
    fn deletes_and_test_events_are_skipped() {
        let mut v = fixture("s3-put.json");
        v["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
        assert!(parse_envelope(&v).unwrap().is_empty());
        let test: Value =
            serde_json::json!({"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"});
        assert!(parse_envelope(&test).unwrap().is_empty());
        assert!(parse_envelope(&serde_json::json!({"hello": 1})).is_err());
    }

    /// S3-compatible servers (moto here) omit fields AWS always sends, such as `userIdentity`.
    #[test]
    fn minimal_records_from_s3_compatible_servers() {
        let v = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-26T10:00:00.000Z",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "raw/tx/a%3Ab.csv", "size": 3}}
        }]});
        let events = parse_envelope(&v).unwrap();
        assert_eq!(events[0].key, "raw/tx/a:b.csv");
        let broken = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]});
        assert!(matches!(
            parse_envelope(&broken),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn local_notifications_round_trip() {
        let event = ObjectCreated {
            bucket: "b".into(),
            key: "raw/tx/a b+c%d é.csv".into(),
            size: 3,
            etag: Some("e".into()),
            version_id: None,
            sequencer: None,
            event_time: Utc::now(),
        };
        let json = s3_notification(&event);
        let encoded = json["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
        assert!(!encoded.contains(' '), "{encoded}");
        assert_eq!(parse_envelope(&json).unwrap(), vec![event]);
    }
}
