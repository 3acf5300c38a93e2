//! A minimal SQS consumer (ReceiveMessage / DeleteMessage over the AWS JSON protocol, SigV4
//! signed with `aws-sigv4` through `online::aws`) for `mlpipe worker --queue URL`: the way a deployment with
//! S3 -> SQS -> function consumes events, runnable on one machine against real SQS or moto.
//!
//! Credentials and region come from the usual `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN` and `AWS_REGION` / `AWS_DEFAULT_REGION` variables.

use anyhow::{Context, Result};
use online::aws::AwsJsonClient;
pub use online::aws::Credentials;
use serde::Deserialize;
use serde_json::{Value, json};

/// One received message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

/// An SQS queue addressed by its URL.
pub struct Queue {
    client: AwsJsonClient,
    url: String,
}

impl Queue {
    /// A queue using credentials and region from the environment.
    pub fn new(url: &str) -> Result<Queue> {
        Queue::with_credentials(
            url,
            online::aws::env_credentials()?,
            online::aws::env_region(),
        )
    }

    /// A queue with explicit credentials; `region` defaults to the one in an AWS queue URL,
    /// else `us-east-1`.
    pub fn with_credentials(
        url: &str,
        credentials: Credentials,
        region: Option<String>,
    ) -> Result<Queue> {
        let parsed = url::Url::parse(url)
            .with_context(|| format!("queue URL '{}'", storage::redact_url(url)))?;
        let host = parsed.host_str().context("queue URL has no host")?;
        let endpoint = match parsed.port() {
            Some(p) => format!("{}://{host}:{p}/", parsed.scheme()),
            None => format!("{}://{host}/", parsed.scheme()),
        };
        let region = region
            .or_else(|| {
                host.split('.')
                    .nth(1)
                    .filter(|r| r.contains('-'))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Queue {
            client: AwsJsonClient::new(&endpoint, &region, "sqs", "AmazonSQS", credentials),
            url: url.to_string(),
        })
    }

    /// Sends one signed SQS JSON-protocol request (`AmazonSQS.<action>`) to the queue's endpoint.
    pub async fn request(&self, action: &str, body: Value) -> Result<Value> {
        self.client
            .request(action, &body)
            .await
            .with_context(|| format!("queue {}", self.url))
    }

    /// Long-polls for up to `wait_seconds` (0-20) and returns up to 10 messages.
    pub async fn receive(&self, wait_seconds: u32) -> Result<Vec<Message>> {
        let reply = self
            .request("ReceiveMessage", json!({"QueueUrl": self.url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": wait_seconds.min(20)}))
            .await?;
        match reply.get("Messages") {
            Some(m) => Ok(serde_json::from_value(m.clone())?),
            None => Ok(Vec::new()),
        }
    }

    /// Acknowledges a message so it is not delivered again.
    pub async fn delete(&self, receipt_handle: &str) -> Result<()> {
        self.request(
            "DeleteMessage",
            json!({"QueueUrl": self.url, "ReceiptHandle": receipt_handle}),
        )
        .await?;
        Ok(())
    }
}
