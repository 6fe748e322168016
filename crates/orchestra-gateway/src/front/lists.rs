//! Serving any merged list (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`): the page the client's cursor points to, and a note of what the
//! session saw so that it is told of changes (`list_changed`) only when its list changed.

use std::sync::Arc;
use std::time::Duration;

use super::registry::SessionState;
use super::FrontSink;
use crate::app::Gateway;
use crate::error::GatewayError;
use crate::jsonrpc;
use crate::listing::ListKind;

/// Answers a list request. The first listing waits (bounded by `hold`) for children still
/// starting, so the client sees the whole list rather than the fastest children's; with a
/// cached catalog from the last run there is nothing to wait for.
pub(super) async fn serve(
    gw: &Gateway,
    session: &Arc<SessionState>,
    out: &FrontSink,
    id: &str,
    kind: ListKind,
    params: Option<jsonrpc::Raw<'_>>,
    hold: Duration,
) -> Result<(), GatewayError> {
    let cursor = cursor(kind, params)?;
    if !gw.can_list_now() {
        let (gw, out, session, id) = (gw.clone(), out.clone(), session.clone(), id.to_owned());
        gw.clone().spawn(async move {
            let _ = tokio::time::timeout(hold, gw.wait_settled()).await;
            let line = match page(&gw, &session, kind, cursor.as_deref()) {
                Ok(page) => jsonrpc::response_line(&id, &page),
                Err(e) => jsonrpc::error_line(&id, &e.to_wire()),
            };
            out.send(line).await;
        });
        return Ok(());
    }
    let page = page(gw, session, kind, cursor.as_deref())?;
    out.send(jsonrpc::response_line(id, &page)).await;
    Ok(())
}

fn page(
    gw: &Gateway,
    session: &SessionState,
    kind: ListKind,
    cursor: Option<&str>,
) -> Result<Arc<str>, GatewayError> {
    let built = gw.built();
    let merged = built.merged(kind);
    let page = merged.page(cursor).map_err(|e| e.to_error(kind))?.clone();
    session.mark_served(kind, merged.digest());
    Ok(page)
}

/// The request's `cursor`, if any (params may be absent, or carry only `_meta`).
fn cursor(
    kind: ListKind,
    params: Option<jsonrpc::Raw<'_>>,
) -> Result<Option<String>, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Params {
        cursor: Option<serde_json::Value>,
    }
    let Some(params) = params else {
        return Ok(None);
    };
    let parsed: Params = serde_json::from_str(params.get()).map_err(|_| {
        GatewayError::InvalidParams(format!("{}: params must be an object", kind.method()))
    })?;
    match parsed.cursor {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(c)) => Ok(Some(c)),
        Some(_) => Err(GatewayError::InvalidParams(format!(
            "{}: cursor must be a string",
            kind.method()
        ))),
    }
}
