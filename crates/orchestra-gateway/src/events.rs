//! The recent supervision events (died, restarted, failed over, recovered…) for the health
//! report: a bounded log, newest last. Details quote exit reasons and children's stderr, so
//! they are redacted as they are recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::redact::Redactor;

/// Events kept.
const CAPACITY: usize = 100;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Ready,
    Died,
    Restarting,
    Recovered,
    Unhealthy,
    Failed,
    Misconfigured,
    FailedOver,
    ToolsChanged,
}

/// One entry of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(serialize_with = "as_rfc3339")]
    pub at: SystemTime,
    pub server: String,
    pub kind: EventKind,
    pub detail: String,
}

/// A bounded, shared event log.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<VecDeque<Event>>,
    redactor: Arc<Redactor>,
}

impl EventLog {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self {
            events: Mutex::default(),
            redactor,
        }
    }

    pub fn record(&self, server: &str, kind: EventKind, detail: impl Into<String>) {
        let event = Event {
            at: SystemTime::now(),
            server: server.to_owned(),
            kind,
            detail: self.redactor.redact_owned(detail.into()),
        };
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() == CAPACITY {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// The newest `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Event> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        events
            .iter()
            .skip(events.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

fn as_rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_events() {
        let log = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            log.record("s", EventKind::Died, format!("{i}"));
        }
        let recent = log.recent(3);
        let details: Vec<&str> = recent.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                format!("{}", CAPACITY + 2),
                format!("{}", CAPACITY + 3),
                format!("{}", CAPACITY + 4)
            ]
        );
        assert_eq!(log.recent(1000).len(), CAPACITY);
    }

    #[test]
    fn details_are_redacted() {
        let log = EventLog::new(Arc::new(Redactor::builder().secret("c0nf1gured").build()));
        log.record(
            "s",
            EventKind::Died,
            "exit 1; last stderr line: c0nf1gured token=abcdef1234",
        );
        assert_eq!(
            log.recent(1)[0].detail,
            "exit 1; last stderr line: [REDACTED] token=[REDACTED]"
        );
    }
}
