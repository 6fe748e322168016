//! The Streamable HTTP front (`serve --listen`): the official Python SDK's Streamable HTTP
//! client end to end, and a raw HTTP/1.1 client (plain TCP writes) for the protocol and
//! security rows: session ids, protocol version, Host/Origin (DNS rebinding), body and
//! session limits, DELETE, idle timeout, per-request answers, and stdio + HTTP served by one
//! process on one set of children.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use orchestra_tests::http_kit::{
    bound_address, http, http_at, initialize_body, open_session, request_text, start_http, Answer,
    ACCEPT_BOTH, JSON,
};
use orchestra_tests::{deps, everything_entry, procs, within, Gateway, STEP};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn call(addr: SocketAddr, session: &str, id: u64, tool: &str, args: Value) -> Answer {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": args}});
    http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", session)],
        &body.to_string(),
    )
    .await
}

async fn finish(gw: Gateway) {
    let marker = gw.marker.clone();
    let (status, _gw) = gw.close(STEP).await;
    assert!(status.success(), "gateway exit: {status}");
    procs::assert_none_left(&marker, STEP).await;
}

/// The official Python SDK's Streamable HTTP client: initialize (session id issued), the
/// merged tools list, a routed call, and a call with progress whose notifications reach the
/// SDK's progress_callback on the POST's SSE stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_streamable_http_end_to_end() {
    let config = format!("servers:\n{}", everything_entry());
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let out = within(
        Duration::from_secs(90),
        "the Python SDK's HTTP client",
        tokio::process::Command::new(&deps().python)
            .arg(orchestra_tests::workspace_root().join("tests/python/http_client.py"))
            .arg(format!("http://{addr}/mcp"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let obs: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(obs.get("error").is_none(), "{obs:#}");
    assert_eq!(obs["server_name"], "mcp-orchestra");
    assert_eq!(obs["session_id"].as_str().map(str::len), Some(32), "{obs}");
    let tools: Vec<&str> = obs["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"everything__echo") && tools.contains(&"orchestrator_health"));
    assert_eq!(obs["echo_text"], "Echo: over http");
    assert_eq!(obs["progress_is_error"], false);
    assert_eq!(
        obs["progress_callbacks"],
        json!([{"progress": 1.0, "total": 2.0}, {"progress": 2.0, "total": 2.0}])
    );
    assert_eq!(obs["closed"], true);
    finish(gw).await;
}

/// The protocol and security rows, on one gateway with small limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_and_security_rows() {
    let config = format!(
        "http: {{max_sessions: 3, max_body: 4KiB}}\nservers:\n{}",
        everything_entry()
    );
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let s1 = open_session(addr, None).await;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

    // Missing and unknown session ids.
    let a = http(addr, "POST", &[ACCEPT_BOTH, JSON], list).await;
    assert_eq!(a.status, 400, "missing id: {a:?}");
    let a = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Mcp-Session-Id", "00112233445566778899aabbccddeeff"),
        ],
        list,
    )
    .await;
    assert_eq!(a.status, 404, "unknown id: {a:?}");

    // A supported version passes, an unsupported one is 400.
    let ok = [
        ACCEPT_BOTH,
        JSON,
        ("Mcp-Session-Id", &s1),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let a = http(addr, "POST", &ok, list).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json()["result"]["tools"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
    let bad = [
        ACCEPT_BOTH,
        JSON,
        ("Mcp-Session-Id", &s1),
        ("MCP-Protocol-Version", "1999-01-01"),
    ];
    assert_eq!(http(addr, "POST", &bad, list).await.status, 400);

    // DNS rebinding: a foreign Origin or a wrong Host is 403, and opens no session.
    let foreign = [ACCEPT_BOTH, JSON, ("Origin", "https://evil.example")];
    assert_eq!(
        http(addr, "POST", &foreign, &initialize_body())
            .await
            .status,
        403
    );
    let wrong_host = [ACCEPT_BOTH, JSON, ("Host", "evil.example")];
    assert_eq!(
        http(addr, "POST", &wrong_host, &initialize_body())
            .await
            .status,
        403
    );
    let own_origin = format!("http://localhost:{}", addr.port());
    let fine = [
        ACCEPT_BOTH,
        JSON,
        ("Mcp-Session-Id", &s1),
        ("Origin", &own_origin),
    ];
    assert_eq!(http(addr, "POST", &fine, list).await.status, 200);

    // An oversized body is 413.
    let big = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "everything__echo", "arguments": {"message": "x".repeat(8192)}}});
    let a = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", &s1)],
        &big.to_string(),
    )
    .await;
    assert_eq!(a.status, 413, "{a:?}");

    // The session limit: 3 sessions, the 4th initialize is 503 with a clear message.
    let s2 = open_session(addr, None).await;
    let _s3 = open_session(addr, None).await;
    let a = http(addr, "POST", &[ACCEPT_BOTH, JSON], &initialize_body()).await;
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.body.contains("at most 3 HTTP sessions"), "{}", a.body);

    // DELETE ends a session: later requests get 404, and a new session fits again.
    let del = [("Mcp-Session-Id", s2.as_str())];
    assert_eq!(http(addr, "DELETE", &del, "").await.status, 200);
    let a = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", &s2)],
        list,
    )
    .await;
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(http(addr, "DELETE", &del, "").await.status, 404);
    let _s4 = open_session(addr, None).await;

    // Health: both probes answer with the report; every HTTP session is in it.
    let h = http_at(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(h.status, 200);
    let r = http_at(addr, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let report = r.json();
    let http_sessions = report["sessions"]
        .as_array()
        .expect("sessions in the report")
        .iter()
        .filter(|s| s["transport"] == "http")
        .count();
    assert_eq!(http_sessions, 3, "{report:#}");
    finish(gw).await;
}

/// Two sessions send a call with the same request id at the same time: each gets its own
/// answer on its own POST. And a call with a progressToken is streamed (SSE): its progress,
/// then its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_request_id_in_two_sessions_and_progress_over_sse() {
    let config = format!("servers:\n{}", everything_entry());
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let (a, b) = (
        open_session(addr, None).await,
        open_session(addr, None).await,
    );
    let (ra, rb) = tokio::join!(
        call(addr, &a, 7, "everything__echo", json!({"message": "for a"})),
        call(addr, &b, 7, "everything__echo", json!({"message": "for b"})),
    );
    assert_eq!(
        ra.json()["result"]["content"][0]["text"],
        "Echo: for a",
        "{ra:?}"
    );
    assert_eq!(
        rb.json()["result"]["content"][0]["text"],
        "Echo: for b",
        "{rb:?}"
    );

    let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "everything__trigger-long-running-operation",
        "arguments": {"duration": 1, "steps": 2}, "_meta": {"progressToken": "tok"}}});
    let s = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", &a)],
        &body.to_string(),
    )
    .await;
    assert_eq!(
        s.headers.get("content-type").map(String::as_str),
        Some("text/event-stream")
    );
    let events = s.events();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0]["method"], "notifications/progress");
    assert_eq!(events[0]["params"]["progressToken"], "tok");
    assert_eq!(events[1]["params"]["progress"], 2);
    assert_eq!(events[2]["id"], 8);
    assert!(events[2]["result"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("completed")));
    finish(gw).await;
}

