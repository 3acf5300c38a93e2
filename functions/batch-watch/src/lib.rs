//! The training queue's watcher. A Batch job that no instance can run (no GPU quota, no
//! capacity of the instance type, a subnet without a route) waits in `RUNNABLE` without an
//! error, and Batch publishes no queue metric; so a small function keeps each job's latest
//! state from Batch's "Job State Change" events and, on a schedule, reports the jobs that
//! have waited in `RUNNABLE` longer than a threshold as a CloudWatch metric, written as one
//! embedded-metric-format (EMF) log line per queue, which an alarm reads
//! (terraform/modules/training, `aws_cloudwatch_metric_alarm.runnable`).
//!
//! State is one small record per job under `records::keys::BATCH_WATCH` in the pipeline
//! store. EventBridge does not promise order, so an event only replaces a record when it is
//! newer (event time, then the order of Batch's states); a job that ends is deleted a day
//! later, so that a late `RUNNABLE` event cannot bring it back meanwhile.
//!
//! The logic is plain functions over the events AWS sends
//! (`functions/batch-watch/tests/fixtures`, in the shape of AWS's published sample); `handle` is the invocation the Lambda binary makes when
//! `MLPIPE_STAGE=batch-watch`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage::Store;

/// `MLPIPE_STAGE` of the watcher's function (it is not a pipeline stage: nothing in the
/// store starts it).
pub const FUNCTION: &str = "batch-watch";

/// The metric the alarm reads: jobs waiting in `RUNNABLE` longer than the threshold.
pub const METRIC_WAITING: &str = "TrainingJobsRunnableTooLong";
/// The longest wait in `RUNNABLE` of any job now waiting, in seconds.
pub const METRIC_OLDEST: &str = "OldestRunnableSeconds";

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("not a Batch job state change or a scheduled event: {0}")]
    Unrecognised(String),
    #[error("Batch event without {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] storage::StorageError),
    #[error("record {key}: {source}")]
    Record {
        key: String,
        source: serde_json::Error,
    },
}

/// One job's latest known state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub job_id: String,
    pub job_name: String,
    /// The queue's name (the last part of its ARN).
    pub queue: String,
    /// What the job was started for: its `key` parameter (the triggering object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: String,
    /// When the job entered `status` (the event's time).
    pub since: DateTime<Utc>,
}

impl JobState {
    /// Batch's states in the order a job moves through them; a retried attempt goes back
    /// to `RUNNABLE` later in time, which the event time orders.
    fn rank(&self) -> u8 {
        match self.status.as_str() {
            "SUBMITTED" => 0,
            "PENDING" => 1,
            "RUNNABLE" => 2,
            "STARTING" => 3,
            "RUNNING" => 4,
            _ => 5, // SUCCEEDED, FAILED
        }
    }

    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "SUCCEEDED" | "FAILED")
    }

    /// Whether this event should replace `current`: a later event, or at the same second
    /// (events carry whole seconds) a later state.
    pub fn supersedes(&self, current: Option<&JobState>) -> bool {
        current.is_none_or(|c| (self.since, self.rank()) > (c.since, c.rank()))
    }
}

/// What one invocation carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    StateChange(JobState),
    Schedule { time: DateTime<Utc> },
}

/// Reads an EventBridge event: Batch's "Job State Change" or a "Scheduled Event".
pub fn parse(event: &Value) -> Result<Input, WatchError> {
    let time = event["time"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    match (event["source"].as_str(), event["detail-type"].as_str()) {
        (Some("aws.batch"), Some("Batch Job State Change")) => {
            let detail = &event["detail"];
            let text = |field: &'static str| {
                detail[field]
                    .as_str()
                    .map(str::to_string)
                    .ok_or(WatchError::Missing(field))
            };
            let queue = text("jobQueue")?;
            Ok(Input::StateChange(JobState {
                job_id: text("jobId")?,
                job_name: text("jobName")?,
                queue: queue.rsplit('/').next().unwrap_or(&queue).to_string(),
                key: detail["parameters"]["key"].as_str().map(str::to_string),
                status: text("status")?,
                since: time.ok_or(WatchError::Missing("time"))?,
            }))
        }
        (Some("aws.events"), Some("Scheduled Event")) => Ok(Input::Schedule {
            time: time.ok_or(WatchError::Missing("time"))?,
        }),
        (source, kind) => Err(WatchError::Unrecognised(format!(
            "source {source:?}, detail-type {kind:?}"
        ))),
    }
}

