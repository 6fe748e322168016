//! The client's `prompts/list` and `prompts/get`: the merged prompt catalog, and a get
//! forwarded to the owning child under the child's own prompt name.
//!
//! Not the hot path: a get is decoded, re-addressed and sent as the gateway's own request,
//! and answered from a task that waits for the child (the session never waits).

use serde_json::Value;

use std::sync::Arc;

use super::registry::{ListKind, SessionState};
use super::FrontSink;
use crate::app::Gateway;
use crate::child::connection::RequestError;
use crate::error::GatewayError;
use crate::jsonrpc;

/// `prompts/list`: every ready server's prompts at once. A `cursor` is accepted and ignored
/// (the whole list is one page, so no `nextCursor` is ever given to come back with).
pub(super) async fn list(
    gw: &Gateway,
    session: &Arc<SessionState>,
    out: &FrontSink,
    id: &str,
    hold: std::time::Duration,
) {
    if !gw.can_list_now() {
        // As for tools: the first listing waits (bounded) for children still starting, so
        // the client sees the whole list rather than the fastest children's.
        let gw = gw.clone();
        let out = out.clone();
        let session = session.clone();
        let id = id.to_owned();
        gw.clone().spawn(async move {
            let _ = tokio::time::timeout(hold, gw.wait_settled()).await;
            let list = gw.prompts().list_result().clone();
            session.mark_served(ListKind::Prompts, &list);
            out.send(jsonrpc::response_line(&id, &list)).await;
        });
        return;
    }
    let list = gw.prompts().list_result().clone();
    session.mark_served(ListKind::Prompts, &list);
    out.send(jsonrpc::response_line(id, &list)).await;
}

/// `prompts/get {name, arguments}`: answered with the child's result or JSON-RPC error as is.
pub(super) fn get(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<(), GatewayError> {
    let params: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            GatewayError::InvalidParams("prompts/get needs an object of params".into())
        })?;
    let Some(name) = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(GatewayError::InvalidParams(
            "prompts/get needs a string `name`".into(),
        ));
    };
    if params.get("arguments").is_some_and(|a| !a.is_object()) {
        return Err(GatewayError::InvalidParams(
            "prompts/get `arguments` must be an object".into(),
        ));
    }
    // The child's own name in, everything else (arguments, _meta) as the client wrote it.
    to_prompt_owner(gw, out, id, "prompts/get", &name, params, |params, own| {
        params["name"] = Value::String(own.to_owned());
    })
}

/// Sends `method` for the exposed prompt `name` to the server that owns it — `params` with
/// the server's own prompt name written in by `readdress` — and answers `id` from a task with
/// the server's result, or its JSON-RPC error as is (it is the server's answer). Shared by
/// `prompts/get` and `completion/complete`.
pub(super) fn to_prompt_owner(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    method: &'static str,
    name: &str,
    mut params: Value,
    readdress: impl FnOnce(&mut Value, &str),
) -> Result<(), GatewayError> {
    let catalog = gw.prompts();
    let Some(route) = catalog.route(name) else {
        return Err(GatewayError::UnknownPrompt {
            suggestions: catalog.suggestions(name),
            name: name.to_owned(),
        });
    };
    let child = &gw.children()[route.server];
    let conn = match child.connection() {
        Some(conn) if child.state().is_up() => conn,
        _ => return Err(crate::route::unavailable(child)),
    };
    readdress(&mut params, &route.prompt);
    let params = params.to_string();
    let (server, prompt) = (child.name().to_owned(), route.prompt.to_string());
    let timeout = child.spec().call_timeout;
    let (out, id) = (out.clone(), id.to_owned());
    gw.spawn(async move {
        let line = match conn.request(method, Some(&params), timeout).await {
            Ok(result) => jsonrpc::response_line(&id, &result),
            Err(e) => match failure(method, server, prompt, timeout, e) {
                Ok(err) => jsonrpc::error_line(&id, &err.to_wire()),
                Err(child_error) => jsonrpc::error_line(&id, &child_error),
            },
        };
        out.send(line).await;
    });
    Ok(())
}

/// What the client is told when the child gave no answer of its own (`Err`: the child's own JSON-RPC error, passed on).
fn failure(
    method: &str,
    server: String,
    prompt: String,
    after: std::time::Duration,
    e: RequestError,
) -> Result<GatewayError, String> {
    Ok(match e {
        RequestError::Rpc(error) => return Err(error),
        // Not `GatewayError::Timeout`: that one promises the child was sent
        // notifications/cancelled, which the gateway's own requests do not do yet.
        RequestError::Timeout => GatewayError::Internal(format!(
            "server \"{server}\" did not answer {method} for \"{prompt}\" within {}",
            orchestra_config::duration::format(after)
        )),
        RequestError::TooLarge { size, limit } => GatewayError::ResponseTooLarge {
            server,
            tool: prompt,
            size,
            limit,
        },
        RequestError::Invalid(reason) => GatewayError::InvalidResponse {
            server,
            tool: prompt,
            reason,
        },
        RequestError::Closed => GatewayError::ServerUnavailable {
            server,
            state: "restarting",
            reason: "its session closed before it answered".into(),
        },
    })
}
