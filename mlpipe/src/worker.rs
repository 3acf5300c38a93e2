//! `mlpipe worker`: the local stack fed by an SQS queue of S3 event notifications, the way a
//! deployment with S3 -> SQS -> function runs.

use std::time::{Duration, Instant};

use anyhow::Result;
use storage::Store;

use crate::sqs::Queue;
use crate::stack::{Delivery, LocalStack};

/// Counters for one worker run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub messages: u64,
    pub deliveries: u64,
    pub failed: u64,
}

/// Consumes `queue` until interrupted, or until no message arrived for `idle_exit`.
///
/// A message is deleted once every delivery it caused succeeded or failed for good (a bad
/// file is reported in quarantine; retrying cannot fix it). When a retryable failure remains
/// after the stack's own retries, the message stays on the queue and SQS redelivers it after
/// its visibility timeout; handlers are idempotent, so redelivery is safe.
pub async fn run(
    store: &Store,
    queue: &Queue,
    idle_exit: Option<Duration>,
    settings: handlers::Settings,
    mut on_delivery: impl FnMut(&Delivery),
) -> Result<WorkerStats> {
    let stack = LocalStack::new(store).with_settings(settings);
    let mut stats = WorkerStats::default();
    let mut idle_since = Instant::now();
    loop {
        if idle_exit.is_some_and(|d| idle_since.elapsed() >= d) {
            return Ok(stats);
        }
        let wait = idle_exit.map_or(20, |d| d.as_secs().clamp(1, 20) as u32);
        let messages = tokio::select! {
            m = queue.receive(wait) => m?,
            _ = tokio::signal::ctrl_c() => return Ok(stats),
        };
        if messages.is_empty() {
            continue;
        }
        idle_since = Instant::now();
        for message in messages {
            stats.messages += 1;
            let envelope: serde_json::Value = match serde_json::from_str(&message.body) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(id = %message.message_id, error = %e, "message is not JSON; deleting it");
                    queue.delete(&message.receipt_handle).await?;
                    continue;
                }
            };
            let mut deliveries = stack.deliver(&envelope).await;
            deliveries.extend(stack.run_until_quiet(|_| {}).await);
            let mut keep = false;
            for d in &deliveries {
                on_delivery(d);
                stats.deliveries += 1;
                if !d.ok {
                    stats.failed += 1;
                    keep |= d.retryable;
                }
            }
            if !keep {
                queue.delete(&message.receipt_handle).await?;
            }
        }
    }
}
