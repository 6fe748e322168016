//! A session's journal of tool calls: which tool, which server answered, how it ended, when —
//! kept only while someone asked for it (the Task Orchestrator, while the session executes a
//! subtask), so that a call costs one atomic load when nobody watches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    pub at: SystemTime,
    pub duration: Duration,
}

impl CallRecord {
    /// Milliseconds since the Unix epoch of the call's start.
    pub fn at_ms(&self) -> u64 {
        self.at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// One session's journal.
#[derive(Debug, Default)]
pub struct CallJournal {
    /// How many asked for it (0: nothing is recorded).
    watchers: AtomicUsize,
    records: Mutex<VecDeque<CallRecord>>,
}

impl CallJournal {
    /// Whether calls are being recorded (one atomic load: the cost of a call nobody watches).
    pub fn is_on(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Turns recording on (`true`) or off again (`false`); nested: on twice needs off twice.
    pub fn watch(&self, on: bool) {
        if on {
            self.watchers.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .watchers
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
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
    fn nothing_is_kept_unless_watched_and_watching_nests() {
        let j = CallJournal::default();
        assert!(!j.is_on());
        j.watch(true);
        j.watch(true);
        j.watch(false);
        assert!(j.is_on(), "one watcher left");
        j.watch(false);
        j.watch(false);
        assert!(!j.is_on());
        let at = SystemTime::now();
        j.record(CallRecord {
            tool: "a__t".into(),
            server: Some("a".into()),
            outcome: Outcome::Ok,
            failed_over: false,
            at,
            duration: Duration::from_millis(3),
        });
        let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert_eq!(j.since(ms).len(), 1);
        assert_eq!(j.since(ms + 1).len(), 0);
    }
}
