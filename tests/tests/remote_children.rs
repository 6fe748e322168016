//! Remote children (issue 10): servers reached by `url:` are supervised like processes.
//! Real parts where they can show it: server-everything in its Streamable HTTP and legacy SSE
//! modes (started by the test on a free port), a second mcp-orchestra serving HTTP; a tiny
//! recording HTTP server for what only it can show (the headers that reach the remote), and a
//! listener that accepts and never answers (a hung remote).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestra_tests::http_kit::bound_address;
use orchestra_tests::{
    deps, everything_entry, finish, procs, str_of, text_of, wait_ready, within, Gateway, STEP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// server-everything in `mode` (`streamableHttp` or `sse`) on `port`, once it accepts.
async fn start_everything(mode: &str, port: u16) -> Child {
    let child = tokio::process::Command::new(&deps().everything)
        .arg(mode)
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server-everything");
    within(STEP, "server-everything listens", async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    child
}

async fn stop(mut child: Child) {
    let _ = child.start_kill();
    within(STEP, "remote exits", child.wait()).await.unwrap();
}

async fn echo(gw: &Gateway, tool: &str, message: &str) {
    let r = within(STEP, tool, gw.call(tool, json!({ "message": message })))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_eq!(text_of(&r), format!("Echo: {message}"), "{r}");
}

/// server-everything as a child by URL over Streamable HTTP, over the legacy HTTP+SSE
/// transport (`transport: sse`), and over it found by the automatic fallback (a POST of
/// `initialize` to an SSE-only server gets 404). Health shows the URL and no pid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_by_url_streamable_http_legacy_sse_and_fallback() {
    let (http_port, sse_port) = (free_port(), free_port());
    let http = start_everything("streamableHttp", http_port).await;
    let sse = start_everything("sse", sse_port).await;
    let urls = [
        (
            "web",
            format!("http://127.0.0.1:{http_port}/mcp"),
            "",
            "streamable_http",
        ),
        (
            "legacy",
            format!("http://127.0.0.1:{sse_port}/sse"),
            ", transport: sse",
            "sse",
        ),
        (
            "fallback",
            format!("http://127.0.0.1:{sse_port}/sse"),
            "",
            "sse",
        ),
    ];
    let mut yaml = "servers:\n".to_owned();
    for (name, url, extra, _) in &urls {
        yaml.push_str(&format!("  {name}: {{url: \"{url}\"{extra}}}\n"));
    }
    let mut gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    wait_ready(&gw, &["web", "legacy", "fallback"], STEP).await;
    for (name, url, _, transport) in &urls {
        echo(&gw, &format!("{name}__echo"), &format!("hello {name}")).await;
        let h = gw.server_health(name).await;
        assert_eq!(str_of(&h, "command"), url, "{h}");
        assert_eq!(h["pid"], Value::Null, "{h}");
        assert_eq!(h["transport"], *transport, "{h}");
        assert!(h["tools"].as_u64().unwrap_or(0) > 5, "{h}");
    }
    // A call with progress over Streamable HTTP: the progress comes on the POST's SSE stream,
    // each step as it happens (before the answer), with the client's own token.
    let answer = gw
        .send_request(
            "tools/call",
            json!({"name": "web__trigger-long-running-operation",
                   "arguments": {"duration": 2, "steps": 2}, "_meta": {"progressToken": "p1"}}),
        )
        .await;
    let first = gw
        .next_notification("notifications/progress", STEP)
        .await
        .expect("progress");
    let sent = Instant::now();
    assert_eq!(first["params"]["progressToken"], "p1", "{first}");
    let r = within(STEP, "a long call over HTTP", answer).await.unwrap();
    assert!(
        sent.elapsed() > Duration::from_millis(300),
        "the progress came before the answer, not with it"
    );
    assert!(text_of(&r["result"]).contains("Steps: 2"), "{r}");
    assert!(
        gw.logs().contains("trying the legacy HTTP+SSE transport"),
        "the fallback was taken"
    );
    finish(gw).await;
    stop(http).await;
    stop(sse).await;
}

/// A second mcp-orchestra serving HTTP only is a child of the first by URL: its own child's
/// tools are reached through both gateways. Both stop with nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_is_a_child_by_url() {
    let mut inner = Gateway::spawn_with_args(
        &format!("servers:\n{}", everything_entry()),
        &[],
        &["--listen", "127.0.0.1:0", "--no-stdio"],
    );
    let addr = bound_address(&inner).await;
    let outer = within(
        STEP,
        "outer gateway",
        Gateway::start(&format!(
            "servers:\n  inner: {{url: \"http://{addr}/mcp\"}}\n"
        )),
    )
    .await;
    wait_ready(&outer, &["inner"], STEP).await;
    within(
        STEP,
        "inner's child ready",
        outer.wait_server("inner", STEP, |s| s["tools"].as_u64().unwrap_or(0) > 5),
    )
    .await;
    echo(&outer, "inner__everything__echo", "through two gateways").await;
    let h = outer.server_health("inner").await;
    assert_eq!(h["server_info"]["name"], "mcp-orchestra", "{h}");
    finish(outer).await;
    inner.signal(nix::sys::signal::Signal::SIGTERM);
    let status = inner.wait_exit(STEP).await;
    assert!(status.success(), "{status}: {}", inner.logs());
    procs::assert_none_left(&inner.marker, STEP).await;
}

