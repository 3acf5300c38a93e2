//! Prediction logs on their way to the store, batched.
//!
//! One object per request was a put per prediction: at the thousands of requests a second
//! the server answers, that is thousands of objects a second (a bill on S3, millions of
//! files on a disk) and one spawned task per request that nothing bounds when the store is
//! slow. Here the request path only hands its log to a bounded queue; one task gathers the
//! lines per model and hour (the partition readers list) and writes each group as one
//! JSON Lines object when it has waited [`FLUSH_EVERY`], grown to [`MAX_LINES`] or
//! [`MAX_BYTES`], or the server stops. When the queue is full (the store cannot keep up)
//! logs are dropped and counted, never the prediction: a lost log line is not worth
//! failing or slowing the request for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use inference::service::PredictionLog;
use storage::Store;
use tokio::sync::{mpsc, oneshot};

/// How long a log line waits at most before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Lines in one object at most.
pub const MAX_LINES: usize = 10_000;
/// Bytes buffered at most before a write.
pub const MAX_BYTES: usize = 4 << 20;
/// Logs waiting for the writer at most; beyond, new ones are dropped and counted.
pub const QUEUE: usize = 65_536;

/// Counters of what the writer did.
#[derive(Debug, Default)]
pub struct LogCounts {
    pub objects: AtomicU64,
    pub lines: AtomicU64,
    /// Logs not written: the queue was full, or the store refused the write.
    pub dropped: AtomicU64,
}

enum Message {
    Log(PredictionLog),
    Flush(oneshot::Sender<()>),
}

/// The request path's handle on the writer. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Message>,
    counts: Arc<LogCounts>,
}

impl LogWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> LogWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counts = Arc::new(LogCounts::default());
        tokio::spawn(write_loop(store, rx, counts.clone()));
        LogWriter { tx, counts }
    }

    /// Queues one request's log without waiting; dropped (and counted) when the queue is
    /// full or the writer has stopped.
    pub fn submit(&self, log: PredictionLog) {
        if self.tx.try_send(Message::Log(log)).is_err() {
            let before = self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            // The first and then every 10,000th, so a slow store cannot flood stderr.
            if before.is_multiple_of(10_000) {
                eprintln!(
                    "inference logs: the writer is behind; {} logs dropped so far",
                    before + 1
                );
            }
        }
    }

    /// Writes everything queued so far, and waits until it is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }
}

/// Lines gathered for one object: one model, one hour.
#[derive(Default)]
struct Batch {
    /// The first line's time, which names the object.
    first_at_us: i64,
    lines: usize,
    bytes: Vec<u8>,
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Message>, counts: Arc<LogCounts>) {
    let mut batches: BTreeMap<(String, i64), Batch> = BTreeMap::new();
    let mut buffered = 0usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(d) => {
                    write_all(&store, &mut batches, &counts).await;
                    (buffered, deadline) = (0, None);
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match next {
            Some(Message::Log(log)) => {
                let hour = log.at_us.div_euclid(3_600_000_000);
                let batch = batches.entry((log.model.clone(), hour)).or_default();
                if batch.lines == 0 {
                    batch.first_at_us = log.at_us;
                }
                let text = log.to_json_lines();
                buffered += text.len();
                batch.lines += log.rows.len() + log.shadow.as_ref().map_or(0, |s| s.rows.len());
                batch.bytes.extend_from_slice(&text);
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_EVERY);
                if batch.lines >= MAX_LINES || buffered >= MAX_BYTES {
                    write_all(&store, &mut batches, &counts).await;
                    (buffered, deadline) = (0, None);
                }
            }
            Some(Message::Flush(done)) => {
                write_all(&store, &mut batches, &counts).await;
                (buffered, deadline) = (0, None);
                let _ = done.send(());
            }
            None => {
                write_all(&store, &mut batches, &counts).await;
                return;
            }
        }
    }
}

async fn write_all(
    store: &Store,
    batches: &mut BTreeMap<(String, i64), Batch>,
    counts: &LogCounts,
) {
    for ((model, _), batch) in std::mem::take(batches) {
        if batch.lines == 0 {
            continue;
        }
        let key = records::keys::prediction_log_object(&model, batch.first_at_us, super::nonce());
        match store.put(&key, batch.bytes).await {
            Ok(_) => {
                counts.objects.fetch_add(1, Ordering::Relaxed);
                counts
                    .lines
                    .fetch_add(batch.lines as u64, Ordering::Relaxed);
            }
            Err(e) => {
                counts
                    .dropped
                    .fetch_add(batch.lines as u64, Ordering::Relaxed);
                eprintln!("inference log {key}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inference::service::LoggedRow;

    fn log(model: &str, at_us: i64, id: &str) -> PredictionLog {
        PredictionLog {
            id: id.into(),
            model: model.into(),
            version: 1,
            arm: None,
            at_us,
            inputs: vec!["x".into()],
            rows: vec![LoggedRow {
                index: 0,
                features: vec![Some(1.0)],
                label: None,
                score: 0.5,
            }],
            shadow: None,
        }
    }

    /// Many requests become one object per model and hour, written at the flush with every
    /// line in it; nothing is written before.
    #[tokio::test]
    async fn logs_are_batched_per_model_and_hour() {
        let store = Store::open("memory://").unwrap_or_else(|e| panic!("{e}"));
        let writer = LogWriter::start(store.clone());
        let hour = 3_600_000_000_i64 * 500_000;
        for i in 0..100 {
            writer.submit(log("fraud", hour + i, &format!("a{i}")));
        }
        writer.submit(log("fraud", hour + 3_600_000_000, "next-hour"));
        writer.submit(log("other", hour, "other-model"));
        writer.flush().await;
        let objects = store
            .list("inference-logs/")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(objects.len(), 3, "{objects:?}");
        let mut lines = 0;
        for o in &objects {
            let text = store
                .get(&o.key)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .bytes;
            lines += String::from_utf8_lossy(&text).lines().count();
        }
        assert_eq!(lines, 102);
        assert_eq!(writer.counts().lines.load(Ordering::Relaxed), 102);
        assert_eq!(writer.counts().objects.load(Ordering::Relaxed), 3);
        assert_eq!(writer.counts().dropped.load(Ordering::Relaxed), 0);
    }

    /// Without an explicit flush, lines reach the store within the flush interval.
    #[tokio::test]
    async fn lines_are_written_within_the_interval() {
        let store = Store::open("memory://").unwrap_or_else(|e| panic!("{e}"));
        let writer = LogWriter::start(store.clone());
        writer.submit(log("fraud", 1_000_000, "one"));
        for _ in 0..50 {
            tokio::time::sleep(FLUSH_EVERY / 10).await;
            if writer.counts().objects.load(Ordering::Relaxed) == 1 {
                break;
            }
        }
        let objects = store
            .list("inference-logs/fraud/")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(objects.len(), 1);
    }
}
