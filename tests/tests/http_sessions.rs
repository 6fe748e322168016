//! Many Streamable HTTP sessions on one gateway and one shared server-everything child.
//!
//! Fifty sessions, opened at once, use the same JSON-RPC request ids and the same progress
//! token; each must get exactly its own answers, its own progress, the notifications meant for
//! it (log messages by its own level, `resources/updated` for its own subscription) and the
//! child's requests made for its own calls — and the child is spawned once for all of them
//! (counted in /proc, and the pid health reports never changes).
//!
//! The client is reqwest (keep-alive connections, SSE read as a byte stream): raw JSON-RPC, no
//! SDK, so every id and token on the wire is the test's choice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use orchestra_tests::{everything_entry, finish, http_kit, procs, wait_ready, within, Gateway};
use serde_json::{json, Value};

/// Sessions opened at once.
const SESSIONS: usize = 50;
/// The server's name in the gateway's config.
const SERVER: &str = "everything";
/// Bound on one HTTP exchange (a call with progress takes under a second).
const EXCHANGE: Duration = Duration::from_secs(30);
/// Protocol version every session negotiates (and names on each request).
const VERSION: &str = "2025-11-25";
/// Log levels by session number (`n % 4`): two take the child's info messages, two do not.
const LEVELS: [&str; 4] = ["debug", "info", "warning", "error"];

fn tool(name: &str) -> String {
    format!("{SERVER}__{name}")
}

/// The exposed URI of the dynamic text resource session `n` subscribes to (its own).
fn own_uri(n: usize) -> String {
    format!(
        "orchestra://{SERVER}/demo://resource/dynamic/text/{}",
        n + 1
    )
}

/// A log level's place in RFC 5424's order (debug lowest); unknown levels lowest.
fn rank(level: &str) -> usize {
    const ORDER: [&str; 8] = [
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];
    ORDER.iter().position(|l| *l == level).unwrap_or(0)
}

/// Whether session `n` asked for info-level messages.
fn takes_info(n: usize) -> bool {
    matches!(LEVELS[n % LEVELS.len()], "debug" | "info")
}

/// What session `n` answers to a `sampling/createMessage` it is asked: names the session and
/// repeats the prompt it saw, so a test can tell whose request reached whom.
fn sampling_reply(n: usize, params: &Value) -> Value {
    let prompt = params["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or("");
    json!({
        "role": "assistant",
        "content": {"type": "text", "text": format!("reply of session {n} to <{prompt}>")},
        "model": format!("model-{n}"),
        "stopReason": "endTurn",
    })
}

/// Every message of an SSE byte stream, as it arrives (`data:` lines joined per event).
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn new() -> Self {
        Self { buf: Vec::new() }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Value> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                out.push(serde_json::from_str(&data.join("\n")).expect("event data is JSON"));
            }
        }
        out
    }
}

/// One HTTP session, numbered `n`.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    url: String,
    id: String,
    n: usize,
    /// Everything its GET stream carried (notifications; requests are answered and kept too).
    stream: Arc<Mutex<Vec<Value>>>,
    /// Every `sampling/createMessage` it was asked, on either stream.
    asked: Arc<Mutex<Vec<Value>>>,
}

/// What a POST brought: the messages before the answer (SSE only), and the answer.
struct Posted {
    before: Vec<Value>,
    answer: Value,
}

impl Session {
    /// `initialize` (sampling declared), then `notifications/initialized`; opens the GET stream.
    async fn open(http: &reqwest::Client, url: &str, n: usize) -> Session {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION,
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": format!("session-{n}"), "version": "0"}}});
        let resp = within(EXCHANGE, "initialize over HTTP", async {
            http.post(url)
                .header("Accept", "application/json, text/event-stream")
                .header("Content-Type", "application/json")
                .body(init.to_string())
                .send()
                .await
                .expect("POST initialize")
        })
        .await;
        assert_eq!(resp.status(), 200, "initialize of session {n}");
        let id = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("Mcp-Session-Id")
            .to_owned();
        let body = within(EXCHANGE, "initialize's answer", resp.text()).await;
        let body: Value = serde_json::from_str(&body.expect("initialize's answer"))
            .expect("initialize answer is JSON");
        assert_eq!(body["result"]["protocolVersion"], VERSION, "{body}");
        let session = Session {
            http: http.clone(),
            url: url.to_owned(),
            id,
            n,
            stream: Arc::default(),
            asked: Arc::default(),
        };
        let status = session
            .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(status, 202, "initialized of session {n}");
        session.open_stream().await;
        session
    }

