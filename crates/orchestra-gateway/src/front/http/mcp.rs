//! `/mcp`: the Streamable HTTP transport's three methods.
//!
//! - POST `initialize` (no session id) opens a session: `Mcp-Session-Id` in the answer.
//!   Every other POST, GET and DELETE must carry the id (400 without, 404 unknown) and, after
//!   initialize, a supported `MCP-Protocol-Version` if any (400 otherwise; absent: the
//!   negotiated version is assumed, as the spec says).
//! - POST of a request: its answer as `application/json`, or as `text/event-stream` (what the
//!   call produces before it — progress, and a child's requests to the client made while it
//!   is the session's only call at that child — then the answer, then the end) when the client
//!   accepts it and the call can produce progress (it carries a `progressToken`), or when it
//!   accepts only SSE. The session's answers go to that POST's own stream (a per-request
//!   reply target, [`Session::handle_with`]), so two POSTs with the same id never mix.
//!   A notification or response gets 202.
//! - GET: the session's own stream (list_changed, log messages, resource updates, a child's
//!   requests outside an SSE-answered call), one at a time (409 for a second), with a
//!   keep-alive comment. Until a GET is open its lines wait in a bounded queue; beyond it new
//!   ones are dropped (the stream stays usable).
//! - DELETE: ends the session (its registry entry, subscriptions and open stream).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::table::{HttpSession, OpenError};
use super::Front;
use crate::error::GatewayError;
use crate::front::session::{Session, SUPPORTED_VERSIONS};
use crate::jsonrpc::{self, Envelope, Kind};
use crate::sink::{FrontSink, StreamReader, STREAM_LIMIT};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const EVENT_STREAM: &str = "text/event-stream";
/// A comment on an idle GET stream: keeps proxies from timing it out and finds a vanished
/// client (the write fails), whose stream is then released.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A transport-level refusal, with a JSON-RPC error body the client can show.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let err = GatewayError::InvalidRequest(message.into());
    let body = jsonrpc::error_line("null", &err.to_wire());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A refusal not yet turned into a response (small, for `Result`s).
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session the request names (400 missing, 404 unknown), its protocol version checked.
fn session_of(front: &Front, headers: &HeaderMap) -> Result<Arc<HttpSession>, Refusal> {
    let id = header_str(headers, SESSION_HEADER).ok_or_else(|| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "missing Mcp-Session-Id header".into(),
        )
    })?;
    let session = front.table.get(id).ok_or_else(|| {
        Refusal(
            StatusCode::NOT_FOUND,
            "unknown or ended session: initialize a new one".into(),
        )
    })?;
    check_version(headers)?;
    Ok(session)
}

fn check_version(headers: &HeaderMap) -> Result<(), Refusal> {
    match headers.get(VERSION_HEADER) {
        None => Ok(()),
        Some(v) => match v.to_str() {
            Ok(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
            _ => Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {:?} (supported: {})",
                    String::from_utf8_lossy(v.as_bytes()),
                    SUPPORTED_VERSIONS.join(", ")
                ),
            )),
        },
    }
}

pub(super) async fn post(
    State(front): State<Arc<Front>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    let max = front.opts.max_body;
    let declared =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return too_large(max);
    }
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return too_large(max);
    };
    let accept = header_str(&headers, header::ACCEPT.as_str()).unwrap_or("*/*");
    let json_ok = accept.contains("application/json") || accept.contains("*/*");
    let sse_ok = accept.contains(EVENT_STREAM);
    if !json_ok && !sse_ok {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "Accept must include application/json or text/event-stream",
        );
    }
    let env = match Envelope::parse(&bytes) {
        Ok(env) => env,
        Err(e) => {
            let err = if bytes.trim_ascii_start().starts_with(b"[") {
                GatewayError::InvalidRequest("JSON-RPC batches are not supported by MCP".into())
            } else {
                GatewayError::Parse(e.to_string())
            };
            let body = jsonrpc::error_line("null", &err.to_wire());
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
    };
    let kind = env.kind();
    let initialize = kind == Kind::Request && env.method.as_deref() == Some("initialize");
    let (new_id, entry) = if initialize && headers.get(SESSION_HEADER).is_none() {
        match front.table.open(&front.gw) {
            Ok((id, entry)) => (Some(id), entry),
            Err(OpenError::Full(max)) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the gateway serves at most {max} HTTP sessions; try again later"),
                )
            }
            Err(OpenError::NoRandom(e)) => {
                tracing::error!(error = %e, "no randomness for a session id");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot create a session id",
                );
            }
        }
    } else {
        match session_of(&front, &headers) {
            Ok(entry) => (None, entry),
            Err(refused) => return refused.into_response(),
        }
    };
    let _busy = entry.busy();
    if matches!(kind, Kind::Notification | Kind::Response) && env.defect.is_none() {
        entry.session.handle(&bytes).await;
        entry.session.flush();
        return StatusCode::ACCEPTED.into_response();
    }
    let id = env.reply_id().to_owned();
    let sse = sse_ok && (!json_ok || has_progress_token(&env));
    drop(env);
    let reader = answer_stream(&entry.session, &bytes, sse).await;
    let mut response = if sse {
        sse_response(reader, id, _busy)
    } else {
        json_response(reader, &id).await
    };
    if let Some(sid) = new_id {
        if let Ok(v) = HeaderValue::from_str(&sid) {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    response
}

fn too_large(max: usize) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the {max}-byte limit"),
    )
}

