//! A session's journal of tool calls: which tool, which server answered, how it ended, when —
//! kept only while someone asked for it (the Task Orchestrator, while the session executes a
//! subtask), so that a call costs one atomic load when nobody watches.
//!
//! "When" is a [`tick`]: wall-clock milliseconds made strictly increasing across the process,
//! so that a call and the orchestrator's own events (an execute, a completion — it reads the
//! same clock) are ordered exactly even within one millisecond.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records kept per session at most (the oldest go first).
const MAX_RECORDS: usize = 10_000;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true` (the tool failed; the protocol did not).
    ToolError,
    /// A JSON-RPC error, a timeout, the server's death, or no server to take it.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Error => "error",
        }
    }
}

/// The last tick handed out.
static LAST_TICK: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the Unix epoch, strictly greater than any tick before: equal readings
/// within one millisecond are told apart by moving the later one on (by a millisecond at a
/// time, which only happens for events closer together than that).
pub fn tick() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut last = LAST_TICK.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_TICK.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// One call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The name the client called.
    pub tool: Arc<str>,
    /// The server that answered (the stand-in when it failed over), if one did.
    pub server: Option<Arc<str>>,
    pub outcome: Outcome,
    /// Served by a fallback instead of its own server.
    pub failed_over: bool,
    /// The [`tick`] when the call started.
    pub at_ms: u64,
    pub duration: Duration,
}

impl CallRecord {
    /// The [`tick`] when the call started.
    pub fn at_ms(&self) -> u64 {
        self.at_ms
    }
}

/// One session's journal.
#[derive(Debug, Default)]
pub struct CallJournal {
    /// Whether calls are recorded.
    on: AtomicBool,
    records: Mutex<VecDeque<CallRecord>>,
}

impl CallJournal {
    /// Whether calls are being recorded (one atomic load: the cost of a call nobody watches).
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns recording on or off. Not counted: the one watcher (the orchestrator) turns it on
    /// at every execute and off once the session executes nothing.
    pub fn watch(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub fn record(&self, record: CallRecord) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() == MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The calls that started at or after `since_ms` (Unix ms), oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<CallRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| r.at_ms() >= since_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watching_is_on_or_off_and_ticks_order_events_within_a_millisecond() {
        let j = CallJournal::default();
        assert!(!j.is_on());
        j.watch(true);
        j.watch(true);
        j.watch(false);
        assert!(
            !j.is_on(),
            "off once the watcher says so, however often it said on"
        );
        let ticks: Vec<u64> = (0..1000).map(|_| tick()).collect();
        assert!(ticks.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        let at_ms = tick();
        j.record(CallRecord {
            tool: "a__t".into(),
            server: Some("a".into()),
            outcome: Outcome::Ok,
            failed_over: false,
            at_ms,
            duration: Duration::from_millis(3),
        });
        assert_eq!(j.since(at_ms).len(), 1);
        assert_eq!(j.since(at_ms + 1).len(), 0);
    }
}
