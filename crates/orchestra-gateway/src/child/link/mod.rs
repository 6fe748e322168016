//! A child's transport as its supervisor (`task.rs`) sees it: two byte streams carrying
//! JSON-RPC lines — what the [`Connection`](super::Connection) writes and what it reads — a
//! way to learn that the transport ended, and a way to stop it.
//!
//! A process gives its stdin and stdout ([`stdio`]). A remote server is put behind a pair of
//! anonymous pipes by a task that speaks HTTP to it ([`remote`]): the Connection — the hot
//! path, with its handshake, probes, timeouts, cancellation and failover — is then the same
//! code for both, and the link task's end plays the part of the process's exit.

pub(crate) mod http;
pub(crate) mod legacy;
pub(crate) mod remote;
pub(crate) mod sse;
pub(crate) mod stdio;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::unix::pipe;

use super::ChildShared;
use crate::containment::watchdog::Watchdog;

/// One life of a child's transport.
pub(crate) enum Link {
    Process(stdio::ProcessLink),
    Remote(remote::RemoteLink),
}

/// A link just opened, with the Connection's two ends.
pub(crate) struct Opened {
    pub link: Link,
    /// Where the Connection writes its lines (the child's stdin).
    pub input: pipe::Sender,
    /// Where it reads the child's lines (the child's stdout).
    pub output: pipe::Receiver,
}

/// Why a link could not be opened.
pub(crate) enum OpenError {
    /// Never possible as configured (the command is missing): not retried.
    Misconfigured(String),
    /// This attempt failed; the supervisor tries again after backoff.
    Failed(String),
}

impl Link {
    /// Starts the process, or starts the task that connects to the remote server (the
    /// connection itself is made with the first message, `initialize`, under the handshake's
    /// deadline).
    pub async fn open(
        shared: &Arc<ChildShared>,
        watchdog: Option<&Watchdog>,
    ) -> Result<Opened, OpenError> {
        match &shared.spec.remote {
            Some(remote) => remote::open(shared, remote),
            None => stdio::open(shared, watchdog).await,
        }
    }

    /// The process id, for a process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Link::Process(p) => Some(p.pid()),
            Link::Remote(_) => None,
        }
    }

    /// Why the link ended: an exit status, or what became of the remote connection. Waits
    /// until it ends; cancel-safe.
    pub async fn ended(&mut self) -> String {
        match self {
            Link::Process(p) => p.ended().await,
            Link::Remote(r) => r.ended().await,
        }
    }

    /// "exited unexpectedly (…)" for a process, "lost (…)" for a remote server.
    pub fn died(&self, why: &str) -> String {
        match self {
            Link::Process(_) => format!("exited unexpectedly ({why})"),
            Link::Remote(_) => format!("connection lost ({why})"),
        }
    }

    /// What the handshake failing because the link ended is called.
    pub fn ended_during_handshake(&self, why: &str) -> String {
        match self {
            Link::Process(_) => format!("exited during the handshake ({why})"),
            Link::Remote(_) => format!("handshake failed ({why})"),
        }
    }

    /// Stops it after the Connection closed its input: see [`stdio::ProcessLink::stop`] and
    /// [`remote::RemoteLink::stop`].
    pub async fn stop(&mut self, name: &str, graceful: bool, grace: Duration) {
        match self {
            Link::Process(p) => p.stop(name, graceful, grace).await,
            Link::Remote(r) => r.stop(graceful).await,
        }
    }
}
