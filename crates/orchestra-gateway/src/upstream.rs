//! Requests the gateway sends to a client on a child's behalf: a child's
//! `sampling/createMessage`, `elicitation/create` and `roots/list` go to one client session
//! under an id of the gateway's, and the session's answer (result or error, as written) goes
//! back to the child under the child's own id.
//!
//! **Which session.** Over stdio a child's request carries nothing that says which call it
//! serves, so it is inferred from the calls the child holds:
//! 1. the child holds calls: the session of its most recently forwarded call whose session
//!    declared the capability the request needs. Only those sessions: a request made while
//!    serving one client's call carries that client's data, and another client must neither
//!    see it nor answer it (fault matrix B8: never broadcast to other clients). If none of
//!    them declared it, the child is told so at once;
//! 2. the child holds no call (a request of its own, such as a roots sync after start): the
//!    oldest live session that finished initializing and declared the capability (stable:
//!    with one stdio client, that client);
//! 3. otherwise the child gets a JSON-RPC error at once: it never waits for nobody.
//!
//! **Bounded.** A request the client does not answer within the child's `call_timeout` (the
//! longest the gateway waits for that child's own answers; a child's request made while
//! serving a call cannot usefully outlive that call) gets -32001 at the child and
//! `notifications/cancelled` at the client. A session that closes fails its requests at
//! once; a child that dies has its requests withdrawn from the client (`notifications/cancelled`,
//! reason naming the server), and a late answer to any of them is dropped.
//!
//! Not the hot path: nothing here is touched by `tools/call`; each request costs one table
//! entry and one timer task.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::child::clients::Clients;
use crate::child::{ChildHandle, Connection};
use crate::error::GatewayError;
use crate::jsonrpc::{self, Envelope, Raw};
use crate::logging::Level;
use crate::reply::SessionId;
use crate::sessions::{SessionState, Sessions};
use crate::sink::FrontSink;

/// What a request needs the session to have declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Sampling,
    /// `elicitation/create`; `url` when its `mode` is `"url"` (else form mode).
    Elicitation {
        url: bool,
    },
    Roots,
}

impl Need {
    /// The need of a method the gateway passes on; None for any other method.
    fn of(method: &str, params: Option<Raw<'_>>) -> Option<Self> {
        match method {
            "sampling/createMessage" => Some(Need::Sampling),
            "roots/list" => Some(Need::Roots),
            "elicitation/create" => {
                #[derive(serde::Deserialize)]
                struct Mode<'a> {
                    #[serde(borrow)]
                    mode: Option<&'a str>,
                }
                let url = params
                    .and_then(|p| serde_json::from_str::<Mode>(p.get()).ok())
                    .is_some_and(|m| m.mode == Some("url"));
                Some(Need::Elicitation { url })
            }
            _ => None,
        }
    }

    /// Whether client `capabilities` (as declared at `initialize`) meet this need.
    fn met_by(self, capabilities: &Value) -> bool {
        let declared = |name: &str| capabilities.get(name).filter(|c| !c.is_null());
        match self {
            Need::Sampling => declared("sampling").is_some(),
            Need::Roots => declared("roots").is_some(),
            // 2025-11-25: `elicitation: {}` means form mode only (what older clients declare).
            Need::Elicitation { url } => match declared("elicitation") {
                None => false,
                Some(Value::Object(modes)) if url => modes.contains_key("url"),
                Some(Value::Object(modes)) => modes.is_empty() || modes.contains_key("form"),
                Some(_) => !url,
            },
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Need::Sampling => "the sampling capability",
            Need::Roots => "the roots capability",
            Need::Elicitation { url: false } => "the elicitation capability (form mode)",
            Need::Elicitation { url: true } => "the elicitation capability (url mode)",
        }
    }
}

/// Whether the gateway passes `method` from a child on to a client.
pub fn forwards(method: &str) -> bool {
    matches!(
        method,
        "sampling/createMessage" | "elicitation/create" | "roots/list"
    )
}

/// One request sent to a session and not yet answered.
struct Outstanding {
    /// The child's connection (this life of it): the answer goes there.
    child: Weak<Connection>,
    server: Arc<str>,
    /// The child's own request id (raw JSON), for the answer.
    child_id: Box<str>,
    method: Box<str>,
    /// The session's output (for `notifications/cancelled`).
    sink: FrontSink,
    /// The deadline's timer, stopped when the request ends otherwise.
    timer: Option<tokio::task::AbortHandle>,
}

