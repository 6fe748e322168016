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
//!
//! Every request passes the Host/Origin guard and then authentication (`auth.rs`: 401 with
//! `WWW-Authenticate` pointing at the protected-resource metadata); a session answers only
//! the identity that opened it. SSE events carry ids; GET with `Last-Event-ID` resumes the
//! stream it names (`replay.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{Denied, Identity};
use super::replay::{self, Resumable};
use super::table::{HttpSession, OpenError};
use super::{metadata, Front};
use crate::error::GatewayError;
use crate::front::session::{Session, SUPPORTED_VERSIONS};
use crate::jsonrpc::{self, Envelope, Kind};
use crate::sink::{FrontSink, StreamReader, STREAM_LIMIT};

const LAST_EVENT_ID: &str = "last-event-id";

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

/// The Host/Origin guard (403), then who is asking (401, or 503 when the keys that would
/// tell cannot be had).
async fn admit(front: &Front, headers: &HeaderMap) -> Result<Identity, Response> {
    if let Err(why) = front.guard.check(headers) {
        return Err(refuse(StatusCode::FORBIDDEN, why));
    }
    front.auth.check(headers).await.map_err(|denied| {
        if let Denied::Unavailable(_) = denied {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, denied.message());
        }
        tracing::debug!(reason = %denied.message(), "HTTP request refused: not authenticated");
        let mut challenge = format!(
            "Bearer resource_metadata=\"{}\"",
            metadata::url_for(headers)
        );
        if denied != Denied::Missing {
            challenge.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                denied.message().replace('"', "'")
            ));
        }
        let mut response = refuse(StatusCode::UNAUTHORIZED, denied.message());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    })
}

/// The session the request names (400 missing, 404 unknown — or opened by someone else:
/// answered exactly as unknown), its protocol version checked.
fn session_of(
    front: &Front,
    headers: &HeaderMap,
    who: &Identity,
) -> Result<Arc<HttpSession>, Refusal> {
    let id = header_str(headers, SESSION_HEADER).ok_or_else(|| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "missing Mcp-Session-Id header".into(),
        )
    })?;
    let session = front
        .table
        .get(id)
        .filter(|s| s.owned_by(who))
        .ok_or_else(|| {
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
    let who = match admit(&front, &headers).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let max = front.opts.max_body;
    let declared =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return too_large(max);
    }
    // A body that trickles in holds a connection and a task: it must arrive in time.
    let bytes = match tokio::time::timeout(front.opts.body_timeout, axum::body::to_bytes(body, max))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(max),
        Err(_) => {
            tracing::info!(timeout = ?front.opts.body_timeout, "an HTTP request body did not arrive in time");
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {:?}",
                    front.opts.body_timeout
                ),
            );
        }
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
        match front.table.open(&front.gw, who) {
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
        match session_of(&front, &headers, &who) {
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
        let stream = entry.post_stream(reader, id).await;
        sse_response(stream, Vec::new(), _busy)
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

async fn json_response(reader: StreamReader, id: &str) -> Response {
    while let Some(line) = reader.next().await {
        if replay::is_answer(&line, id) {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                replay::trim_newline(line),
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

/// An SSE response reading `stream` (after `replayed`, events it sent before): a POST's
/// stream ends after its answer; the session's own stream never ends by itself, and sends a
/// keep-alive comment when idle.
fn sse_response(
    stream: tokio::sync::OwnedMutexGuard<Resumable>,
    replayed: Vec<Bytes>,
    busy: super::table::Busy,
) -> Response {
    let replayed = futures_util::stream::iter(replayed.into_iter().map(Ok::<_, Infallible>));
    let live = futures_util::stream::unfold(Some((stream, busy)), |state| async move {
        let (mut stream, busy) = state?;
        match tokio::time::timeout(KEEP_ALIVE, stream.next()).await {
            Ok(Some(event)) => Some((Ok(event), Some((stream, busy)))),
            Ok(None) => None,
            Err(_) => Some((
                Ok(Bytes::from_static(b": keep-alive\n\n")),
                Some((stream, busy)),
            )),
        }
    });
    sse_headers(Body::from_stream(futures_util::StreamExt::chain(
        replayed, live,
    )))
}

pub(super) async fn get_stream(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    let who = match admit(&front, &headers).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    if !header_str(&headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains(EVENT_STREAM)) {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            "GET /mcp serves text/event-stream only",
        );
    }
    let entry = match session_of(&front, &headers, &who) {
        Ok(entry) => entry,
        Err(refused) => return refused.into_response(),
    };
    // Resumption names the stream and the last event the client has; without it, the
    // session's own stream from where it is.
    let (shared, after) = match header_str(&headers, LAST_EVENT_ID) {
        None => (entry.own.1.clone(), None),
        Some(last) => match replay::parse_event_id(last)
            .and_then(|(stream, seq)| Some((entry.find_stream(stream)?, seq)))
        {
            Some((shared, seq)) => (shared, Some(seq)),
            None => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID names no stream this session still keeps",
                )
            }
        },
    };
    let Ok(stream) = shared.try_lock_owned() else {
        return refuse(
            StatusCode::CONFLICT,
            "this stream is already open on another connection",
        );
    };
    let replayed = after.map(|seq| stream.after(seq)).unwrap_or_default();
    let busy = entry.busy();
    drop(entry);
    sse_response(stream, replayed, busy)
}

pub(super) async fn delete(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    let who = match admit(&front, &headers).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let Some(id) = header_str(&headers, SESSION_HEADER) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Mcp-Session-Id header");
    };
    let mine = front.table.get(id).is_some_and(|s| s.owned_by(&who));
    if mine && front.table.remove(id) {
        StatusCode::OK.into_response()
    } else {
        refuse(StatusCode::NOT_FOUND, "unknown or ended session")
    }
}
