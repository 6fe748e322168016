//! RFC 9728 OAuth 2.0 protected-resource metadata, at `/.well-known/oauth-protected-resource`
//! and at the path-suffixed form for the `/mcp` resource
//! (`/.well-known/oauth-protected-resource/mcp`), which a 401's `WWW-Authenticate` points at.
//! Open to anyone who passes the Host/Origin guard: a client reads it to learn how to get a
//! token.
//!
//! URLs are built from the request's `Host` (already checked by the guard, so it is one of
//! this gateway's own names) with `http://`: the front itself serves no TLS.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Front;

pub const PATH: &str = "/.well-known/oauth-protected-resource";

fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The metadata URL of the `/mcp` resource (RFC 9728 §3.1: the well-known path, then the
/// resource's path).
pub fn url_for(headers: &HeaderMap) -> String {
    format!("{}{PATH}/mcp", base(headers))
}

pub(super) async fn serve(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let mut doc = serde_json::json!({
        "resource": format!("{}/mcp", base(&headers)),
        "bearer_methods_supported": ["header"],
    });
    if let Some(issuer) = front.auth.issuer() {
        doc["authorization_servers"] = serde_json::json!([issuer]);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}
