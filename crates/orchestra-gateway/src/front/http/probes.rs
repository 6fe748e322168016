//! `/healthz` (liveness: 200 while the process serves) and `/readyz` (200 when every server
//! is ready or has a live fallback, else 503); both bodies are the health report.
//!
//! Both stay open without a token: orchestrators' probes rarely carry credentials, and the
//! status code is all they need. The report itself (server names, commands, sessions' client
//! names, stderr tails) is for callers the front would let in: with `http.auth` configured,
//! a probe without a valid token gets only `{"status": …}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Front;
use crate::child::State as ChildState;

pub(super) async fn healthz(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    report(&front, &headers, StatusCode::OK).await
}

pub(super) async fn readyz(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let gw = &front.gw;
    let ready = gw
        .children()
        .iter()
        .all(|c| c.state() == ChildState::Ready || gw.live_fallback(c.name()).is_some());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    report(&front, &headers, status).await
}

async fn report(front: &Front, headers: &HeaderMap, status: StatusCode) -> Response {
    let body = if front.auth.check(headers).await.is_ok() {
        crate::health::report(&front.gw).to_string()
    } else {
        let word = if status.is_success() {
            "ok"
        } else {
            "unavailable"
        };
        serde_json::json!({ "status": word }).to_string()
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
