//! One JSON-RPC session with one child over its stdio: the gateway's hot path.
//!
//! A forwarded call never gets a task of its own. The front's reader registers the call in
//! `pending` and pushes the re-addressed line into the child's [`Outbox`], written when the
//! reader's burst ends; the child's reader task matches the answer by id, splices the client's
//! id back in and pushes it into the front's outbox, written when its own burst ends. Timeouts
//! are swept by one task per connection that sleeps until the earliest deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::clients::Clients;
use super::lists::Feature;
use super::stats::Stats;
use crate::error::GatewayError;
use crate::journal::{CallJournal, CallRecord, Outcome as CallOutcome};
use crate::jsonrpc::framing::{Frame, LineReader};
use crate::jsonrpc::{self, peek, CallParams, Envelope, Kind};
use crate::outbox::{Outbox, Overflow, PushError};
use crate::reply::SessionId;
use crate::sink::FrontSink;

/// Bytes queued toward a child before calls are refused as "overloaded".
const INPUT_LIMIT: usize = 16 * 1024 * 1024;

/// A client call that never reached a child that died: what it takes to send it again.
pub struct Retry {
    /// The session that sent it, and its id there.
    pub session: SessionId,
    pub front_id: Box<str>,
    /// The name the client called.
    pub exposed: Arc<str>,
    /// The call's params as they were queued for the child (raw JSON).
    pub params: String,
    /// The call's original deadline: the retry must be answered by then.
    pub deadline: Instant,
    pub reply: FrontSink,
    /// The answer if it cannot be sent again in time.
    pub error: GatewayError,
    /// The session's call journal and the call's start tick, if it was being watched.
    pub journal: Option<(Arc<CallJournal>, u64)>,
}

/// How a child reaches the clients (see [`Clients`]).
#[derive(Clone)]
pub struct ToClients {
    pub clients: Arc<dyn Clients>,
    /// The server's index in the configuration (resource updates are keyed by it).
    pub server_index: usize,
    /// How long a client may take to answer one of this child's requests.
    pub request_timeout: Duration,
}

/// Sends a [`Retry`] again (provided by the gateway, which knows the routes).
pub type RetryFn = Arc<dyn Fn(Retry) + Send + Sync>;

/// The params of every request frame in `bytes` (our own lines), by request id.
fn unsent_params(bytes: &[u8]) -> HashMap<u64, String> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let env = Envelope::parse(line).ok()?;
            let id = env.id?.get().parse::<u64>().ok()?;
            Some((id, env.params?.get().to_owned()))
        })
        .collect()
}

/// One client call to forward.
pub struct Forward<'a> {
    /// The session that sent it: client ids are scoped to it (cancellation).
    pub session: SessionId,
    /// The client's request id (raw JSON), used for the answer.
    pub front_id: &'a str,
    /// The name the client called.
    pub exposed: &'a Arc<str>,
    pub call: &'a CallParams<'a>,
    /// The tool's name at this child.
    pub tool: &'a str,
    pub timeout: Duration,
    pub reply: &'a FrontSink,
    /// When set, a JSON object added to the result's `_meta` to say a stand-in served it.
    pub failover: Option<&'a str>,
    /// The session's call journal (the call is recorded only while it is watched).
    pub journal: &'a Arc<CallJournal>,
}

/// How the child's stdout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEnd {
    /// End of file: the process closed its stdout (usually: it exited).
    Eof,
    /// The stream can no longer be framed (megabytes without a newline).
    Framing(String),
}

/// Why an internal request (handshake, listing) failed.
#[derive(Debug)]
pub enum RequestError {
    /// The child answered with a JSON-RPC error (raw JSON).
    Rpc(String),
    /// The session ended before an answer.
    Closed,
    /// No answer within the deadline.
    Timeout,
    /// The answer was longer than the server's `max_message_size` and was not read.
    TooLarge { size: usize, limit: usize },
    /// The answer was not a valid response (both or neither of `result` and `error`).
    Invalid(&'static str),
    /// The client cancelled the request it was made for.
    Cancelled,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Rpc(e) => write!(f, "error response {e}"),
            RequestError::Closed => f.write_str("the child closed its stdout"),
            RequestError::Timeout => f.write_str("no answer in time"),
            RequestError::TooLarge { size, limit } => {
                write!(f, "answer of {size} bytes exceeds max_message_size {limit}")
            }
            RequestError::Invalid(why) => write!(f, "invalid response: {why}"),
            RequestError::Cancelled => f.write_str("cancelled by the client"),
        }
    }
}

/// Pending requests by child-side id. The ids are ours — unique, sequential, never chosen by
/// a peer — so they need no DoS-resistant hashing: the id is its own hash.
type PendingMap = HashMap<u64, Pending, std::hash::BuildHasherDefault<IdHasher>>;

/// The pending requests by child-side id.
#[derive(Default)]
struct PendingTable {
    by_id: PendingMap,
}