/// Jobs waiting too long in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub queue: String,
    /// Jobs in `RUNNABLE` for longer than the threshold.
    pub jobs: usize,
    /// The longest `RUNNABLE` wait of any job in the queue, in seconds (0: none waiting).
    pub oldest_seconds: i64,
    /// Ids of the jobs counted in `jobs`.
    pub job_ids: Vec<String>,
}

/// Per queue, what has waited in `RUNNABLE` longer than `threshold` at `now`. `queues`
/// are reported even with nothing waiting, so the metric has a value (0) every period.
pub fn overdue(
    states: &[JobState],
    queues: &[String],
    now: DateTime<Utc>,
    threshold: Duration,
) -> Vec<Waiting> {
    let none = |queue: &str| Waiting {
        queue: queue.to_string(),
        jobs: 0,
        oldest_seconds: 0,
        job_ids: Vec::new(),
    };
    let mut out: BTreeMap<String, Waiting> = queues.iter().map(|q| (q.clone(), none(q))).collect();
    for state in states.iter().filter(|s| s.status == "RUNNABLE") {
        let waited = now - state.since;
        let entry = out
            .entry(state.queue.clone())
            .or_insert_with(|| none(&state.queue));
        entry.oldest_seconds = entry.oldest_seconds.max(waited.num_seconds().max(0));
        if waited > threshold {
            entry.jobs += 1;
            entry.job_ids.push(state.job_id.clone());
        }
    }
    out.into_values().collect()
}

/// One EMF log line for `waiting`: CloudWatch Logs turns it into the two metrics, with the
/// queue as their dimension, in `namespace`.
pub fn emf_line(namespace: &str, waiting: &Waiting, at: DateTime<Utc>) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["JobQueue"]],
                "Metrics": [
                    { "Name": METRIC_WAITING, "Unit": "Count" },
                    { "Name": METRIC_OLDEST, "Unit": "Seconds" },
                ],
            }],
        },
        "JobQueue": waiting.queue,
        METRIC_WAITING: waiting.jobs,
        METRIC_OLDEST: waiting.oldest_seconds,
        "job_ids": waiting.job_ids,
    })
    .to_string()
}

/// The watcher's settings (from the function's environment).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Queues reported every period (`MLPIPE_BATCH_QUEUES`, comma-separated).
    pub queues: Vec<String>,
    /// How long a job may wait in `RUNNABLE` (`MLPIPE_RUNNABLE_THRESHOLD_SECONDS`, 1800).
    pub threshold: Duration,
    /// CloudWatch namespace of the metrics (`MLPIPE_METRIC_NAMESPACE`, "mlpipe").
    pub namespace: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queues: Vec::new(),
            threshold: Duration::minutes(30),
            namespace: "mlpipe".into(),
        }
    }
}

/// How long an ended job's record is kept (against late events about it).
const KEEP_ENDED: Duration = Duration::days(1);