    fn request(&self, body: &Value, accept: &str) -> reqwest::RequestBuilder {
        self.http
            .post(&self.url)
            .header("Accept", accept)
            .header("Content-Type", "application/json")
            .header("Mcp-Session-Id", &self.id)
            .header("MCP-Protocol-Version", VERSION)
            .body(body.to_string())
    }

    /// POSTs a notification or a response; returns the status (202 expected).
    async fn send(&self, body: Value) -> u16 {
        within(EXCHANGE, "POST of a notification or response", async {
            let resp = self
                .request(&body, "application/json, text/event-stream")
                .send()
                .await
                .expect("POST");
            resp.status().as_u16()
        })
        .await
    }

    /// Answers a request the gateway made of this session (on either stream), as this
    /// session's client would.
    async fn answer(&self, req: &Value) {
        let result = match req["method"].as_str() {
            Some("sampling/createMessage") => {
                self.asked.lock().unwrap().push(req["params"].clone());
                sampling_reply(self.n, &req["params"])
            }
            Some("ping") => json!({}),
            other => panic!("session {}: unexpected request {other:?}: {req}", self.n),
        };
        let status = self
            .send(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            .await;
        assert_eq!(status, 202, "session {}: answer to {req}", self.n);
    }

    /// POSTs a request and reads its answer: JSON, or the SSE stream up to the answer (the
    /// gateway's requests on it answered). `accept` is the Accept header.
    async fn post_with(&self, body: Value, accept: &str) -> Posted {
        within(EXCHANGE, "a POSTed request's answer", async {
            let resp = self.request(&body, accept).send().await.expect("POST");
            assert_eq!(resp.status(), 200, "session {}: POST {body}", self.n);
            let sse = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("text/event-stream"));
            if !sse {
                let text = resp.text().await.expect("the answer's body");
                let answer: Value = serde_json::from_str(&text).expect("JSON answer");
                return Posted {
                    before: Vec::new(),
                    answer,
                };
            }
            let mut before = Vec::new();
            let mut parser = SseParser::new();
            let mut bytes = resp.bytes_stream();
            while let Some(chunk) = bytes.next().await {
                for msg in parser.feed(&chunk.expect("SSE bytes")) {
                    match (msg.get("method").is_some(), msg.get("id").is_some()) {
                        (true, true) => {
                            self.answer(&msg).await;
                            before.push(msg);
                        }
                        (true, false) => before.push(msg),
                        (false, _) => {
                            return Posted {
                                before,
                                answer: msg,
                            }
                        }
                    }
                }
            }
            panic!(
                "session {}: the SSE stream ended before the answer to {body}",
                self.n
            );
        })
        .await
    }

    async fn post(&self, body: Value) -> Posted {
        self.post_with(body, "application/json, text/event-stream")
            .await
    }

    /// Opens the session's GET stream; a task collects what it carries and answers the
    /// gateway's requests on it. It ends with the session (DELETE) or the gateway.
    async fn open_stream(&self) {
        let resp = within(EXCHANGE, "the GET stream to open", async {
            self.http
                .get(&self.url)
                .header("Accept", "text/event-stream")
                .header("Mcp-Session-Id", &self.id)
                .header("MCP-Protocol-Version", VERSION)
                .send()
                .await
                .expect("GET /mcp")
        })
        .await;
        assert_eq!(resp.status(), 200, "GET stream of session {}", self.n);
        let me = self.clone();
        tokio::spawn(async move {
            let mut parser = SseParser::new();
            let mut bytes = resp.bytes_stream();
            while let Some(Ok(chunk)) = bytes.next().await {
                for msg in parser.feed(&chunk) {
                    if msg.get("method").is_some() && msg.get("id").is_some() {
                        me.answer(&msg).await;
                    }
                    me.stream.lock().unwrap().push(msg);
                }
            }
        });
    }