/// One process serves its stdio client and HTTP clients at once, on one set of children:
/// server-everything is spawned once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_and_http_share_one_process_and_its_children() {
    let config = format!("servers:\n{}", everything_entry());
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let init = gw
        .request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "stdio-side", "version": "0"}}),
        )
        .await
        .expect("stdio initialize");
    assert_eq!(init["serverInfo"]["name"], "mcp-orchestra");
    gw.notify("notifications/initialized", json!({})).await;
    let over_stdio = gw
        .call("everything__echo", json!({"message": "stdio"}))
        .await
        .expect("stdio call");
    assert_eq!(orchestra_tests::text_of(&over_stdio), "Echo: stdio");
    let s = open_session(addr, None).await;
    let over_http = call(addr, &s, 1, "everything__echo", json!({"message": "http"})).await;
    assert_eq!(
        over_http.json()["result"]["content"][0]["text"],
        "Echo: http"
    );
    let health = gw.health().await;
    let transports: Vec<&str> = health["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["transport"].as_str())
        .collect();
    assert!(
        transports.contains(&"stdio") && transports.contains(&"http"),
        "{transports:?}"
    );
    let everything: Vec<_> = procs::with_marker(&gw.marker)
        .into_iter()
        .filter(|p| p.cmdline.contains("server-everything") && p.cmdline.contains("stdio"))
        .filter(|p| p.state != 'Z')
        .collect();
    assert_eq!(
        everything.len(),
        1,
        "children spawned once: {everything:#?}"
    );
    finish(gw).await;
}

