//! What state a child server is in, and since when.

use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

/// Lifecycle of one configured server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Spawned; handshake and first listing under way.
    Starting,
    /// Handshake and a fresh tools/list succeeded; its tools are exposed.
    Ready,
    /// Could not start, or died; `reason` says why.
    Failed,
    /// Shut down by the gateway.
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }

    /// Whether start-up has finished one way or the other.
    pub fn is_settled(self) -> bool {
        !matches!(self, State::Starting)
    }
}

/// A snapshot of one server's status, published through a `watch` channel.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    /// Wall-clock time of the last state change (for reports).
    pub since: SystemTime,
    /// Monotonic time of the last state change (for durations).
    pub since_instant: Instant,
    /// Why the server is not ready (failed/stopped).
    pub reason: Option<String>,
    pub pid: Option<u32>,
    /// When the current process was started.
    pub started: Option<Instant>,
    /// How the last process ended (`exit code 1`, `signal 9 (SIGKILL)`).
    pub last_exit: Option<String>,
    /// Protocol version the child negotiated.
    pub protocol_version: Option<String>,
    /// The child's `serverInfo`.
    pub server_info: Option<Value>,
}

impl Status {
    pub fn starting() -> Self {
        Self {
            state: State::Starting,
            since: SystemTime::now(),
            since_instant: Instant::now(),
            reason: None,
            pid: None,
            started: None,
            last_exit: None,
            protocol_version: None,
            server_info: None,
        }
    }

    /// Moves to `state`, stamping the time of change.
    pub fn enter(&mut self, state: State, reason: Option<String>) {
        self.state = state;
        self.reason = reason;
        self.since = SystemTime::now();
        self.since_instant = Instant::now();
    }
}
