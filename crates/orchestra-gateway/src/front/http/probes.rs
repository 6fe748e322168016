//! `/healthz` (liveness: 200 while the process serves) and `/readyz` (200 when every server
//! is ready or has a live fallback, else 503); both bodies are the health report.

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
    report(&front, StatusCode::OK)
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
    report(&front, status)
}

fn report(front: &Front, status: StatusCode) -> Response {
    let body = crate::health::report(&front.gw).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
