//! What the orchestrator needs of the gateway it lives in: the live view of servers and
//! domains, and the journal of the tool calls a session made. Implemented by the gateway (the
//! binary crate); tests implement it with a fake. Nothing here knows a process or a runtime.

use serde::{Deserialize, Serialize};

/// The gateway, as the orchestrator sees it.
pub trait Environment: Send + Sync {
    /// Live view, taken now.
    fn snapshot(&self) -> Snapshot;
    /// Tool calls `session` made through the gateway since `since_ms` (unix ms), oldest first.
    fn calls(&self, session: &str, since_ms: u64) -> Vec<ToolCall>;
    /// Start/stop journaling `session`'s tool calls (on while it executes any subtask).
    fn watch(&self, session: &str, on: bool);
    /// Whether `session` is connected now. A subtask left in progress by a session that is
    /// gone (a gateway restart ends every session) may be taken over by another; one being
    /// executed by a live session may not. The default, for a gateway that cannot tell,
    /// treats every other session as gone.
    fn is_live(&self, session: &str) -> bool {
        let _ = session;
        false
    }
}

/// Every configured server and domain, as they are at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub servers: Vec<ServerView>,
    pub domains: Vec<DomainView>,
    /// Between a server's name and its tool's in exposed tool names (`files__read_file`).
    pub separator: String,
}

/// One configured server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    pub name: String,
    /// Calls can reach it now.
    pub up: bool,
    /// Its supervision state (`ready`, `restarting`, `failed`, …).
    pub state: String,
    /// Why it is not up, when it is not.
    pub reason: Option<String>,
    /// Exposed tool names the client can call right now (e.g. "files__read_file").
    pub tools: Vec<String>,
    /// The server its calls go to while it is down (`server_alternatives`).
    pub fallback: Option<String>,
}

/// One entry of `domain_boundaries`, with its live mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainView {
    pub name: String,
    /// The server the domain belongs to.
    pub owner: String,
    /// "normal" | "degraded" | "lost"
    pub mode: String,
    /// The server serving the domain now: the owner when normal, its fallback when degraded.
    pub serving: Option<String>,
    pub degraded_capabilities: Vec<String>,
    pub lost_capabilities: Vec<String>,
}

/// One tool call a session made through the gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The exposed name the client called.
    pub tool: String,
    /// The server that answered (None when none could).
    pub server: Option<String>,
    /// "ok" | "tool_error" | "error"
    pub outcome: String,
    /// The fallback the call went to instead of the tool's own server.
    pub failover_to: Option<String>,
    /// When it was made (unix ms).
    pub at_ms: u64,
    pub duration_ms: u64,
}

impl Snapshot {
    pub fn server(&self, name: &str) -> Option<&ServerView> {
        self.servers.iter().find(|s| s.name == name)
    }

    pub fn domain(&self, name: &str) -> Option<&DomainView> {
        self.domains.iter().find(|d| d.name == name)
    }
}

impl DomainView {
    pub fn is_normal(&self) -> bool {
        self.mode == "normal"
    }
}
