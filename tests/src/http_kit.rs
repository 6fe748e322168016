//! Reaching the gateway's Streamable HTTP front from a test: the address it bound (read from
//! its log, so tests can ask for port 0 and never race for a free port), and a raw HTTP/1.1
//! client (plain TCP writes, one fresh connection a request), so that the headers, timing and
//! broken connections are exactly what the test says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{within, Gateway, STEP};

/// `Accept` for both a JSON answer and an SSE stream, as the Streamable HTTP spec asks.
pub const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");
/// `Content-Type` of a JSON-RPC body.
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// The address in a `serving Streamable HTTP url=http://…/mcp` log line, if there is one yet.
fn address_in(logs: &str) -> Option<SocketAddr> {
    let at = logs.find("url=http://")?;
    let rest = &logs[at + "url=http://".len()..];
    rest[..rest.find("/mcp")?].parse().ok()
}

/// The address the gateway's HTTP front bound (`serve --listen 127.0.0.1:0`), from its log.
pub async fn bound_address(gw: &Gateway) -> SocketAddr {
    within(STEP, "the HTTP front's address in the log", async {
        loop {
            if let Some(addr) = address_in(&gw.logs()) {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Starts the gateway with `env` and `--listen 127.0.0.1:0` (then `args`), and returns it with
/// the address it bound. Panics at once, with the log, if the gateway reports an error before
/// it serves.
pub async fn start_http(
    config: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Gateway, SocketAddr) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let gw = Gateway::spawn_with_args(config, env, &all);
    let addr = within(STEP, "the HTTP front's address in the log", async {
        loop {
            let logs = gw.logs();
            if let Some(addr) = address_in(&logs) {
                return addr;
            }
            assert!(
                !logs.contains("error:"),
                "the gateway did not start: {logs}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    (gw, addr)
}

/// One HTTP answer: header names in lower case, a chunked body already decoded.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The header `name` (lower case), or "" if there is none.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// Every `data:` line of an SSE body, as JSON.
    pub fn events(&self) -> Vec<Value> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("event JSON"))
            .collect()
    }

    /// `(id, data)` of each SSE event that has an id (see [`events_of`]).
    pub fn events_with_ids(&self) -> Vec<(String, Value)> {
        events_of(&self.body)
    }
}

/// `(id, data)` of each SSE event in `text` that has both an `id:` and a `data:` line.
pub fn events_of(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let id = block.lines().find_map(|l| l.strip_prefix("id: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((
                id.to_owned(),
                serde_json::from_str(data).expect("event JSON"),
            ))
        })
        .collect()
}

/// The text of one request with `Connection: close` and a `Content-Length`. `Host` is `addr`
/// unless `headers` sets one.
pub fn request_text(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    req
}

/// One request (see [`request_text`]) over a fresh connection, its answer read to the end;
/// the whole exchange within [`STEP`].
pub async fn http_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    within(STEP, "an HTTP exchange", async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request_text(addr, method, path, headers, body).as_bytes())
            .await
            .expect("write");
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        parse(&raw)
    })
    .await
}

/// [`http_at`] the MCP endpoint, `/mcp`.
pub async fn http(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    http_at(addr, method, "/mcp", headers, body).await
}

/// Parses a raw HTTP/1.1 answer. Whatever is missing stays empty: no answer at all is
/// status 0, so a cut connection fails the test's status assertion and shows what came.
pub fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .nth(1)
        .unwrap_or("0");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status: status.parse().unwrap_or(0),
        headers,
        body,
    }
}

/// The data of a chunked body, up to its last chunk or to the last complete one of a body
/// read only so far.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An `initialize` request body (protocol 2025-06-18, no client capabilities).
pub fn initialize_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw-http", "version": "0"}}})
    .to_string()
}

/// Opens a session (initialize, then `notifications/initialized`), sending `auth` as the
/// `Authorization` header if given; checks the gateway answered and issued a 32-character
/// session id, and returns it.
pub async fn open_session(addr: SocketAddr, auth: Option<&str>) -> String {
    let mut headers = vec![ACCEPT_BOTH, JSON];
    headers.extend(auth.map(|a| ("Authorization", a)));
    let a = http(addr, "POST", &headers, &initialize_body()).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.json()["result"]["serverInfo"]["name"],
        "mcp-orchestra",
        "{a:?}"
    );
    let id = a.header("mcp-session-id").to_owned();
    assert_eq!(id.len(), 32, "an Mcp-Session-Id: {a:?}");
    headers.push(("Mcp-Session-Id", &id));
    let n = http(
        addr,
        "POST",
        &headers,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(n.status, 202, "{n:?}");
    id
}
