//! The client's `completion/complete`: routed by its reference to the child that owns it, with
//! the child's own name in the reference, and answered with the child's result or error as is.
//!
//! Prompt references (`ref/prompt`) are routed through the prompt catalog. Resource-template
//! references (`ref/resource`) wait for resources to be forwarded: until then they get a clear
//! invalid-params answer rather than a guess.

use serde_json::Value;

use super::prompts::failure;
use super::FrontSink;
use crate::app::Gateway;
use crate::error::GatewayError;
use crate::jsonrpc;

/// `completion/complete {ref, argument, context?}`.
pub(super) fn complete(
    gw: &Gateway,
    out: &FrontSink,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<(), GatewayError> {
    let mut params: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            GatewayError::InvalidParams("completion/complete needs an object of params".into())
        })?;
    let kind = params["ref"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let name = match kind.as_str() {
        "ref/prompt" => params["ref"]["name"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                GatewayError::InvalidParams("a ref/prompt reference needs a string `name`".into())
            })?,
        "ref/resource" => {
            return Err(GatewayError::InvalidParams(
                "completion of resource-template arguments is not forwarded yet (resources \
                 are not forwarded by this gateway yet)"
                    .into(),
            ))
        }
        other => {
            return Err(GatewayError::InvalidParams(format!(
                "unknown reference type \"{other}\" (expected ref/prompt or ref/resource)"
            )))
        }
    };
    if !params["argument"]["name"].is_string() {
        return Err(GatewayError::InvalidParams(
            "completion/complete needs `argument.name`".into(),
        ));
    }
    let catalog = gw.prompts();
    let Some(route) = catalog.route(&name) else {
        return Err(GatewayError::UnknownPrompt {
            suggestions: catalog.suggestions(&name),
            name,
        });
    };
    let child = &gw.children()[route.server];
    let conn = match child.connection() {
        Some(conn) if child.state().is_up() => conn,
        _ => return Err(crate::route::unavailable(child)),
    };
    params["ref"]["name"] = Value::String(route.prompt.to_string());
    let params = params.to_string();
    let (server, prompt) = (child.name().to_owned(), route.prompt.to_string());
    let timeout = child.spec().call_timeout;
    let (out, id) = (out.clone(), id.to_owned());
    gw.spawn(async move {
        let line = match conn
            .request("completion/complete", Some(&params), timeout)
            .await
        {
            Ok(result) => jsonrpc::response_line(&id, &result),
            Err(e) => match failure("completion/complete", server, prompt, timeout, e) {
                Ok(err) => jsonrpc::error_line(&id, &err.to_wire()),
                Err(child_error) => jsonrpc::error_line(&id, &child_error),
            },
        };
        out.send(line).await;
    });
    Ok(())
}
