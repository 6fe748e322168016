//! One client session: decodes each message's envelope and answers or forwards it.
//!
//! Nothing here waits for a child: a forwarded call is registered and queued, and the child's
//! reader answers it later. A slow call therefore never delays the next message.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use serde_json::{json, Value};

use super::FrontSink;
use crate::app::Gateway;
use crate::child::connection::{Forward, Retry};
use crate::child::{ChildHandle, Connection, State};
use crate::error::GatewayError;
use crate::events::EventKind;
use crate::jsonrpc::{self, CallParams, Envelope, Kind};
use crate::names;
use crate::{guidance, health};

/// Protocol versions the front speaks, newest first (the initialize-handshake era).
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Longest a `tools/list` waits for children still starting. Slower children (a first run
/// downloading packages) join later through `notifications/tools/list_changed`.
const FIRST_LIST_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

/// State of one client session.
pub struct Session {
    gw: Gateway,
    out: FrontSink,
    /// Children that got calls during the current burst of input (written by `flush`).
    dirty: std::sync::Mutex<Vec<Arc<Connection>>>,
}

impl Session {
    pub fn new(gw: Gateway, out: FrontSink) -> Self {
        Self {
            gw,
            out,
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

    /// Handles one line from the client.
    pub async fn handle(&self, line: &[u8]) {
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
                return self.reply_err("null", &err).await;
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
            return self.reply_err(env.reply_id(), &err).await;
        }
        match kind {
            Kind::Request => {
                let id = env.reply_id();
                let method = env.method.as_deref().unwrap_or_default();
                if let Err(err) = self.request(id, method, env.params).await {
                    self.reply_err(id, &err).await;
                }
            }
            Kind::Notification => {
                self.notification(env.method.as_deref().unwrap_or_default(), env.params)
            }
            // We send the client no requests, so there is nothing to match a response to.
            Kind::Response => tracing::debug!("ignored a response from the client"),
            Kind::Invalid => {
                let id = env.reply_id();
                self.reply_err(
                    id,
                    &GatewayError::InvalidRequest("not a request, notification or response".into()),
                )
                .await;
            }
        }
    }

    async fn request(
        &self,
        id: &str,
        method: &str,
        params: Option<jsonrpc::Raw<'_>>,
    ) -> Result<(), GatewayError> {
        match method {
            "tools/call" => {
                let params = params
                    .ok_or_else(|| GatewayError::InvalidParams("tools/call needs params".into()))?;
                self.call_tool(id, params).await
            }
            "tools/list" => {
                self.list_tools(id).await;
                Ok(())
            }
            "initialize" => {
                let result = self.initialize(params);
                self.reply(id, &result.to_string()).await;
                Ok(())
            }
            "ping" | "logging/setLevel" => {
                self.reply(id, "{}").await;
                Ok(())
            }
            other => Err(GatewayError::MethodNotFound(other.to_owned())),
        }
    }

    fn notification(&self, method: &str, params: Option<jsonrpc::Raw<'_>>) {
        match method {
            // Nothing waits for it: list_changed is sent only after the client has listed.
            "notifications/initialized" => {}
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
                if self.gw.cancel_parked(c.request_id.get()) {
                    return;
                }
                let found = self
                    .gw
                    .children()
                    .iter()
                    .filter_map(|child| child.connection())
                    .any(|conn| conn.cancel_call(c.request_id.get(), c.reason.as_deref()));
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
    async fn call_tool(&self, id: &str, params: jsonrpc::Raw<'_>) -> Result<(), GatewayError> {
        let call = CallParams::from_raw(params).map_err(GatewayError::InvalidParams)?;
        if call.name == health::TOOL_NAME {
            let result = health::call(&self.gw);
            self.reply(id, &result.to_string()).await;
            return Ok(());
        }
        match forward(&self.gw, &self.out, id, &call) {
            Ok(conn) => {
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                if !dirty.iter().any(|c| Arc::ptr_eq(c, &conn)) {
                    dirty.push(conn);
                }
                Ok(())
            }
            Err(Unrouted::Starting(child)) => {
                let until = Instant::now() + child.spec().startup_timeout + Duration::from_secs(1);
                self.park(id, params, until);
                Ok(())
            }
            // Restarting, and back within the call's own timeout: worth waiting for too.
            Err(Unrouted::Down(child)) if back_by(&child, call_deadline(&child)) => {
                self.park(id, params, call_deadline(&child));
                Ok(())
            }
            Err(other) => {
                answer_unrouted(&self.gw, &self.out, id, &call.name, other).await;
                Ok(())
            }
        }
    }

    /// The owner is starting or restarting: wait for it until `until` (its startup timeout, or
    /// the call's timeout) off the reader, so other messages keep flowing, then route the call
    /// again. The client can cancel the call meanwhile.
    fn park(&self, id: &str, params: jsonrpc::Raw<'_>, until: Instant) {
        let (gw, out, id, params) = (
            self.gw.clone(),
            self.out.clone(),
            id.to_owned(),
            params.get().to_owned(),
        );
        // Registered now, not in the task: a cancel later in this same burst must find it.
        let cancelled = gw.park_call(&id);
        self.gw.spawn(async move {
            // `params` parsed once already on the way in; this cannot fail in practice.
            let call = match CallParams::parse(&params) {
                Ok(call) => call,
                Err(e) => {
                    gw.unpark_call(&id);
                    let err = GatewayError::InvalidParams(e);
                    return out.send(jsonrpc::error_line(&id, &err.to_wire())).await;
                }
            };
            // Still starting after the budget: say so rather than wait again.
            if let Waited::GaveUp(why) =
                forward_when_up(&gw, &out, &id, &call, until, false, cancelled).await
            {
                answer_unrouted(&gw, &out, &id, &call.name, why).await;
            }
        });
    }

    async fn list_tools(&self, id: &str) {
        if !self.gw.can_list_now() {
            // Hold the first listing until every child has finished starting (bounded), so the
            // client sees the whole catalog instead of whichever children were fastest. With a
            // cached catalog from the last run there is nothing to wait for.
            let gw = self.gw.clone();
            let out = self.out.clone();
            let id = id.to_owned();
            self.gw.spawn(async move {
                let _ = tokio::time::timeout(FIRST_LIST_HOLD, gw.wait_settled()).await;
                let list = gw.catalog().list_result().clone();
                gw.mark_listed(&list);
                out.send(jsonrpc::response_line(&id, &list)).await;
            });
            return;
        }
        let list = self.gw.catalog().list_result().clone();
        self.gw.mark_listed(&list);
        self.reply(id, &list).await;
    }

    fn initialize(&self, params: Option<jsonrpc::Raw<'_>>) -> Value {
        let requested = params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| {
                p.get("protocolVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        let version = requested
            .as_deref()
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .unwrap_or(SUPPORTED_VERSIONS[0]);
        json!({
            "protocolVersion": version,
            "capabilities": { "tools": { "listChanged": true } },
            "serverInfo": {
                "name": "mcp-orchestra",
                "title": "mcp-orchestra gateway",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "instructions": self.gw.instructions(),
        })
    }

    async fn reply(&self, id: &str, result: &str) {
        self.out.send(jsonrpc::response_line(id, result)).await;
    }

    async fn reply_err(&self, id: &str, err: &GatewayError) {
        self.out.send(jsonrpc::error_line(id, &err.to_wire())).await;
    }
}

/// Sends again a call that never reached a child that died (it was still queued): once its
/// server — or a stand-in with the same tool — can take it, within the call's own deadline;
/// otherwise the client gets the error the call would have had.
pub(crate) fn retry_call(gw: Gateway, retry: Retry) {
    let Retry {
        front_id,
        exposed,
        params,
        deadline,
        reply,
        error,
    } = retry;
    let cancelled = gw.park_call(&front_id);
    let task_gw = gw.clone();
    gw.spawn(async move {
        let gw = task_gw;
        let Ok(mut call) = CallParams::parse(&params) else {
            gw.unpark_call(&front_id);
            return reply
                .send(jsonrpc::error_line(&front_id, &error.to_wire()))
                .await;
        };
        // The queued params name the child's tool; routing goes by the name the client used.
        call.name = std::borrow::Cow::Owned(exposed.to_string());
        tracing::info!(tool = %exposed, "re-sending a call that never reached its server");
        match forward_when_up(&gw, &reply, &front_id, &call, deadline, true, cancelled).await {
            Waited::Sent | Waited::Cancelled => {}
            Waited::GaveUp(Unrouted::Down(_)) => {
                reply
                    .send(jsonrpc::error_line(&front_id, &error.to_wire()))
                    .await;
            }
            Waited::GaveUp(other) => answer_unrouted(&gw, &reply, &front_id, &exposed, other).await,
        }
    });
}

/// How waiting to forward a call ended.
enum Waited {
    Sent,
    /// The client cancelled it: no answer is due (MCP cancellation semantics).
    Cancelled,
    GaveUp(Unrouted),
}

/// Routes `call` as soon as its server — or a stand-in with the same tool — can take it, until
/// `until`: while the owner is starting or restarting in time (see [`back_by`]), and with
/// `through_restarts` while it is down at all.
/// `cancelled` (from [`Gateway::park_call`]) ends the wait if the client cancels the call.
async fn forward_when_up(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    call: &CallParams<'_>,
    until: Instant,
    through_restarts: bool,
    cancelled: CancellationToken,
) -> Waited {
    let waited = loop {
        let child = match forward(gw, out, id, call) {
            Ok(conn) => {
                conn.flush();
                break Waited::Sent;
            }
            Err(Unrouted::Starting(child)) => child,
            Err(Unrouted::Down(child)) if through_restarts || back_by(&child, until) => child,
            Err(other) => break Waited::GaveUp(other),
        };
        let mut status = child.subscribe();
        tokio::select! {
            _ = cancelled.cancelled() => break Waited::Cancelled,
            changed = status.changed() => if changed.is_err() { break Waited::GaveUp(Unrouted::Down(child)) },
            _ = tokio::time::sleep_until(until.into()) => break Waited::GaveUp(Unrouted::Down(child)),
        }
    };
    gw.unpark_call(id);
    waited
}

/// When a call to `child` made now must be answered by: its call timeout.
fn call_deadline(child: &ChildHandle) -> Instant {
    Instant::now() + child.spec().call_timeout
}

/// Whether `child` is restarting and due back by `until`: its next start is due by then, or
/// already under way (the dead process still being stopped, or the new one starting). A
/// failed (crash-looping), misconfigured or unhealthy server is not coming back soon, and a
/// restart due later than `until` is not worth waiting for: those calls are answered at once.
fn back_by(child: &ChildHandle, until: Instant) -> bool {
    let status = child.status();
    if status.state != State::Restarting {
        return false;
    }
    match status.next_attempt {
        None => true,
        Some(at) => at
            .duration_since(SystemTime::now())
            .map_or(true, |wait| Instant::now() + wait <= until),
    }
}

/// Why a call could not be forwarded.
enum Unrouted {
    /// Its server is still starting: worth waiting for.
    Starting(ChildHandle),
    /// Its server is down and no fallback serves the tool.
    Down(ChildHandle),
    /// Forwarding failed (overloaded, session closing).
    Failed(GatewayError),
    /// No server has such a tool.
    Unknown,
}

/// Routes `call` by its exposed name and queues it for the owning child — or, when the owner
/// is down, for the first live server of its fallback chain that has a tool of the same name.
/// Returns the connection the call was queued on; the caller flushes it.
fn forward(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    call: &CallParams<'_>,
) -> Result<Arc<Connection>, Unrouted> {
    let catalog = gw.catalog();
    let Some(route) = catalog.route(&call.name) else {
        // Not in the catalog: is it a tool of a server that never got ready?
        let owner = names::split(&call.name, &gw.config().gateway.separator)
            .and_then(|(server, _)| gw.children().iter().find(|c| c.name() == server));
        return Err(match owner {
            Some(child) if child.state() == State::Starting => Unrouted::Starting(child.clone()),
            Some(child) if !child.state().is_up() => Unrouted::Down(child.clone()),
            _ => Unrouted::Unknown,
        });
    };
    let child = &gw.children()[route.server];
    if child.state().is_up() {
        if let Some(conn) = child.connection() {
            return conn
                .forward_call(Forward {
                    front_id: id,
                    exposed: &route.exposed,
                    call,
                    tool: &route.tool,
                    timeout: child.spec().call_timeout,
                    reply: out,
                    failover: None,
                })
                .map(|()| conn)
                .map_err(Unrouted::Failed);
        }
    }
    if child.state() == State::Starting {
        return Err(Unrouted::Starting(child.clone()));
    }
    let stand_in = gw
        .live_fallback(child.name())
        .and_then(|name| gw.children().iter().find(|c| c.name() == name))
        .filter(|fb| {
            fb.tools()
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(&*route.tool))
        });
    let Some((fallback, conn)) = stand_in.and_then(|fb| Some((fb, fb.connection()?))) else {
        return Err(Unrouted::Down(child.clone()));
    };
    let status = child.status();
    let note = json!({
        "requested_server": child.name(),
        "served_by": fallback.name(),
        "tool": &*route.tool,
        "reason": format!("\"{}\" is {}{}", child.name(), status.state.as_str(),
            status.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()),
    })
    .to_string();
    gw.events().record(
        child.name(),
        EventKind::FailedOver,
        format!("{} served by {}", call.name, fallback.name()),
    );
    conn.forward_call(Forward {
        front_id: id,
        exposed: &route.exposed,
        call,
        tool: &route.tool,
        timeout: fallback.spec().call_timeout,
        reply: out,
        failover: Some(&note),
    })
    .map(|()| conn)
    .map_err(Unrouted::Failed)
}

/// Answers a call that could not be forwarded: protocol errors for what the client got wrong,
/// an `isError` result the model can act on when the owner is down.
async fn answer_unrouted(gw: &Gateway, out: &FrontSink, id: &str, name: &str, why: Unrouted) {
    let line = match why {
        Unrouted::Down(child) => jsonrpc::response_line(
            id,
            &guidance::unavailable_result(gw, &child, name).to_string(),
        ),
        Unrouted::Starting(child) => jsonrpc::error_line(id, &unavailable(&child).to_wire()),
        Unrouted::Failed(e) => jsonrpc::error_line(id, &e.to_wire()),
        Unrouted::Unknown => {
            let err = GatewayError::UnknownTool {
                name: name.to_owned(),
                suggestions: gw.catalog().suggestions(name),
            };
            jsonrpc::error_line(id, &err.to_wire())
        }
    };
    out.send(line).await;
}

fn unavailable(child: &ChildHandle) -> GatewayError {
    let status = child.status();
    GatewayError::ServerUnavailable {
        server: child.name().to_owned(),
        state: status.state.as_str(),
        reason: status.reason.unwrap_or_else(|| match status.state {
            State::Starting => "it has not finished starting".into(),
            _ => "its session is closed".into(),
        }),
    }
}