impl Outstanding {
    fn of(&self, child: &Connection) -> bool {
        std::ptr::eq(self.child.as_ptr(), child)
    }

    fn stop_timer(&self) {
        if let Some(timer) = &self.timer {
            timer.abort();
        }
    }
}

/// How many URL-mode elicitations are remembered for their completion notification.
const URL_ELICITATIONS_KEPT: usize = 64;

/// The requests sent to clients on children's behalf, by (session, the gateway's id).
pub struct Upstream {
    sessions: Arc<Sessions>,
    /// Itself, for the timers its requests start.
    me: Weak<Upstream>,
    /// The gateway's ids toward clients: one counter, so ids are unique per session (and
    /// across sessions), never the child's and never reused.
    next_id: AtomicU64,
    outstanding: Mutex<HashMap<(SessionId, u64), Outstanding>>,
    /// The last URL-mode elicitations sent, (server, elicitationId, session): the child's
    /// `notifications/elicitation/complete` for one goes to the session that was asked. It
    /// comes after the answer (the user finishes in a browser), so it outlives the request.
    url_elicitations: Mutex<VecDeque<(Arc<str>, String, SessionId)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("outstanding", &self.lock().len())
            .finish()
    }
}

impl Upstream {
    pub fn new(sessions: Arc<Sessions>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            sessions,
            me: me.clone(),
            next_id: AtomicU64::new(1),
            outstanding: Mutex::default(),
            url_elicitations: Mutex::default(),
        })
    }

    /// Sends `child`'s request (`method`, `params` raw, the child's id `child_id` raw) to the
    /// session chosen as the module says, to be answered within `timeout`. An error is the
    /// child's answer, to be sent at once.
    pub(crate) fn forward(
        &self,
        child: &Arc<Connection>,
        server: &Arc<str>,
        child_id: &str,
        method: &str,
        params: Option<Raw<'_>>,
        timeout: Duration,
    ) -> Result<(), GatewayError> {
        let Some(need) = Need::of(method, params) else {
            return Err(not_passed_on(method));
        };
        let session = choose(
            need,
            server,
            &child.callers_newest_first(),
            &self.sessions.list(),
        )
        .map_err(|why| GatewayError::NoClientFor {
            method: method.to_owned(),
            why,
        })?;
        if need == (Need::Elicitation { url: true }) {
            self.remember_url_elicitation(server, params, session.id);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (session.id, id);
        // During the session's one call at this child, on that call's stream when it carries
        // requests (an HTTP POST answered as SSE); else on the session's own output.
        let sink = child
            .reply_of_only_call(session.id)
            .filter(FrontSink::carries_requests)
            .unwrap_or_else(|| session.sink().clone());
        // Registered before it is sent, so that even an instant answer finds its entry.
        self.lock().insert(
            key,
            Outstanding {
                child: Arc::downgrade(child),
                server: server.clone(),
                child_id: child_id.into(),
                method: method.into(),
                sink: sink.clone(),
                timer: None,
            },
        );
        let weak = self.me.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(upstream) = weak.upgrade() {
                upstream.expire(key, timeout);
            }
        });
        if let Some(entry) = self.lock().get_mut(&key) {
            entry.timer = Some(timer.abort_handle());
        }
        tracing::debug!(server = %server, method, session = %session.id, id, "passing a child's request to a client");
        sink.push(&jsonrpc::request_line(id, method, params.map(Raw::get)));
        sink.flush();
        Ok(())
    }

    /// A response from `session`'s client (`env` is one): passed to the child that asked, under
    /// its own id. A response to no outstanding request (unknown, withdrawn, timed out) is
    /// logged and dropped.
    pub(crate) fn answer(&self, session: SessionId, env: &Envelope<'_>) {
        let id = env.id.and_then(|id| id.get().parse::<u64>().ok());
        let Some(entry) = id.and_then(|id| self.lock().remove(&(session, id))) else {
            tracing::debug!(%session, id = ?env.id.map(Raw::get), "dropped a response from the client that matches no outstanding request");
            return;
        };
        entry.stop_timer();
        let Some(child) = entry.child.upgrade().filter(|c| !c.is_closed()) else {
            return;
        };
        // A client that writes both (invalid JSON-RPC) is taken at its result: an error here
        // would tell the child less than the client did.
        let line = match (env.result, env.error) {
            (Some(result), _) => jsonrpc::response_line(&entry.child_id, result.get()),
            (None, Some(error)) => jsonrpc::error_line(&entry.child_id, error.get()),
            (None, None) => return,
        };
        tracing::debug!(server = %entry.server, method = %entry.method, %session, "passing the client's answer to the child");
        child.send_line(&line);
    }

    /// The child cancelled its own request (`params` of its `notifications/cancelled`): the
    /// session it was sent to is told, under the gateway's id. Returns whether it was found.
    pub(crate) fn cancelled_by_child(&self, child: &Connection, params: Option<Raw<'_>>) -> bool {
        #[derive(serde::Deserialize)]
        struct Cancelled {
            #[serde(rename = "requestId")]
            request_id: Value,
            reason: Option<String>,
        }
        let Some(c) = params.and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok()) else {
            return false;
        };
        let found = {
            let mut table = self.lock();
            let key = table.iter().find_map(|(key, o)| {
                (o.of(child)
                    && serde_json::from_str::<Value>(&o.child_id).ok()
                        == Some(c.request_id.clone()))
                .then_some(*key)
            });
            key.and_then(|key| table.remove(&key).map(|o| (key, o)))
        };
        let Some(((_, id), entry)) = found else {
            return false;
        };
        entry.stop_timer();
        let reason = c
            .reason
            .unwrap_or_else(|| format!("server \"{}\" cancelled it", entry.server));
        cancel_at_client(&entry.sink, id, &reason);
        true
    }

    /// `child`'s session ended (`why` names the server and what happened): its requests are
    /// withdrawn from the clients; late answers are then dropped.
    pub(crate) fn child_closed(&self, child: &Connection, why: &str) {
        let gone: Vec<((SessionId, u64), Outstanding)> = {
            let mut table = self.lock();
            let keys: Vec<_> = table
                .iter()
                .filter(|(_, o)| o.of(child))
                .map(|(k, _)| *k)
                .collect();
            keys.into_iter()
                .filter_map(|k| table.remove(&k).map(|o| (k, o)))
                .collect()
        };
        for ((_, id), entry) in gone {
            entry.stop_timer();
            cancel_at_client(&entry.sink, id, why);
        }
    }

    /// A session closed: each child waiting for one of its answers gets an error at once.
    pub(crate) fn session_closed(&self, session: SessionId) {
        let gone: Vec<Outstanding> = {
            let mut table = self.lock();
            let keys: Vec<_> = table.keys().filter(|k| k.0 == session).copied().collect();
            keys.into_iter().filter_map(|k| table.remove(&k)).collect()
        };
        for entry in gone {
            entry.stop_timer();
            let err = GatewayError::ClientClosed {
                method: entry.method.to_string(),
                session: session.to_string(),
            };
            answer_child(&entry, &err);
        }
    }

    /// A child's `notifications/elicitation/complete` (`params` raw): passed to the session its
    /// URL-mode elicitation went to; dropped when there is none (any more).
    pub(crate) fn elicitation_complete(&self, server: &str, params: Option<Raw<'_>>) -> bool {
        let Some(params) = params else { return false };
        let Some(elicitation) = elicitation_id(params) else {
            return false;
        };
        let session = self
            .url_elicitations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, e, _)| **s == *server && *e == elicitation)
            .map(|(_, _, session)| *session);
        let Some(session) =
            session.and_then(|id| self.sessions.list().into_iter().find(|s| s.id == id))
        else {
            return false;
        };
        let sink = session.sink();
        sink.push(&jsonrpc::notification_line(
            "notifications/elicitation/complete",
            Some(params.get()),
        ));
        sink.flush();
        true
    }

    fn remember_url_elicitation(
        &self,
        server: &Arc<str>,
        params: Option<Raw<'_>>,
        session: SessionId,
    ) {
        let Some(elicitation) = params.and_then(elicitation_id) else {
            return;
        };
        let mut kept = self
            .url_elicitations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if kept.len() == URL_ELICITATIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back((server.clone(), elicitation, session));
    }

    /// How many requests to `session` are waiting for its answer (health).
    pub fn outstanding(&self, session: SessionId) -> usize {
        self.lock().keys().filter(|k| k.0 == session).count()
    }

    /// No answer by the deadline: the child gets an error, the client a cancellation.
    fn expire(&self, key: (SessionId, u64), after: Duration) {
        let Some(entry) = self.lock().remove(&key) else {
            return;
        };
        tracing::warn!(server = %entry.server, method = %entry.method, session = %key.0, ?after, "the client did not answer a child's request in time");
        let err = GatewayError::ClientTimeout {
            method: entry.method.to_string(),
            after,
        };
        answer_child(&entry, &err);
        cancel_at_client(&entry.sink, key.1, &err.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionId, u64), Outstanding>> {
        self.outstanding.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `elicitationId` in an elicitation's params (or its completion's).
fn elicitation_id(params: Raw<'_>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(rename = "elicitationId")]
        elicitation_id: String,
    }
    serde_json::from_str::<Id>(params.get())
        .ok()
        .map(|i| i.elicitation_id)
}

