//! Planted store faults, for tests that show what a stage leaves behind when the store fails
//! or the process dies halfway. A [`Faults`] plan is attached with [`Store::with_faults`];
//! the store consults it before and after every operation. It lives in the normal build (no
//! feature flag, no second build): a store without a plan pays one `Option` check.
//!
//! - **fail** the Nth operation of a kind (a retryable error, nothing done);
//! - **hang** it for a while before it runs (a slow or stuck backend);
//! - **lose the response** of the Nth write: the write is applied, the caller gets an error
//!   (what a retry after a lost S3 reply meets);
//! - **crash** after the Nth write: that write is applied and from then on every operation
//!   fails, as if the process had ended there; nothing the handler does afterwards reaches
//!   the store.
//!
//! [`Store::with_faults`]: crate::Store::with_faults

use std::sync::Mutex;
use std::time::Duration;

use crate::{Result, StorageError};

/// The operations a fault can target. `Put` is every write: put, create-if-absent,
/// compare-and-swap and multipart upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Head,
    List,
    Put,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Head => "head",
            Op::List => "list",
            Op::Put => "put",
            Op::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Fail,
    Deny,
    Hang(Duration),
    LoseResponse,
}

#[derive(Debug, Clone)]
struct Rule {
    op: Op,
    /// 1-based position among the operations of this kind.
    nth: u64,
    fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    counts: std::collections::HashMap<Op, u64>,
    crash_after_writes: Option<u64>,
    /// Crash right after the first write whose key contains this.
    crash_at: Option<String>,
    crashed: bool,
    writes: Vec<String>,
    lost: Vec<String>,
    injected: u64,
    operations: Vec<(Op, String)>,
}