/// An idle session is ended after the idle timeout (404 afterwards); and a non-loopback
/// listen address without authentication is refused at start with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_and_remote_binding_is_refused() {
    let config = format!(
        "http: {{idle_timeout: 1s}}\nservers:\n{}",
        everything_entry()
    );
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let s = open_session(addr, None).await;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let headers = [ACCEPT_BOTH, JSON, ("Mcp-Session-Id", s.as_str())];
    assert_eq!(http(addr, "POST", &headers, list).await.status, 200);
    let t0 = Instant::now();
    let ended = within(STEP, "the idle session to end", async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if http(addr, "POST", &headers, list).await.status == 404 {
                return t0.elapsed();
            }
            // Each probe above counts as use: probe less often than the timeout.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    })
    .await;
    assert!(
        ended >= Duration::from_millis(1000),
        "ended after {ended:?}"
    );
    finish(gw).await;

    let mut refused = Gateway::spawn_with_args(
        &format!("servers:\n{}", everything_entry()),
        &[],
        &["--listen", "0.0.0.0:0", "--no-stdio"],
    );
    let status = refused.wait_exit(STEP).await;
    assert_eq!(status.code(), Some(64), "{}", refused.logs());
    assert!(
        refused.logs().contains("--allow-remote-unauthenticated"),
        "{}",
        refused.logs()
    );
    procs::assert_none_left(&refused.marker, STEP).await;
}