impl PendingTable {
    fn insert(&mut self, id: u64, p: Pending) {
        self.by_id.insert(id, p);
    }

    fn remove(&mut self, id: u64) -> Option<Pending> {
        self.by_id.remove(&id)
    }

    fn drain(&mut self) -> Vec<(u64, Pending)> {
        self.by_id.drain().collect()
    }
}

/// The client's progress token in a call's `_meta` (raw JSON text, exactly as the client wrote
/// it, so that it goes back unchanged), and the `_meta` to send the child instead: the same
/// object with the token replaced by the call's child-side id. The child then names calls by
/// ids the gateway gave — unique per connection, whichever client or session asked — and a
/// token it was not given matches no call.
fn progress_remap(meta: &str, child_id: u64) -> Option<(Box<str>, String)> {
    let mut members: serde_json::Map<String, Value> = serde_json::from_str(meta).ok()?;
    let token = members.get("progressToken")?;
    if !(token.is_string() || token.is_i64() || token.is_u64()) {
        return None;
    }
    let client_token = token.to_string().into_boxed_str();
    members.insert("progressToken".into(), Value::from(child_id));
    Some((client_token, Value::Object(members).to_string()))
}

#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread sequential ids over the table's buckets (hashbrown uses the top bits too).
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

enum Pending {
    /// A client's call: answer goes to `reply` under the client's own id.
    Call {
        session: SessionId,
        front_id: Box<str>,
        tool: Arc<str>,
        started: Instant,
        deadline: Instant,
        timeout: Duration,
        reply: FrontSink,
        /// `reply.stalled()` when `deadline` was last set: time the client spends not reading
        /// moves the deadline (see `expire`).
        stalled: Duration,
        failover: Option<Box<str>>,
        /// The client's `_meta.progressToken` (JSON text), if it asked for progress; the child
        /// was given this call's id as the token instead.
        progress: Option<Box<str>>,
        /// The session's call journal, when someone watches it (how the call ends is
        /// recorded), and the call's start [`tick`](crate::journal::tick).
        journal: Option<(Arc<CallJournal>, u64)>,
    },
    /// The gateway's own request.
    Internal(oneshot::Sender<Result<Box<str>, RequestError>>),
}

/// The live session with a child. Shared by the front (to send) and the child's tasks.
pub struct Connection {
    server: Arc<str>,
    /// The child's stdin. Its written-id watermark tells which requests reached the child.
    input: Arc<Outbox>,
    pending: Mutex<PendingTable>,
    /// Longest message read from the child (`max_message_size`).
    max_message: usize,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Wakes the sweeper when a deadline earlier than the one it sleeps toward appears.
    sweeper_wake: Notify,
    /// Milliseconds since `epoch` of the sweeper's next wake-up (u64::MAX: none).
    sweeper_at: AtomicU64,
    epoch: Instant,
    stats: Arc<Stats>,
    /// Where the child's log messages, resource updates and requests to a client go.
    clients: ToClients,
    /// Set by the child's prompts and resources `list_changed` (one permit each: coalesced);
    /// the owning task lists them again. Per connection, as the lists are per child life.
    lists_changed: [Notify; 2],
}

/// The tasks that serve one connection; the owner awaits `reader` to learn of EOF.
pub struct ConnectionTasks {
    pub reader: tokio::task::JoinHandle<ReaderEnd>,
}

impl Connection {
    /// Starts the reader and sweeper tasks over a new child's two ends: a process's stdin and
    /// stdout, or a remote link's pipes (`link/`).
    pub fn start(
        server: Arc<str>,
        stdin: pipe::Sender,
        stdout: pipe::Receiver,
        stats: Arc<Stats>,
        tools_changed: Arc<Notify>,
        max_message: usize,
        clients: ToClients,
    ) -> std::io::Result<(Arc<Self>, ConnectionTasks)> {
        let input = Outbox::new(stdin, INPUT_LIMIT, Overflow::Refuse);
        let conn = Arc::new(Self {
            clients,
            server,
            input,
            pending: Mutex::new(PendingTable::default()),
            max_message,
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            sweeper_wake: Notify::new(),
            sweeper_at: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            stats,
            lists_changed: [Notify::new(), Notify::new()],
        });
        tokio::spawn(sweep_loop(Arc::downgrade(&conn)));
        let reader = tokio::spawn(read_loop(conn.clone(), stdout, tools_changed));
        Ok((conn, ConnectionTasks { reader }))
    }

    /// Fires when the child said its `feature` lists changed (coalesced).
    pub(crate) fn list_changed(&self, feature: Feature) -> &Notify {
        &self.lists_changed[feature as usize]
    }

