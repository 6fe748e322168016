//! The Streamable HTTP front: MCP at `/mcp` (POST answered as JSON or SSE, GET for the
//! session's own stream, DELETE ending it), `/healthz` and `/readyz`. Every HTTP session is a
//! [`super::session::Session`] on the same [`Gateway`] as the stdio session: one set of
//! children for all clients.
//!
//! Bounded by design: a body limit (413), a session limit (503), an idle timeout, and a
//! bounded queue per response stream that is closed, never waited on, when its client falls
//! behind (`sink::stream`) — one slow or vanished client costs bounded memory and never
//! delays another session. Slow senders are cut too: headers within `header_timeout`
//! (`conn.rs`), a body within `body_timeout` (`mcp.rs`).
//!
//! Who may call: `auth.rs` (bearer tokens, JWTs against `jwks.rs`), advertised by
//! `metadata.rs` (RFC 9728); SSE resumption: `replay.rs`.

mod auth;
mod conn;
mod guard;
mod jwks;
mod mcp;
mod metadata;
mod options;
mod probes;
mod replay;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

pub use options::{HttpOptions, OptionsError};

use crate::hub::Gateway;

/// What the handlers share.
struct Front {
    gw: Gateway,
    opts: HttpOptions,
    guard: guard::Guard,
    auth: auth::Auth,
    table: table::Table,
}

/// A bound HTTP front; [`HttpFront::run`] serves it until the gateway shuts down.
pub struct HttpFront {
    listener: tokio::net::TcpListener,
    front: Arc<Front>,
}

impl HttpFront {
    /// Binds `opts.listen` (after [`HttpOptions::check`], which the caller runs with the
    /// configured authentication).
    pub async fn bind(gw: &Gateway, opts: HttpOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        // The guard must know the real port when 0 was asked for.
        let mut opts = opts;
        opts.listen = listener.local_addr()?;
        let front = Arc::new(Front {
            gw: gw.clone(),
            guard: guard::Guard::new(&opts),
            auth: auth::Auth::new(&opts.auth),
            table: table::Table::new(opts.max_sessions),
            opts,
        });
        Ok(Self { listener, front })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.front.opts.listen
    }

    /// Serves until the gateway's shutdown token fires; then ends every session (their
    /// streams close) and waits for the requests in flight.
    pub async fn run(self) {
        let front = self.front;
        let router = Router::new()
            .route(
                "/mcp",
                get(mcp::get_stream).post(mcp::post).delete(mcp::delete),
            )
            .route("/healthz", get(probes::healthz))
            .route("/readyz", get(probes::readyz))
            .route(metadata::PATH, get(metadata::serve))
            .route(&format!("{}/mcp", metadata::PATH), get(metadata::serve))
            .with_state(front.clone());
        let sweeper = tokio::spawn(sweep(front.clone()));
        let warm = front.clone();
        let warm_up = tokio::spawn(async move { warm.auth.warm_up().await });
        let token = front.gw.shutdown_token();
        let stopping = front.clone();
        conn::serve(
            self.listener,
            router,
            front.opts.header_timeout,
            async move {
                token.cancelled().await;
                // Open GET streams end with their sessions, so the connections can finish.
                stopping.table.clear();
            },
        )
        .await;
        sweeper.abort();
        warm_up.abort();
    }
}

/// Ends idle sessions.
async fn sweep(front: Arc<Front>) {
    let idle = front.opts.idle_timeout;
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ended = front.table.sweep(idle);
        if ended > 0 {
            tracing::info!(ended, ?idle, "ended idle HTTP sessions");
        }
    }
}