/// One invocation: a state change updates the job's record; a schedule reports every queue
/// (one EMF line each, printed to stdout) and drops records of jobs that ended a day ago.
/// Returns a summary for the invocation's result.
pub async fn handle(
    store: &Store,
    settings: &Settings,
    event: &Value,
) -> Result<Value, WatchError> {
    match parse(event)? {
        Input::StateChange(state) => {
            let key = records::keys::batch_watch(&state.job_id);
            let current = read(store, &key).await?;
            if !state.supersedes(current.as_ref()) {
                return Ok(json!({ "job": state.job_id, "status": state.status, "kept": false }));
            }
            let body = serde_json::to_vec(&state).map_err(|source| WatchError::Record {
                key: key.clone(),
                source,
            })?;
            store.put(&key, body).await?;
            Ok(json!({ "job": state.job_id, "status": state.status, "kept": true }))
        }
        Input::Schedule { time } => {
            let mut states = Vec::new();
            for info in store.list(records::keys::BATCH_WATCH).await? {
                let Some(state) = read(store, &info.key).await? else {
                    continue;
                };
                if state.ended() && time - state.since > KEEP_ENDED {
                    store.delete(&info.key).await?;
                } else {
                    states.push(state);
                }
            }
            let report = overdue(&states, &settings.queues, time, settings.threshold);
            for waiting in &report {
                // The metric's carrier: a line of its own on stdout, not a tracing event.
                println!("{}", emf_line(&settings.namespace, waiting, time));
                if waiting.jobs > 0 {
                    tracing::warn!(
                        queue = waiting.queue,
                        jobs = waiting.jobs,
                        oldest_seconds = waiting.oldest_seconds,
                        "training jobs wait in RUNNABLE longer than the threshold: check the GPU quota and the compute environment"
                    );
                }
            }
            Ok(json!({ "queues": report }))
        }
    }
}

