//! What a child needs of the client side of the gateway: where its log messages, resource
//! updates and requests to a client go, and what the sessions asked of it (a log level,
//! resource subscriptions). A trait, implemented above this layer (`upstream.rs`, over the
//! session registry) and handed in by the composition root, so that the child layer never
//! depends on sessions or the front.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Connection;
use crate::error::GatewayError;
use crate::jsonrpc::Raw;
use crate::logging::Level;

pub trait Clients: Send + Sync {
    /// A child's `notifications/message` (params raw).
    fn log(&self, server: &str, params: &str);

    /// A child's `notifications/resources/updated` (params raw).
    fn resource_updated(&self, server: usize, params: &str);

    /// A child's request to a client (`sampling/createMessage`, …) with the child's id (raw):
    /// `Ok` when it was passed on (the answer comes later), else the child's answer, now.
    fn request(
        &self,
        child: &Arc<Connection>,
        server: &Arc<str>,
        child_id: &str,
        method: &str,
        params: Option<Raw<'_>>,
        timeout: Duration,
    ) -> Result<(), GatewayError>;

    /// The child's `notifications/cancelled` for one of its own requests to a client.
    fn cancelled_by_child(&self, child: &Connection, params: Option<Raw<'_>>) -> bool;

    /// The child's `notifications/elicitation/complete`.
    fn elicitation_complete(&self, server: &str, params: Option<Raw<'_>>) -> bool;

    /// The child's session ended: its requests to clients are withdrawn.
    fn child_closed(&self, child: &Connection, why: &str);

    /// The most verbose level any session asked for.
    fn wanted_log_level(&self) -> Option<Level>;

    /// The URIs of `server` sessions are subscribed to (made again when it restarts).
    fn subscribed_uris(&self, server: usize) -> Vec<String>;
}

/// The client capabilities children are initialized with: exactly what the gateway passes on
/// (as the 2025-11-25 schema spells them). Every child is told, whatever sessions exist then:
/// sessions come and go during a child's life, and a request no session can answer is refused
/// at once.
pub fn capabilities() -> Value {
    serde_json::json!({
        "sampling": {},
        "elicitation": { "form": {}, "url": {} },
        "roots": { "listChanged": true },
    })
}
