//! The delivery half of `cargo xtask soak`: many uploads to an S3 server whose object-created
//! notifications go to SQS, every notification delivered twice, consumed by several
//! `mlpipe worker` loops at once. SQS promises at-least-once delivery and S3 uploads arrive
//! in bursts; this is the run that shows both together commit each version exactly once and
//! leave nothing in a dead-letter path. Not used by the pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use contracts::LoadedProject;
use records::keys as zones;
use serde_json::{Value, json};
use storage::Store;

use crate::sqs::{Credentials, Queue};
use crate::stack::Delivery;

/// What [`uploads`] is asked to do.
#[derive(Debug, Clone)]
pub struct UploadSoak {
    /// The S3 and SQS endpoint (moto serves both), `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub uploads: usize,
    /// Concurrent worker loops consuming the queue.
    pub workers: usize,
    /// Rows per uploaded file.
    pub rows: usize,
    /// The project pushed before the uploads (its feature views and training runs are
    /// dropped: this run is about events and commits).
    pub project: PathBuf,
    /// The dataset the files are uploaded to (`raw/<dataset>/`); the sample generator
    /// writes the fraud project's `transactions`.
    pub dataset: String,
}

/// One delivery as the soak tallies it.
#[derive(Debug, Clone)]
struct Seen {
    stage: String,
    key: String,
    ok: bool,
    retryable: bool,
    outcome: String,
}

impl Seen {
    fn of(d: &Delivery) -> Seen {
        Seen {
            stage: d.stage.name().to_string(),
            key: d.key.clone(),
            ok: d.ok,
            retryable: d.retryable,
            outcome: d.result["outcome"]
                .as_str()
                .unwrap_or(if d.ok { "ok" } else { "error" })
                .to_string(),
        }
    }
}

/// Seconds a received message stays hidden from the other workers.
const VISIBILITY_S: u64 = 30;

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "soak")
}

fn queue(url: &str) -> Result<Queue> {
    Queue::with_credentials(url, credentials(), Some("us-east-1".into()))
}