async fn read(store: &Store, key: &str) -> Result<Option<JobState>, WatchError> {
    let Some(object) = store.get_opt(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&object.bytes)
        .map(Some)
        .map_err(|source| WatchError::Record {
            key: key.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNABLE: &str = include_str!("../tests/fixtures/runnable.json");
    const STARTING: &str = include_str!("../tests/fixtures/starting.json");
    const SCHEDULE: &str =
        include_str!("../../../shared/events/tests/fixtures/eventbridge-schedule.json");

    fn event(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn at(event: &mut Value, time: &str) -> Value {
        event["time"] = json!(time);
        event.clone()
    }

    fn state(text: &str) -> JobState {
        match parse(&event(text)).unwrap() {
            Input::StateChange(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_recorded_state_change_reads_as_the_job_its_queue_and_its_key() {
        let s = state(RUNNABLE);
        assert_eq!(s.job_id, "4c7599ae-0a82-49aa-ba5a-4727fcce14a8");
        assert_eq!(s.queue, "mlpipe-dev-train");
        assert_eq!(s.status, "RUNNABLE");
        assert_eq!(
            s.key.as_deref(),
            Some("features/card_activity/v=a367451e/_manifest.json")
        );
        assert_eq!(s.since.to_rfc3339(), "2026-12-05T10:00:00+00:00");
        assert!(matches!(
            parse(&event(SCHEDULE)).unwrap(),
            Input::Schedule { .. }
        ));
        let s3 = include_str!("../../../shared/events/tests/fixtures/eventbridge-s3.json");
        assert!(matches!(
            parse(&event(s3)),
            Err(WatchError::Unrecognised(_))
        ));
        let mut broken = event(RUNNABLE);
        broken["detail"].as_object_mut().unwrap().remove("jobId");
        assert!(matches!(parse(&broken), Err(WatchError::Missing("jobId"))));
    }

    #[test]
    fn a_late_event_does_not_undo_a_newer_one() {
        let runnable = state(RUNNABLE);
        let starting = state(STARTING);
        assert!(runnable.supersedes(None));
        assert!(starting.supersedes(Some(&runnable)));
        // RUNNABLE delivered after STARTING, with its older time, is ignored.
        assert!(!runnable.supersedes(Some(&starting)));
        // The same second: the later state wins.
        let mut same = starting.clone();
        same.since = runnable.since;
        assert!(same.supersedes(Some(&runnable)));
        assert!(!runnable.supersedes(Some(&same)));
        // A retry goes back to RUNNABLE later in time: that counts.
        let mut retry = runnable.clone();
        retry.since = starting.since + Duration::minutes(5);
        assert!(retry.supersedes(Some(&starting)));
    }

    #[test]
    fn only_jobs_waiting_longer_than_the_threshold_count_and_every_queue_is_reported() {
        let waiting = state(RUNNABLE);
        let mut fresh = waiting.clone();
        fresh.job_id = "fresh".into();
        fresh.since = waiting.since + Duration::minutes(25);
        let mut started = waiting.clone();
        started.job_id = "started".into();
        started.status = "RUNNING".into();
        let now = waiting.since + Duration::minutes(31);
        let queues = vec!["mlpipe-dev-train".to_string(), "other".to_string()];
        let report = overdue(
            &[waiting.clone(), fresh, started],
            &queues,
            now,
            Duration::minutes(30),
        );
        assert_eq!(report.len(), 2);
        assert_eq!(report[0].queue, "mlpipe-dev-train");
        assert_eq!(report[0].jobs, 1);
        assert_eq!(report[0].job_ids, vec![waiting.job_id.clone()]);
        assert_eq!(report[0].oldest_seconds, 31 * 60);
        assert_eq!((report[1].jobs, report[1].oldest_seconds), (0, 0));
        // At 29 minutes nothing is overdue yet, though the wait is reported.
        let early = overdue(
            &[waiting],
            &queues,
            now - Duration::minutes(2),
            Duration::minutes(30),
        );
        assert_eq!((early[0].jobs, early[0].oldest_seconds), (0, 29 * 60));
    }

    #[test]
    fn the_metric_line_is_cloudwatch_embedded_metric_format() {
        let w = Waiting {
            queue: "mlpipe-dev-train".into(),
            jobs: 2,
            oldest_seconds: 4000,
            job_ids: vec!["a".into(), "b".into()],
        };
        let at = DateTime::parse_from_rfc3339("2026-12-05T11:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let line: Value = serde_json::from_str(&emf_line("mlpipe", &w, at)).unwrap();
        let meta = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], json!(at.timestamp_millis()));
        assert_eq!(meta["Namespace"], "mlpipe");
        assert_eq!(meta["Dimensions"], json!([["JobQueue"]]));
        // Every metric and dimension named in the metadata is a member of the root object.
        for name in meta["Metrics"].as_array().unwrap() {
            assert!(line[name["Name"].as_str().unwrap()].is_number(), "{line}");
        }
        assert_eq!(line["JobQueue"], "mlpipe-dev-train");
        assert_eq!(line[METRIC_WAITING], 2);
        assert_eq!(line[METRIC_OLDEST], 4000);
    }

    #[tokio::test]
    async fn events_keep_each_jobs_latest_state_and_the_schedule_reports_and_forgets() {
        let store = Store::open("memory://").unwrap();
        let settings = Settings {
            queues: vec!["mlpipe-dev-train".into()],
            ..Settings::default()
        };
        let mut runnable = event(RUNNABLE);
        let mut schedule = event(SCHEDULE);
        handle(&store, &settings, &runnable).await.unwrap();
        let report = handle(
            &store,
            &settings,
            &at(&mut schedule, "2026-12-05T10:45:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(report["queues"][0]["jobs"], 1, "{report}");
        // STARTING, then the late RUNNABLE: the job is no longer waiting.
        handle(&store, &settings, &event(STARTING)).await.unwrap();
        let late = handle(
            &store,
            &settings,
            &at(&mut runnable, "2026-12-05T10:01:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(late["kept"], false);
        let report = handle(
            &store,
            &settings,
            &at(&mut schedule, "2026-12-05T11:00:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(report["queues"][0]["jobs"], 0, "{report}");
        // It ends; a day later its record is gone.
        let mut ended = event(STARTING);
        ended["detail"]["status"] = json!("SUCCEEDED");
        handle(&store, &settings, &at(&mut ended, "2026-12-05T11:30:00Z"))
            .await
            .unwrap();
        handle(
            &store,
            &settings,
            &at(&mut schedule, "2026-12-06T12:00:00Z"),
        )
        .await
        .unwrap();
        assert!(
            store
                .list(records::keys::BATCH_WATCH)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