/// Killing the remote process during a call: the call is answered at once with the gateway's
/// error, health shows the server down with why; once the remote is back on the same port,
/// the supervisor reconnects after its backoff and calls work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_remote_mid_call_answers_at_once_and_it_comes_back() {
    let port = free_port();
    let remote = start_everything("streamableHttp", port).await;
    let yaml = format!(
        "servers:\n  web: {{url: \"http://127.0.0.1:{port}/mcp\", call_timeout: 30s, \
         restart: {{initial_backoff: 200ms, max_backoff: 500ms, jitter: 0.0, max_restarts: 1000}}}}\n"
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    wait_ready(&gw, &["web"], STEP).await;
    let pending = gw
        .send_request(
            "tools/call",
            json!({"name": "web__trigger-long-running-operation",
                   "arguments": {"duration": 20, "steps": 10}}),
        )
        .await;
    within(
        STEP,
        "the call is in flight",
        gw.wait_server("web", STEP, |s| s["in_flight"].as_u64() == Some(1)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    stop(remote).await;
    let answer = within(
        Duration::from_secs(5),
        "the in-flight call's answer",
        pending,
    )
    .await
    .expect("answered");
    let waited = killed_at.elapsed();
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    assert_eq!(answer["error"]["code"], -31002, "{answer}");
    assert_eq!(answer["error"]["data"]["server"], "web", "{answer}");

    let down = gw.server_health("web").await;
    assert_ne!(down["state"], "ready", "{down}");
    // "the connection broke while reading the answer: …", then "cannot connect: … refused".
    assert!(str_of(&down, "reason").contains("connect"), "{down}");
    assert_eq!(down["pid"], Value::Null, "{down}");
    // While it is down, calls fail fast with the reason, not a hang.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let down = gw.server_health("web").await;
    assert!(
        down["restarts"].as_u64().unwrap_or(0) >= 1,
        "it keeps trying: {down}"
    );

    let remote = start_everything("streamableHttp", port).await;
    let back = within(
        STEP,
        "reconnected",
        gw.wait_server("web", STEP, |s| s["state"] == "ready"),
    )
    .await;
    assert!(back["restarts"].as_u64().unwrap_or(0) >= 1, "{back}");
    echo(&gw, "web__echo", "back again").await;
    finish(gw).await;
    stop(remote).await;
}

/// A remote that freezes while serving (SIGSTOP: its port still accepts, nothing answers): a
/// call times out at its deadline, pings go unanswered, the server turns unhealthy and its
/// link is stopped and opened again under the handshake's deadline; once it thaws (SIGCONT)
/// it is ready again and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_remote_times_out_calls_turns_unhealthy_and_recovers() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let port = free_port();
    let remote = start_everything("streamableHttp", port).await;
    let pid = Pid::from_raw(remote.id().expect("remote pid") as i32);
    let yaml = format!(
        "servers:\n  web: {{url: \"http://127.0.0.1:{port}/mcp\", call_timeout: 1s, \
         startup_timeout: 2s, probe: {{interval: 300ms, timeout: 300ms, unhealthy_after: 2, \
         restart_after: 4}}, restart: {{initial_backoff: 200ms, jitter: 0.0, max_restarts: 1000}}}}\n"
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    wait_ready(&gw, &["web"], STEP).await;
    kill(pid, Signal::SIGSTOP).unwrap();
    let started = Instant::now();
    let err = within(
        STEP,
        "a call to the frozen remote",
        gw.request(
            "tools/call",
            json!({"name": "web__echo", "arguments": {"message": "x"}}),
        ),
    )
    .await
    .expect_err("a timeout");
    assert_eq!(err["code"], -31003, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let sick = within(
        STEP,
        "unhealthy, then stopped",
        gw.wait_server("web", STEP, |s| s["restarts"].as_u64().unwrap_or(0) >= 1),
    )
    .await;
    assert_ne!(sick["state"], "ready", "{sick}");
    let events = gw.health().await["events"].to_string();
    assert!(events.contains("unhealthy"), "{events}");
    kill(pid, Signal::SIGCONT).unwrap();
    within(
        STEP,
        "ready after the thaw",
        gw.wait_server("web", STEP, |s| s["state"] == "ready"),
    )
    .await;
    echo(&gw, "web__echo", "thawed").await;
    finish(gw).await;
    stop(remote).await;
}

/// A remote that accepts connections and never answers: the handshake times out within
/// `startup_timeout`, health says why, and the gateway neither hangs nor leaves anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_hangs_times_out_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            keep.lock().unwrap().push(s);
        }
    });
    let yaml = format!(
        "servers:\n{}  hung: {{url: \"http://{addr}/mcp\", startup_timeout: 1s, \
         restart: {{initial_backoff: 5s}}}}\n",
        everything_entry()
    );
    let started = Instant::now();
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    let h = within(
        STEP,
        "hung leaves starting",
        gw.wait_server("hung", STEP, |s| s["state"] != "starting"),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h["state"], "restarting", "{h}");
    assert!(
        str_of(&h, "reason").contains("no answer to the handshake"),
        "{h}"
    );
    assert!(!held.lock().unwrap().is_empty(), "the gateway did connect");
    wait_ready(&gw, &["everything"], STEP).await;
    echo(&gw, "everything__echo", "unaffected").await;
    finish(gw).await;
    acceptor.abort();
}