/// Runs the delivery soak and returns its figures as one JSON object; an error when a
/// version was committed twice or not at all, when anything reached a dead-letter path, or
/// when the queue was not drained.
pub async fn uploads(opts: &UploadSoak) -> Result<Value> {
    ensure!(
        opts.endpoint.starts_with("http://127.0.0.1:"),
        "the soak only targets loopback servers, not {}",
        opts.endpoint
    );
    let started = Instant::now();
    let endpoint = opts.endpoint.trim_end_matches('/').to_string();
    let bucket = "mlpipe-soak";
    let http = reqwest::Client::new();
    let created = http.put(format!("{endpoint}/{bucket}")).send().await?;
    ensure!(
        created.status().is_success(),
        "creating bucket {bucket}: {}",
        created.status()
    );
    let admin = queue(&format!("{endpoint}/"))?;
    let dead = admin
        .request("CreateQueue", json!({"QueueName": "soak-dead-letters"}))
        .await?;
    let dead_url = dead["QueueUrl"]
        .as_str()
        .context("CreateQueue gave no QueueUrl")?
        .to_string();
    let dead_arn = queue_arn(&admin, &dead_url).await?;
    // Five receives before a message counts as dead, as a deployment's redrive policy sets.
    let events = admin
        .request(
            "CreateQueue",
            json!({
                "QueueName": "soak-events",
                "Attributes": {
                    "VisibilityTimeout": VISIBILITY_S.to_string(),
                    "RedrivePolicy": json!({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "5"}).to_string(),
                }
            }),
        )
        .await?;
    let events_url = events["QueueUrl"]
        .as_str()
        .context("CreateQueue gave no QueueUrl")?
        .to_string();
    let events_arn = queue_arn(&admin, &events_url).await?;
    let notification = format!(
        "<NotificationConfiguration><QueueConfiguration><Id>ingest</Id><Queue>{events_arn}</Queue>\
         <Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>raw/</Value></FilterRule></S3Key></Filter>\
         </QueueConfiguration></NotificationConfiguration>"
    );
    let put = http
        .put(format!("{endpoint}/{bucket}?notification"))
        .body(notification)
        .send()
        .await?;
    ensure!(
        put.status().is_success(),
        "setting the bucket's notifications: {}",
        put.status()
    );

    let store = Store::open(&format!(
        "s3://{bucket}?endpoint={endpoint}&region=us-east-1&access_key_id=testing&secret_access_key=testing"
    ))?;
    let mut project = LoadedProject::load(&opts.project)
        .with_context(|| format!("loading project {}", opts.project.display()))?;
    // Ingest only: the stage whose commits are counted. With the feature views on, every
    // commit recomputes them over all versions so far, and moto (Python) serving those reads
    // made 200 uploads take over ten minutes; the feature stage's idempotence under
    // redelivery is the crash matrix's.
    project.project.training.clear();
    project.training_files.clear();
    project.feature_files.clear();
    crate::pipeline::push_project(&store, &project).await?;
    let dataset = opts.dataset.clone();
    ensure!(
        project.contracts.contains_key(&dataset),
        "the project has no contract for dataset {dataset}"
    );

    // The uploads, 16 at a time, each file different (its own seed and day).
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..opts.uploads {
        let (store, gate, dataset, rows) =
            (store.clone(), gate.clone(), dataset.clone(), opts.rows);
        puts.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut csv = Vec::new();
            crate::sample::generate(
                &crate::sample::SampleOptions {
                    rows,
                    seed: 1_000 + i as u64,
                    bad_rows: 1,
                    days: 1,
                    start: chrono::DateTime::from_timestamp(1_767_225_600 + i as i64 * 86_400, 0)
                        .unwrap_or_default(),
                },
                &mut csv,
            )?;
            store
                .put(&format!("raw/{dataset}/soak-{i:04}.csv"), csv)
                .await?;
            anyhow::Ok(())
        });
    }
    while let Some(r) = puts.join_next().await {
        r??;
    }
    let uploaded_s = started.elapsed().as_secs_f64();

    // Every notification twice: take each one off the queue once, send its body back twice
    // (the second copies in reverse order, so a file's two deliveries meet different
    // workers at about the same time), then drop the original.
    let mut originals: BTreeMap<String, (String, String)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while originals.len() < opts.uploads {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} notifications reached the queue in 60 s",
                originals.len(),
                opts.uploads
            );
        }
        let reply = admin
            .request(
                "ReceiveMessage",
                json!({"QueueUrl": events_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "VisibilityTimeout": 600}),
            )
            .await?;
        for m in reply["Messages"].as_array().into_iter().flatten() {
            let (Some(id), Some(body), Some(handle)) = (
                m["MessageId"].as_str(),
                m["Body"].as_str(),
                m["ReceiptHandle"].as_str(),
            ) else {
                continue;
            };
            originals.insert(id.to_string(), (body.to_string(), handle.to_string()));
        }
    }
    let bodies: Vec<&String> = originals.values().map(|(b, _)| b).collect();
    for body in bodies.iter().chain(bodies.iter().rev()) {
        admin
            .request(
                "SendMessage",
                json!({"QueueUrl": events_url, "MessageBody": body}),
            )
            .await?;
    }
    let events = queue(&events_url)?;
    for (_, handle) in originals.values() {
        events.delete(handle).await?;
    }

    // The workers, each its own loop on its own connection, until the queue stays empty.
    let consumed = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.workers.max(1) {
        let (store, q) = (store.clone(), queue(&events_url)?);
        workers.spawn(async move {
            let mut seen = Vec::new();
            let stats = crate::worker::run(
                &store,
                &q,
                // Past the visibility timeout: a message kept for a retry comes back
                // before the workers give up on the queue.
                Some(Duration::from_secs(VISIBILITY_S + 10)),
                Default::default(),
                |d| seen.push(Seen::of(d)),
            )
            .await?;
            anyhow::Ok((stats, seen))
        });
    }
    let mut seen = Vec::new();
    let mut messages = 0;
    while let Some(r) = workers.join_next().await {
        let (stats, s) = r??;
        messages += stats.messages;
        seen.extend(s);
    }
    let consumed_s = consumed.elapsed().as_secs_f64();

    // The checks.
    let mut per_stage: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for s in &seen {
        *per_stage
            .entry(s.stage.clone())
            .or_default()
            .entry(s.outcome.clone())
            .or_default() += 1;
    }
    let permanent: Vec<&Seen> = seen.iter().filter(|s| !s.ok && !s.retryable).collect();
    let retried = seen.iter().filter(|s| !s.ok && s.retryable).count();
    let committed: Vec<&str> = seen
        .iter()
        .filter(|s| s.stage == "ingest" && s.outcome == "committed")
        .map(|s| s.key.as_str())
        .collect();
    let committed_keys: BTreeSet<&str> = committed.iter().copied().collect();
    let state = crate::pipeline::dataset_state(&store, &dataset).await?;
    let dead_letters = store.list(zones::DEAD_LETTERS).await?.len();
    let left = queue_depth(&admin, &events_url).await?;
    let dead_queue = queue_depth(&admin, &dead_url).await?;
    let figures = json!({
        "uploads": opts.uploads,
        "workers": opts.workers,
        "rows_per_file": opts.rows,
        "messages_sent": opts.uploads * 2,
        "messages_received": messages,
        "deliveries": seen.len(),
        "per_stage": per_stage,
        "retried_deliveries": retried,
        "permanent_failures": permanent.len(),
        "versions_committed": committed.len(),
        "distinct_files_committed": committed_keys.len(),
        "dataset_versions": state.versions.len(),
        "dead_letter_records": dead_letters,
        "dead_letter_queue": dead_queue,
        "queue_left": left,
        "upload_s": uploaded_s,
        "consume_s": consumed_s,
    });
    let mut problems = Vec::new();
    if committed.len() != opts.uploads || committed_keys.len() != opts.uploads {
        problems.push(format!(
            "{} commits of {} distinct files for {} uploads",
            committed.len(),
            committed_keys.len(),
            opts.uploads
        ));
    }
    if state.versions.len() != opts.uploads {
        problems.push(format!(
            "the dataset has {} versions for {} uploads",
            state.versions.len(),
            opts.uploads
        ));
    }
    if let Some(p) = permanent.first() {
        problems.push(format!(
            "{} deliveries failed for good, the first {} {} ({})",
            permanent.len(),
            p.stage,
            p.key,
            p.outcome
        ));
    }
    if dead_letters + dead_queue > 0 || left > 0 {
        problems.push(format!(
            "{dead_letters} dead-letter records, {dead_queue} messages in the dead-letter queue, {left} left on the queue"
        ));
    }
    if !problems.is_empty() {
        bail!("{}; figures: {figures}", problems.join("; "));
    }
    Ok(figures)
}

async fn queue_arn(admin: &Queue, url: &str) -> Result<String> {
    let attrs = admin
        .request(
            "GetQueueAttributes",
            json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
        )
        .await?;
    Ok(attrs["Attributes"]["QueueArn"]
        .as_str()
        .context("GetQueueAttributes gave no QueueArn")?
        .to_string())
}

/// Messages on a queue, visible or in flight.
async fn queue_depth(admin: &Queue, url: &str) -> Result<usize> {
    let attrs = admin
        .request(
            "GetQueueAttributes",
            json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
        )
        .await?;
    let n = |name: &str| -> usize {
        attrs["Attributes"][name]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"))
}
