//! The client's `prompts/get`: routed by exposed name to the owning child (or a live fallback
//! with a prompt of the same name), re-addressed with the child's own prompt name, and answered
//! with the child's result or JSON-RPC error as is (`route::request`).

use serde_json::Value;

use crate::error::GatewayError;
use crate::hub::Gateway;
use crate::jsonrpc;
use crate::reply::Caller;
use crate::route::request::{self, ServerRequest};

/// `prompts/get {name, arguments}`.
pub(super) fn get(
    gw: &Gateway,
    caller: &Caller,
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
    to_prompt_owner(
        gw,
        caller,
        id,
        "prompts/get",
        &name,
        params,
        |params, own| {
            params["name"] = Value::String(own.to_owned());
        },
    )
}

/// Sends `method` for the exposed prompt `name` to the server that owns it, with `params`
/// re-addressed by `readdress` (the server's own prompt name written in). Shared by
/// `prompts/get` and `completion/complete`.
pub(super) fn to_prompt_owner(
    gw: &Gateway,
    caller: &Caller,
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
    readdress(&mut params, &route.original);
    let own = route.original.clone();
    let separator = gw.config().gateway.separator.clone();
    request::send(
        gw,
        caller,
        id,
        ServerRequest {
            method,
            server: route.server,
            params,
            subject: format!("prompt \"{name}\""),
            plural: "prompts",
            has_same: Box::new(move |server| {
                server
                    .prompts()
                    .iter()
                    .any(|p| p.get("name").and_then(Value::as_str) == Some(&*own))
            }),
            alternatives: Box::new(move |stand_ins| {
                crate::guidance::of_servers(catalog.keys(), stand_ins, &separator)
            }),
            finish: None,
        },
    );
    Ok(())
}