/// What the recording server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    /// Which TCP connection it came on (0, 1, … in accept order).
    conn: u32,
    method: String,
    headers: HashMap<String, String>,
    body: Value,
}

/// A minimal Streamable HTTP server (HTTP/1.1, keep-alive, JSON answers) that records each
/// request: it initializes with a new session id each time (`s-1`, `s-2`, …), lists one
/// tool, answers ping, 202 for the rest. With `expire_first`, session `s-1` is forgotten
/// after its first ping: every later request in it gets 404, as after a server restart.
/// With `stream`, its first GET stream carries one event (id `e1`, its tools changed) and
/// ends; later GETs get 405.
async fn recording_server(
    seen: Arc<Mutex<Vec<Seen>>>,
    expire_first: bool,
    get_stream: bool,
) -> SocketAddr {
    let sessions = Arc::new(AtomicU32::new(0));
    let gets = Arc::new(AtomicU32::new(0));
    let conns = Arc::new(AtomicU32::new(0));
    let pings = Arc::new(AtomicU32::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, sessions, pings) = (seen.clone(), sessions.clone(), pings.clone());
            let gets = gets.clone();
            let conn = conns.fetch_add(1, SeqCst);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut head = String::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut lines = head.lines();
                    let method = lines
                        .next()
                        .unwrap_or("")
                        .split(' ')
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let in_first = headers.get("mcp-session-id").map(String::as_str) == Some("s-1");
                    seen.lock().unwrap().push(Seen {
                        conn,
                        method: method.clone(),
                        headers,
                        body: body.clone(),
                    });
                    if expire_first
                        && in_first
                        && body["method"] == "ping"
                        && pings.fetch_add(1, SeqCst) >= 1
                    {
                        let gone = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
                        if stream.get_mut().write_all(gone.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let mut session = "s-1".to_owned();
                    let result = match (method.as_str(), body["method"].as_str()) {
                        ("POST", Some("initialize")) => {
                            session = format!("s-{}", sessions.fetch_add(1, SeqCst) + 1);
                            Some(json!({
                            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                            "serverInfo": {"name": "recorder", "version": "0"}}))
                        }
                        ("POST", Some("tools/list")) => Some(json!({"tools": [
                            {"name": "noop", "inputSchema": {"type": "object"}}]})),
                        ("POST", Some("ping")) => Some(json!({})),
                        // 200 kB of text: over a small max_message_size.
                        ("POST", Some("tools/call")) => Some(json!({"content": [
                            {"type": "text", "text": "x".repeat(200_000)}]})),
                        _ => None,
                    };
                    let reply = match (method.as_str(), result) {
                        (_, Some(result)) => {
                            let msg = json!({"jsonrpc": "2.0", "id": body["id"], "result": result})
                                .to_string();
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: {session}\r\ncontent-length: {}\r\n\r\n{msg}", msg.len())
                        }
                        ("GET", None) if get_stream && gets.fetch_add(1, SeqCst) == 0 => {
                            let event = "id: e1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
                            format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{event}", event.len())
                        }
                        ("GET", None) => {
                            "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n"
                                .to_owned()
                        }
                        ("DELETE", None) => {
                            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned()
                        }
                        _ => "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_owned(),
                    };
                    if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Configured headers (`${VAR}` expanded) and the bearer token reach the remote on every
/// request, with the transport's own headers (Accept, session id and protocol version after
/// `initialize`); the session is DELETEd at shutdown; the token never shows in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_bearer_token_reach_the_remote() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = recording_server(seen.clone(), false, false).await;
    let token = "tok-7f3a9c1e5b";
    let yaml = format!(
        "servers:\n  rec: {{url: \"http://{addr}/mcp\", headers: {{X-Team: \"${{TEAM}}\"}}, \
         bearer_token_env: REMOTE_TOKEN}}\n"
    );
    let gw = within(
        STEP,
        "gateway start",
        Gateway::start_with(&yaml, &[("TEAM", "core"), ("REMOTE_TOKEN", token)]),
    )
    .await;
    wait_ready(&gw, &["rec"], STEP).await;
    assert!(gw.tool_names().await.contains(&"rec__noop".to_owned()));
    let logs_before_exit = gw.logs();
    finish(gw).await;
    assert!(
        !logs_before_exit.contains(token),
        "the token is in the logs"
    );

    let seen = seen.lock().unwrap().clone();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert!(posts.len() >= 3, "{seen:?}");
    assert_eq!(posts[0].body["method"], "initialize", "{seen:?}");
    for s in &seen {
        assert_eq!(
            s.headers.get("x-team").map(String::as_str),
            Some("core"),
            "{s:?}"
        );
        assert_eq!(
            s.headers.get("authorization"),
            Some(&format!("Bearer {token}")),
            "{s:?}"
        );
    }
    for p in &posts {
        let accept = p.headers.get("accept").cloned().unwrap_or_default();
        assert!(
            accept.contains("application/json") && accept.contains("text/event-stream"),
            "{p:?}"
        );
        assert_eq!(
            p.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }
    assert!(
        !posts[0].headers.contains_key("mcp-session-id"),
        "{:?}",
        posts[0]
    );
    for p in &posts[1..] {
        assert_eq!(
            p.headers.get("mcp-session-id").map(String::as_str),
            Some("s-1"),
            "{p:?}"
        );
        assert_eq!(
            p.headers.get("mcp-protocol-version").map(String::as_str),
            Some("2025-06-18"),
            "{p:?}"
        );
    }
    assert_eq!(
        posts[1].body["method"], "notifications/initialized",
        "{seen:?}"
    );
    // One keep-alive pool: the sequential handshake reuses its connection.
    let mut conns: Vec<u32> = seen.iter().map(|s| s.conn).collect();
    conns.dedup();
    assert!(
        conns.len() < seen.len(),
        "a connection per request: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.method == "DELETE"
            && s.headers.get("mcp-session-id").map(String::as_str) == Some("s-1")),
        "the session is deleted at shutdown: {seen:?}"
    );
}

/// A 404 to a request carrying the session id means the remote forgot the session (it
/// restarted, say): the link ends, the supervisor starts a new one after its backoff, and the
/// new `initialize` carries no session id and gets a new one, used from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_the_session_re_initializes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = recording_server(seen.clone(), true, false).await;
    let yaml = format!(
        "servers:\n  rec: {{url: \"http://{addr}/mcp\", \
         probe: {{interval: 300ms, timeout: 1s}}, restart: {{initial_backoff: 200ms, jitter: 0.0}}}}\n"
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    let back = within(
        STEP,
        "ready again in a new session",
        gw.wait_server("rec", STEP, |s| {
            s["state"] == "ready" && s["restarts"].as_u64() == Some(1)
        }),
    )
    .await;
    assert!(
        str_of(&back, "last_exit").contains("no longer knows the session"),
        "{back}"
    );
    assert!(gw.tool_names().await.contains(&"rec__noop".to_owned()));
    finish(gw).await;
    let seen = seen.lock().unwrap().clone();
    let inits: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.body["method"] == "initialize")
        .collect();
    assert_eq!(inits.len(), 2, "{seen:?}");
    assert!(
        !inits[1].headers.contains_key("mcp-session-id"),
        "{:?}",
        inits[1]
    );
    let last = seen.iter().rev().find(|s| s.method == "POST").unwrap();
    assert_eq!(
        last.headers.get("mcp-session-id").map(String::as_str),
        Some("s-2"),
        "{seen:?}"
    );
}

/// The server's own GET stream: a message on it reaches the gateway (its tools changed: the
/// gateway lists them again), and when the stream ends while the session lives it is opened
/// again with `Last-Event-ID` naming the last event seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_get_stream_delivers_and_reopens_with_last_event_id() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = recording_server(seen.clone(), false, true).await;
    let yaml = format!("servers:\n  rec: {{url: \"http://{addr}/mcp\"}}\n");
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    wait_ready(&gw, &["rec"], STEP).await;
    let count = |method: &str, rpc: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && (rpc.is_empty() || s.body["method"] == rpc))
            .count()
    };
    within(
        STEP,
        "relisted after the GET stream's list_changed",
        async {
            while count("POST", "tools/list") < 2 || count("GET", "") < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        },
    )
    .await;
    finish(gw).await;
    let seen = seen.lock().unwrap().clone();
    let gets: Vec<&Seen> = seen.iter().filter(|s| s.method == "GET").collect();
    assert!(
        !gets[0].headers.contains_key("last-event-id"),
        "{:?}",
        gets[0]
    );
    assert_eq!(
        gets[1].headers.get("last-event-id").map(String::as_str),
        Some("e1"),
        "{:?}",
        gets[1]
    );
    assert_eq!(
        gets[0].headers.get("accept").map(String::as_str),
        Some("text/event-stream")
    );
}

