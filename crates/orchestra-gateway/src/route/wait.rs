//! Calls that wait for their server: parked while it starts or is about to be back, and calls
//! sent again after the child they were queued for died before reading them.

use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{answer_unrouted, forward, Unrouted};
use crate::child::connection::Retry;
use crate::child::{ChildHandle, State};
use crate::error::GatewayError;
use crate::hub::Gateway;
use crate::jsonrpc::{self, CallParams};
use crate::reply::Caller;

/// The owner is starting or restarting: wait for it until `until` (its startup timeout, or
/// the call's timeout) off the reader, so other messages keep flowing, then route the call
/// again. The client can cancel the call meanwhile.
pub(crate) fn park(gw: &Gateway, caller: &Caller, id: &str, params: &str, until: Instant) {
    let (gw, caller, id, params) = (gw.clone(), caller.clone(), id.to_owned(), params.to_owned());
    // Registered now, not in the task: a cancel later in this same burst must find it.
    let cancelled = gw.park_call(caller.session, &id);
    let task_gw = gw.clone();
    task_gw.spawn(async move {
        // `params` parsed once already on the way in; this cannot fail in practice.
        let call = match CallParams::parse(&params) {
            Ok(call) => call,
            Err(e) => {
                gw.unpark_call(caller.session, &id);
                let err = GatewayError::InvalidParams(e);
                return caller
                    .reply
                    .send(jsonrpc::error_line(&id, &err.to_wire()))
                    .await;
            }
        };
        // Still starting after the budget: say so rather than wait again.
        if let Waited::GaveUp(why) =
            forward_when_up(&gw, &caller, &id, &call, until, false, cancelled).await
        {
            super::note_unrouted(&caller, &call.name, &why);
            answer_unrouted(&gw, &caller.reply, &id, &call.name, why).await;
        }
    });
}

/// Sends again a call that never reached a child that died (it was still queued): once its
/// server — or a stand-in with the same tool — can take it, within the call's own deadline;
/// otherwise the client gets the error the call would have had.
pub(crate) fn retry_call(gw: Gateway, retry: Retry) {
    let Retry {
        session,
        front_id,
        exposed,
        params,
        deadline,
        reply,
        error,
        journal,
    } = retry;
    let caller = Caller {
        session,
        reply: reply.clone(),
        journal: journal.map(|(j, _)| j).unwrap_or_default(),
    };
    let cancelled = gw.park_call(session, &front_id);
    let task_gw = gw.clone();
    gw.spawn(async move {
        let gw = task_gw;
        let Ok(mut call) = CallParams::parse(&params) else {
            gw.unpark_call(session, &front_id);
            return reply
                .send(jsonrpc::error_line(&front_id, &error.to_wire()))
                .await;
        };
        // The queued params name the child's tool; routing goes by the name the client used.
        call.name = std::borrow::Cow::Owned(exposed.to_string());
        tracing::info!(tool = %exposed, "re-sending a call that never reached its server");
        match forward_when_up(&gw, &caller, &front_id, &call, deadline, true, cancelled).await {
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
    caller: &Caller,
    id: &str,
    call: &CallParams<'_>,
    until: Instant,
    through_restarts: bool,
    cancelled: CancellationToken,
) -> Waited {
    let waited = loop {
        let child = match forward(gw, caller, id, call) {
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
    gw.unpark_call(caller.session, id);
    waited
}

/// When a call to `child` made now must be answered by: its call timeout.
pub(super) fn call_deadline(child: &ChildHandle) -> Instant {
    Instant::now() + child.spec().call_timeout
}

/// Whether `child` is restarting and due back by `until`: its next start is due by then, or
/// already under way (the dead process still being stopped, or the new one starting). A
/// failed (crash-looping), misconfigured or unhealthy server is not coming back soon, and a
/// restart due later than `until` is not worth waiting for: those calls are answered at once.
pub(super) fn back_by(child: &ChildHandle, until: Instant) -> bool {
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
