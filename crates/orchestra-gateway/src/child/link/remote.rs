//! A remote server (`url:`) as a link. The Connection writes JSON-RPC lines into one
//! anonymous pipe and reads the server's messages from another, exactly as with a process's
//! stdin and stdout; between the two runs one task (this module's [`run`]) that speaks HTTP:
//! Streamable HTTP ([`super::http`]), or the legacy HTTP+SSE transport ([`super::legacy`]) when
//! configured or when the server refuses the Streamable HTTP `initialize`.
//!
//! The task's end is the remote's "exit": it returns why (connection refused, session gone,
//! event stream ended…) and closes the Connection's read end, whose reader then answers every
//! call in flight at once, as for a process that died.

use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use orchestra_config::{Remote, RemoteTransport};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Link, OpenError, Opened};
use crate::child::ChildShared;
use crate::jsonrpc::framing::{Frame, LineReader};

/// Messages waiting for the Connection's reader, per link: past this, the tasks that fetch
/// them wait (the reader's pace is the remote's pace, as a pipe sets a process's).
const OUT_QUEUE: usize = 256;
/// A line from the Connection longer than this is not sent (arguments this large are not
/// worth a POST; the call times out and is reported as such).
const MAX_OUTGOING: usize = 64 * 1024 * 1024;
/// How long a DELETE of the session may take at shutdown; and when the link was stopped
/// because the server hangs or broke the protocol (it likely will not answer that either).
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
const DELETE_TIMEOUT_UNWELL: Duration = Duration::from_millis(500);

/// The HTTP side of one remote child: its client (one connection pool per life) and what
/// every request carries.
pub(super) struct Peer {
    pub server: Arc<str>,
    /// The child, to say in its status which transport is in use.
    shared: Arc<ChildShared>,
    pub client: reqwest::Client,
    pub url: reqwest::Url,
    /// Configured headers and the bearer token, marked sensitive (never logged).
    headers: HeaderMap,
    /// `Mcp-Session-Id` the server gave at `initialize`.
    session: Mutex<Option<HeaderValue>>,
    /// The protocol version negotiated at `initialize` (`MCP-Protocol-Version` after it).
    protocol: Mutex<Option<HeaderValue>>,
    /// Set once a transport's handshake went through (see [`Peer::connected`]).
    connected: std::sync::atomic::AtomicBool,
    /// Largest message accepted from the server (`max_message_size`).
    pub max_message: usize,
    /// Bound on one POST and its answer (the Connection's own deadlines come first).
    pub request_timeout: Duration,
}

/// Where the server's messages go: one line each, to the Connection.
pub(super) type Out = mpsc::Sender<Vec<u8>>;

/// The Connection's lines toward the server.
pub(super) type Lines = LineReader<tokio::io::BufReader<pipe::Receiver>>;

impl Peer {
    fn new(shared: &Arc<ChildShared>, remote: &Remote) -> Result<Self, OpenError> {
        let url = reqwest::Url::parse(&remote.url)
            .map_err(|e| OpenError::Misconfigured(format!("invalid url: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &remote.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                OpenError::Misconfigured(format!("header {name}: not a valid name"))
            })?;
            let mut value = HeaderValue::from_bytes(value.expose().as_bytes()).map_err(|_| {
                OpenError::Misconfigured(format!("header {name}: the value is not valid"))
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        if let Some(token) = &remote.bearer_token {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    OpenError::Misconfigured("the bearer token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        install_crypto();
        let spec = &shared.spec;
        let client = reqwest::Client::builder()
            .connect_timeout(spec.startup_timeout.min(Duration::from_secs(10)))
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            // A remote child is reached as configured, not through a proxy from the gateway's
            // environment (which the config's `inherit_env` rules would not have admitted).
            .no_proxy()
            // Never followed: configured headers (an API key) would go wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-orchestra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OpenError::Failed(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Self {
            server: shared.name.clone(),
            shared: shared.clone(),
            client,
            url,
            headers,
            session: Mutex::new(None),
            protocol: Mutex::new(None),
            connected: Default::default(),
            max_message: spec.max_message_size,
            request_timeout: spec.call_timeout.max(spec.startup_timeout) + Duration::from_secs(5),
        })
    }

    /// A request to `url` with the configured headers, and the session's once it has one.
    pub fn request(&self, method: reqwest::Method, url: &reqwest::Url) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .request(method, url.clone())
            .headers(self.headers.clone());
        if let Some(id) = lock(&self.session).clone() {
            rb = rb.header("mcp-session-id", id);
        }
        if let Some(v) = lock(&self.protocol).clone() {
            rb = rb.header("mcp-protocol-version", v);
        }
        rb
    }

    /// A POST of one JSON-RPC message (Streamable HTTP and legacy alike).
    pub fn post(&self, url: &reqwest::Url, line: &[u8]) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, url)
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(line.to_vec())
            .timeout(self.request_timeout)
    }