    /// The GET stream's notifications of `method` so far.
    fn streamed(&self, method: &str) -> Vec<Value> {
        self.stream
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["method"] == method && m.get("id").is_none())
            .cloned()
            .collect()
    }

    async fn call(&self, id: u64, name: &str, args: Value) -> Posted {
        self.post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool(name), "arguments": args}}))
            .await
    }

    async fn delete(&self) -> u16 {
        within(EXCHANGE, "DELETE of a session", async {
            self.http
                .delete(&self.url)
                .header("Mcp-Session-Id", &self.id)
                .send()
                .await
                .expect("DELETE")
                .status()
                .as_u16()
        })
        .await
    }
}

fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text result: {answer}"))
        .to_owned()
}

/// Processes of this test running server-everything (the npm bin's `node` process).
fn everything_processes(marker: &str) -> Vec<procs::Proc> {
    procs::with_marker(marker)
        .into_iter()
        .filter(|p| p.state != 'Z' && p.cmdline.contains("mcp-server-everything"))
        .collect()
}

/// Polls `pred` until it holds (bounded); returns whether it did.
async fn eventually(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pred()
}

/// One session's own work in the concurrent phase: its log level, five echo calls at once
/// (ids 1–5, as every session uses), a call with progress (id 6, token "tok", as every session
/// uses) whose step count is its own, and a subscription to its own resource (id 7).
async fn own_work(s: &Session) {
    let n = s.n;
    let level = s
        .post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel",
            "params": {"level": LEVELS[n % LEVELS.len()]}}),
        )
        .await;
    assert_eq!(level.answer["id"], 1, "session {n}: {}", level.answer);
    assert!(level.answer.get("result").is_some(), "{}", level.answer);

    let steps = 1 + n % 4;
    let echoes = futures_util::future::join_all((1..=5u64).map(|k| {
        s.call(
            k,
            "echo",
            json!({"message": format!("session {n} call {k}")}),
        )
    }));
    let progress = s.post(
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": tool("trigger-long-running-operation"),
        "arguments": {"duration": 0.1 * steps as f64, "steps": steps},
        "_meta": {"progressToken": "tok"}}}),
    );
    let (echoes, progress) = tokio::join!(echoes, progress);

    for (k, e) in (1..=5u64).zip(&echoes) {
        assert_eq!(e.answer["id"], k, "session {n}: {}", e.answer);
        assert_eq!(
            text(&e.answer),
            format!("Echo: session {n} call {k}"),
            "session {n}, id {k}: another session's answer?"
        );
        assert!(e.before.is_empty(), "session {n}: {:?}", e.before);
    }
    assert_eq!(progress.answer["id"], 6, "session {n}: {}", progress.answer);
    assert!(
        text(&progress.answer).contains(&format!("Steps: {steps}.")),
        "session {n}: {}",
        progress.answer
    );
    let seen: Vec<(u64, u64)> = progress
        .before
        .iter()
        .map(|m| {
            assert_eq!(m["method"], "notifications/progress", "session {n}: {m}");
            assert_eq!(m["params"]["progressToken"], "tok", "session {n}: {m}");
            (
                m["params"]["progress"].as_u64().expect("progress"),
                m["params"]["total"].as_u64().expect("total"),
            )
        })
        .collect();
    let expected: Vec<(u64, u64)> = (1..=steps as u64).map(|i| (i, steps as u64)).collect();
    assert_eq!(
        seen, expected,
        "session {n}: exactly its own progress, in order"
    );

    let sub = s
        .post(
            json!({"jsonrpc": "2.0", "id": 7, "method": "resources/subscribe",
            "params": {"uri": own_uri(n)}}),
        )
        .await;
    assert_eq!(sub.answer["id"], 7, "session {n}: {}", sub.answer);
    assert!(sub.answer.get("result").is_some(), "{}", sub.answer);
}

