//! The Streamable HTTP transport, client side (MCP 2025-03-26 and later): every message is a
//! POST; an answer comes back as a JSON body or as an SSE stream on that POST; notifications
//! and responses get 202. After `notifications/initialized` a GET opens the server's own
//! stream (405: it has none), reopened with `Last-Event-ID` when it drops while the session
//! lives. A 404 on a request that carries the session id means the session is gone: the link
//! ends and the supervisor starts a new one (re-initialize).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::remote::{deliver, describe, next_line, refusal, Lines, Out, Peer};
use super::sse;
use crate::jsonrpc::Envelope;

/// Requests POSTed at once per remote child; more wait for one to finish (each has its own
/// task, so a slow call never holds up another).
const MAX_IN_FLIGHT: usize = 64;
/// Pause before reopening a GET stream that ended while the session lives.
const REOPEN_DELAY: Duration = Duration::from_millis(500);

/// Why `initialize` over Streamable HTTP did not work.
pub(super) enum InitError {
    /// 400, 404 or 405: per the spec's backwards-compatibility section, an old server.
    Legacy(StatusCode),
    /// Any other failure: this attempt failed.
    Failed(String),
}

/// Why a POST failed.
enum PostError {
    /// The connection or the session is gone: the link ends.
    Fatal(String),
    /// The server refused this one message (HTTP status, body unreadable).
    Refused(String),
    /// No answer within the POST's own bound: the Connection has answered the call already
    /// (its deadline is shorter), and pings judge whether the server is still alive.
    TimedOut,
}

impl From<reqwest::Error> for PostError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            PostError::TimedOut
        } else {
            PostError::Fatal(describe(&e))
        }
    }
}

/// POSTs the `initialize` request; keeps the session id and protocol version for every later
/// request, and passes the answer on.
pub(super) async fn initialize(peer: &Peer, line: &[u8], out: &Out) -> Result<(), InitError> {
    let resp = peer
        .post(&peer.url, line)
        .send()
        .await
        .map_err(|e| InitError::Failed(describe(&e)))?;
    let status = resp.status();
    if matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) {
        return Err(InitError::Legacy(status));
    }
    if !status.is_success() {
        return Err(InitError::Failed(format!(
            "the server answered initialize with HTTP {status}"
        )));
    }
    peer.set_session(resp.headers().get("mcp-session-id").cloned());
    peer.connected("streamable_http");
    // The negotiated version is read from the answer before the Connection sees it, so the
    // header is in place for the very next message (`notifications/initialized`).
    let id = request_id(line);
    let inspect = |m: &[u8]| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(m) {
            if let Some(version) = v["result"]["protocolVersion"].as_str() {
                peer.set_protocol(version);
            }
        }
    };
    read_answer(peer, resp, id.as_deref(), out, inspect)
        .await
        .map_err(|e| InitError::Failed(format!("initialize: {}", describe(&e))))
}

/// Serves the session: requests each in their own task (bounded), notifications and responses
/// in order. Returns why it ended.
pub(super) async fn serve(peer: &Arc<Peer>, lines: &mut Lines, out: &Out) -> String {
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<String>();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Dropped on return: every POST and the GET stream end with the link.
    let mut tasks = JoinSet::new();
    let mut stream_opened = false;
    loop {
        let line = tokio::select! {
            biased;
            Some(why) = fatal_rx.recv() => return why,
            line = next_line(peer, lines) => line,
        };
        let Some(line) = line else {
            return "closed by the gateway".to_owned();
        };
        while tasks.try_join_next().is_some() {}
        let (id, method) = match Envelope::parse(&line) {
            Ok(env) => (
                env.id.map(|id| id.get().to_owned()),
                env.method.map(|m| m.into_owned()),
            ),
            Err(_) => (None, None),
        };
        match (id, method) {
            (Some(id), Some(_)) => {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return "closed".to_owned();
                };
                let (peer, out, fatal) = (peer.clone(), out.clone(), fatal_tx.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    match post(&peer, &line, Some(&id), &out).await {
                        Ok(()) => {}
                        Err(PostError::Fatal(why)) => {
                            let _ = fatal.send(why);
                        }
                        Err(PostError::Refused(why)) => {
                            let _ = out.send(refusal(&id, &why)).await;
                        }
                        Err(PostError::TimedOut) => {
                            tracing::debug!(server = %peer.server, "a request to the remote server outlived its POST bound");
                        }
                    }
                });
            }
            (_, method) => {
                // Sent in order, each before whatever comes next: `initialized` before the
                // first list, a cancellation after the request it cancels.
                match post(peer, &line, None, out).await {
                    Ok(()) => {}
                    Err(PostError::Fatal(why)) => return why,
                    Err(PostError::Refused(why)) => {
                        tracing::warn!(server = %peer.server, method = method.as_deref().unwrap_or("(response)"), %why, "the remote server refused a message");
                    }
                    Err(PostError::TimedOut) => {
                        tracing::warn!(server = %peer.server, method = method.as_deref().unwrap_or("(response)"), "the remote server did not take a message in time");
                    }
                }
                if !stream_opened && method.as_deref() == Some("notifications/initialized") {
                    stream_opened = true;
                    tasks.spawn(get_stream(peer.clone(), out.clone(), fatal_tx.clone()));
                }
            }
        }
    }
}