/// The error for a request the gateway does not pass on.
pub fn not_passed_on(method: &str) -> GatewayError {
    GatewayError::MethodNotFound(format!(
        "{method} (mcp-orchestra passes sampling/createMessage, elicitation/create and \
         roots/list on to its client, and answers ping itself)"
    ))
}

/// Tells every up child that the client's roots changed (every child was told at
/// `initialize` that roots are supported, with `listChanged`).
pub(crate) fn roots_changed(children: &[ChildHandle]) {
    for child in children.iter().filter(|c| c.state().is_up()) {
        if let Some(conn) = child.connection() {
            conn.notify("notifications/roots/list_changed", None);
        }
    }
}

fn answer_child(entry: &Outstanding, err: &GatewayError) {
    if let Some(child) = entry.child.upgrade().filter(|c| !c.is_closed()) {
        child.send_line(&jsonrpc::error_line(&entry.child_id, &err.to_wire()));
    }
}

fn cancel_at_client(sink: &FrontSink, id: u64, reason: &str) {
    let mut params = format!("{{\"requestId\":{id},\"reason\":");
    jsonrpc::push_json_str(&mut params, reason);
    params.push('}');
    sink.push(&jsonrpc::notification_line(
        "notifications/cancelled",
        Some(&params),
    ));
    sink.flush();
}