/// A redirect is not followed: the configured headers (an API key, the bearer token) would
/// go wherever it points. The server is reported down with the status, and the target of the
/// redirect never hears from the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    let elsewhere_seen = Arc::new(Mutex::new(Vec::new()));
    let elsewhere = recording_server(elsewhere_seen.clone(), false, false).await;
    let redirector = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = redirector.local_addr().unwrap();
    let acceptor = tokio::spawn(async move {
        while let Ok((mut s, _)) = redirector.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{elsewhere}/mcp\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let yaml = format!(
        "servers:\n  moved: {{url: \"http://{addr}/mcp\", headers: {{X-Api-Key: k-secret}}, \
         restart: {{initial_backoff: 5s}}}}\n"
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    let h = within(
        STEP,
        "moved leaves starting",
        gw.wait_server("moved", STEP, |s| s["state"] != "starting"),
    )
    .await;
    assert!(str_of(&h, "reason").contains("307"), "{h}");
    finish(gw).await;
    acceptor.abort();
    assert!(
        elsewhere_seen.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}

/// An answer over `max_message_size` is not passed on: the call gets -31005 at once (as
/// from a process child), health counts it, and the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_max_message_size_is_refused_at_once() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = recording_server(seen.clone(), false, false).await;
    let yaml = format!(
        "servers:\n  rec: {{url: \"http://{addr}/mcp\", max_message_size: 64KiB, call_timeout: 20s}}\n"
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;
    wait_ready(&gw, &["rec"], STEP).await;
    let started = Instant::now();
    let err = within(STEP, "the big call", gw.call("rec__noop", json!({})))
        .await
        .expect_err("-31005");
    assert_eq!(err["code"], -31005, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let h = gw.server_health("rec").await;
    assert_eq!(h["oversized_messages"], 1, "{h}");
    assert_eq!(h["state"], "ready", "{h}");
    finish(gw).await;
}
