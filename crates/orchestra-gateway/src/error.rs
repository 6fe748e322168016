//! The gateway's errors, and the one place where they become JSON-RPC errors on the wire.
//!
//! Our own codes sit in -31xxx: outside the JSON-RPC reserved block and away from -32000/-32001,
//! which TypeScript SDK clients read as "connection closed" / "request timeout".

use std::time::Duration;

use serde_json::{json, Value};

/// JSON-RPC error codes used by the gateway.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP's "resource not found".
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// The owning server is not up (starting, failed, stopped).
    pub const SERVER_UNAVAILABLE: i64 = -31001;
    /// The owning server exited while the request was in flight.
    pub const SERVER_EXITED: i64 = -31002;
    /// The call did not finish within its deadline; the child was sent `notifications/cancelled`.
    pub const TIMEOUT: i64 = -31003;
    /// The server's answer is larger than its `max_message_size`: it was not read.
    pub const RESPONSE_TOO_LARGE: i64 = -31005;
    /// The server's input queue is full: it is not reading what we send.
    pub const SERVER_OVERLOADED: i64 = -31006;
    /// The server answered with something that is not a valid JSON-RPC response.
    pub const INVALID_RESPONSE: i64 = -31007;
    /// To a child: the client session its request was sent to closed before answering.
    pub const CLIENT_CLOSED: i64 = -31008;
    /// To a child: the client did not answer its request in time. The one use of -32001: the
    /// child's SDK reads it as its own request timing out (TypeScript `RequestTimeout`), which
    /// is what happened; the client was sent `notifications/cancelled`.
    pub const CLIENT_TIMEOUT: i64 = -32001;
}

