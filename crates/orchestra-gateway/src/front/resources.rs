//! The client's `resources/read`, `resources/subscribe` and `resources/unsubscribe`: the URI
//! is resolved to its server and the child's own URI (an exposed `orchestra://` URI, or a
//! child's own URI as it appeared in a tool result), then sent there (`route::request`).
//!
//! Subscriptions are kept per session (`registry.rs`): a child is subscribed to a URI when the
//! first session subscribes and unsubscribed when the last one leaves it, and its
//! `notifications/resources/updated` reach only the subscribed sessions, each with the URI it
//! subscribed with.

use std::sync::Arc;

use serde_json::Value;

use crate::child::lists::Feature;
use crate::error::GatewayError;
use crate::hub::Gateway;
use crate::jsonrpc;
use crate::reply::Caller;
use crate::resource_uri;
use crate::route::request::{self, Finish, ServerRequest};
use crate::sessions::SessionState;

/// Where a URI the client named lives.
struct Resolved {
    server: usize,
    child_uri: String,
}

/// `resources/read {uri}`.
pub(super) fn read(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<(), GatewayError> {
    let (params, uri) = uri_params("resources/read", params)?;
    if let Some(local) = gw.local_resources().filter(|l| l.owns(&uri)).cloned() {
        // The gateway's own (a plan): read off the reader, no child involved.
        let (task_gw, caller, id) = (gw.clone(), caller.clone(), id.to_owned());
        gw.spawn(async move {
            let line = match local.read(&task_gw, &uri).await {
                Some(result) => jsonrpc::response_line(&id, &result.to_string()),
                None => jsonrpc::error_line(&id, &unknown(&task_gw, &uri).to_wire()),
            };
            caller.reply.send(line).await;
        });
        return Ok(());
    }
    let finish: Finish = {
        let asked = uri.clone();
        Box::new(move |result, served_by| {
            let server = served_by.spec().namespace.then(|| served_by.name());
            namespace_contents(&result, &asked, server)
        })
    };
    to_resource_owner_with(
        gw,
        caller,
        id,
        "resources/read",
        &uri,
        params,
        |params, own| {
            params["uri"] = Value::String(own.to_owned());
        },
        Some(finish),
    )
}

/// `resources/subscribe {uri}`: recorded for this session; the child is subscribed when this
/// is the first session to ask.
pub(super) fn subscribe(
    gw: &Gateway,
    session: &Arc<SessionState>,
    caller: &Caller,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<Option<&'static str>, GatewayError> {
    let (mut params, uri) = uri_params("resources/subscribe", params)?;
    if gw.local_resources().is_some_and(|l| l.owns(&uri)) {
        return Err(GatewayError::MethodNotFound(format!(
            "resources/subscribe: \"{uri}\" is the gateway's own resource; read it again \
             instead (its list_changed says when plans come and go)"
        )));
    }
    let at = resolve(gw, &uri)?;
    let child = &gw.children()[at.server];
    if !supports_subscribe(child) {
        return Err(GatewayError::MethodNotFound(format!(
            "resources/subscribe: server \"{}\" does not support resource subscriptions",
            child.name()
        )));
    }
    if gw.sessions().subscribers(at.server, &at.child_uri) > 0 {
        session.subscribe(at.server, &at.child_uri, &uri);
        return Ok(Some("{}"));
    }
    params["uri"] = Value::String(at.child_uri.clone());
    let record: Finish = {
        let (session, server, child_uri) = (session.clone(), at.server, at.child_uri.clone());
        Box::new(move |result, _| {
            session.subscribe(server, &child_uri, &uri);
            result.into()
        })
    };
    request::send(
        gw,
        caller,
        id,
        plain(gw, "resources/subscribe", at, params, Some(record)),
    );
    Ok(None)
}

/// `resources/unsubscribe {uri}`: the child is unsubscribed when no session is left on it.
pub(super) fn unsubscribe(
    gw: &Gateway,
    session: &Arc<SessionState>,
    caller: &Caller,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<Option<&'static str>, GatewayError> {
    let (mut params, uri) = uri_params("resources/unsubscribe", params)?;
    let at = resolve(gw, &uri)?;
    if !session.unsubscribe(at.server, &at.child_uri)
        || gw.sessions().subscribers(at.server, &at.child_uri) > 0
        || !gw.children()[at.server].state().is_up()
    {
        return Ok(Some("{}"));
    }
    params["uri"] = Value::String(at.child_uri.clone());
    request::send(
        gw,
        caller,
        id,
        plain(gw, "resources/unsubscribe", at, params, None),
    );
    Ok(None)
}

/// Ends a closed session's subscriptions: each URI no other session is subscribed to is
/// unsubscribed at its child.
pub(crate) fn end_subscriptions(gw: &Gateway, session: &SessionState) {
    // A session dropped outside the runtime has no child to tell (and could not spawn).
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    for (server, child_uri) in session.subscriptions() {
        if gw.sessions().subscribers(server, &child_uri) > 0 {
            continue;
        }
        let child = &gw.children()[server];
        let Some(conn) = child.connection().filter(|_| child.state().is_up()) else {
            continue;
        };
        let timeout = child.spec().call_timeout;
        let params = serde_json::json!({ "uri": child_uri }).to_string();
        gw.spawn(async move {
            if let Err(e) = conn
                .request("resources/unsubscribe", Some(&params), timeout)
                .await
            {
                tracing::debug!(error = %e, "unsubscribing a closed session's resource failed");
            }
        });
    }
}

/// Sends `method` for the resource (or template) `uri` to the server that owns it, with
/// `params` re-addressed by `readdress` (the child's own URI written in). Shared with
/// `completion/complete`.
pub(super) fn to_resource_owner(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    method: &'static str,
    uri: &str,
    params: Value,
    readdress: impl FnOnce(&mut Value, &str),
) -> Result<(), GatewayError> {
    to_resource_owner_with(gw, caller, id, method, uri, params, readdress, None)
}

#[allow(clippy::too_many_arguments)]
fn to_resource_owner_with(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    method: &'static str,
    uri: &str,
    mut params: Value,
    readdress: impl FnOnce(&mut Value, &str),
    finish: Option<Finish>,
) -> Result<(), GatewayError> {
    let at = resolve(gw, uri)?;
    readdress(&mut params, &at.child_uri);
    let catalog = gw.resources();
    let child_uri = at.child_uri.clone();
    let template = method == "completion/complete";
    let mut request = plain(gw, method, at, params, finish);
    request.has_same = Box::new(move |server| {
        if template {
            catalog
                .templates()
                .targets()
                .any(|t| t.server == server.index() && *t.original == *child_uri)
        } else {
            catalog.serves(server.index(), &child_uri)
        }
    });
    request::send(gw, caller, id, request);
    Ok(())
}

/// A request for the owner only (no stand-in), with resource guidance when it is down.
fn plain(
    gw: &Gateway,
    method: &'static str,
    at: Resolved,
    params: Value,
    finish: Option<Finish>,
) -> ServerRequest {
    let catalog = gw.resources();
    ServerRequest {
        method,
        server: at.server,
        params,
        subject: format!("resource \"{}\"", at.child_uri),
        plural: "resources",
        has_same: Box::new(|_| false),
        alternatives: Box::new(move |stand_ins| catalog.uris_of(stand_ins)),
        finish,
    }
}

/// The params of a request addressed by `uri`, and that URI.
fn uri_params(
    method: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<(Value, String), GatewayError> {
    let params: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            GatewayError::InvalidParams(format!("{method} needs an object of params"))
        })?;
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| GatewayError::InvalidParams(format!("{method} needs a string `uri`")))?;
    Ok((params, uri))
}

