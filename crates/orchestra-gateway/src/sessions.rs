//! Every client session the gateway serves, with what it negotiated: the seam on which a
//! shared gateway (many sessions, stdio and Streamable HTTP) is built. A session is registered
//! when it opens and removed when it ends; health lists them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use std::collections::HashMap;

use serde_json::{json, Value};

pub use crate::listing::ListKind;
pub use crate::reply::SessionId;

use crate::jsonrpc;
use crate::logging::Level;
use crate::sink::FrontSink;

/// What one session negotiated at `initialize` (unset until then).
#[derive(Debug, Default, Clone)]
pub struct Negotiated {
    pub protocol_version: Option<String>,
    /// The client's `clientInfo` as it sent it.
    pub client_info: Option<Value>,
    /// The client's `capabilities` as it sent them (what it can answer: sampling, roots, …).
    pub capabilities: Option<Value>,
}

/// (server index, the child's URI) → the URI the session subscribed with.
type Subscriptions = HashMap<(usize, Box<str>), Box<str>>;

/// One session's shared state.
#[derive(Debug)]
pub struct SessionState {
    pub id: SessionId,
    /// How the client reaches us (`stdio`, later `http`).
    pub transport: &'static str,
    pub opened: SystemTime,
    negotiated: Mutex<Negotiated>,
    /// Where notifications for this session go (its own output, not a process-wide one).
    sink: FrontSink,
    /// The level it asked for with `logging/setLevel` (0: none yet — it gets what children
    /// send at their own default level, as it would talking to them directly).
    log_level: AtomicU8,
    /// The digest of each list (by [`ListKind::index`]) this session last saw, served or
    /// announced; None until it has listed it, and until then there is nothing to announce.
    served: [Mutex<Option<u64>>; 4],
    /// Its resource subscriptions: (server index, the child's URI) → the URI it subscribed
    /// with (what its `notifications/resources/updated` must name).
    subscriptions: Mutex<Subscriptions>,
    /// Its tool calls, recorded while someone watches (the Task Orchestrator).
    pub journal: Arc<crate::journal::CallJournal>,
    /// It sent `notifications/initialized`: requests on a child's behalf may be sent to it
    /// (MCP: none before that).
    initialized: AtomicBool,
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

    /// Records that this session was served the list of `kind` with `digest` (from now on,
    /// its changes are announced to it).
    pub fn mark_served(&self, kind: ListKind, digest: u64) {
        *lock(&self.served[kind.index()]) = Some(digest);
    }

    /// Whether `kind` changed for this session: it has listed it and what it last saw differs
    /// from `now` (which it is then considered told about).
    pub fn list_changed(&self, kind: ListKind, now: u64) -> bool {
        let mut served = lock(&self.served[kind.index()]);
        match served.as_mut() {
            Some(seen) if *seen != now => {
                *seen = now;
                true
            }
            _ => false,
        }
    }

    /// Queues a notification for this session. Never waits: a session that stopped reading
    /// must not hold up the others (the notification is queued for it all the same).
    pub fn notify(&self, method: &str, params: Option<&str>) {
        self.sink.push(&jsonrpc::notification_line(method, params));
        self.sink.flush();
    }

    /// Records a subscription; returns false when the session already had it.
    pub fn subscribe(&self, server: usize, child_uri: &str, client_uri: &str) -> bool {
        lock(&self.subscriptions)
            .insert((server, child_uri.into()), client_uri.into())
            .is_none()
    }

    /// Drops a subscription; returns whether the session had it.
    pub fn unsubscribe(&self, server: usize, child_uri: &str) -> bool {
        lock(&self.subscriptions)
            .remove(&(server, child_uri.into()))
            .is_some()
    }

    /// Its subscriptions as (server index, the child's URI).
    pub fn subscriptions(&self) -> Vec<(usize, String)> {
        lock(&self.subscriptions)
            .keys()
            .map(|(s, u)| (*s, u.to_string()))
            .collect()
    }