/// Hands the message to the session with a reply target of its own; returns its reading end.
/// An SSE answer also carries the requests a child makes to the client during the call.
async fn answer_stream(session: &Session, line: &[u8], sse: bool) -> StreamReader {
    let (sink, reader) = if sse {
        FrontSink::event_stream(STREAM_LIMIT)
    } else {
        FrontSink::stream(STREAM_LIMIT)
    };
    let caller = session.caller_with(sink);
    session.handle_with(line, &caller).await;
    session.flush();
    reader
}

/// Whether the request asks for progress (`params._meta.progressToken`).
fn has_progress_token(env: &Envelope<'_>) -> bool {
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        progress_token: Option<serde::de::IgnoredAny>,
    }
    env.params
        .and_then(|p| serde_json::from_str::<Params>(p.get()).ok())
        .and_then(|p| p.meta)
        .is_some_and(|m| m.progress_token.is_some())
}

/// Whether `line` is the answer to the request with id `id` (raw JSON text: the gateway
/// answers with the client's id exactly as written).
fn is_answer(line: &[u8], id: &str) -> bool {
    Envelope::parse(line).is_ok_and(|e| e.kind() == Kind::Response && e.reply_id() == id)
}

fn trim_newline(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    line
}

async fn json_response(reader: StreamReader, id: &str) -> Response {
    while let Some(line) = reader.next().await {
        if is_answer(&line, id) {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                trim_newline(line),
            )
                .into_response();
        }
    }
    // Its stream was closed before the answer (the gateway stopping).
    let err = GatewayError::Internal("the gateway stopped before answering".into());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json")],
        jsonrpc::error_line(id, &err.to_wire()),
    )
        .into_response()
}

fn sse_event(line: Vec<u8>) -> Bytes {
    let line = trim_newline(line);
    let mut event = Vec::with_capacity(line.len() + 24);
    event.extend_from_slice(b"event: message\ndata: ");
    event.extend_from_slice(&line);
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

fn sse_headers(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, EVENT_STREAM),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The POST's stream: everything for the request, its answer last, then the end.
fn sse_response(reader: StreamReader, id: String, busy: super::table::Busy) -> Response {
    let stream = futures_util::stream::unfold(Some((reader, id, busy)), |state| async move {
        let (reader, id, busy) = state?;
        let line = reader.next().await?;
        let done = is_answer(&line, &id);
        let next = (!done).then_some((reader, id, busy));
        Some((Ok::<_, Infallible>(sse_event(line)), next))
    });
    sse_headers(Body::from_stream(stream))
}

pub(super) async fn get_stream(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    if !header_str(&headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains(EVENT_STREAM)) {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "GET /mcp serves text/event-stream only",
        );
    }
    let entry = match session_of(&front, &headers) {
        Ok(entry) => entry,
        Err(refused) => return refused.into_response(),
    };
    let Ok(reader) = entry.reader.clone().try_lock_owned() else {
        return refuse(
            StatusCode::CONFLICT,
            "this session's stream is already open on another connection",
        );
    };
    let busy = entry.busy();
    drop(entry);
    let stream = futures_util::stream::unfold(Some((reader, busy)), |state| async move {
        let (reader, busy) = state?;
        match tokio::time::timeout(KEEP_ALIVE, reader.next()).await {
            Ok(Some(line)) => Some((Ok::<_, Infallible>(sse_event(line)), Some((reader, busy)))),
            Ok(None) => None,
            Err(_) => Some((
                Ok(Bytes::from_static(b": keep-alive\n\n")),
                Some((reader, busy)),
            )),
        }
    });
    sse_headers(Body::from_stream(stream))
}

pub(super) async fn delete(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    if let Err(why) = front.guard.check(&headers) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    let Some(id) = header_str(&headers, SESSION_HEADER) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
    };
    if front.table.remove(id) {
        StatusCode::OK.into_response()
    } else {
        refuse(StatusCode::NOT_FOUND, "unknown or ended session")
    }
}