/// Fifty sessions, colliding ids and tokens, one shared child: each gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_http_sessions_share_one_child_and_each_gets_only_its_own() {
    // reqwest is built without a default TLS provider (the workspace picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = format!(
        "gateway: {{call_timeout: 30s}}\nservers:\n{}",
        everything_entry()
    );
    let mut gw = Gateway::spawn_with_args(&config, &[], &["--listen", "127.0.0.1:0"]);
    gw.request(
        "initialize",
        json!({"protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "stdio-observer", "version": "0"}}),
    )
    .await
    .expect("stdio initialize");
    gw.notify("notifications/initialized", json!({})).await;
    wait_ready(&gw, &[SERVER], Duration::from_secs(60)).await;
    let before = gw.server_health(SERVER).await;
    let child_pid = before["pid"].as_u64().expect("the child's pid");
    let running = everything_processes(&gw.marker);
    assert_eq!(running.len(), 1, "one server-everything: {running:?}");
    drop(gw.drain_notifications());

    let url = format!("http://{}/mcp", http_kit::bound_address(&gw).await);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4 * SESSIONS)
        .build()
        .expect("HTTP client");

    // All at once: open, then each session's own work.
    let sessions: Vec<Session> =
        futures_util::future::join_all((0..SESSIONS).map(|n| Session::open(&http, &url, n))).await;
    let mut ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), SESSIONS, "every session has an id of its own");
    futures_util::future::join_all(sessions.iter().map(own_work)).await;

    // Resource updates: the child sends one `updated` per subscribed URI (then every 5 s);
    // each session must see its own URI, and only its own.
    let on = sessions[0]
        .call(8, "toggle-subscriber-updates", json!({}))
        .await;
    assert!(text(&on.answer).contains("Started"), "{}", on.answer);
    let all_updated = eventually(Duration::from_secs(15), || {
        sessions
            .iter()
            .all(|s| !s.streamed("notifications/resources/updated").is_empty())
    })
    .await;
    let off = sessions[0]
        .call(9, "toggle-subscriber-updates", json!({}))
        .await;
    assert!(text(&off.answer).contains("Stopped"), "{}", off.answer);
    assert!(
        all_updated,
        "within 15 s, sessions without an update for their own subscription: {:?}",
        sessions
            .iter()
            .filter(|s| s.streamed("notifications/resources/updated").is_empty())
            .map(|s| s.n)
            .collect::<Vec<_>>()
    );
    for s in &sessions {
        let uris: Vec<Value> = s
            .streamed("notifications/resources/updated")
            .iter()
            .map(|m| m["params"]["uri"].clone())
            .collect();
        assert!(
            uris.iter().all(|u| *u == own_uri(s.n)),
            "session {}: resource updates of another session: {uris:?}",
            s.n
        );
    }

    // Log messages by each session's level: the child acknowledges each subscription with an
    // info message; sessions at debug/info get all fifty, those at warning/error none.
    let acks = |s: &Session| -> Vec<String> {
        s.streamed("notifications/message")
            .iter()
            .filter_map(|m| m["params"]["data"].as_str().map(str::to_owned))
            .filter(|d| d.starts_with("Received Subscribe Resource request"))
            .collect()
    };
    let delivered = eventually(Duration::from_secs(10), || {
        sessions
            .iter()
            .filter(|s| takes_info(s.n))
            .all(|s| acks(s).len() == SESSIONS)
    })
    .await;
    for s in &sessions {
        let got = acks(s);
        if takes_info(s.n) {
            assert!(
                delivered && got.len() == SESSIONS,
                "session {} (level {}): {} of {SESSIONS} info messages",
                s.n,
                LEVELS[s.n % 4],
                got.len()
            );
        } else {
            let own = rank(LEVELS[s.n % LEVELS.len()]);
            let below: Vec<Value> = s
                .streamed("notifications/message")
                .into_iter()
                .filter(|m| rank(m["params"]["level"].as_str().unwrap_or("")) < own)
                .collect();
            assert!(
                below.is_empty() && got.is_empty(),
                "session {} (level {}) got {} messages below its level, first {:?}",
                s.n,
                LEVELS[s.n % LEVELS.len()],
                below.len(),
                below.first()
            );
        }
    }

    // Sampling, all sessions at once (id 10 for all): the child's requests do not say which
    // call they serve, so while it serves several sessions the gateway asks none of them
    // (upstream.rs); whatever is asked and answered must be the session's own.
    let prompt = |n: usize| format!("prompt of session {n}");
    let at_once = futures_util::future::join_all(sessions.iter().map(|s| {
        s.post_with(
            json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {
                "name": tool("trigger-sampling-request"),
                "arguments": {"prompt": prompt(s.n), "maxTokens": 5}}}),
            "text/event-stream",
        )
    }))
    .await;
    for (s, posted) in sessions.iter().zip(&at_once) {
        assert_eq!(posted.answer["id"], 10, "session {}", s.n);
        let shown = posted.answer.to_string();
        for other in (0..SESSIONS).filter(|o| *o != s.n) {
            assert!(
                !shown.contains(&format!("reply of session {other} "))
                    && !shown.contains(&format!("{} ", prompt(other))),
                "session {} got session {other}'s sampling: {shown}",
                s.n
            );
        }
    }
    let answered = sessions
        .iter()
        .zip(&at_once)
        .filter(|(s, p)| {
            p.answer
                .to_string()
                .contains(&format!("reply of session {} ", s.n))
        })
        .count();
    eprintln!(
        "sampling at once: {answered} of {SESSIONS} calls sampled by their own session, the rest refused as ambiguous"
    );
    for s in &sessions {
        for asked in s.asked.lock().unwrap().iter() {
            let text = asked["messages"][0]["content"]["text"]
                .as_str()
                .unwrap_or("");
            assert!(
                text.ends_with(&prompt(s.n)),
                "session {} was asked another session's sampling: {text}",
                s.n
            );
        }
    }

    // Sampling, one session at a time (id 11 for all): each is asked its own prompt, on its
    // call's own stream, and its call returns its own reply.
    for s in &sessions {
        s.asked.lock().unwrap().clear();
        let posted = s
            .post_with(
                json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
                    "name": tool("trigger-sampling-request"),
                    "arguments": {"prompt": prompt(s.n), "maxTokens": 5}}}),
                "text/event-stream",
            )
            .await;
        assert_eq!(posted.answer["id"], 11);
        let result = text(&posted.answer);
        assert!(
            result.contains(&format!(
                "reply of session {} to <Resource trigger-sampling-request context: {}>",
                s.n,
                prompt(s.n)
            )),
            "session {}: {result}",
            s.n
        );
        let asked = s.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "session {} asked once: {asked:?}", s.n);
        assert!(
            posted
                .before
                .iter()
                .any(|m| m["method"] == "sampling/createMessage"),
            "session {}: the request travelled on the call's own stream",
            s.n
        );
    }

    // One child for all: the same process, never restarted, and no other started.
    let after = gw.server_health(SERVER).await;
    assert_eq!(after["pid"].as_u64(), Some(child_pid), "{after}");
    assert_eq!(after["restarts"], 0, "{after}");
    let running = everything_processes(&gw.marker);
    assert_eq!(
        running.len(),
        1,
        "server-everything spawned once for {SESSIONS} sessions: {running:?}"
    );
    let health = gw.health().await;
    let http_sessions = health["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["transport"] == "http")
        .count();
    assert_eq!(http_sessions, SESSIONS, "health lists every HTTP session");

    for s in &sessions {
        assert_eq!(s.delete().await, 200, "DELETE of session {}", s.n);
    }
    finish(gw).await;
}