    fn subscribed_as(&self, server: usize, child_uri: &str) -> Option<Box<str>> {
        lock(&self.subscriptions)
            .get(&(server, child_uri.into()))
            .cloned()
    }

    /// Where lines for this session go.
    pub fn sink(&self) -> &FrontSink {
        &self.sink
    }

    pub fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }

    pub fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }

    pub fn log_level(&self) -> Option<Level> {
        Level::from_u8(self.log_level.load(Ordering::Relaxed))
    }

    pub fn set_log_level(&self, level: Level) {
        self.log_level.store(level.to_u8(), Ordering::Relaxed);
    }

    /// The session as the health report shows it.
    pub fn report(&self) -> Value {
        let n = self.negotiated();
        json!({
            "id": self.id.to_string(),
            "transport": self.transport,
            "opened_at": crate::time::rfc3339(self.opened),
            "protocol_version": n.protocol_version,
            "client": n.client_info,
            "capabilities": n.capabilities,
            "log_level": self.log_level().map(Level::as_str),
            "subscriptions": lock(&self.subscriptions).len(),
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
    pub fn open(&self, transport: &'static str, sink: FrontSink) -> Arc<SessionState> {
        let state = Arc::new(SessionState {
            id: SessionId(self.next.fetch_add(1, Ordering::Relaxed) + 1),
            transport,
            opened: SystemTime::now(),
            negotiated: Mutex::default(),
            sink,
            log_level: AtomicU8::new(0),
            served: Default::default(),
            subscriptions: Mutex::default(),
            initialized: AtomicBool::new(false),
            journal: Arc::default(),
        });
        self.lock().push(state.clone());
        state
    }

    /// Removes a session; returns its state (its subscriptions are for the caller to end, and
    /// the log level children follow is the caller's to relax: `Gateway::relax_log_level`).
    pub fn close(&self, id: SessionId) -> Option<Arc<SessionState>> {
        let mut live = self.lock();
        let at = live.iter().position(|s| s.id == id)?;
        Some(live.remove(at))
    }

    /// How many sessions are subscribed to the child's `child_uri` on `server`.
    pub fn subscribers(&self, server: usize, child_uri: &str) -> usize {
        self.lock()
            .iter()
            .filter(|s| s.subscribed_as(server, child_uri).is_some())
            .count()
    }

    /// Every URI of `server` some session is subscribed to (what a restarted child must be
    /// subscribed to again).
    pub fn subscribed_uris(&self, server: usize) -> Vec<String> {
        let mut uris: Vec<String> = self
            .lock()
            .iter()
            .flat_map(|s| s.subscriptions())
            .filter(|(s, _)| *s == server)
            .map(|(_, u)| u)
            .collect();
        uris.sort();
        uris.dedup();
        uris
    }

    /// Delivers a child's `notifications/resources/updated` (`params` raw) to the sessions
    /// subscribed to that URI, each with the URI it subscribed with. Returns how many got it.
    pub fn deliver_resource_updated(&self, server: usize, params: &str) -> usize {
        let Ok(mut members) = serde_json::from_str::<serde_json::Map<String, Value>>(params) else {
            return 0;
        };
        let Some(uri) = members
            .get("uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return 0;
        };
        let mut delivered = 0;
        for session in self.lock().iter() {
            if let Some(theirs) = session.subscribed_as(server, &uri) {
                members.insert("uri".into(), Value::from(&*theirs));
                session.notify(
                    "notifications/resources/updated",
                    Some(&Value::Object(members.clone()).to_string()),
                );
                delivered += 1;
            }
        }
        delivered
    }

    /// The live sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<SessionState>> {
        self.lock().clone()
    }

    /// The most verbose level any session asked for: what children are set to, so that every
    /// session can get what it asked for (each is then filtered to its own level).
    pub fn wanted_log_level(&self) -> Option<Level> {
        self.lock().iter().filter_map(|s| s.log_level()).min()
    }

    /// Delivers a child's `notifications/message` (`params` raw) to every session whose level
    /// it meets, with the server's name as its `logger` (`server/logger` when the child named
    /// one). Returns how many sessions got it.
    pub fn deliver_log(&self, server: &str, params: &str) -> usize {
        let Ok(mut members) = serde_json::from_str::<serde_json::Map<String, Value>>(params) else {
            return 0;
        };
        // A level that is not MCP's is not filtered away: the session should see it.
        let level = members
            .get("level")
            .and_then(Value::as_str)
            .and_then(Level::parse);
        let logger = match members.get("logger").and_then(Value::as_str) {
            Some(own) => format!("{server}/{own}"),
            None => server.to_owned(),
        };
        members.insert("logger".into(), Value::from(logger));
        let line = jsonrpc::notification_line(
            "notifications/message",
            Some(&Value::Object(members).to_string()),
        );
        let mut delivered = 0;
        for session in self.lock().iter() {
            let wanted = match (session.log_level(), level) {
                (Some(min), Some(level)) => level >= min,
                _ => true,
            };
            if wanted {
                session.sink.push(&line);
                session.sink.flush();
                delivered += 1;
            }
        }
        delivered
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<SessionState>>> {
        lock(&self.live)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_get_fresh_ids_and_leave_when_closed() {
        let sessions = Sessions::default();
        let a = sessions.open("stdio", FrontSink::discard());
        let b = sessions.open("stdio", FrontSink::discard());
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
        let c = sessions.open("stdio", FrontSink::discard());
        assert!(c.id > b.id, "ids are never reused");
    }

    #[test]
    fn children_get_the_most_verbose_level_any_session_asked_for() {
        let sessions = Sessions::default();
        let a = sessions.open("stdio", FrontSink::discard());
        let b = sessions.open("stdio", FrontSink::discard());
        assert_eq!(sessions.wanted_log_level(), None);
        a.set_log_level(Level::Error);
        b.set_log_level(Level::Info);
        assert_eq!(sessions.wanted_log_level(), Some(Level::Info));
        sessions.close(b.id);
        assert_eq!(sessions.wanted_log_level(), Some(Level::Error));
    }

    #[test]
    fn a_log_message_reaches_only_sessions_whose_level_it_meets() {
        let sessions = Sessions::default();
        let quiet = sessions.open("stdio", FrontSink::discard());
        let chatty = sessions.open("stdio", FrontSink::discard());
        let _unset = sessions.open("stdio", FrontSink::discard());
        quiet.set_log_level(Level::Error);
        chatty.set_log_level(Level::Debug);
        let info = r#"{"level":"info","data":"x"}"#;
        let alert = r#"{"level":"alert","logger":"db","data":"y"}"#;
        assert_eq!(
            sessions.deliver_log("s", info),
            2,
            "chatty and the unset one"
        );
        assert_eq!(sessions.deliver_log("s", alert), 3);
        assert_eq!(sessions.deliver_log("s", "not json"), 0);
    }

    #[test]
    fn a_list_change_is_announced_only_to_sessions_that_saw_another_list() {
        let sessions = Sessions::default();
        let listed = sessions.open("stdio", FrontSink::discard());
        let never_listed = sessions.open("stdio", FrontSink::discard());
        let old = 1_u64;
        let new = 2_u64;
        listed.mark_served(ListKind::Tools, old);
        assert!(!listed.list_changed(ListKind::Tools, old), "unchanged");
        assert!(listed.list_changed(ListKind::Tools, new));
        assert!(!listed.list_changed(ListKind::Tools, new), "told once");
        assert!(!never_listed.list_changed(ListKind::Tools, new));
        assert!(
            !listed.list_changed(ListKind::Prompts, new),
            "prompts were never listed by it"
        );
    }
}