/// The server and the child's own URI for a URI the client named: an exposed URI names its
/// server; a child's own URI (from a tool result) goes to the server that lists it, has a
/// template it fits, or uses its scheme — an up one first — or to the only server with
/// resources.
fn resolve(gw: &Gateway, uri: &str) -> Result<Resolved, GatewayError> {
    let children = gw.children();
    if let Some((server, child_uri)) = resource_uri::split(uri) {
        let found = children.iter().find(|c| c.name() == server).or_else(|| {
            children
                .iter()
                .find(|c| c.name().eq_ignore_ascii_case(server))
        });
        return match found {
            Some(child) => Ok(Resolved {
                server: child.index(),
                child_uri: child_uri.to_owned(),
            }),
            None => Err(unknown(gw, uri)),
        };
    }
    let owners = gw.resources().owners_of(uri);
    let server = owners
        .iter()
        .copied()
        .find(|s| children[*s].state().is_up())
        .or_else(|| owners.first().copied())
        .or_else(|| {
            let mut with = children.iter().filter(|c| c.declares(Feature::Resources));
            match (with.next(), with.next()) {
                (Some(only), None) => Some(only.index()),
                _ => None,
            }
        });
    match server {
        Some(server) => Ok(Resolved {
            server,
            child_uri: uri.to_owned(),
        }),
        None => Err(unknown(gw, uri)),
    }
}

