//! What state a child server is in, and since when.

use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

/// Supervision state of one configured server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// First start since the gateway started: spawned, handshake under way.
    Starting,
    /// Handshake and a fresh tools/list succeeded; its tools are exposed.
    Ready,
    /// Alive but not answering pings; its tools are withdrawn until it answers again.
    Unhealthy,
    /// Died (or failed to start); waiting out its backoff or re-attempting the handshake.
    Restarting,
    /// Crash loop: too many restarts in a short window. Calls fail fast; a slow re-probe
    /// tries again later.
    Failed,
    /// Cannot be started at all (command missing or not executable): not retried.
    Misconfigured,
    /// Shut down by the gateway.
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Unhealthy => "unhealthy",
            State::Restarting => "restarting",
            State::Failed => "failed",
            State::Misconfigured => "misconfigured",
            State::Stopped => "stopped",
        }
    }

    /// Whether the first start has finished one way or the other.
    pub fn is_settled(self) -> bool {
        !matches!(self, State::Starting)
    }

    /// Whether calls may be sent to it.
    pub fn is_up(self) -> bool {
        matches!(self, State::Ready)
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
    /// Why the server is not ready.
    pub reason: Option<String>,
    pub pid: Option<u32>,
    /// How the gateway speaks to it: "stdio" for a process; for a remote server the transport
    /// in use once connected ("streamable_http", or "sse" — configured or fallen back to).
    pub transport: Option<&'static str>,
    /// When the current process was started.
    pub started: Option<Instant>,
    /// How the last process ended (`exit code 1`, `signal 9 (SIGKILL)`).
    pub last_exit: Option<String>,
    /// Protocol version the child negotiated.
    pub protocol_version: Option<String>,
    /// The child's `serverInfo`.
    pub server_info: Option<Value>,
    /// The capabilities the child declared at `initialize`.
    pub capabilities: Option<Value>,
    /// Restarts since the gateway started.
    pub restarts: u32,
    /// When the next start attempt is due (restarting, failed).
    pub next_attempt: Option<SystemTime>,
    /// Consecutive unanswered pings.
    pub probe_failures: u32,
}

impl Status {
    pub fn starting() -> Self {
        Self {
            state: State::Starting,
            since: SystemTime::now(),
            since_instant: Instant::now(),
            reason: None,
            pid: None,
            transport: None,
            started: None,
            last_exit: None,
            protocol_version: None,
            server_info: None,
            capabilities: None,
            restarts: 0,
            next_attempt: None,
            probe_failures: 0,
        }
    }

    /// Moves to `state`, stamping the time of change.
    pub fn enter(&mut self, state: State, reason: Option<String>) {
        self.state = state;
        self.reason = reason;
        self.since = SystemTime::now();
        self.since_instant = Instant::now();
        if state != State::Restarting && state != State::Failed {
            self.next_attempt = None;
        }
    }
}
