//! Every client session the gateway serves, with what it negotiated: the seam on which a
//! shared gateway (many sessions, stdio and Streamable HTTP) is built. A session is registered
//! when it opens and removed when it ends; health lists them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};

pub use crate::reply::SessionId;

/// What one session negotiated at `initialize` (unset until then).
#[derive(Debug, Default, Clone)]
pub struct Negotiated {
    pub protocol_version: Option<String>,
    /// The client's `clientInfo` as it sent it.
    pub client_info: Option<Value>,
    /// The client's `capabilities` as it sent them (what it can answer: sampling, roots, …).
    pub capabilities: Option<Value>,
}

/// One session's shared state.
#[derive(Debug)]
pub struct SessionState {
    pub id: SessionId,
    /// How the client reaches us (`stdio`, later `http`).
    pub transport: &'static str,
    pub opened: SystemTime,
    negotiated: Mutex<Negotiated>,
}

impl SessionState {
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records what `initialize` settled (a repeated initialize replaces it).
    pub fn set_negotiated(&self, negotiated: Negotiated) {
        *self.negotiated.lock().unwrap_or_else(|p| p.into_inner()) = negotiated;
    }

    /// The session as the health report shows it.
    pub fn report(&self) -> Value {
        let n = self.negotiated();
        json!({
            "id": self.id.to_string(),
            "transport": self.transport,
            "opened_at": crate::health::rfc3339(self.opened),
            "protocol_version": n.protocol_version,
            "client": n.client_info,
            "capabilities": n.capabilities,
        })
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    next: AtomicU64,
    live: Mutex<Vec<Arc<SessionState>>>,
}

impl Sessions {
    /// Registers a new session; it stays listed until [`Sessions::close`].
    pub fn open(&self, transport: &'static str) -> Arc<SessionState> {
        let state = Arc::new(SessionState {
            id: SessionId(self.next.fetch_add(1, Ordering::Relaxed) + 1),
            transport,
            opened: SystemTime::now(),
            negotiated: Mutex::default(),
        });
        self.lock().push(state.clone());
        state
    }

    pub fn close(&self, id: SessionId) {
        self.lock().retain(|s| s.id != id);
    }

    /// The live sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<SessionState>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SessionState>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_fresh_ids_and_leave_when_closed() {
        let sessions = Sessions::default();
        let a = sessions.open("stdio");
        let b = sessions.open("stdio");
        assert_ne!(a.id, b.id);
        a.set_negotiated(Negotiated {
            protocol_version: Some("2025-11-25".into()),
            client_info: Some(json!({"name": "c", "version": "1"})),
            capabilities: Some(json!({"roots": {}})),
        });
        assert_eq!(a.report()["client"]["name"], "c");
        assert_eq!(a.report()["protocol_version"], "2025-11-25");
        sessions.close(a.id);
        let left: Vec<SessionId> = sessions.list().iter().map(|s| s.id).collect();
        assert_eq!(left, [b.id]);
        let c = sessions.open("stdio");
        assert!(c.id > b.id, "ids are never reused");
    }
}
