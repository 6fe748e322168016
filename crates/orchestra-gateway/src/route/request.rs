//! Requests for one server that are not tool calls — `prompts/get`, `completion/complete`,
//! `resources/read`, `resources/subscribe`, `resources/unsubscribe`: sent as the gateway's own
//! request from a task (not the hot path), with the same rules as calls: wait for an owner
//! that is starting or about to be back, use a live fallback that has the same entry, else
//! answer with why and what to use instead. The client can cancel at any point.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::back_by;
use crate::app::Gateway;
use crate::child::connection::{with_failover_meta, RequestError};
use crate::child::{ChildHandle, State};
use crate::error::GatewayError;
use crate::events::EventKind;
use crate::jsonrpc;
use crate::reply::Caller;

/// Turns the child's result into the client's (for example, child URIs into exposed ones).
pub(crate) type Finish = Box<dyn FnOnce(Box<str>, &ChildHandle) -> String + Send>;

/// Given the servers standing in for a down owner, the entries to name instead.
pub(crate) type Alternatives = Box<dyn FnOnce(&[String]) -> Vec<String> + Send>;

/// One request for the server that owns the addressed entry.
pub(crate) struct ServerRequest {
    pub method: &'static str,
    /// The owning server (index in the configuration).
    pub server: usize,
    /// The params as the owner must get them (re-addressed with its own name or URI).
    pub params: Value,
    /// What is addressed, for messages: `prompt "x"`, `resource "uri"`.
    pub subject: String,
    /// The entries' plural, for guidance: `prompts`, `resources`.
    pub plural: &'static str,
    /// Whether a server has the same entry (then it may stand in for a down owner).
    pub has_same: Box<dyn Fn(&ChildHandle) -> bool + Send>,
    /// The alternatives to name when the owner is down: given the stand-in servers.
    pub alternatives: Alternatives,
    pub finish: Option<Finish>,
}

/// Sends `request` for `caller`'s request `id` and answers it from a task: with the
/// server's result (through `finish`), the server's JSON-RPC error as is, or the gateway's
/// error naming the party at fault.
pub(crate) fn send(gw: &Gateway, caller: &Caller, id: &str, request: ServerRequest) {
    // Registered now, not in the task: a cancel later in this same burst must find it.
    let cancelled = gw.park_call(caller.session, id);
    let (task_gw, caller, id) = (gw.clone(), caller.clone(), id.to_owned());
    gw.spawn(async move {
        let gw = task_gw;
        // MCP: a cancelled request gets no answer (`None`).
        let line = run(&gw, request, &cancelled).await.map(|r| match r {
            Ok(result) => jsonrpc::response_line(&id, &result),
            Err(Answer::Gateway(e)) => jsonrpc::error_line(&id, &e.to_wire()),
            Err(Answer::Child(error)) => jsonrpc::error_line(&id, &error),
        });
        gw.unpark_call(caller.session, &id);
        if let Some(line) = line {
            caller.reply.send(line).await;
        }
    });
}

enum Answer {
    Gateway(GatewayError),
    /// The server's own JSON-RPC error object (raw), passed on as is: it is the server's answer.
    Child(String),
}

/// `None`: cancelled.
async fn run(
    gw: &Gateway,
    request: ServerRequest,
    cancelled: &CancellationToken,
) -> Option<Result<String, Answer>> {
    let owner = gw.children()[request.server].clone();
    let timeout = owner.spec().call_timeout;
    let deadline = Instant::now() + timeout;
    // Starting, or restarting and due back within the request's own timeout: worth waiting.
    let wait_until = match owner.state() {
        State::Starting => Some(Instant::now() + owner.spec().startup_timeout),
        state if !state.is_up() && back_by(&owner, deadline) => Some(deadline),
        _ => None,
    };
    if let Some(until) = wait_until {
        tokio::select! {
            _ = wait_up(&owner, until) => {}
            _ = cancelled.cancelled() => return None,
        }
    }
    let (target, note) = match owner.connection() {
        Some(conn) if owner.state().is_up() => ((owner.clone(), conn), None),
        _ => match stand_in(gw, &owner, &request) {
            Some((fallback, conn, note)) => ((fallback, conn), Some(note)),
            None => return Some(Err(Answer::Gateway(down(gw, &owner, request)))),
        },
    };
    let (child, conn) = target;
    let params = request.params.to_string();
    let answer = conn
        .request_cancellable(request.method, Some(&params), timeout, cancelled)
        .await;
    Some(match answer {
        Ok(result) => {
            let result = match request.finish {
                Some(finish) => finish(result, &child).into_boxed_str(),
                None => result,
            };
            Ok(match note {
                Some(note) => with_failover_meta(&result, &note),
                None => result.into(),
            })
        }
        Err(RequestError::Cancelled) => return None,
        Err(e) => Err(failure(
            request.method,
            &child,
            &request.subject,
            timeout,
            e,
        )),
    })
}

/// Waits (bounded) until `child` is up or has settled down.
async fn wait_up(child: &ChildHandle, until: Instant) {
    let mut status = child.subscribe();
    let _ = tokio::time::timeout_at(
        until.into(),
        status.wait_for(|s| {
            s.state.is_up() || !matches!(s.state, State::Starting | State::Restarting)
        }),
    )
    .await;
}

/// The owner's live fallback, when it has the same entry.
fn stand_in(
    gw: &Gateway,
    owner: &ChildHandle,
    request: &ServerRequest,
) -> Option<(
    ChildHandle,
    std::sync::Arc<crate::child::Connection>,
    String,
)> {
    let name = gw.live_fallback(owner.name())?;
    let fallback = gw.children().iter().find(|c| c.name() == name)?;
    if !(request.has_same)(fallback) {
        return None;
    }
    let conn = fallback.connection()?;
    let status = owner.status();
    let note = json!({
        "requested_server": owner.name(),
        "served_by": fallback.name(),
        "subject": &request.subject,
        "reason": format!("\"{}\" is {}{}", owner.name(), status.state.as_str(),
            status.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()),
    })
    .to_string();
    gw.events().record(
        owner.name(),
        EventKind::FailedOver,
        format!(
            "{} {} served by {}",
            request.method,
            request.subject,
            fallback.name()
        ),
    );
    Some((fallback.clone(), conn, note))
}

/// The answer for a request whose owner is down with nothing to stand in.
fn down(gw: &Gateway, owner: &ChildHandle, request: ServerRequest) -> GatewayError {
    let subject = capitalized(&request.subject);
    let (text, guidance) =
        crate::guidance::unavailable(gw, owner, &subject, request.plural, request.alternatives);
    GatewayError::Down { text, guidance }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What the client is told when the server gave no answer of its own.
fn failure(
    method: &str,
    child: &ChildHandle,
    subject: &str,
    after: Duration,
    e: RequestError,
) -> Answer {
    let server = child.name().to_owned();
    Answer::Gateway(match e {
        RequestError::Rpc(error) => return Answer::Child(error),
        RequestError::Timeout => GatewayError::Timeout {
            server,
            tool: format!("{method} for {subject}"),
            after,
        },
        RequestError::TooLarge { size, limit } => GatewayError::ResponseTooLarge {
            server,
            tool: format!("{method} for {subject}"),
            size,
            limit,
        },
        RequestError::Invalid(reason) => GatewayError::InvalidResponse {
            server,
            tool: format!("{method} for {subject}"),
            reason,
        },
        RequestError::Closed | RequestError::Cancelled => GatewayError::ServerUnavailable {
            server,
            state: "restarting",
            reason: format!("its session closed before it answered {method} for {subject}"),
        },
    })
}