/// POSTs one message (a request with id `id`) and passes on what comes back.
async fn post(peer: &Peer, line: &[u8], id: Option<&str>, out: &Out) -> Result<(), PostError> {
    let resp = peer.post(&peer.url, line).send().await?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND && peer.has_session() {
        return Err(PostError::Fatal(
            "the server no longer knows the session (HTTP 404); starting a new one".into(),
        ));
    }
    if !status.is_success() {
        return Err(PostError::Refused(format!("HTTP {status}")));
    }
    Ok(read_answer(peer, resp, id, out, |_| {}).await?)
}

/// The id (raw JSON) of a request line.
fn request_id(line: &[u8]) -> Option<String> {
    let env = Envelope::parse(line).ok()?;
    env.id.map(|id| id.get().to_owned())
}

/// Whether `message` is the answer (result or error) to the request with id `id`.
fn answers(message: &[u8], id: Option<&str>) -> bool {
    let Some(id) = id else { return false };
    match Envelope::parse(message.trim_ascii()) {
        Ok(env) => {
            env.method.is_none()
                && (env.result.is_some() || env.error.is_some())
                && env.id.is_some_and(|i| i.get() == id)
        }
        Err(_) => false,
    }
}

/// Reads a POST's answer and passes each message on as it arrives (`inspect` sees it
/// first): a JSON body (one message or a batch), an SSE stream (progress and the server's
/// requests, then the answer to request `id`, after which the stream is left: a server that
/// keeps it open does not hold the request's slot), or nothing (202).
async fn read_answer(
    peer: &Peer,
    resp: reqwest::Response,
    id: Option<&str>,
    out: &Out,
    inspect: impl Fn(&[u8]),
) -> Result<(), reqwest::Error> {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = resp.bytes_stream();
    if content_type.starts_with("text/event-stream") {
        let mut parser = sse::Parser::new(peer.max_message);
        let mut events = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            parser.push(&chunk, &mut events);
            for e in events.drain(..).filter(sse::Event::is_message) {
                inspect(e.data.as_bytes());
                deliver(out, e.data.as_bytes()).await;
                if answers(e.data.as_bytes(), id) {
                    note_dropped(peer, parser.dropped);
                    return Ok(());
                }
            }
        }
        // Ended without the answer: if an event was dropped for size, that was likely it.
        if parser.dropped > 0 {
            too_large(peer, id, out).await;
        }
        note_dropped(peer, parser.dropped);
        return Ok(());
    }
    let mut whole = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if whole.len() + chunk.len() > peer.max_message {
            note_dropped(peer, 1);
            too_large(peer, id, out).await;
            return Ok(());
        }
        whole.extend_from_slice(&chunk);
    }
    if content_type.starts_with("application/json") {
        inspect(&whole);
        deliver(out, &whole).await;
    }
    Ok(())
}

/// Answers request `id` (if any) with -31005, as the stdio reader does for an oversized line:
/// the answer was not read.
async fn too_large(peer: &Peer, id: Option<&str>, out: &Out) {
    if let Some(id) = id {
        let error = serde_json::json!({
            "code": crate::error::code::RESPONSE_TOO_LARGE,
            "message": format!(
                "server \"{}\" answered with more than max_message_size ({} bytes); the answer was not read",
                peer.server, peer.max_message
            ),
        })
        .to_string();
        let _ = out.send(crate::jsonrpc::error_line(id, &error)).await;
    }
}

fn note_dropped(peer: &Peer, n: u64) {
    if n > 0 {
        peer.note_oversized(n);
        tracing::warn!(server = %peer.server, messages = n, limit = peer.max_message, "dropped messages from the remote server over max_message_size");
    }
}

/// The server's own stream (GET): its notifications and requests outside any call.
async fn get_stream(peer: Arc<Peer>, out: Out, fatal: mpsc::UnboundedSender<String>) {
    let mut last_event: Option<String> = None;
    loop {
        let mut rb = peer
            .request(reqwest::Method::GET, &peer.url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = &last_event {
            rb = rb.header("last-event-id", id.as_str());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                let _ = fatal.send(describe(&e));
                return;
            }
        };
        match resp.status() {
            StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!(server = %peer.server, "the remote server has no GET stream");
                return;
            }
            StatusCode::NOT_FOUND => {
                let _ = fatal.send(
                    "the server no longer knows the session (HTTP 404); starting a new one".into(),
                );
                return;
            }
            s if !s.is_success() => {
                tracing::warn!(server = %peer.server, status = %s, "the remote server refused its GET stream; going on without it");
                return;
            }
            _ => {}
        }
        let mut parser = sse::Parser::new(peer.max_message);
        let mut events = Vec::new();
        let mut body = resp.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            parser.push(&chunk, &mut events);
            for e in events.drain(..) {
                if e.id.is_some() {
                    last_event = e.id.clone();
                }
                if e.is_message() {
                    deliver(&out, e.data.as_bytes()).await;
                }
            }
        }
        note_dropped(&peer, parser.dropped);
        tracing::debug!(server = %peer.server, "the remote server's GET stream ended; reopening it");
        tokio::time::sleep(REOPEN_DELAY).await;
    }
}
