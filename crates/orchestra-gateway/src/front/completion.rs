//! The client's `completion/complete`: routed by its reference to the child that owns it, with
//! the child's own name in the reference, and answered with the child's result or error as is.
//!
//! Prompt references (`ref/prompt`) are routed through the prompt catalog. Resource-template
//! references (`ref/resource`) wait for resources to be forwarded: until then they get a clear
//! invalid-params answer rather than a guess.

use serde_json::Value;

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
    let params: Value = params
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
    super::prompts::to_prompt_owner(
        gw,
        out,
        id,
        "completion/complete",
        &name,
        params,
        |params, own| params["ref"]["name"] = Value::String(own.to_owned()),
    )
}