/// The session to ask for `server` (see the module's rules), or why there is none.
/// `callers`: the sessions of the child's calls, newest call first; `live`: the live
/// sessions, oldest first.
fn choose(
    need: Need,
    server: &str,
    callers: &[SessionId],
    live: &[Arc<SessionState>],
) -> Result<Arc<SessionState>, String> {
    let declared = |s: &SessionState| {
        s.negotiated()
            .capabilities
            .as_ref()
            .is_some_and(|c| need.met_by(c))
    };
    if !callers.is_empty() {
        let mut calling: Vec<&Arc<SessionState>> = callers
            .iter()
            .filter_map(|id| live.iter().find(|s| s.id == *id))
            .collect();
        calling.dedup_by_key(|s| s.id);
        let mut distinct: Vec<SessionId> = calling.iter().map(|s| s.id).collect();
        distinct.sort();
        distinct.dedup();
        // Over stdio a child's request does not say which call it serves. With calls of
        // several sessions in flight it could be any of them, and it may carry that client's
        // data (a sampling prompt, an elicitation message): it goes to none rather than
        // perhaps to the wrong one.
        if distinct.len() > 1 {
            return Err(format!(
                "server \"{server}\" is serving calls of several sessions ({}) at once, and \
                 its request does not say which one it belongs to; it is sent to none of them \
                 so that no client sees another's data",
                distinct
                    .iter()
                    .map(SessionId::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(s) = calling.iter().find(|s| declared(s)) {
            return Ok((*s).clone());
        }
        return Err(match calling.as_slice() {
            [] => format!("the sessions whose calls server \"{server}\" is serving have closed"),
            [one] => format!(
                "session {}, whose call server \"{server}\" is serving, did not declare {}",
                one.id,
                need.describe()
            ),
            many => format!(
                "sessions {}, whose calls server \"{server}\" is serving, did not declare {}",
                many.iter()
                    .map(|s| s.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                need.describe()
            ),
        });
    }
    live.iter()
        .find(|s| s.is_initialized() && declared(s))
        .cloned()
        .ok_or_else(|| format!("no session declared {}", need.describe()))
}

/// The child layer reaches the clients through this (`child/clients.rs`).
impl Clients for Upstream {
    fn log(&self, server: &str, params: &str) {
        self.sessions.deliver_log(server, params);
    }

    fn resource_updated(&self, server: usize, params: &str) {
        self.sessions.deliver_resource_updated(server, params);
    }

    fn request(
        &self,
        child: &Arc<Connection>,
        server: &Arc<str>,
        child_id: &str,
        method: &str,
        params: Option<Raw<'_>>,
        timeout: Duration,
    ) -> Result<(), GatewayError> {
        if !forwards(method) {
            return Err(not_passed_on(method));
        }
        self.forward(child, server, child_id, method, params, timeout)
    }

    fn cancelled_by_child(&self, child: &Connection, params: Option<Raw<'_>>) -> bool {
        Upstream::cancelled_by_child(self, child, params)
    }

    fn elicitation_complete(&self, server: &str, params: Option<Raw<'_>>) -> bool {
        Upstream::elicitation_complete(self, server, params)
    }

    fn child_closed(&self, child: &Connection, why: &str) {
        Upstream::child_closed(self, child, why);
    }

    fn wanted_log_level(&self) -> Option<Level> {
        self.sessions.wanted_log_level()
    }

    fn subscribed_uris(&self, server: usize) -> Vec<String> {
        self.sessions.subscribed_uris(server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::Negotiated;
    use serde_json::json;

    fn session(sessions: &Sessions, caps: Value) -> Arc<SessionState> {
        let s = sessions.open("stdio", FrontSink::discard());
        s.set_negotiated(Negotiated {
            capabilities: Some(caps),
            ..Negotiated::default()
        });
        s.mark_initialized();
        s
    }

    #[test]
    fn elicitation_modes_follow_the_2025_11_25_schema() {
        let form = Need::Elicitation { url: false };
        let url = Need::Elicitation { url: true };
        let empty = json!({"elicitation": {}});
        assert!(form.met_by(&empty), "{{}} is form mode");
        assert!(!url.met_by(&empty));
        let both = json!({"elicitation": {"form": {}, "url": {}}});
        assert!(form.met_by(&both) && url.met_by(&both));
        let url_only = json!({"elicitation": {"url": {}}});
        assert!(!form.met_by(&url_only) && url.met_by(&url_only));
        assert!(!Need::Sampling.met_by(&json!({"sampling": null})));
        let line = br#"{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"mode":"url","url":"https://x"}}"#;
        let env = Envelope::parse(line).unwrap();
        assert_eq!(Need::of("elicitation/create", env.params), Some(url));
        assert_eq!(Need::of("elicitation/create", None), Some(form));
        assert_eq!(Need::of("tasks/get", None), None);
    }

    #[test]
    fn the_calling_session_is_asked_and_calls_of_several_sessions_make_it_ambiguous() {
        let sessions = Sessions::default();
        let plain = session(&sessions, json!({}));
        let a = session(&sessions, json!({"sampling": {}}));
        let b = session(&sessions, json!({"sampling": {}}));
        let live = sessions.list();
        // Several calls, one session: that session.
        let got = choose(Need::Sampling, "s", &[b.id, b.id], &live).unwrap();
        assert_eq!(got.id, b.id);
        // Calls of two sessions in flight: the request could belong to either, and may carry
        // that client's data, so neither is asked.
        let why = choose(Need::Sampling, "s", &[b.id, a.id], &live).unwrap_err();
        assert!(why.contains("several sessions"), "{why}");
        let why = choose(Need::Sampling, "s", &[plain.id, a.id], &live).unwrap_err();
        assert!(
            why.contains(&format!("{}, {}", plain.id.min(a.id), plain.id.max(a.id))),
            "{why}"
        );
    }

    #[test]
    fn another_clients_session_is_never_asked_for_a_call_it_did_not_make() {
        let sessions = Sessions::default();
        let plain = session(&sessions, json!({}));
        let _other = session(&sessions, json!({"sampling": {}}));
        let why = choose(Need::Sampling, "s", &[plain.id], &sessions.list()).unwrap_err();
        assert!(why.contains(&format!("session {}", plain.id)), "{why}");
        assert!(
            why.contains("did not declare the sampling capability"),
            "{why}"
        );
        let why = choose(Need::Sampling, "s", &[SessionId(999)], &sessions.list()).unwrap_err();
        assert!(why.contains("have closed"), "{why}");
    }

    #[test]
    fn without_a_call_the_oldest_initialized_session_that_declared_it_is_asked() {
        let sessions = Sessions::default();
        let _plain = session(&sessions, json!({}));
        let not_yet = sessions.open("stdio", FrontSink::discard());
        not_yet.set_negotiated(Negotiated {
            capabilities: Some(json!({"roots": {}})),
            ..Negotiated::default()
        });
        let why = choose(Need::Roots, "s", &[], &sessions.list()).unwrap_err();
        assert_eq!(why, "no session declared the roots capability");
        let first = session(&sessions, json!({"roots": {"listChanged": true}}));
        let _second = session(&sessions, json!({"roots": {}}));
        assert_eq!(
            choose(Need::Roots, "s", &[], &sessions.list()).unwrap().id,
            first.id
        );
    }
}
