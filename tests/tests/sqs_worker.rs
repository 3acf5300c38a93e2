//! S3 -> SQS -> worker: moto's S3 sends its own event notifications to moto's SQS, and
//! `mlpipe worker` consumes them, exactly like a deployment that routes S3 events through a
//! queue. The key in those events is URL-encoded, as on AWS; the object here has a space and
//! a plus in its name to prove the decoding.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;

use contracts::LoadedProject;
use mlpipe::pipeline;
use mlpipe::sqs::{Credentials, Queue};
use serde_json::json;
use storage::Store;
use tests::Moto;

/// A signed SQS request to moto (moto routes unsigned requests to S3).
async fn sqs(moto: &Moto, action: &str, body: serde_json::Value) -> serde_json::Value {
    let client = Queue::with_credentials(
        &format!("{}/", moto.endpoint()),
        credentials(),
        Some("us-east-1".into()),
    )
    .unwrap();
    client
        .request(action, body)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e:#}"))
}

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_consumes_s3_notifications_from_sqs() {
    let moto = Moto::start();
    let bucket = "mlpipe-events";
    moto.create_bucket(bucket).await;
    let created = sqs(&moto, "CreateQueue", json!({"QueueName": "ingest-events"})).await;
    let queue_url = created["QueueUrl"].as_str().unwrap().to_string();
    let attrs = sqs(
        &moto,
        "GetQueueAttributes",
        json!({"QueueUrl": queue_url, "AttributeNames": ["QueueArn"]}),
    )
    .await;
    let queue_arn = attrs["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_string();
    let notification = format!(
        "<NotificationConfiguration><QueueConfiguration><Id>ingest</Id><Queue>{queue_arn}</Queue>\
         <Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>raw/</Value></FilterRule></S3Key></Filter>\
         </QueueConfiguration></NotificationConfiguration>"
    );
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}?notification", moto.endpoint()))
        .body(notification)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "put notification: {}",
        response.status()
    );

    let store = Store::open(&moto.store_url(bucket)).unwrap();
    let mut project = LoadedProject::load(&tests::repo_root().join("examples/fraud")).unwrap();
    // Too few rows to train on: this test is about the store and its events.
    project.project.training.clear();
    project.training_files.clear();
    pipeline::push_project(&store, &project).await.unwrap();
    // Uploaded by a plain S3 client, not through mlpipe: only moto's own event reaches us.
    let mut csv = Vec::new();
    mlpipe::sample::generate(
        &mlpipe::sample::SampleOptions {
            rows: 1000,
            bad_rows: 3,
            ..Default::default()
        },
        &mut csv,
    )
    .unwrap();
    let key = "raw/transactions/day 1+2.csv";
    store.put(key, csv).await.unwrap();

    let queue = Queue::with_credentials(
        &queue_url,
        Credentials::new("testing", "testing", None, None, "test"),
        Some("us-east-1".into()),
    )
    .unwrap();
    let mut seen = Vec::new();
    let stats = mlpipe::worker::run(
        &store,
        &queue,
        Some(Duration::from_secs(3)),
        Default::default(),
        |d| seen.push(d.clone()),
    )
    .await
    .unwrap();
    assert!(stats.messages >= 1, "{stats:?}");
    assert_eq!(stats.failed, 0, "{seen:?}");
    let ingest = seen
        .iter()
        .find(|d| d.key == key)
        .unwrap_or_else(|| panic!("no delivery for the decoded key: {seen:?}"));
    assert_eq!(ingest.result["outcome"], "committed");
    let state = pipeline::dataset_state(&store, "transactions")
        .await
        .unwrap();
    assert_eq!(state.versions.len(), 1);
    assert_eq!(state.rows_quarantined, 3);
    // The queue was drained: nothing left to redeliver.
    let left = sqs(
        &moto,
        "ReceiveMessage",
        json!({"QueueUrl": queue_url, "WaitTimeSeconds": 0}),
    )
    .await;
    assert!(
        left.get("Messages")
            .is_none_or(|m| m.as_array().is_some_and(|a| a.is_empty())),
        "{left}"
    );
}