    /// Queues a client's `tools/call` for this child (written by [`Connection::flush`]).
    pub fn forward_call(&self, call: Forward<'_>) -> Result<(), GatewayError> {
        let Forward {
            session,
            front_id,
            exposed,
            call,
            tool,
            timeout,
            reply,
            failover,
            journal,
        } = call;
        if self.closed.load(Ordering::Acquire) {
            return Err(self.unavailable());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let deadline = now + timeout;
        // Only a call with `_meta` can ask for progress; the arguments are never looked at.
        let (progress, meta) = match call.rest.iter().find(|(k, _)| k == "_meta") {
            Some((_, meta)) => match progress_remap(meta.get(), id) {
                Some((token, meta)) => (Some(token), Some(meta)),
                None => (None, None),
            },
            None => (None, None),
        };
        // Registered before sending, so even an instant answer finds its entry.
        self.lock().insert(
            id,
            Pending::Call {
                session,
                front_id: front_id.into(),
                tool: exposed.clone(),
                started: now,
                deadline,
                timeout,
                reply: reply.clone(),
                stalled: reply.stalled(),
                failover: failover.map(Into::into),
                progress,
                journal: journal
                    .is_on()
                    .then(|| (journal.clone(), crate::journal::tick())),
            },
        );
        if let Err(e) = self.input.push_with(Some(id), 0, |buf| {
            call.write_request(buf, id, tool, meta.as_deref())
        }) {
            self.lock().remove(id);
            return Err(match e {
                PushError::Full => GatewayError::Overloaded {
                    server: self.server.to_string(),
                },
                PushError::Closed => self.unavailable(),
            });
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.schedule_sweep(deadline);
        Ok(())
    }

    /// Sends the gateway's own request and waits for the answer (its result's JSON text).
    pub async fn request(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Duration,
    ) -> Result<Box<str>, RequestError> {
        self.request_cancellable(method, params, timeout, &CancellationToken::new())
            .await
    }

    /// [`Connection::request`] on behalf of a client that may cancel it: when `cancel` fires
    /// first, the child is sent `notifications/cancelled` and the answer is not awaited.
    pub async fn request_cancellable(
        &self,
        method: &str,
        params: Option<&str>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Box<str>, RequestError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RequestError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, Pending::Internal(tx));
        let line = jsonrpc::request_line(id, method, params);
        let pushed = self
            .input
            .push_with(Some(id), line.len(), |buf| buf.extend_from_slice(&line));
        if pushed.is_err() {
            self.lock().remove(id);
            return Err(RequestError::Closed);
        }
        self.input.flush();
        tokio::select! {
            answer = tokio::time::timeout(timeout, rx) => match answer {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(RequestError::Closed),
                Err(_) => {
                    // MCP: `initialize` is never cancelled.
                    if self.lock().remove(id).is_some() && method != "initialize" {
                        self.send_cancelled(id, "the gateway stopped waiting for the answer (timeout)");
                    }
                    Err(RequestError::Timeout)
                }
            },
            _ = cancel.cancelled() => {
                if self.lock().remove(id).is_some() {
                    self.send_cancelled(id, "the client cancelled the request");
                }
                Err(RequestError::Cancelled)
            }
        }
    }

    /// Sends a notification to the child (best effort).
    pub fn notify(&self, method: &str, params: Option<&str>) {
        let line = jsonrpc::notification_line(method, params);
        if self.input.push(&line).is_ok() {
            self.input.flush();
        }
    }

    /// Writes the calls queued by [`Connection::forward_call`] (the front does this once per
    /// burst of input).
    pub fn flush(&self) {
        self.input.flush();
    }

    /// Closes the child's stdin: what a well-behaved MCP server takes as "exit now".
    pub fn close_input(&self) {
        self.input.close();
    }

    /// Forwards `session`'s cancellation of its request `front_id` to this child, if the call
    /// is here (another session's request with the same id is not touched).
    /// The late answer, if any, is then dropped as unmatched.
    pub fn cancel_call(&self, session: SessionId, front_id: &str, reason: Option<&str>) -> bool {
        let child_id = {
            let mut pending = self.lock();
            let found = pending.by_id.iter().find_map(|(id, p)| match p {
                Pending::Call {
                    session: s,
                    front_id: f,
                    ..
                } if *s == session && &**f == front_id => Some(*id),
                _ => None,
            });
            if let Some(id) = found {
                pending.remove(id);
            }
            found
        };
        let Some(child_id) = child_id else {
            return false;
        };
        self.send_cancelled(child_id, reason.unwrap_or("cancelled by the client"));
        true
    }

    /// Marks the session dead and answers every pending request at once with `why`, which is
    /// told whether each call had reached the child (`delivered`). With `retry`, calls that
    /// never reached it (still queued when it died) are handed to `retry` to be sent again
    /// instead (fault matrix A2).
    pub async fn close(&self, why: impl Fn(bool) -> GatewayError, retry: Option<&RetryFn>) {
        self.closed.store(true, Ordering::Release);
        // Its requests to clients are withdrawn (the reason names the server); late answers
        // are dropped.
        self.clients
            .clients
            .child_closed(self, &why(true).to_string());
        let drained: Vec<(u64, Pending)> = self.lock().drain();
        let written = self.input.written_id();
        let mut unsent = match retry {
            Some(_) => unsent_params(&self.input.take_unsent()),
            None => HashMap::new(),
        };
        for (id, p) in drained {
            match p {
                Pending::Call {
                    session,
                    front_id,
                    tool,
                    deadline,
                    reply,
                    started,
                    journal,
                    ..
                } => {
                    let delivered = id <= written;
                    if let (false, Some(retry), Some(params)) =
                        (delivered, retry, unsent.remove(&id))
                    {
                        retry(Retry {
                            session,
                            front_id,
                            exposed: tool,
                            params,
                            deadline,
                            reply,
                            error: why(false),
                            journal,
                        });
                        continue;
                    }
                    note_call(
                        journal,
                        &tool,
                        Some(&self.server),
                        CallOutcome::Error,
                        false,
                        started,
                    );
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let err = why(delivered);
                    reply
                        .send(jsonrpc::error_line(&front_id, &err.to_wire()))
                        .await;
                }
                Pending::Internal(tx) => {
                    let _ = tx.send(Err(RequestError::Closed));
                }
            }
        }
        self.sweeper_wake.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Client calls waiting for this child (the gateway's own requests — pings, relisting —
    /// are not counted).
    pub fn in_flight(&self) -> usize {
        self.lock()
            .by_id
            .values()
            .filter(|p| matches!(p, Pending::Call { .. }))
            .count()
    }

    /// The sessions whose calls this child holds, newest call first (each once): whose call
    /// a request from the child most likely serves.
    pub(crate) fn callers_newest_first(&self) -> Vec<SessionId> {
        let mut calls: Vec<(u64, SessionId)> = self
            .lock()
            .by_id
            .iter()
            .filter_map(|(id, p)| match p {
                Pending::Call { session, .. } => Some((*id, *session)),
                Pending::Internal(_) => None,
            })
            .collect();
        calls.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
        let mut sessions: Vec<SessionId> = Vec::with_capacity(calls.len());
        for (_, s) in calls {
            if !sessions.contains(&s) {
                sessions.push(s);
            }
        }
        sessions
    }

    /// Where `session`'s one call at this child is answered, when it has exactly one here
    /// (a child's request during it then belongs to that call: over HTTP it travels on that
    /// call's own response stream). None with no call or several.
    pub(crate) fn reply_of_only_call(&self, session: SessionId) -> Option<FrontSink> {
        let table = self.lock();
        let mut replies = table.by_id.values().filter_map(|p| match p {
            Pending::Call {
                session: s, reply, ..
            } if *s == session => Some(reply),
            _ => None,
        });
        let only = replies.next()?;
        replies.next().is_none().then(|| only.clone())
    }

    /// Writes one whole line (the gateway's answer to a request of the child's) at once.
    pub(crate) fn send_line(&self, line: &[u8]) {
        if self.input.push(line).is_ok() {
            self.input.flush();
        }
    }

    fn unavailable(&self) -> GatewayError {
        GatewayError::ServerUnavailable {
            server: self.server.to_string(),
            state: "stopping",
            reason: "its session has closed".into(),
        }
    }

    fn send_cancelled(&self, child_id: u64, reason: &str) {
        let mut params = format!("{{\"requestId\":{child_id},\"reason\":");
        jsonrpc::push_json_str(&mut params, reason);
        params.push('}');
        self.notify("notifications/cancelled", Some(&params));
    }

    /// The client's progress notification for a child's one: the call it names (by the
    /// child-side id the gateway gave as its token), that call's reply target, and the line
    /// with the client's own token back in. None for a token that names no call of this
    /// child that asked for progress.
    fn progress_for(&self, params: Option<jsonrpc::Raw<'_>>) -> Option<(FrontSink, Vec<u8>)> {
        let mut members: serde_json::Map<String, Value> =
            serde_json::from_str(params?.get()).ok()?;
        let id = members.get("progressToken")?.as_u64()?;
        let (reply, token) = match self.lock().by_id.get(&id)? {
            Pending::Call {
                reply,
                progress: Some(token),
                ..
            } => (reply.clone(), token.clone()),
            _ => return None,
        };
        members.insert("progressToken".into(), serde_json::from_str(&token).ok()?);
        let params = Value::Object(members).to_string();
        Some((
            reply,
            jsonrpc::notification_line("notifications/progress", Some(&params)),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingTable> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn millis(&self, at: Instant) -> u64 {
        // Rounded up, so the sweeper never wakes before the deadline and spins.
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        u64::try_from(micros.div_ceil(1000)).unwrap_or(u64::MAX - 1)
    }

    fn schedule_sweep(&self, deadline: Instant) {
        let at = self.millis(deadline);
        // Calls to one child usually share a timeout, so later calls rarely move the wake-up
        // earlier: the common case costs one atomic load and no wake.
        if at < self.sweeper_at.load(Ordering::Acquire) {
            self.sweeper_at.store(at, Ordering::Release);
            self.sweeper_wake.notify_one();
        }
    }
}

/// Key under the result's `_meta` that says a call was served by a fallback.
pub const FAILOVER_META_KEY: &str = "mcp-orchestra/failover";

/// The result with `_meta["mcp-orchestra/failover"] = note` added (failover path only; the
/// normal path never decodes results).
pub(crate) fn with_failover_meta(result: &str, note: &str) -> String {
    let (Ok(mut value), Ok(note)) = (
        serde_json::from_str::<serde_json::Value>(result),
        serde_json::from_str::<serde_json::Value>(note),
    ) else {
        return result.to_owned();
    };
    if let Some(obj) = value.as_object_mut() {
        let meta = obj.entry("_meta").or_insert_with(|| serde_json::json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(FAILOVER_META_KEY.to_owned(), note);
        }
    }
    value.to_string()
}

/// Records how a call ended in its session's journal, if it is watched.
fn note_call(
    journal: Option<(Arc<CallJournal>, u64)>,
    tool: &Arc<str>,
    server: Option<&Arc<str>>,
    outcome: CallOutcome,
    failed_over: bool,
    started: Instant,
) {
    if let Some((journal, at_ms)) = journal {
        journal.record(CallRecord {
            tool: tool.clone(),
            server: server.cloned(),
            outcome,
            failed_over,
            at_ms,
            duration: started.elapsed(),
        });
    }
}

/// What a child's response says about the call's outcome (only `isError` is read).
#[derive(Deserialize)]
struct Outcome {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

async fn read_loop(
    conn: Arc<Connection>,
    stdout: pipe::Receiver,
    tools_changed: Arc<Notify>,
) -> ReaderEnd {
    let mut reader = LineReader::new(
        tokio::io::BufReader::with_capacity(64 * 1024, stdout),
        conn.max_message,
    );
    let mut buf = Vec::with_capacity(4096);
    // Sinks that got lines during this burst; written when the burst ends.
    let mut touched: Vec<FrontSink> = Vec::new();
    loop {
        match reader.next(&mut buf).await {
            Ok(Frame::Line) => handle_line(&conn, &buf, &tools_changed, &mut touched),
            Ok(Frame::Oversized(n)) => on_oversized(&conn, &buf, n, &mut touched),
            Ok(Frame::Flood(n)) => {
                conn.stats.stdout_noise.fetch_add(1, Ordering::Relaxed);
                flush(&mut touched);
                return ReaderEnd::Framing(format!("wrote {n} bytes to stdout without a newline"));
            }
            Ok(Frame::Eof) => {
                flush(&mut touched);
                return ReaderEnd::Eof;
            }
            Err(e) => {
                flush(&mut touched);
                tracing::debug!(server = %conn.server, error = %e, "child stdout read failed");
                return ReaderEnd::Eof;
            }
        }
        if !reader.has_buffered() && !touched.is_empty() {
            for sink in &touched {
                // A client that stopped reading slows this child down, not the gateway.
                sink.ready().await;
            }
            flush(&mut touched);
        }
    }
}

fn flush(touched: &mut Vec<FrontSink>) {
    for sink in touched.drain(..) {
        sink.flush();
    }
}

fn touch(touched: &mut Vec<FrontSink>, sink: &FrontSink) {
    if !touched.iter().any(|t| t.same(sink)) {
        touched.push(sink.clone());
    }
}

fn handle_line(
    conn: &Arc<Connection>,
    line: &[u8],
    tools_changed: &Notify,
    touched: &mut Vec<FrontSink>,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let env = match Envelope::parse(line) {
        Ok(env) => env,
        Err(_) => {
            conn.stats.stdout_noise.fetch_add(1, Ordering::Relaxed);
            let sample: String = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            tracing::warn!(server = %conn.server, sample = %sample, "ignored a non-JSON-RPC line on the child's stdout");
            return;
        }
    };
    match env.kind() {
        Kind::Response => on_response(conn, &env, touched),
        Kind::Notification => on_notification(conn, &env, tools_changed, touched),
        Kind::Request => on_request(conn, &env),
        // An id without method, result or error: an answer that says nothing. It still
        // answers its request (with an error), rather than leaving it to time out.
        Kind::Invalid if env.id.is_some() && env.method.is_none() => {
            on_response(conn, &env, touched)
        }
        Kind::Invalid => {
            conn.stats.stdout_noise.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn on_response(conn: &Connection, env: &Envelope<'_>, touched: &mut Vec<FrontSink>) {
    let id = env.id.and_then(|raw| raw.get().parse::<u64>().ok());
    let entry = id.and_then(|id| conn.lock().remove(id));
    let Some(entry) = entry else {
        conn.stats
            .unmatched_responses
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(server = %conn.server, id = ?env.id.map(jsonrpc::Raw::get), "dropped a response that matches no pending request");
        return;
    };
    match entry {
        Pending::Call {
            front_id,
            tool,
            started,
            reply,
            failover,
            journal,
            ..
        } => {
            conn.stats.record_latency(started.elapsed());
            let failed_over = failover.is_some();
            match (env.result, env.error) {
                (Some(_), Some(_)) | (None, None) => {
                    let reason = invalid_reason(env);
                    conn.stats.errors.fetch_add(1, Ordering::Relaxed);
                    conn.stats.invalid_responses.fetch_add(1, Ordering::Relaxed);
                    let err = GatewayError::InvalidResponse {
                        server: conn.server.to_string(),
                        tool: tool.to_string(),
                        reason,
                    };
                    tracing::warn!(server = %conn.server, tool = %tool, reason, "invalid response from the child");
                    conn.stats.note_error(err.to_string());
                    reply.push(&jsonrpc::error_line(&front_id, &err.to_wire()));
                    note_call(
                        journal,
                        &tool,
                        Some(&conn.server),
                        CallOutcome::Error,
                        failed_over,
                        started,
                    );
                }
                (Some(result), None) => {
                    // Decode only results that can be errors: most never mention isError.
                    let is_error = result.get().contains("\"isError\"")
                        && serde_json::from_str::<Outcome>(result.get()).is_ok_and(|o| o.is_error);
                    if is_error {
                        conn.stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if journal.is_some() {
                        let outcome = if is_error {
                            CallOutcome::ToolError
                        } else {
                            CallOutcome::Ok
                        };
                        note_call(
                            journal,
                            &tool,
                            Some(&conn.server),
                            outcome,
                            failed_over,
                            started,
                        );
                    }
                    match failover {
                        Some(note) => {
                            let result = with_failover_meta(result.get(), &note);
                            reply.push_with(|buf| {
                                jsonrpc::write_answer(buf, &front_id, b"result", &result)
                            });
                        }
                        // The common case: the child's result goes out as it came, written
                        // straight into the client's outbox.
                        None => reply.push_with(|buf| {
                            jsonrpc::write_answer(buf, &front_id, b"result", result.get())
                        }),
                    }
                }
                (None, Some(error)) => {
                    conn.stats.errors.fetch_add(1, Ordering::Relaxed);
                    conn.stats
                        .note_error(format!("{tool}: error response {}", error.get()));
                    note_call(
                        journal,
                        &tool,
                        Some(&conn.server),
                        CallOutcome::Error,
                        failed_over,
                        started,
                    );
                    reply.push_with(|buf| {
                        jsonrpc::write_answer(buf, &front_id, b"error", error.get())
                    });
                }
            }
            touch(touched, &reply);
        }
        Pending::Internal(tx) => {
            let answer = match (env.result, env.error) {
                (Some(result), None) => Ok(result.get().into()),
                (None, Some(error)) => Err(RequestError::Rpc(error.get().to_owned())),
                (Some(_), Some(_)) | (None, None) => {
                    conn.stats.invalid_responses.fetch_add(1, Ordering::Relaxed);
                    Err(RequestError::Invalid(invalid_reason(env)))
                }
            };
            let _ = tx.send(answer);
        }
    }
}

/// Why a response with both or neither of `result` and `error` is invalid (JSON-RPC 2.0:
/// exactly one of them; `null` counts as absent).
fn invalid_reason(env: &Envelope<'_>) -> &'static str {
    if env.result.is_some() {
        "it has both a result and an error"
    } else {
        "it has neither a result nor an error"
    }
}

/// A line over `max_message_size`, skipped unread: `prefix` is its beginning. A response
/// fails its request at once with the sizes (instead of a timeout that blames the child's
/// speed); anything else is dropped and counted.
///
/// When the prefix does not show the message's id (or shows it is not a response), nothing
/// is failed: guessing could fail a call that is doing fine, and the one call left
/// unanswered, if any, still ends at its deadline.
fn on_oversized(conn: &Connection, prefix: &[u8], size: usize, touched: &mut Vec<FrontSink>) {
    conn.stats.stdout_noise.fetch_add(1, Ordering::Relaxed);
    conn.stats
        .oversized_messages
        .fetch_add(1, Ordering::Relaxed);
    let limit = conn.max_message;
    let peek = peek::peek(prefix);
    let Some(id) = peek.response_id() else {
        match peek.method.as_deref() {
            Some(method) => {
                tracing::warn!(server = %conn.server, method, size, limit, "dropped a message from the child over max_message_size")
            }
            None => {
                tracing::warn!(server = %conn.server, size, limit, "dropped a line from the child over max_message_size; its first bytes do not say which request it answers, so none is failed")
            }
        }
        return;
    };
    let entry = id.as_u64().and_then(|id| conn.lock().remove(id));
    match entry {
        Some(Pending::Call {
            front_id,
            tool,
            started,
            reply,
            journal,
            failover,
            ..
        }) => {
            conn.stats.record_latency(started.elapsed());
            conn.stats.errors.fetch_add(1, Ordering::Relaxed);
            note_call(
                journal,
                &tool,
                Some(&conn.server),
                CallOutcome::Error,
                failover.is_some(),
                started,
            );
            let err = GatewayError::ResponseTooLarge {
                server: conn.server.to_string(),
                tool: tool.to_string(),
                size,
                limit,
            };
            tracing::warn!(server = %conn.server, tool = %tool, size, limit, "a call's answer exceeds max_message_size; answered with an error");
            conn.stats.note_error(err.to_string());
            reply.push(&jsonrpc::error_line(&front_id, &err.to_wire()));
            touch(touched, &reply);
        }
        Some(Pending::Internal(tx)) => {
            tracing::warn!(server = %conn.server, size, limit, "an answer to the gateway's own request exceeds max_message_size");
            let _ = tx.send(Err(RequestError::TooLarge { size, limit }));
        }
        None => {
            conn.stats
                .unmatched_responses
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(server = %conn.server, %id, size, limit, "dropped an answer over max_message_size that matches no pending request");
        }
    }
}

fn on_notification(
    conn: &Connection,
    env: &Envelope<'_>,
    tools_changed: &Notify,
    touched: &mut Vec<FrontSink>,
) {
    match env.method.as_deref() {
        // Progress goes to the reply target of the call it belongs to, with the client's own
        // token back in; a token that names no call of this child that asked for progress (a
        // made-up one, another server's, a call already answered) never reaches a client.
        // Sent from this sequential reader, it always arrives before the call's response.
        Some("notifications/progress") => match conn.progress_for(env.params) {
            Some((reply, line)) => {
                reply.push(&line);
                touch(touched, &reply);
            }
            None => {
                conn.stats.progress_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(server = %conn.server, params = env.params.map(jsonrpc::Raw::get).unwrap_or(""), "dropped progress for no call of this server");
            }
        },
        // Coalesced: the Notify keeps at most one permit, however many arrive.
        Some("notifications/tools/list_changed") => tools_changed.notify_one(),
        Some("notifications/prompts/list_changed") => {
            conn.list_changed(Feature::Prompts).notify_one()
        }
        Some("notifications/resources/list_changed") => {
            conn.list_changed(Feature::Resources).notify_one()
        }
        // The child withdrew one of its own requests to a client: the session it went to is told.
        Some("notifications/cancelled") => {
            let found = conn.clients.clients.cancelled_by_child(conn, env.params);
            tracing::debug!(server = %conn.server, found, "the child cancelled a request of its own to a client");
        }
        // A URL-mode elicitation finished: the session it was sent to is told.
        Some("notifications/elicitation/complete") => {
            let found = conn
                .clients
                .clients
                .elicitation_complete(&conn.server, env.params);
            tracing::debug!(server = %conn.server, found, "the child finished a URL elicitation");
        }
        Some("notifications/message") => {
            let params = env.params.map(jsonrpc::Raw::get).unwrap_or("{}");
            tracing::debug!(server = %conn.server, params, "child log message");
            conn.clients.clients.log(&conn.server, params);
        }
        Some("notifications/resources/updated") => {
            let params = env.params.map(jsonrpc::Raw::get).unwrap_or("{}");
            conn.clients
                .clients
                .resource_updated(conn.clients.server_index, params);
        }
        Some(other) => {
            tracing::debug!(server = %conn.server, method = other, "ignored a notification from the child")
        }
        None => {}
    }
}

/// A request from the child: sampling, elicitation and roots go to a client session
/// (`upstream`), which answers later; anything else is answered here at once.
fn on_request(conn: &Arc<Connection>, env: &Envelope<'_>) {
    let Some(id) = env.id else { return };
    let Some(method) = env.method.as_deref() else {
        return;
    };
    let refused = match method {
        // The gateway is the child's peer (its MCP client), so it answers the child's liveness
        // check itself: whether the child thinks its client is alive must not depend on any
        // one client session, nor wait for one.
        "ping" => return conn.send_line(&jsonrpc::response_line(id.get(), "{}")),
        m => {
            let c = &conn.clients;
            match c.clients.request(
                conn,
                &conn.server,
                id.get(),
                m,
                env.params,
                c.request_timeout,
            ) {
                Ok(()) => return,
                Err(e) => e,
            }
        }
    };
    tracing::debug!(server = %conn.server, method, error = %refused, "refused a request from the child");
    conn.send_line(&jsonrpc::error_line(id.get(), &refused.to_wire()));
}

/// Sleeps until the earliest call deadline, answers expired calls, repeats. Ends with the
/// connection.
async fn sweep_loop(conn: std::sync::Weak<Connection>) {
    loop {
        let Some(c) = conn.upgrade() else { return };
        if c.is_closed() {
            return;
        }
        let at = c.sweeper_at.load(Ordering::Acquire);
        if at == u64::MAX {
            c.sweeper_wake.notified().await;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until((c.epoch + Duration::from_millis(at)).into()) => expire(&c).await,
            _ = c.sweeper_wake.notified() => {}
        }
    }
}

/// Answers calls whose deadline passed and reschedules the sweeper for the next one.
async fn expire(conn: &Connection) {
    let now = Instant::now();
    let mut expired = Vec::new();
    let mut next: Option<Instant> = None;
    {
        let mut pending = conn.lock();
        let ids: Vec<u64> = pending
            .by_id
            .iter_mut()
            .filter_map(|(id, p)| {
                let Pending::Call {
                    deadline,
                    reply,
                    stalled,
                    ..
                } = p
                else {
                    return None;
                };
                if *deadline <= now {
                    // While the client is far behind, this child's reader waits for it and its
                    // answers sit unread in the pipe: that time is the client's, not the
                    // child's, and does not count toward the call's timeout.
                    let total = reply.stalled();
                    *deadline += total.saturating_sub(*stalled);
                    *stalled = total;
                }
                if *deadline <= now {
                    return Some(*id);
                }
                next = Some(next.map_or(*deadline, |n: Instant| n.min(*deadline)));
                None
            })
            .collect();
        for id in ids {
            if let Some(p) = pending.remove(id) {
                expired.push((id, p));
            }
        }
        conn.sweeper_at
            .store(next.map_or(u64::MAX, |n| conn.millis(n)), Ordering::Release);
    }
    for (child_id, p) in expired {
        if let Pending::Call {
            front_id,
            tool,
            timeout,
            reply,
            journal,
            failover,
            started,
            ..
        } = p
        {
            note_call(
                journal,
                &tool,
                Some(&conn.server),
                CallOutcome::Error,
                failover.is_some(),
                started,
            );
            conn.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            conn.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(server = %conn.server, tool = %tool, ?timeout, "call timed out; cancelling it at the child");
            conn.send_cancelled(child_id, "timed out in mcp-orchestra");
            let err = GatewayError::Timeout {
                server: conn.server.to_string(),
                tool: tool.to_string(),
                after: timeout,
            };
            conn.stats.note_error(err.to_string());
            reply
                .send(jsonrpc::error_line(&front_id, &err.to_wire()))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_gets_the_call_id_as_its_progress_token() {
        let (client, meta) =
            progress_remap(r#"{"progressToken":"p-1","trace":{"id":9}}"#, 42).unwrap();
        assert_eq!(&*client, r#""p-1""#);
        let meta: Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta["progressToken"], 42);
        assert_eq!(meta["trace"]["id"], 9, "other _meta members are kept");
        let (client, _) = progress_remap(r#"{ "progressToken" : 7 }"#, 1).unwrap();
        assert_eq!(&*client, "7");
    }

    #[test]
    fn no_progress_token_means_no_remapping() {
        assert_eq!(progress_remap(r#"{"other":1}"#, 1), None);
        assert_eq!(progress_remap("[]", 1), None);
        // MCP progress tokens are strings or integers.
        assert_eq!(progress_remap(r#"{"progressToken":1.5}"#, 1), None);
        assert_eq!(progress_remap(r#"{"progressToken":null}"#, 1), None);
    }

    /// A child whose stdin and stdout are pipes to a process that never answers (`sleep`).
    async fn silent_connection() -> (Arc<Connection>, tokio::process::Child) {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sleep");
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (conn, _tasks) = Connection::start(
            "s".into(),
            pipe::Sender::from_owned_fd(stdin.into_owned_fd().unwrap()).unwrap(),
            pipe::Receiver::from_owned_fd(stdout.into_owned_fd().unwrap()).unwrap(),
            Arc::new(Stats::default()),
            Arc::new(Notify::new()),
            1 << 20,
            ToClients {
                clients: crate::upstream::Upstream::new(Arc::default()),
                server_index: 0,
                request_timeout: Duration::from_secs(30),
            },
        )
        .expect("connection");
        (conn, child)
    }

    #[tokio::test]
    async fn a_cancel_reaches_only_the_call_of_the_session_that_sent_it() {
        let (conn, _child) = silent_connection().await;
        let params = r#"{"name":"s__t","arguments":{}}"#;
        let call = CallParams::parse(params).unwrap();
        let exposed: Arc<str> = "s__t".into();
        let reply = FrontSink::discard();
        let journal = Arc::default();
        // Two sessions both use request id 1.
        for session in [SessionId(1), SessionId(2)] {
            conn.forward_call(Forward {
                session,
                front_id: "1",
                exposed: &exposed,
                call: &call,
                tool: "t",
                timeout: Duration::from_secs(30),
                reply: &reply,
                failover: None,
                journal: &journal,
            })
            .unwrap();
        }
        assert_eq!(conn.in_flight(), 2);
        assert!(
            !conn.cancel_call(SessionId(3), "1", None),
            "no such call in session 3"
        );
        assert!(conn.cancel_call(SessionId(2), "1", None));
        assert_eq!(conn.in_flight(), 1, "session 1's call is untouched");
        assert!(
            !conn.cancel_call(SessionId(2), "1", None),
            "already cancelled"
        );
        assert!(conn.cancel_call(SessionId(1), "1", None));
        assert_eq!(conn.in_flight(), 0);
    }
}