    pub fn has_session(&self) -> bool {
        lock(&self.session).is_some()
    }

    pub fn set_session(&self, id: Option<HeaderValue>) {
        *lock(&self.session) = id;
    }

    /// Connected: `transport` is the one in use (health shows it).
    pub fn connected(&self, transport: &'static str) {
        self.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .status
            .send_modify(|s| s.transport = Some(transport));
    }

    /// Counts messages dropped for size in the child's stats (health: `oversized_messages`).
    pub fn note_oversized(&self, n: u64) {
        self.shared
            .stats
            .oversized_messages
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_protocol(&self, version: &str) {
        *lock(&self.protocol) = HeaderValue::from_str(version).ok();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// rustls needs one process-wide crypto provider; the gateway uses ring (see Cargo.toml).
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Already installed (by the HTTP front's JWKS client, say): that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One life of a remote child: the task that speaks HTTP for the Connection.
pub(crate) struct RemoteLink {
    task: JoinHandle<String>,
    /// Why it ended, once it has.
    ended: Option<String>,
    peer: Arc<Peer>,
}

/// Sets up the pipes and starts the link's task. Nothing is sent until the Connection writes
/// `initialize`, so connecting is bounded by the handshake's deadline.
pub(super) fn open(shared: &Arc<ChildShared>, remote: &Remote) -> Result<Opened, OpenError> {
    shared.stderr.clear();
    shared.status.send_modify(|s| s.transport = None);
    let peer = Arc::new(Peer::new(shared, remote)?);
    let pipes = (|| Ok::<_, std::io::Error>((pipe::pipe()?, pipe::pipe()?)))();
    let ((input, from_conn), (to_conn, output)) =
        pipes.map_err(|e| OpenError::Failed(format!("cannot create its pipes: {e}")))?;
    let task = tokio::spawn(run(peer.clone(), remote.transport, from_conn, to_conn));
    Ok(Opened {
        link: Link::Remote(RemoteLink {
            task,
            ended: None,
            peer,
        }),
        input,
        output,
    })
}

impl RemoteLink {
    /// Why the link ended (cancel-safe).
    pub async fn ended(&mut self) -> String {
        if let Some(why) = &self.ended {
            return why.clone();
        }
        let why = match (&mut self.task).await {
            Ok(why) => why,
            Err(e) => format!("the link task failed: {e}"),
        };
        self.ended = Some(why.clone());
        why
    }

    /// Ends the link task (which ends every request of it) and, when the server gave a
    /// session, DELETEs it (best effort, briefly): the server can free it at once.
    pub async fn stop(&mut self, graceful: bool) {
        self.task.abort();
        let _ = self.ended().await;
        if !self.peer.has_session() {
            return;
        }
        let peer = &self.peer;
        let delete = peer
            .request(reqwest::Method::DELETE, &peer.url)
            .timeout(if graceful {
                DELETE_TIMEOUT
            } else {
                DELETE_TIMEOUT_UNWELL
            })
            .send();
        match delete.await {
            Ok(r) => {
                tracing::debug!(server = %peer.server, status = %r.status(), "deleted the remote session")
            }
            Err(e) => {
                tracing::debug!(server = %peer.server, error = %describe(&e), "could not delete the remote session")
            }
        }
        peer.set_session(None);
    }
}

/// The link task: the first line is `initialize`; then the transport serves until the
/// connection or session is lost, or the gateway closes its end.
async fn run(
    peer: Arc<Peer>,
    transport: RemoteTransport,
    from_conn: pipe::Receiver,
    to_conn: pipe::Sender,
) -> String {
    let (out, rx) = mpsc::channel(OUT_QUEUE);
    // Aborted if this task is (the link stopped): its end closes the Connection's read end.
    let mut writer = AbortOnDrop(tokio::spawn(write_lines(rx, to_conn)));
    let mut lines: Lines = LineReader::new(
        tokio::io::BufReader::with_capacity(64 * 1024, from_conn),
        MAX_OUTGOING,
    );
    let why = match next_line(&peer, &mut lines).await {
        None => "closed by the gateway before initialize".to_owned(),
        Some(first) => match transport {
            RemoteTransport::Sse => super::legacy::run(&peer, first, &mut lines, &out).await,
            RemoteTransport::StreamableHttp => {
                match super::http::initialize(&peer, &first, &out).await {
                    Ok(()) => super::http::serve(&peer, &mut lines, &out).await,
                    Err(super::http::InitError::Legacy(status)) => {
                        tracing::info!(server = %peer.server, %status, "the server refused a Streamable HTTP initialize; trying the legacy HTTP+SSE transport");
                        let why = super::legacy::run(&peer, first, &mut lines, &out).await;
                        if peer.connected.load(std::sync::atomic::Ordering::Relaxed) {
                            why
                        } else {
                            // Neither worked: say both, the first is usually the real story.
                            format!("initialize got HTTP {status}; the legacy HTTP+SSE transport: {why}")
                        }
                    }
                    Err(super::http::InitError::Failed(why)) => why,
                }
            }
        },
    };
    // What was already received still reaches the Connection, then its read end closes.
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer.0).await;
    tracing::info!(server = %peer.server, reason = %why, "remote link ended");
    why
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The next line the Connection wrote; `None` when it closed its end.
pub(super) async fn next_line(peer: &Peer, lines: &mut Lines) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        match lines.next(&mut buf).await {
            Ok(Frame::Line) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Frame::Line) => return Some(buf),
            Ok(Frame::Oversized(n)) => {
                tracing::warn!(server = %peer.server, bytes = n, "a message for the remote server is too large to send; dropped");
            }
            Ok(Frame::Eof | Frame::Flood(_)) | Err(_) => return None,
        }
    }
}

/// Writes the server's messages into the Connection's read end, one line each.
async fn write_lines(mut rx: mpsc::Receiver<Vec<u8>>, mut to_conn: pipe::Sender) {
    while let Some(line) = rx.recv().await {
        if to_conn.write_all(&line).await.is_err() {
            return;
        }
    }
}

/// Passes one message (or a JSON array of them: a batch) from the server to the Connection,
/// as one line each. Line breaks outside strings are whitespace in JSON and become spaces;
/// text that is not JSON is passed on too, and the Connection counts it as noise.
pub(super) async fn deliver(out: &Out, data: &[u8]) {
    for message in split_batch(data) {
        let mut line: Vec<u8> = message
            .iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
            .collect();
        line.push(b'\n');
        if out.send(line).await.is_err() {
            return;
        }
    }
}

fn split_batch(data: &[u8]) -> Vec<&[u8]> {
    let trimmed = data.trim_ascii();
    if trimmed.is_empty() {
        return Vec::new();
    }
    if trimmed.first() == Some(&b'[') {
        if let Ok(items) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(trimmed) {
            // The RawValues borrow from `trimmed`: give back the same bytes.
            return items
                .into_iter()
                .map(|raw| {
                    let start = raw.get().as_ptr() as usize - trimmed.as_ptr() as usize;
                    &trimmed[start..start + raw.get().len()]
                })
                .collect();
        }
    }
    vec![trimmed]
}

/// A JSON-RPC error answer to `id` (raw JSON), for a request the server refused at the HTTP
/// level: the call is answered at once instead of timing out.
pub(super) fn refusal(id: &str, why: &str) -> Vec<u8> {
    let error = serde_json::json!({
        "code": crate::error::code::INTERNAL_ERROR,
        "message": format!("the remote server refused the request: {why}"),
    })
    .to_string();
    crate::jsonrpc::error_line(id, &error)
}

/// A reqwest error in words a person can act on (never with headers; URLs carry no secrets,
/// the config refuses credentials in them).
pub(super) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_timeout() {
        "no answer in time".to_owned()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer".to_owned()
    } else {
        "request failed".to_owned()
    };
    // The innermost cause: "Connection refused (os error 111)", "connection reset", …
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        text.push_str(": ");
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_split_and_a_single_message_kept_whole() {
        let got = split_batch(b" [{\"id\":1}, {\"id\":[2]}]\n");
        assert_eq!(got, vec![&b"{\"id\":1}"[..], &b"{\"id\":[2]}"[..]]);
        assert_eq!(split_batch(b"{\"a\":\n1}"), vec![&b"{\"a\":\n1}"[..]]);
        assert!(split_batch(b" \n").is_empty());
        assert_eq!(split_batch(b"[not json"), vec![&b"[not json"[..]]);
    }

    #[test]
    fn a_refusal_answers_the_request_by_its_id() {
        let line = refusal("\"a\"", "HTTP 400 Bad Request");
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["id"], "a");
        assert_eq!(v["error"]["code"], -32603);
        assert!(v["error"]["message"].as_str().unwrap().contains("HTTP 400"));
    }
}
