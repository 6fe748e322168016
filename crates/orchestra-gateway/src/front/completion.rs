//! The client's `completion/complete`: routed by its reference to the child that owns it, with
//! the child's own name or URI in the reference, and answered with the child's result or error
//! as is. Prompt references (`ref/prompt`) go through the prompt catalog, resource-template
//! references (`ref/resource`) through the exposed URI (`resource_uri.rs`).

use serde_json::Value;

use crate::app::Gateway;
use crate::error::GatewayError;
use crate::jsonrpc;
use crate::reply::Caller;

/// `completion/complete {ref, argument, context?}`.
pub(super) fn complete(
    gw: &Gateway,
    caller: &Caller,
    id: &str,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<(), GatewayError> {
    let params: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            GatewayError::InvalidParams("completion/complete needs an object of params".into())
        })?;
    if !params["argument"]["name"].is_string() {
        return Err(GatewayError::InvalidParams(
            "completion/complete needs `argument.name`".into(),
        ));
    }
    let kind = params["ref"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match kind.as_str() {
        "ref/prompt" => {
            let name = params["ref"]["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    GatewayError::InvalidParams(
                        "a ref/prompt reference needs a string `name`".into(),
                    )
                })?;
            super::prompts::to_prompt_owner(
                gw,
                caller,
                id,
                "completion/complete",
                &name,
                params,
                |params, own| params["ref"]["name"] = Value::String(own.to_owned()),
            )
        }
        "ref/resource" => {
            let uri = params["ref"]["uri"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    GatewayError::InvalidParams(
                        "a ref/resource reference needs a string `uri`".into(),
                    )
                })?;
            super::resources::to_resource_owner(
                gw,
                caller,
                id,
                "completion/complete",
                &uri,
                params,
                |params, own| params["ref"]["uri"] = Value::String(own.to_owned()),
            )
        }
        other => Err(GatewayError::InvalidParams(format!(
            "unknown reference type \"{other}\" (expected ref/prompt or ref/resource)"
        ))),
    }
}
