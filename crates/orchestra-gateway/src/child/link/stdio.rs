//! A child process as a link: its stdin and stdout carry the JSON-RPC lines, its exit ends
//! the link, and stopping it means stopping everything it started (its group, cgroup and
//! tracked descendants).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::process::Child;

use super::{OpenError, Opened};
use crate::child::process::{self, describe, SpawnError};
use crate::child::ChildShared;
use crate::containment::watchdog::Watchdog;
use crate::containment::Contained;

/// How long a child may take to exit on stdin EOF before SIGTERM (capped by the grace).
const EOF_GRACE: Duration = Duration::from_secs(2);

/// One life of a child process.
pub(crate) struct ProcessLink {
    child: Child,
    pid: u32,
    contained: Arc<Contained>,
}

/// Spawns the child, drains its stderr into the tail, and hands over its stdin and stdout.
pub(crate) async fn open(
    shared: &Arc<ChildShared>,
    watchdog: Option<&Watchdog>,
) -> Result<Opened, OpenError> {
    let spawned = match process::spawn(&shared.spec, watchdog) {
        Ok(s) => s,
        Err(e @ (SpawnError::NotFound(_) | SpawnError::NotExecutable(_))) => {
            return Err(OpenError::Misconfigured(e.to_string()))
        }
        Err(e) => return Err(OpenError::Failed(e.to_string())),
    };
    shared.stderr.clear();
    shared.status.send_modify(|s| s.transport = Some("stdio"));
    let drain_shared = shared.clone();
    let stderr = spawned.stderr;
    tokio::spawn(async move {
        super::super::stderr::drain(&drain_shared.name, stderr, &drain_shared.stderr).await
    });
    let pipes = (|| {
        Ok::<_, std::io::Error>((
            pipe::Sender::from_owned_fd(spawned.stdin.into_owned_fd()?)?,
            pipe::Receiver::from_owned_fd(spawned.stdout.into_owned_fd()?)?,
        ))
    })();
    let link = ProcessLink {
        child: spawned.child,
        pid: spawned.pid,
        contained: spawned.contained,
    };
    match pipes {
        Ok((input, output)) => Ok(Opened {
            link: super::Link::Process(link),
            input,
            output,
        }),
        Err(e) => {
            let mut link = link;
            link.contained.kill_all();
            let _ = link.child.wait().await;
            link.contained.release().await;
            Err(OpenError::Failed(format!("cannot set up its stdio: {e}")))
        }
    }
}

impl ProcessLink {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How the process ended (cancel-safe: polled again after a timeout).
    pub async fn ended(&mut self) -> String {
        self.child
            .wait()
            .await
            .map(describe)
            .unwrap_or_else(|e| e.to_string())
    }

    /// Stops the child and everything it started. When `graceful`: wait for it to exit on
    /// stdin EOF (the caller closed it), then SIGTERM, then SIGKILL, each after a grace period;
    /// otherwise (it died, hangs or broke the protocol) kill at once. Then reap, and kill what
    /// is left: the group's stragglers (npx's node, a shell's children) and descendants that
    /// left the group (its cgroup, tracked processes; see `containment`).
    pub async fn stop(&mut self, name: &str, graceful: bool, grace: Duration) {
        let (pgid, all) = (self.contained.pgid(), &*self.contained);
        if !graceful {
            // Dead, hung or broken: nothing it started gets a grace period either.
            all.kill_all();
        }
        let mut exited = wait_for(&mut self.child, EOF_GRACE.min(grace)).await;
        if !exited {
            tracing::info!(server = %name, pgid, "child ignored stdin EOF; sending SIGTERM to its processes");
            all.signal(Signal::SIGTERM);
            exited = wait_for(&mut self.child, grace).await;
        }
        if !exited {
            tracing::warn!(server = %name, pgid, "child ignored SIGTERM; killing its processes");
            all.kill_all();
            let _ = self.child.wait().await;
        }
        // The leader is gone; what it started may not be. Give it a moment, then kill it.
        let until = Instant::now() + Duration::from_millis(500);
        while !all.is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !all.is_empty() {
            tracing::info!(server = %name, pgid, "killing processes the child left behind");
            all.kill_all();
        }
        all.release().await;
    }
}

async fn wait_for(child: &mut Child, d: Duration) -> bool {
    matches!(tokio::time::timeout(d, child.wait()).await, Ok(Ok(_)))
}
