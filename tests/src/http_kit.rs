//! Reaching the gateway's Streamable HTTP front from a test: the address it bound (read from
//! its log, so tests can ask for port 0 and never race for a free port).

use std::net::SocketAddr;
use std::time::Duration;

use crate::{within, Gateway, STEP};

/// The address the gateway's HTTP front bound (`serve --listen 127.0.0.1:0`), from its log.
pub async fn bound_address(gw: &Gateway) -> SocketAddr {
    within(STEP, "the HTTP front's address in the log", async {
        loop {
            let logs = gw.logs();
            if let Some(at) = logs.find("url=http://") {
                let rest = &logs[at + "url=http://".len()..];
                if let Some(end) = rest.find("/mcp") {
                    if let Ok(addr) = rest[..end].parse::<SocketAddr>() {
                        return addr;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}
