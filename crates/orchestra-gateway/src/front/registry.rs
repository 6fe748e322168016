//! Every client session the gateway serves, with what it negotiated: the seam on which a
//! shared gateway (many sessions, stdio and Streamable HTTP) is built. A session is registered
//! when it opens and removed when it ends; health lists them.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};

pub use crate::reply::SessionId;

use super::FrontSink;
use crate::jsonrpc;
use crate::logging::Level;

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
    /// Where notifications for this session go (its own output, not a process-wide one).
    sink: FrontSink,
    /// The level it asked for with `logging/setLevel` (0: none yet — it gets what children
    /// send at their own default level, as it would talking to them directly).
    log_level: AtomicU8,
    /// The tool and prompt lists this session last saw (served or announced); None until it
    /// has listed them, and until then there is nothing to announce to it.
    served_tools: Mutex<Option<Arc<str>>>,
    served_prompts: Mutex<Option<Arc<str>>>,
}

/// Which list a `list_changed` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
}

impl ListKind {
    fn notification(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
        }
    }
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

    /// Records that this session was served `list` (from now on, changes are announced to it).
    pub fn mark_served(&self, kind: ListKind, list: &Arc<str>) {
        *self.served(kind).lock().unwrap_or_else(|p| p.into_inner()) = Some(list.clone());
    }

    /// Tells this session that `kind` changed, if what it was last served differs from `now`.
    /// Returns whether it was told. Never waits: a session that stopped reading must not hold
    /// up the announcement to the others (the notification is queued for it all the same).
    pub fn announce_if_changed(&self, kind: ListKind, now: &Arc<str>) -> bool {
        {
            let mut served = self.served(kind).lock().unwrap_or_else(|p| p.into_inner());
            match served.as_mut() {
                None => return false,
                Some(s) if **s == **now => return false,
                Some(s) => *s = now.clone(),
            }
        }
        self.sink
            .push(&jsonrpc::notification_line(kind.notification(), None));
        self.sink.flush();
        true
    }

    fn served(&self, kind: ListKind) -> &Mutex<Option<Arc<str>>> {
        match kind {
            ListKind::Tools => &self.served_tools,
            ListKind::Prompts => &self.served_prompts,
        }
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
            "opened_at": crate::health::rfc3339(self.opened),
            "protocol_version": n.protocol_version,
            "client": n.client_info,
            "capabilities": n.capabilities,
            "log_level": self.log_level().map(Level::as_str),
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
            served_tools: Mutex::new(None),
            served_prompts: Mutex::new(None),
        });
        self.lock().push(state.clone());
        state
    }

    /// Removes session `id`. Sessions end through [`crate::Gateway::close_session`], which
    /// then sets children to the level the sessions left still want.
    pub fn close(&self, id: SessionId) {
        self.lock().retain(|s| s.id != id);
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
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        let old: Arc<str> = r#"{"tools":[]}"#.into();
        let new: Arc<str> = r#"{"tools":[{"name":"a"}]}"#.into();
        listed.mark_served(ListKind::Tools, &old);
        assert!(
            !listed.announce_if_changed(ListKind::Tools, &old),
            "unchanged"
        );
        assert!(listed.announce_if_changed(ListKind::Tools, &new));
        assert!(
            !listed.announce_if_changed(ListKind::Tools, &new),
            "told once"
        );
        assert!(!never_listed.announce_if_changed(ListKind::Tools, &new));
        assert!(
            !listed.announce_if_changed(ListKind::Prompts, &new),
            "prompts were never listed by it"
        );
    }
}