/// A plan of faults and a log of the writes that went through. Share it (`Arc`) between
/// the store and the test.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// A plan with no faults (count writes, then plan a crash matrix from them).
    pub fn none() -> Faults {
        Faults::default()
    }

    /// The process "ends" right after its `n`th write (1-based): that write is applied and
    /// every later operation fails. `n = 0` crashes before the first write.
    pub fn crash_after_writes(n: u64) -> Faults {
        let faults = Faults::default();
        faults.lock().crash_after_writes = Some(n);
        faults
    }

    /// The process "ends" at a named point: right after the first write whose key contains
    /// `point` (`"_manifest.json"`, `"aliases/champion.json"`, ...), that write applied and
    /// every later operation refused, wherever in the stage's order that write falls.
    pub fn crash_at(point: &str) -> Faults {
        let faults = Faults::default();
        faults.lock().crash_at = Some(point.to_string());
        faults
    }

    /// The `nth` operation of kind `op` fails (retryably) without being done.
    pub fn fail(self, op: Op, nth: u64) -> Faults {
        self.rule(op, nth, Fault::Fail)
    }

    /// The `nth` operation of kind `op` fails for good without being done, as a store that
    /// denies access or refuses the key: not retryable (see [`DENIED`]).
    pub fn deny(self, op: Op, nth: u64) -> Faults {
        self.rule(op, nth, Fault::Deny)
    }

    /// The `nth` operation of kind `op` waits `for_` before it runs.
    pub fn hang(self, op: Op, nth: u64, for_: Duration) -> Faults {
        self.rule(op, nth, Fault::Hang(for_))
    }

    /// The `nth` write is applied, but the caller gets an error, as when a reply is lost.
    pub fn lose_response(self, nth: u64) -> Faults {
        self.rule(Op::Put, nth, Fault::LoseResponse)
    }

    fn rule(self, op: Op, nth: u64, fault: Fault) -> Faults {
        self.lock().rules.push(Rule { op, nth, fault });
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keys written so far, in order (only writes that were applied).
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// Every operation attempted so far and its key (or prefix), in order.
    pub fn operations(&self) -> Vec<(Op, String)> {
        self.lock().operations.clone()
    }

    /// Whether the planned crash happened.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// How many faults were injected (failures, lost responses and operations refused after
    /// a crash).
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    pub(crate) async fn before(&self, op: Op, key: &str) -> Result<()> {
        let fault = {
            let mut state = self.lock();
            state.operations.push((op, key.to_string()));
            if state.crashed {
                state.injected += 1;
                return Err(injected(op, key, "the process crashed earlier"));
            }
            if op == Op::Put && state.crash_after_writes == Some(0) {
                state.crashed = true;
                state.injected += 1;
                return Err(injected(op, key, "crash before the first write"));
            }
            let count = state.counts.entry(op).or_insert(0);
            *count += 1;
            let count = *count;
            let fault = state
                .rules
                .iter()
                .find(|r| r.op == op && r.nth == count)
                .map(|r| r.fault);
            if fault == Some(Fault::LoseResponse) {
                state.lost.push(key.to_string());
            }
            fault
        };
        match fault {
            Some(Fault::Fail) => {
                self.lock().injected += 1;
                Err(injected(op, key, "planted failure"))
            }
            Some(Fault::Deny) => {
                self.lock().injected += 1;
                Err(injected(op, key, DENIED))
            }
            Some(Fault::Hang(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fault::LoseResponse) | None => Ok(()),
        }
    }

    pub(crate) fn after(&self, op: Op, key: &str) -> Result<()> {
        if op != Op::Put {
            return Ok(());
        }
        let mut state = self.lock();
        state.writes.push(key.to_string());
        if state.crash_after_writes == Some(state.writes.len() as u64)
            || state.crash_at.as_deref().is_some_and(|p| key.contains(p))
        {
            state.crashed = true;
            state.injected += 1;
            return Err(injected(op, key, "crash right after this write"));
        }
        if let Some(i) = state.lost.iter().position(|k| k == key) {
            state.lost.remove(i);
            state.injected += 1;
            return Err(injected(
                op,
                key,
                "response lost after the write was applied",
            ));
        }
        Ok(())
    }
}

/// The planted permanent failure of [`Faults::deny`]: the one injected fault that is not
/// retryable.
pub const DENIED: &str = "access denied (planted)";

fn injected(op: Op, key: &str, fault: &'static str) -> StorageError {
    StorageError::Injected {
        op: op.name(),
        key: key.to_string(),
        fault,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Created, Store};

    #[tokio::test]
    async fn a_crash_applies_the_write_then_refuses_everything() {
        let base = Store::memory();
        let faults = Arc::new(Faults::crash_after_writes(2));
        let store = base.with_faults(faults.clone());
        store.put("a", "1").await.unwrap();
        let err = store.put("b", "2").await.unwrap_err();
        assert!(err.to_string().contains("crash"), "{err}");
        assert!(store.get("a").await.is_err(), "nothing works after a crash");
        assert!(store.put("c", "3").await.is_err());
        assert!(faults.crashed());
        assert_eq!(faults.writes(), vec!["a", "b"]);
        // The writes before and at the crash point are there; the one after is not.
        assert_eq!(&base.get("b").await.unwrap().bytes[..], b"2");
        assert!(base.get_opt("c").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_crash_at_a_named_point_and_a_denied_write() {
        let base = Store::memory();
        let faults = Arc::new(Faults::crash_at("_manifest.json"));
        let store = base.with_faults(faults.clone());
        store.put("v/part-0.parquet", "1").await.unwrap();
        assert!(store.put("v/_manifest.json", "m").await.is_err());
        assert!(faults.crashed());
        assert!(store.put("v/other", "x").await.is_err());
        assert_eq!(&base.get("v/_manifest.json").await.unwrap().bytes[..], b"m");
        // A denied write is not retryable, and is not done.
        let denied = Store::memory().with_faults(Arc::new(Faults::none().deny(Op::Put, 1)));
        let err = denied.put("a", "1").await.unwrap_err();
        assert!(!err.is_retryable() && err.is_fault(), "{err}");
        assert!(err.to_string().contains(DENIED), "{err}");
        denied.put("a", "1").await.unwrap();
    }

    #[tokio::test]
    async fn planted_failures_and_lost_responses() {
        let base = Store::memory();
        let faults = Arc::new(Faults::none().fail(Op::Get, 1).lose_response(2));
        let store = base.with_faults(faults.clone());
        store.put("a", "1").await.unwrap();
        let err = store.get("a").await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(&store.get("a").await.unwrap().bytes[..], b"1");
        // The second write is applied but reported failed: a redelivery finds it there.
        assert!(store.put_if_absent("b", "2").await.is_err());
        assert_eq!(
            store.put_if_absent("b", "2").await.unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(faults.injected(), 2);
    }

    #[tokio::test]
    async fn a_hung_operation_is_still_pending_when_its_caller_gives_up() {
        let store = Store::memory().with_faults(Arc::new(Faults::none().hang(
            Op::Put,
            1,
            Duration::from_secs(600),
        )));
        let put = tokio::time::timeout(Duration::from_millis(20), store.put("a", "1")).await;
        assert!(put.is_err(), "the first put hangs");
        store.put("a", "2").await.unwrap();
    }
}