/// Why a request could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("method not found: {0}")]
    MethodNotFound(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    #[error("unknown tool \"{name}\"{}", hint(suggestions))]
    UnknownTool {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("unknown prompt \"{name}\"{}", hint(suggestions))]
    UnknownPrompt {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("unknown resource \"{uri}\"{}", hint(suggestions))]
    UnknownResource {
        uri: String,
        suggestions: Vec<String>,
    },
    #[error("server \"{server}\" is {state}: {reason}")]
    ServerUnavailable {
        server: String,
        state: &'static str,
        reason: String,
    },
    /// A prompt or resource whose server is down with nothing to stand in: why, and what to
    /// use instead (`guidance.rs`).
    #[error("{text}")]
    Down { text: String, guidance: Value },
    #[error(
        "server \"{server}\" exited ({status}) while the request was in flight{}{}",
        if *delivered { "" } else { " (it had not reached the server; safe to retry)" },
        fallback_hint(fallback)
    )]
    ServerExited {
        server: String,
        status: String,
        delivered: bool,
        fallback: Option<String>,
    },
    #[error("call to \"{tool}\" timed out after {:?}; server \"{server}\" was sent notifications/cancelled", after)]
    Timeout {
        server: String,
        tool: String,
        after: Duration,
    },
    /// Only the child can cause this: while the client is behind, the gateway takes in no more
    /// of its calls, so a full queue means the child reads slower than its calls arrive.
    #[error("server \"{server}\" is not keeping up with its input (queue full: it reads calls slower than they arrive); try again shortly")]
    Overloaded { server: String },
    #[error("server \"{server}\" answered \"{tool}\" with a message of {size} bytes, over its max_message_size of {limit} bytes; the answer was dropped")]
    ResponseTooLarge {
        server: String,
        tool: String,
        size: usize,
        limit: usize,
    },
    #[error("server \"{server}\" sent an invalid response to \"{tool}\": {reason}")]
    InvalidResponse {
        server: String,
        tool: String,
        reason: &'static str,
    },
    /// A child's request to a client (sampling, elicitation, roots) that no session can answer.
    #[error("no connected client can answer {method}: {why}")]
    NoClientFor { method: String, why: String },
    #[error(
        "the client did not answer {method} within {after:?}; it was sent notifications/cancelled"
    )]
    ClientTimeout { method: String, after: Duration },
    #[error("the client session {session} closed before answering {method}")]
    ClientClosed { method: String, session: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The JSON-RPC code this error travels with.
    pub fn code(&self) -> i64 {
        match self {
            GatewayError::Parse(_) => code::PARSE_ERROR,
            GatewayError::InvalidRequest(_) => code::INVALID_REQUEST,
            GatewayError::MethodNotFound(_) | GatewayError::NoClientFor { .. } => {
                code::METHOD_NOT_FOUND
            }
            GatewayError::InvalidParams(_)
            | GatewayError::UnknownTool { .. }
            | GatewayError::UnknownPrompt { .. } => code::INVALID_PARAMS,
            GatewayError::UnknownResource { .. } => code::RESOURCE_NOT_FOUND,
            GatewayError::ServerUnavailable { .. } | GatewayError::Down { .. } => {
                code::SERVER_UNAVAILABLE
            }
            GatewayError::ServerExited { .. } => code::SERVER_EXITED,
            GatewayError::Timeout { .. } => code::TIMEOUT,
            GatewayError::Overloaded { .. } => code::SERVER_OVERLOADED,
            GatewayError::ResponseTooLarge { .. } => code::RESPONSE_TOO_LARGE,
            GatewayError::InvalidResponse { .. } => code::INVALID_RESPONSE,
            GatewayError::ClientTimeout { .. } => code::CLIENT_TIMEOUT,
            GatewayError::ClientClosed { .. } => code::CLIENT_CLOSED,
            GatewayError::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// Machine-readable detail for the `data` member.
    fn data(&self) -> Option<Value> {
        match self {
            GatewayError::UnknownTool { name, suggestions } => {
                Some(json!({ "tool": name, "suggestions": suggestions }))
            }
            GatewayError::UnknownPrompt { name, suggestions } => {
                Some(json!({ "prompt": name, "suggestions": suggestions }))
            }
            GatewayError::UnknownResource { uri, suggestions } => {
                Some(json!({ "uri": uri, "suggestions": suggestions }))
            }
            GatewayError::ServerUnavailable {
                server,
                state,
                reason,
            } => Some(
                json!({ "server": server, "state": state, "reason": reason, "delivered": false, "retryable": true }),
            ),
            GatewayError::Down { guidance, .. } => Some(guidance.clone()),
            GatewayError::ServerExited {
                server,
                status,
                delivered,
                fallback,
            } => Some(json!({
                "server": server, "exit": status, "delivered": delivered,
                "retryable": !delivered, "fallback": fallback,
            })),
            GatewayError::Timeout {
                server,
                tool,
                after,
            } => Some(json!({
                "server": server, "tool": tool, "timeout_ms": after.as_millis() as u64,
                "delivered": true, "retryable": false
            })),
            GatewayError::Overloaded { server } => {
                Some(json!({ "server": server, "delivered": false, "retryable": true }))
            }
            GatewayError::ResponseTooLarge {
                server,
                tool,
                size,
                limit,
            } => Some(json!({
                "server": server, "tool": tool, "size": size, "limit": limit,
                "delivered": true, "retryable": false,
            })),
            GatewayError::InvalidResponse {
                server,
                tool,
                reason,
            } => Some(json!({
                "server": server, "tool": tool, "reason": reason,
                "delivered": true, "retryable": false,
            })),
            _ => None,
        }
    }

    /// The serialized JSON-RPC `error` object: the single conversion to the wire.
    pub fn to_wire(&self) -> String {
        let mut obj = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(data) = self.data() {
            obj["data"] = data;
        }
        obj.to_string()
    }
}

fn fallback_hint(fallback: &Option<String>) -> String {
    match fallback {
        Some(f) => format!("; its fallback \"{f}\" is up"),
        None => String::new(),
    }
}

fn hint(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(
            " (did you mean {}?)",
            suggestions
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tool_names_the_tool_and_close_matches() {
        let e = GatewayError::UnknownTool {
            name: "fils__read".into(),
            suggestions: vec!["files__read".into()],
        };
        let wire: Value = serde_json::from_str(&e.to_wire()).unwrap();
        assert_eq!(wire["code"], -32602);
        assert_eq!(
            wire["message"],
            "unknown tool \"fils__read\" (did you mean \"files__read\"?)"
        );
        assert_eq!(wire["data"]["suggestions"][0], "files__read");
    }
}
