//! The task that owns one child's process: start, handshake, serve, notice death, stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{ChildSignal, Connection};
use super::process::{self, describe, group_exists, signal_group};
use super::state::State;
use super::ChildShared;
use crate::error::GatewayError;
use crate::front::FrontSink;
use crate::watchdog::Watchdog;

/// The protocol version the gateway offers children (the initialize-handshake era).
pub const CHILD_PROTOCOL_VERSION: &str = "2025-11-25";
/// How long a child may take to exit on stdin EOF before SIGTERM (capped by the grace).
const EOF_GRACE: Duration = Duration::from_secs(2);
/// Upper bound on `tools/list` pages from one child (a broken cursor must not loop forever).
const MAX_PAGES: usize = 1000;

/// What the owning task needs from the gateway.
#[derive(Clone)]
pub(crate) struct TaskContext {
    pub front: FrontSink,
    pub events: Events,
    pub shutdown: CancellationToken,
    pub watchdog: Option<Arc<Watchdog>>,
    pub grace: Duration,
}

/// What the gateway hears from child tasks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChildEvent {
    /// The set of tools a server exposes changed (ready, died, relisted).
    ToolsChanged,
}

/// Tells the gateway about changes; bumps the catalog generation first, so that the next
/// catalog read anywhere sees them even before the event is processed.
#[derive(Clone)]
pub(crate) struct Events {
    tx: mpsc::UnboundedSender<ChildEvent>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl Events {
    pub fn new(
        tx: mpsc::UnboundedSender<ChildEvent>,
        generation: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self { tx, generation }
    }

    pub fn tools_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.tx.send(ChildEvent::ToolsChanged);
    }
}

/// Runs one child for the gateway's whole life.
pub(crate) async fn run(shared: Arc<ChildShared>, cx: TaskContext) {
    let name = shared.name.clone();
    let mut spawned = match process::spawn(&shared.spec) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(server = %name, error = %e, "cannot start child");
            shared
                .status
                .send_modify(|s| s.enter(State::Failed, Some(e.to_string())));
            cx.shutdown.cancelled().await;
            shared
                .status
                .send_modify(|s| s.enter(State::Stopped, Some("gateway shut down".into())));
            return;
        }
    };
    let pid = spawned.pid;
    if let Some(w) = &cx.watchdog {
        w.guard(pid);
    }
    tracing::info!(server = %name, pid, command = %shared.spec.command, "child started");
    shared.stderr.clear();
    shared.status.send_modify(|s| {
        s.pid = Some(pid);
        s.started = Some(Instant::now());
    });
    let drain_shared = shared.clone();
    let stderr = spawned.stderr;
    tokio::spawn(async move {
        super::stderr::drain(&drain_shared.name, stderr, &drain_shared.stderr).await
    });

    let stop_writing = CancellationToken::new();
    let (signals_tx, mut signals) = mpsc::unbounded_channel();
    let (conn, tasks) = Connection::start(
        name.clone(),
        spawned.stdin,
        spawned.stdout,
        shared.stats.clone(),
        cx.front.clone(),
        signals_tx,
        stop_writing.clone(),
    );
    *shared.conn.write().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
    let mut reader = tasks.reader;
    let child = &mut spawned.child;

    // Handshake, racing the child's exit and the gateway's shutdown.
    let timeout = shared.spec.startup_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout(timeout, handshake(&shared, &conn)) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("no answer to the handshake within {}", orchestra_config::duration::format(timeout))),
        },
        status = child.wait() => {
            let exit = status.map(describe).unwrap_or_else(|e| e.to_string());
            shared.status.send_modify(|s| s.last_exit = Some(exit.clone()));
            Err(with_stderr(&shared, format!("exited during the handshake ({exit})")))
        }
        _ = cx.shutdown.cancelled() => Err("the gateway shut down during start-up".into()),
    };
    if let Err(reason) = handshake {
        tracing::error!(server = %name, %reason, "child failed to start");
        let why = GatewayError::ServerUnavailable {
            server: name.to_string(),
            state: "failed",
            reason: reason.clone(),
        };
        stop(&shared, &cx, &conn, &stop_writing, child, pid, &why).await;
        shared
            .status
            .send_modify(|s| s.enter(State::Failed, Some(reason)));
        cx.shutdown.cancelled().await;
        shared
            .status
            .send_modify(|s| s.enter(State::Stopped, Some("gateway shut down".into())));
        return;
    }
    shared.status.send_modify(|s| s.enter(State::Ready, None));
    tracing::info!(server = %name, tools = shared.tools.lock().map(|t| t.len()).unwrap_or(0), "child ready");
    cx.events.tools_changed();

    // Serve until the child dies or the gateway stops.
    let death = loop {
        tokio::select! {
            _ = cx.shutdown.cancelled() => break None,
            Some(ChildSignal::ToolsChanged) = signals.recv() => {
                match list_tools(&shared, &conn, shared.spec.call_timeout).await {
                    Ok(()) => { cx.events.tools_changed(); }
                    Err(e) => tracing::warn!(server = %name, error = %e, "relisting tools after list_changed failed"),
                }
            }
            status = child.wait() => {
                break Some(status.map(describe).unwrap_or_else(|e| e.to_string()));
            }
            _ = &mut reader => {
                // stdout closed: the process is exiting, or left its stdout behind. Either way
                // the session is over; give the exit status a moment to arrive.
                let exit = match tokio::time::timeout(Duration::from_millis(100), child.wait()).await {
                    Ok(status) => status.map(describe).unwrap_or_else(|e| e.to_string()),
                    Err(_) => "closed its stdout".to_owned(),
                };
                break Some(exit);
            }
        }
    };

    match death {
        Some(exit) => {
            tracing::error!(server = %name, %exit, "child died");
            let why = GatewayError::ServerExited {
                server: name.to_string(),
                status: exit.clone(),
                delivered: true,
            };
            conn.close(&why).await;
            clear_tools(&shared);
            cx.events.tools_changed();
            stop(&shared, &cx, &conn, &stop_writing, child, pid, &why).await;
            let reason = with_stderr(&shared, format!("exited unexpectedly ({exit})"));
            shared.status.send_modify(|s| {
                s.last_exit = Some(exit);
                s.enter(State::Failed, Some(reason));
            });
            cx.shutdown.cancelled().await;
            shared
                .status
                .send_modify(|s| s.enter(State::Stopped, Some("gateway shut down".into())));
        }
        None => {
            let why = GatewayError::ServerUnavailable {
                server: name.to_string(),
                state: "stopping",
                reason: "the gateway is shutting down".into(),
            };
            clear_tools(&shared);
            stop(&shared, &cx, &conn, &stop_writing, child, pid, &why).await;
            shared
                .status
                .send_modify(|s| s.enter(State::Stopped, Some("gateway shut down".into())));
        }
    }
}

