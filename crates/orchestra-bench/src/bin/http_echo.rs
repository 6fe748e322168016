//! `bench-http-echo`: the floor of the HTTP rows. `bench-echo`'s answers served over
//! Streamable HTTP by the same stack as the gateway's front (axum over hyper, one
//! current-thread tokio runtime), with nothing behind it: what calling an MCP server over
//! HTTP costs on its own, without a gateway.
//!
//! Binds `127.0.0.1:0` and logs `url=http://ADDR/mcp` on stderr (where `bench-driver --http`
//! finds it); serves POST `/mcp`: `initialize` (with an `Mcp-Session-Id`), notifications
//! (202), `tools/list` (one tool, `echo`) and `tools/call` (`{"content":[{"type":"text",
//! "text":"ok"}]}`); anything else gets -32601. No session is checked. It exits when its stdin
//! closes, as the stdio servers do.

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use orchestra_bench::{Envelope, PROTOCOL_VERSION};
use tokio::io::AsyncReadExt;

fn answer(id: &str, result: &str) -> Response {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn mcp(body: Bytes) -> Response {
    let Ok(env) = Envelope::parse(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (Some(id), Some(method)) = (env.id, env.method) else {
        return StatusCode::ACCEPTED.into_response(); // a notification or a response
    };
    let id = id.get();
    match method.get() {
        r#""tools/call""# => answer(id, r#"{"content":[{"type":"text","text":"ok"}]}"#),
        r#""tools/list""# => answer(
            id,
            r#"{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}"#,
        ),
        r#""initialize""# => {
            let result = format!(
                r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"bench-http-echo","version":"0"}}}}"#
            );
            let mut response = answer(id, &result);
            response
                .headers_mut()
                .insert("mcp-session-id", header::HeaderValue::from_static("bench"));
            response
        }
        _ => {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"method not found"}}}}"#
            );
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    eprintln!(
        "bench-http-echo: serving url=http://{}/mcp",
        listener.local_addr()?
    );
    let app = Router::new().route("/mcp", post(mcp));
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        served = axum::serve(listener, app) => served.context("serving HTTP")?,
        () = stdin_closed => {}
    }
    Ok(())
}