/// GET opens the session's own stream: a child's log message (not tied to any request)
/// arrives on it as an SSE event; a second GET of the same session is 409; DELETE ends the
/// session and its open stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_stream_carries_notifications_and_ends_with_the_session() {
    let config = format!("servers:\n{}", everything_entry());
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let s = open_session(addr, None).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {s}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    within(STEP, "the GET stream's headers", async {
        while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "GET stream closed early");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let head = String::from_utf8_lossy(&seen).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    let second = http(
        addr,
        "GET",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &s)],
        "",
    )
    .await;
    assert_eq!(second.status, 409, "{second:?}");

    let level = json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel",
        "params": {"level": "debug"}});
    let headers = [ACCEPT_BOTH, JSON, ("Mcp-Session-Id", s.as_str())];
    assert_eq!(
        http(addr, "POST", &headers, &level.to_string())
            .await
            .status,
        200
    );
    let toggled = call(
        addr,
        &s,
        3,
        "everything__toggle-simulated-logging",
        json!({}),
    )
    .await;
    assert_eq!(toggled.json()["id"], 3, "{toggled:?}");
    within(
        Duration::from_secs(12),
        "a log message on the GET stream",
        async {
            while !String::from_utf8_lossy(&seen).contains("notifications/message") {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "GET stream closed before the log message");
                seen.extend_from_slice(&buf[..n]);
            }
        },
    )
    .await;
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(text.contains("\"logger\":\"everything\""), "{text}");

    let del = [("Mcp-Session-Id", s.as_str())];
    assert_eq!(http(addr, "DELETE", &del, "").await.status, 200);
    // The body ends (the chunked encoding's last chunk; the connection itself may be kept).
    within(STEP, "the GET stream to end after DELETE", async {
        while !seen.ends_with(b"\r\n0\r\n\r\n") {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    finish(gw).await;
}

/// `--no-stdio` (with `http.listen` from the configuration): the process serves HTTP only,
/// never reads its stdin, and stops on SIGTERM with nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_only_runs_until_sigterm() {
    let config = format!(
        "http: {{listen: \"127.0.0.1:0\"}}\nservers:\n{}",
        everything_entry()
    );
    let mut gw = Gateway::spawn_with_args(&config, &[], &["--no-stdio"]);
    let addr = bound_address(&gw).await;
    let s = open_session(addr, None).await;
    let r = call(
        addr,
        &s,
        1,
        "everything__echo",
        json!({"message": "daemon"}),
    )
    .await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "Echo: daemon");
    gw.signal(nix::sys::signal::Signal::SIGTERM);
    let status = gw.wait_exit(STEP).await;
    assert!(status.success(), "{status}: {}", gw.logs());
    procs::assert_none_left(&gw.marker, STEP).await;

    // --no-stdio without any HTTP front is refused.
    let mut bad = Gateway::spawn_with_args(
        &format!("servers:\n{}", everything_entry()),
        &[],
        &["--no-stdio"],
    );
    assert_eq!(bad.wait_exit(STEP).await.code(), Some(64), "{}", bad.logs());
}

/// A child's request made during a call travels on that call's own SSE stream: a session
/// that declared sampling calls server-everything's sampling tool with a progressToken; the
/// `sampling/createMessage` arrives on the POST's stream, the client POSTs its answer (202),
/// and the call's result — carrying that answer — ends the same stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_request_during_a_call_travels_on_that_calls_stream() {
    let config = format!("servers:\n{}", everything_entry());
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {"sampling": {}},
        "clientInfo": {"name": "sampler", "version": "0"}}});
    let a = http(addr, "POST", &[ACCEPT_BOTH, JSON], &init.to_string()).await;
    let s = a.headers.get("mcp-session-id").expect("session id").clone();
    let headers = [ACCEPT_BOTH, JSON, ("Mcp-Session-Id", s.as_str())];
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(http(addr, "POST", &headers, initialized).await.status, 202);
    // The sampling tool is listed once the child knows a client can sample (wait for it).
    within(STEP, "the sampling tool to be listed", async {
        loop {
            let l = http(
                addr,
                "POST",
                &headers,
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            )
            .await;
            if l.body.contains("everything__trigger-sampling-request") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;

    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "everything__trigger-sampling-request",
        "arguments": {"prompt": "the colour of 4711", "maxTokens": 7},
        "_meta": {"progressToken": 1}}})
    .to_string();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = request_text(addr, "POST", "/mcp", &headers, &body);
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    let request_id = within(STEP, "sampling/createMessage on the call's stream", async {
        loop {
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(at) = text.find("data: {\"jsonrpc\":\"2.0\",\"id\":") {
                let line = text[at + 6..].lines().next().unwrap_or_default();
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    if v["method"] == "sampling/createMessage" {
                        return v["id"].clone();
                    }
                }
            }
            let mut buf = [0u8; 4096];
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended without the request: {text}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let answer = json!({"jsonrpc": "2.0", "id": request_id, "result": {
        "role": "assistant", "model": "test-model",
        "content": {"type": "text", "text": "vermilion"}}});
    assert_eq!(
        http(addr, "POST", &headers, &answer.to_string())
            .await
            .status,
        202
    );
    within(STEP, "the call's result on the same stream", async {
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
        seen.extend_from_slice(&rest);
    })
    .await;
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(
        text.contains("\"id\":9") && text.contains("vermilion"),
        "{text}"
    );
    finish(gw).await;
}
