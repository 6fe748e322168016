//! The legacy HTTP+SSE transport (MCP 2024-11-05), kept by the spec for backwards
//! compatibility: a GET opens the server's event stream, whose first `endpoint` event names
//! where to POST messages; every answer and notification comes on that stream. The stream
//! ending ends the link.

use futures_util::StreamExt;

use super::remote::{deliver, describe, next_line, refusal, Lines, Out, Peer};
use super::sse;
use crate::jsonrpc::Envelope;

/// Opens the stream, waits for its endpoint, sends `first` (the `initialize` request) and
/// then every line the Connection writes. Returns why it ended.
pub(super) async fn run(peer: &Peer, first: Vec<u8>, lines: &mut Lines, out: &Out) -> String {
    let resp = peer
        .request(reqwest::Method::GET, &peer.url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await;
    let resp = match resp {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return format!("the server refused the event stream (HTTP {})", r.status()),
        Err(e) => return describe(&e),
    };
    let mut body = resp.bytes_stream();
    let mut parser = sse::Parser::new(peer.max_message);
    let mut events = Vec::new();
    let endpoint = 'found: loop {
        match body.next().await {
            Some(Ok(chunk)) => parser.push(&chunk, &mut events),
            Some(Err(e)) => return describe(&e),
            None => return "the event stream ended before naming its endpoint".into(),
        }
        for e in events.drain(..) {
            if e.kind == "endpoint" {
                break 'found e.data;
            }
        }
    };
    let endpoint = match endpoint_url(peer, &endpoint) {
        Ok(u) => u,
        Err(why) => return why,
    };
    tracing::debug!(server = %peer.server, "legacy HTTP+SSE endpoint received");
    peer.connected("sse");
    // Everything from now on arrives on the stream, read beside the POSTs.
    let stream = async {
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return describe(&e),
            };
            parser.push(&chunk, &mut events);
            for e in events.drain(..).filter(sse::Event::is_message) {
                deliver(out, e.data.as_bytes()).await;
            }
        }
        "the server ended its event stream".to_owned()
    };
    let posts = async {
        let mut line = Some(first);
        loop {
            let Some(message) = line.take() else {
                return "closed by the gateway".to_owned();
            };
            // One at a time, in order: the answers come on the stream anyway.
            let resp = match peer.post(&endpoint, &message).send().await {
                Ok(r) => r,
                Err(e) => return describe(&e),
            };
            if !resp.status().is_success() {
                let why = format!("HTTP {}", resp.status());
                match Envelope::parse(&message) {
                    Ok(env) if env.id.is_some() && env.method.is_some() => {
                        let id = env.id.map(|i| i.get().to_owned()).unwrap_or_default();
                        let _ = out.send(refusal(&id, &why)).await;
                    }
                    _ => {
                        tracing::warn!(server = %peer.server, %why, "the remote server refused a message")
                    }
                }
            }
            line = next_line(peer, lines).await;
        }
    };
    tokio::select! {
        why = stream => why,
        why = posts => why,
    }
}

/// The endpoint, resolved against the stream's URL; it must be on the same origin (a server
/// cannot send the gateway's headers and token elsewhere).
fn endpoint_url(peer: &Peer, endpoint: &str) -> Result<reqwest::Url, String> {
    let url = peer
        .url
        .join(endpoint.trim())
        .map_err(|e| format!("the server's endpoint is not a URL: {e}"))?;
    if url.origin() != peer.url.origin() {
        return Err("the server named an endpoint on another origin; refused".into());
    }
    Ok(url)
}