fn unknown(gw: &Gateway, uri: &str) -> GatewayError {
    let catalog = gw.resources();
    GatewayError::UnknownResource {
        uri: uri.to_owned(),
        suggestions: catalog.resources().suggestions(uri),
    }
}

fn supports_subscribe(child: &crate::child::ChildHandle) -> bool {
    child
        .status()
        .capabilities
        .as_ref()
        .and_then(|c| c.get("resources")?.get("subscribe")?.as_bool())
        .unwrap_or(false)
}

/// A read result with each content's `uri` as the client knows it: the URI it asked with
/// where the child answered with the URI it was asked for, else the child's URI under its
/// server (`None`: a server with `namespace: false`, whose URIs are exposed as they are).
/// Anything else is the child's answer as written.
fn namespace_contents(result: &str, asked: &str, server: Option<&str>) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(result) else {
        return result.to_owned();
    };
    let asked_child = resource_uri::split(asked).map_or(asked, |(_, c)| c);
    if let Some(contents) = value.get_mut("contents").and_then(Value::as_array_mut) {
        for content in contents {
            if let Some(uri) = content.get_mut("uri") {
                if let Some(own) = uri.as_str() {
                    *uri = Value::String(match server {
                        _ if own == asked_child => asked.to_owned(),
                        Some(server) => resource_uri::expose(server, own),
                        None => own.to_owned(),
                    });
                }
            }
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_contents_carry_the_uri_the_client_knows() {
        let result = json!({"contents": [
            {"uri": "file:///a", "text": "x"},
            {"uri": "file:///a/b", "text": "y"},
        ]})
        .to_string();
        let out: Value = serde_json::from_str(&namespace_contents(
            &result,
            "orchestra://fs/file:///a",
            Some("fs"),
        ))
        .unwrap();
        assert_eq!(out["contents"][0]["uri"], "orchestra://fs/file:///a");
        assert_eq!(out["contents"][1]["uri"], "orchestra://fs/file:///a/b");
        assert_eq!(out["contents"][1]["text"], "y");
        // Asked with the child's own URI (a resource link): answered in kind.
        let out: Value =
            serde_json::from_str(&namespace_contents(&result, "file:///a", Some("fs"))).unwrap();
        assert_eq!(out["contents"][0]["uri"], "file:///a");
        // A server exposed under its own URIs: every URI stays the child's.
        let out: Value =
            serde_json::from_str(&namespace_contents(&result, "file:///a", None)).unwrap();
        assert_eq!(out["contents"][1]["uri"], "file:///a/b");
    }
}
