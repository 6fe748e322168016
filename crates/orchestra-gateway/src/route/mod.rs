//! Routing a client's `tools/call` to a child: by exposed name to the owner, or — when the owner
//! is down — to a live stand-in with the same tool (failover); waiting for an owner that is
//! starting or about to be back (parking); sending again calls that never reached a child that
//! died (re-sending); and the answers for calls that cannot be routed.
//!
//! One place for every caller: the front's sessions, the child tasks (re-sends), and in time
//! the gateway's own tools, so that failover and parking behave the same whoever calls.

pub(crate) mod request;
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::child::connection::Forward;
use crate::child::{ChildHandle, Connection, State};
use crate::error::GatewayError;
use crate::events::EventKind;
use crate::hub::Gateway;
use crate::journal::{CallRecord, Outcome};
use crate::jsonrpc::{self, CallParams};
use crate::reply::Caller;
use crate::sink::FrontSink;
use crate::{guidance, names};

pub(crate) use wait::retry_call;
use wait::{back_by, call_deadline, park};

/// What became of a call handed to [`call`].
pub(crate) enum Routed {
    /// Queued on this child's connection; the caller flushes it when its burst ends.
    Queued(Arc<Connection>),
    /// Waiting for its server (answered later, or cancelled by the client).
    Parked,
    /// Answered already (an error, or guidance for a server that is down).
    Answered,
}

/// Routes one `tools/call` (`params` raw, `call` parsed from them) for `caller`.
pub(crate) async fn call(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    params: jsonrpc::Raw<'_>,
    call: &CallParams<'_>,
) -> Routed {
    match forward(gw, caller, id, call) {
        Ok(conn) => Routed::Queued(conn),
        Err(Unrouted::Starting(child)) => {
            let until = Instant::now() + child.spec().startup_timeout + Duration::from_secs(1);
            park(gw, caller, id, params.get(), until);
            Routed::Parked
        }
        // Restarting, and back within the call's own timeout: worth waiting for too.
        Err(Unrouted::Down(child)) if back_by(&child, call_deadline(&child)) => {
            park(gw, caller, id, params.get(), call_deadline(&child));
            Routed::Parked
        }
        Err(other) => {
            note_unrouted(caller, &call.name, &other);
            answer_unrouted(gw, &caller.reply, id, &call.name, other).await;
            Routed::Answered
        }
    }
}

/// Why a call could not be forwarded.
pub(crate) enum Unrouted {
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
pub(crate) fn forward(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    call: &CallParams<'_>,
) -> Result<Arc<Connection>, Unrouted> {
    let catalog = gw.catalog();
    let Some(route) = catalog.route(&call.name) else {
        // Not in the catalog: is it a tool of a server that never got ready? A name without
        // a server in it may be one of the unnamespaced server's (`namespace: false`) while
        // that server is still starting: it waits for that server's list like any other.
        let owner = names::split(&call.name, &gw.config().gateway.separator)
            .and_then(|(server, _)| gw.children().iter().find(|c| c.name() == server))
            .or_else(|| {
                gw.children()
                    .iter()
                    .find(|c| !c.spec().namespace && c.state() == State::Starting)
            });
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
                    session: caller.session,
                    front_id: id,
                    exposed: &route.exposed,
                    call,
                    tool: &route.original,
                    timeout: child.spec().call_timeout,
                    reply: &caller.reply,
                    failover: None,
                    journal: &caller.journal,
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
                .any(|t| t.get("name").and_then(Value::as_str) == Some(&*route.original))
        });
    let Some((fallback, conn)) = stand_in.and_then(|fb| Some((fb, fb.connection()?))) else {
        return Err(Unrouted::Down(child.clone()));
    };
    let status = child.status();
    let note = json!({
        "requested_server": child.name(),
        "served_by": fallback.name(),
        "tool": &*route.original,
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
        session: caller.session,
        front_id: id,
        exposed: &route.exposed,
        call,
        tool: &route.original,
        timeout: fallback.spec().call_timeout,
        reply: &caller.reply,
        failover: Some(&note),
        journal: &caller.journal,
    })
    .map(|()| conn)
    .map_err(Unrouted::Failed)
}

/// Records a call that no server took in its session's journal, if watched: guidance for a
/// down server is a tool error (the model got an `isError` result), the rest are errors.
pub(crate) fn note_unrouted(caller: &Caller, tool: &str, why: &Unrouted) {
    if !caller.journal.is_on() {
        return;
    }
    let (server, outcome) = match why {
        Unrouted::Down(child) => (Some(child.name().into()), Outcome::ToolError),
        Unrouted::Starting(child) => (Some(child.name().into()), Outcome::Error),
        Unrouted::Failed(_) | Unrouted::Unknown => (None, Outcome::Error),
    };
    caller.journal.record(CallRecord {
        tool: tool.into(),
        server,
        outcome,
        failed_over: false,
        at_ms: crate::journal::tick(),
        duration: Duration::ZERO,
    });
}

/// Answers a call that could not be forwarded: protocol errors for what the client got wrong,
/// an `isError` result the model can act on when the owner is down.
pub(crate) async fn answer_unrouted(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    name: &str,
    why: Unrouted,
) {
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

pub(crate) fn unavailable(child: &ChildHandle) -> GatewayError {
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
