//! One client session: decodes each message's envelope and answers or forwards it.
//!
//! Nothing here waits for a child: a forwarded call is registered and queued, and the child's
//! reader answers it later. A slow call therefore never delays the next message.

use std::sync::Arc;

use serde_json::{json, Value};

use super::FrontSink;
use crate::child::Connection;
use crate::error::GatewayError;
use crate::hub::Gateway;
use crate::jsonrpc::{self, CallParams, Envelope, Kind};
use crate::listing::ListKind;
use crate::logging::Level;
use crate::reply::Caller;
use crate::route;
use crate::sessions::{Negotiated, SessionState};

/// Protocol versions the front speaks, newest first (the initialize-handshake era).
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Longest a `tools/list` waits for children still starting. Slower children (a first run
/// downloading packages) join later through `notifications/tools/list_changed`.
const FIRST_LIST_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

/// State of one client session.
pub struct Session {
    gw: Gateway,
    /// Its entry in the gateway's session registry (removed when the session is dropped).
    state: Arc<SessionState>,
    /// This session as the caller of what it routes (its id scopes its request ids).
    caller: Caller,
    /// Children that got calls during the current burst of input (written by `flush`).
    dirty: std::sync::Mutex<Vec<Arc<Connection>>>,
}

impl Session {
    /// A session over `transport` (`stdio`), answering into `out`; listed in the gateway's
    /// session registry until it is dropped.
    pub fn new(gw: Gateway, out: FrontSink, transport: &'static str) -> Self {
        let state = gw.sessions().open(transport, out.clone());
        let caller = Caller {
            session: state.id,
            reply: out,
            journal: state.journal.clone(),
        };
        Self {
            gw,
            state,
            caller,
            dirty: std::sync::Mutex::default(),
        }
    }

    /// Writes the calls queued during this burst of input: one write per child touched.
    pub fn flush(&self) {
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        for conn in dirty {
            conn.flush();
        }
    }

    /// Handles one line from the client (answers to the session's own output).
    pub async fn handle(&self, line: &[u8]) {
        self.handle_with(line, &self.caller).await
    }

    /// This session as a caller whose answers, progress and errors go to `reply` instead of
    /// its own output: an HTTP POST's response stream. Notifications not tied to a request
    /// (list_changed, log messages, requests on a child's behalf) still go to the session's
    /// own output.
    pub fn caller_with(&self, reply: FrontSink) -> Caller {
        Caller {
            session: self.state.id,
            reply,
            journal: self.state.journal.clone(),
        }
    }

    /// The session's entry in the gateway's registry.
    pub fn state(&self) -> &Arc<SessionState> {
        &self.state
    }

    /// Handles one line from the client, answering to `caller.reply` (see
    /// [`Session::caller_with`]).
    pub async fn handle_with(&self, line: &[u8], caller: &Caller) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let env = match Envelope::parse(line) {
            Ok(env) => env,
            Err(e) => {
                let err = if line.trim_ascii_start().starts_with(b"[") {
                    GatewayError::InvalidRequest("JSON-RPC batches are not supported by MCP".into())
                } else {
                    GatewayError::Parse(e.to_string())
                };
                return self.reply_err(caller, "null", &err).await;
            }
        };
        let kind = env.kind();
        if let Some(defect) = env.defect {
            // Not valid JSON-RPC: every request or notification gets -32600 (with its id when
            // that is readable); a bad response from the client is only logged.
            if kind == Kind::Response {
                tracing::debug!(%defect, "ignored an invalid response from the client");
                return;
            }
            let err = GatewayError::InvalidRequest(defect.to_string());
            return self.reply_err(caller, env.reply_id(), &err).await;
        }
        match kind {
            Kind::Request => {
                let id = env.reply_id();
                let method = env.method.as_deref().unwrap_or_default();
                if let Err(err) = self.request(caller, id, method, env.params).await {
                    self.reply_err(caller, id, &err).await;
                }
            }
            Kind::Notification => {
                self.notification(env.method.as_deref().unwrap_or_default(), env.params)
            }
            // An answer to a request sent on a child's behalf (sampling, elicitation, roots).
            Kind::Response => self.gw.upstream().answer(self.state.id, &env),
            Kind::Invalid => {
                let id = env.reply_id();
                self.reply_err(
                    caller,
                    id,
                    &GatewayError::InvalidRequest("not a request, notification or response".into()),
                )
                .await;
            }
        }
    }

    async fn request(
        &self,
        caller: &Caller,
        id: &str,
        method: &str,
        params: Option<jsonrpc::Raw<'_>>,
    ) -> Result<(), GatewayError> {
        match method {
            "tools/call" => {
                let params = params
                    .ok_or_else(|| GatewayError::InvalidParams("tools/call needs params".into()))?;
                self.call_tool(caller, id, params).await
            }
            "tools/list" => self.list(caller, id, ListKind::Tools, params).await,
            "prompts/list" => self.list(caller, id, ListKind::Prompts, params).await,
            "resources/list" => self.list(caller, id, ListKind::Resources, params).await,
            "resources/templates/list" => {
                self.list(caller, id, ListKind::ResourceTemplates, params)
                    .await
            }
            "prompts/get" => super::prompts::get(&self.gw, caller, id, params),
            "completion/complete" => super::completion::complete(&self.gw, caller, id, params),
            "resources/read" => super::resources::read(&self.gw, caller, id, params),
            "resources/subscribe" => {
                let done = super::resources::subscribe(&self.gw, &self.state, caller, id, params)?;
                if let Some(result) = done {
                    self.reply(caller, id, result).await;
                }
                Ok(())
            }
            "resources/unsubscribe" => {
                let done =
                    super::resources::unsubscribe(&self.gw, &self.state, caller, id, params)?;
                if let Some(result) = done {
                    self.reply(caller, id, result).await;
                }
                Ok(())
            }
            "initialize" => {
                let result = self.initialize(params);
                self.reply(caller, id, &result.to_string()).await;
                Ok(())
            }
            "logging/setLevel" => {
                self.set_log_level(params)?;
                self.reply(caller, id, "{}").await;
                Ok(())
            }
            "ping" => {
                self.reply(caller, id, "{}").await;
                Ok(())
            }
            // The 2026-07-28 era's opening probe. Clients fall back to `initialize` on an
            // error (the SDKs key on -32601, some on any error), so answer at once, plainly.
            "server/discover" => Err(GatewayError::MethodNotFound(
                "server/discover: this gateway speaks the initialize handshake \
                 (2024-11-05 to 2025-11-25); send initialize"
                    .into(),
            )),
            other => Err(GatewayError::MethodNotFound(other.to_owned())),
        }
    }

    fn notification(&self, method: &str, params: Option<jsonrpc::Raw<'_>>) {
        match method {
            // list_changed is sent only after the client has listed, so nothing else waits for
            // it; requests on a child's behalf may go to the session from now on. A client
            // with roots may be what a child asked for earlier, when no session could answer:
            // the children are told the roots changed, so that they ask again.
            "notifications/initialized" => {
                self.state.mark_initialized();
                let roots = self
                    .state
                    .negotiated()
                    .capabilities
                    .is_some_and(|c| c.get("roots").is_some_and(|r| !r.is_null()));
                if roots {
                    crate::upstream::roots_changed(self.gw.children());
                }
            }
            "notifications/roots/list_changed" => {
                crate::upstream::roots_changed(self.gw.children())
            }
            "notifications/cancelled" => {
                #[derive(serde::Deserialize)]
                struct Cancelled<'a> {
                    #[serde(rename = "requestId", borrow)]
                    request_id: &'a serde_json::value::RawValue,
                    reason: Option<String>,
                }
                let Some(c) = params.and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok())
                else {
                    return;
                };
                if self.gw.cancel_parked(self.state.id, c.request_id.get()) {
                    return;
                }
                let found = self
                    .gw
                    .children()
                    .iter()
                    .filter_map(|child| child.connection())
                    .any(|conn| {
                        conn.cancel_call(self.state.id, c.request_id.get(), c.reason.as_deref())
                    });
                tracing::debug!(
                    request = c.request_id.get(),
                    found,
                    "client cancelled a request"
                );
            }
            _ => tracing::debug!(method, "ignored a notification from the client"),
        }
    }

    /// The hot path: route by exposed name, re-address, queue for the child.
    async fn call_tool(
        &self,
        caller: &Caller,
        id: &str,
        params: jsonrpc::Raw<'_>,
    ) -> Result<(), GatewayError> {
        let call = CallParams::from_raw(params).map_err(GatewayError::InvalidParams)?;
        if let Some(tool) = self.gw.local_tools().get(&call.name) {
            // The gateway's own tools run off the reader: one that takes a while (the
            // orchestrator's store) never holds up the session's other messages.
            let (tool, gw, caller) = (tool.clone(), self.gw.clone(), caller.clone());
            let (id, arguments) = (id.to_owned(), call.arguments().map(str::to_owned));
            self.gw.spawn(async move {
                let result = tool.call(&gw, &caller, arguments.as_deref()).await;
                caller
                    .reply
                    .send(jsonrpc::response_line(&id, &result.to_string()))
                    .await;
            });
            return Ok(());
        }
        if let route::Routed::Queued(conn) = route::call(&self.gw, caller, id, params, &call).await
        {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            if !dirty.iter().any(|c| Arc::ptr_eq(c, &conn)) {
                dirty.push(conn);
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        caller: &Caller,
        id: &str,
        kind: ListKind,
        params: Option<jsonrpc::Raw<'_>>,
    ) -> Result<(), GatewayError> {
        super::lists::serve(
            &self.gw,
            &self.state,
            &caller.reply,
            id,
            kind,
            params,
            FIRST_LIST_HOLD,
        )
        .await
    }

    fn initialize(&self, params: Option<jsonrpc::Raw<'_>>) -> Value {
        let params = params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .unwrap_or(Value::Null);
        let version = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .unwrap_or(SUPPORTED_VERSIONS[0]);
        // Kept for the session's life: which era it speaks and what it can answer (sampling,
        // elicitation, roots) decide what may be sent to it.
        self.state.set_negotiated(Negotiated {
            protocol_version: Some(version.to_owned()),
            client_info: params.get("clientInfo").cloned(),
            capabilities: params.get("capabilities").cloned(),
        });
        json!({
            "protocolVersion": version,
            // Prompts and resources are always advertised: whether any child has them can
            // change at any time (children start, restart, list_changed), and an empty list is
            // honest. Subscriptions are forwarded to children that support them; a URI of one
            // that does not gets a clear error.
            "capabilities": {
                "tools": { "listChanged": true },
                "prompts": { "listChanged": true },
                "resources": { "subscribe": true, "listChanged": true },
                "completions": {},
                "logging": {},
            },
            "serverInfo": {
                "name": "mcp-orchestra",
                "title": "mcp-orchestra gateway",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "instructions": super::instructions::text(&self.gw),
        })
    }

    /// `logging/setLevel`: this session gets children's messages at `level` and above; the
    /// children are set to the most verbose level any session asked for.
    fn set_log_level(&self, params: Option<jsonrpc::Raw<'_>>) -> Result<(), GatewayError> {
        #[derive(serde::Deserialize)]
        struct SetLevel {
            level: String,
        }
        let asked = params
            .and_then(|p| serde_json::from_str::<SetLevel>(p.get()).ok())
            .ok_or_else(|| {
                GatewayError::InvalidParams("logging/setLevel needs params.level".into())
            })?;
        let level = Level::parse(&asked.level).ok_or_else(|| {
            GatewayError::InvalidParams(format!(
                "unknown log level \"{}\" (one of: {})",
                asked.level,
                Level::ALL.map(Level::as_str).join(", ")
            ))
        })?;
        self.state.set_log_level(level);
        self.gw.apply_log_level();
        Ok(())
    }

    async fn reply(&self, caller: &Caller, id: &str, result: &str) {
        caller.reply.send(jsonrpc::response_line(id, result)).await;
    }

    async fn reply_err(&self, caller: &Caller, id: &str, err: &GatewayError) {
        caller
            .reply
            .send(jsonrpc::error_line(id, &err.to_wire()))
            .await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(state) = self.gw.sessions().close(self.state.id) {
            super::resources::end_subscriptions(&self.gw, &state);
        }
        // Children waiting for this client's answers are told at once.
        self.gw.upstream().session_closed(self.state.id);
        // It may have been the one asking for the most verbose level.
        self.gw.relax_log_level();
    }
}

#[cfg(test)]
mod send_check {
    /// The HTTP front runs sessions on a multi-threaded server: their futures must be `Send`.
    #[allow(dead_code)]
    fn handle_with_is_send(s: &super::Session, c: &super::Caller) {
        fn send<T: Send>(_: T) {}
        send(s.handle_with(b"", c));
    }
}