/// `initialize`, `notifications/initialized`, then a complete `tools/list`.
async fn handshake(shared: &ChildShared, conn: &Connection) -> Result<(), String> {
    let params = serde_json::json!({
        "protocolVersion": CHILD_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": { "name": "mcp-orchestra", "version": env!("CARGO_PKG_VERSION") },
    })
    .to_string();
    // The caller also bounds the whole handshake by the same deadline.
    let deadline = shared.spec.startup_timeout;
    let result = conn
        .request("initialize", Some(&params), deadline)
        .await
        .map_err(|e| format!("initialize failed: {e}"))?;
    let result: Value = serde_json::from_str(result.get())
        .map_err(|e| format!("initialize result is not JSON: {e}"))?;
    shared.status.send_modify(|s| {
        s.protocol_version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        s.server_info = result.get("serverInfo").cloned();
    });
    conn.notify("notifications/initialized", None);
    list_tools(shared, conn, deadline).await
}

/// Lists every page of the child's tools, applies the config's filters and publishes them.
async fn list_tools(
    shared: &ChildShared,
    conn: &Connection,
    timeout: Duration,
) -> Result<(), String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| serde_json::json!({ "cursor": c }).to_string());
        let page = conn
            .request("tools/list", params.as_deref(), timeout)
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        let mut page: Value = serde_json::from_str(page.get())
            .map_err(|e| format!("tools/list result is not JSON: {e}"))?;
        match page.get_mut("tools").map(Value::take) {
            Some(Value::Array(tools)) => all.extend(tools),
            _ => return Err("tools/list result has no `tools` array".into()),
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let filter = &shared.spec.tools;
    let total = all.len();
    all.retain(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| filter.admits(n))
    });
    shared
        .hidden_tools
        .store(total - all.len(), Ordering::Relaxed);
    *shared.tools.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(all);
    Ok(())
}

fn clear_tools(shared: &ChildShared) {
    *shared.tools.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(Vec::new());
}

fn with_stderr(shared: &ChildShared, reason: String) -> String {
    match shared.stderr.last() {
        Some(line) => format!("{reason}; last stderr line: {line}"),
        None => reason,
    }
}

/// Stops the child and everything in its process group: close stdin, then SIGTERM, then
/// SIGKILL, each after a grace period; reap; sweep group stragglers (npx's node, a shell's
/// children). Pending calls are answered with `why` first.
async fn stop(
    shared: &ChildShared,
    cx: &TaskContext,
    conn: &Connection,
    stop_writing: &CancellationToken,
    child: &mut Child,
    pgid: u32,
    why: &GatewayError,
) {
    conn.close(why).await;
    *shared.conn.write().unwrap_or_else(|p| p.into_inner()) = None;
    stop_writing.cancel();
    let name = &shared.name;
    let mut exited = wait_for(child, EOF_GRACE.min(cx.grace)).await;
    if !exited {
        tracing::info!(server = %name, pgid, "child ignored stdin EOF; sending SIGTERM to its group");
        signal_group(pgid, Signal::SIGTERM);
        exited = wait_for(child, cx.grace).await;
    }
    if !exited {
        tracing::warn!(server = %name, pgid, "child ignored SIGTERM; sending SIGKILL to its group");
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // The leader is gone; its group may not be. Give stragglers a moment, then kill them.
    let until = Instant::now() + Duration::from_millis(500);
    while group_exists(pgid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if group_exists(pgid) {
        tracing::info!(server = %name, pgid, "killing processes left in the child's group");
        signal_group(pgid, Signal::SIGKILL);
    }
    if let Some(w) = &cx.watchdog {
        w.release(pgid);
    }
}

async fn wait_for(child: &mut Child, d: Duration) -> bool {
    matches!(tokio::time::timeout(d, child.wait()).await, Ok(Ok(_)))
}
