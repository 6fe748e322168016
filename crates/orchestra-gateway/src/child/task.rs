//! The task that owns one child for the gateway's whole life: start, handshake, serve, probe,
//! notice death, restart with backoff, stop.
//!
//! ```text
//!   Starting ──handshake ok──► Ready ◄──ping answered── Unhealthy
//!      │                        │  └──N pings missed──────┘ │ M pings missed: killed
//!      │ failed                 │ died                      ▼
//!      └────────────► Restarting (backoff) ◄────────────────┘
//!                        │  more than max_restarts within `within`
//!                        ▼
//!                      Failed ──reprobe_after──► (start again)
//!   spawn impossible (command missing / not executable) ──► Misconfigured (never retried)
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::backoff::{self, Backoff};
use super::clients::Clients;
use super::connection::{Connection, ReaderEnd, RequestError, RetryFn, ToClients};
use super::link::{Link, OpenError, Opened};
use super::lists::{self, Feature, ListError};
use super::state::State;
use super::ChildShared;
use crate::catalog_cache::CatalogCache;
use crate::containment::watchdog::Watchdog;
use crate::error::GatewayError;
use crate::events::{EventKind, EventLog};
use crate::logging::Level;
use crate::tool_def;

/// The protocol version the gateway offers children (the initialize-handshake era).
pub const CHILD_PROTOCOL_VERSION: &str = "2025-11-25";
/// Upper bound on `tools/list` pages from one child (a broken cursor must not loop forever).
const MAX_PAGES: usize = 1000;

/// Shortest time between the end of one re-listing and the start of the next: a child that
/// sends `list_changed` in a loop gets at most a few `tools/list` per second.
const MIN_RELIST_SPACING: Duration = Duration::from_millis(250);

/// One ping in flight, polled by the serve loop next to everything else.
type Probe = Pin<Box<dyn Future<Output = Result<(), RequestError>> + Send>>;

/// One re-listing in flight (after the child's `list_changed`), polled like a probe, so that
/// pings, exit detection and shutdown go on while a slow child answers `tools/list`.
type Relist<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Which live server, if any, stands in for a given server (its fallback chain).
pub(crate) type FallbackOf = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the owning task needs from the gateway.
#[derive(Clone)]
pub(crate) struct TaskContext {
    pub events: Events,
    pub shutdown: CancellationToken,
    pub watchdog: Option<Arc<Watchdog>>,
    pub grace: Duration,
    pub log: Arc<EventLog>,
    pub fallback_of: FallbackOf,
    pub cache: CatalogCache,
    /// Sends again calls that never reached a child that died.
    pub retry: RetryFn,
    /// The client side: where log messages, resource updates and requests to a client go,
    /// and what the sessions want of a child (log level, subscriptions).
    pub clients: Arc<dyn Clients>,
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

/// How one run of the child ended.
enum Outcome {
    /// The gateway is shutting down; the child was stopped.
    Shutdown,
    /// It can never be started as configured.
    Misconfigured(String),
    /// It ended (or never got ready); `ready_for` is how long it had been ready, if at all.
    Ended {
        reason: String,
        ready_for: Option<Duration>,
    },
}

/// Runs one child for the gateway's whole life.
pub(crate) async fn run(shared: Arc<ChildShared>, cx: TaskContext) {
    let name = shared.name.clone();
    let policy = shared.spec.restart.clone();
    let mut backoff = Backoff::new(policy.clone(), backoff::seed(&name));
    let mut recent_restarts: VecDeque<Instant> = VecDeque::new();
    loop {
        match run_once(&shared, &cx).await {
            Outcome::Shutdown => break,
            Outcome::Misconfigured(reason) => {
                tracing::error!(server = %name, %reason, "child is misconfigured; not retrying");
                cx.log
                    .record(&name, EventKind::Misconfigured, reason.clone());
                shared
                    .status
                    .send_modify(|s| s.enter(State::Misconfigured, Some(reason)));
                cx.events.tools_changed();
                cx.shutdown.cancelled().await;
                break;
            }
            Outcome::Ended { reason, ready_for } => {
                if cx.shutdown.is_cancelled() {
                    break;
                }
                if ready_for.is_some_and(|d| d >= policy.stable_after) {
                    backoff.reset();
                    recent_restarts.clear();
                }
                let now = Instant::now();
                while recent_restarts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > policy.within)
                {
                    recent_restarts.pop_front();
                }
                let (state, wait, kind) = if recent_restarts.len() as u32 >= policy.max_restarts {
                    (State::Failed, policy.reprobe_after, EventKind::Failed)
                } else {
                    (
                        State::Restarting,
                        backoff.next_delay(),
                        EventKind::Restarting,
                    )
                };
                let reason = match state {
                    State::Failed => format!(
                        "{reason}; crash loop ({} restarts within {}): calls fail fast, next try in {}",
                        recent_restarts.len(),
                        orchestra_config::duration::format(policy.within),
                        orchestra_config::duration::format(wait)
                    ),
                    _ => reason,
                };
                tracing::warn!(server = %name, state = state.as_str(), ?wait, %reason, "child down; will start it again");
                cx.log.record(
                    &name,
                    kind,
                    format!("{reason}; next attempt in {:.1}s", wait.as_secs_f64()),
                );
                shared.status.send_modify(|s| {
                    s.enter(state, Some(reason));
                    s.next_attempt = Some(SystemTime::now() + wait);
                });
                cx.events.tools_changed();
                tokio::select! {
                    _ = cx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                if state == State::Failed {
                    recent_restarts.clear();
                    backoff.reset();
                }
                recent_restarts.push_back(Instant::now());
                shared.status.send_modify(|s| {
                    s.restarts += 1;
                    s.next_attempt = None;
                });
            }
        }
    }
    *shared.conn.write().unwrap_or_else(|p| p.into_inner()) = None;
    shared
        .status
        .send_modify(|s| s.enter(State::Stopped, Some("gateway shut down".into())));
}

/// One life of the child (a process, or a connection to a remote server): open its link,
/// handshake, serve until death or shutdown.
async fn run_once(shared: &Arc<ChildShared>, cx: &TaskContext) -> Outcome {
    let name = shared.name.clone();
    let opened = match Link::open(shared, cx.watchdog.as_deref()).await {
        Ok(o) => o,
        Err(OpenError::Misconfigured(reason)) => return Outcome::Misconfigured(reason),
        Err(OpenError::Failed(reason)) => {
            return Outcome::Ended {
                reason,
                ready_for: None,
            }
        }
    };
    let Opened {
        mut link,
        input,
        output,
    } = opened;
    let pid = link.pid();
    match pid {
        Some(pid) => {
            tracing::info!(server = %name, pid, command = %shared.spec.command, "child started")
        }
        None => {
            tracing::info!(server = %name, url = %shared.spec.target(), "connecting to the remote server")
        }
    }
    shared.status.send_modify(|s| {
        s.pid = pid;
        s.started = Some(Instant::now());
        s.probe_failures = 0;
    });

    // A Notify holds at most one permit: any number of list_changed notifications between two
    // looks collapse into one re-listing.
    let tools_changed = Arc::new(Notify::new());
    let started = Connection::start(
        name.clone(),
        input,
        output,
        shared.stats.clone(),
        tools_changed.clone(),
        shared.spec.max_message_size,
        ToClients {
            clients: cx.clients.clone(),
            server_index: shared.index,
            // The longest the gateway waits for this child's own answers: a request the child
            // makes while serving a call cannot usefully outlive that call.
            request_timeout: shared.spec.call_timeout,
        },
    );
    let (conn, tasks) = match started {
        Ok(started) => started,
        Err(e) => {
            link.stop(&name, false, cx.grace).await;
            return Outcome::Ended {
                reason: format!("cannot set up its stdio: {e}"),
                ready_for: None,
            };
        }
    };
    *shared.conn.write().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
    let mut reader = tasks.reader;
    let child = &mut link;
    let life = Life {
        shared,
        cx,
        conn: &conn,
    };

    // Handshake, racing the child's exit and the gateway's shutdown.
    let timeout = shared.spec.startup_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout(timeout, handshake(shared, &conn, &cx.cache)) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("no answer to the handshake within {}", orchestra_config::duration::format(timeout))),
        },
        exit = child.ended() => {
            shared.status.send_modify(|s| s.last_exit = Some(exit.clone()));
            Err(with_stderr(shared, child.ended_during_handshake(&exit)))
        }
        _ = cx.shutdown.cancelled() => {
            life.stop(child, true, false, |_| shutting_down(&name)).await;
            return Outcome::Shutdown;
        }
    };
    let declared = match handshake {
        Ok(declared) => declared,
        Err(reason) => {
            let reason = shared.redact(reason);
            tracing::error!(server = %name, %reason, "child failed to start");
            let failed = reason.clone();
            life.stop(child, false, false, |_| GatewayError::ServerUnavailable {
                server: name.to_string(),
                state: "restarting",
                reason: failed.clone(),
            })
            .await;
            return Outcome::Ended {
                reason,
                ready_for: None,
            };
        }
    };
    let ready_at = Instant::now();
    let restarted = shared.status.borrow().restarts > 0;
    shared.status.send_modify(|s| s.enter(State::Ready, None));
    let tools = shared.tools.lock().map(|t| t.len()).unwrap_or(0);
    tracing::info!(server = %name, tools, "child ready");
    let kind = if restarted {
        EventKind::Recovered
    } else {
        EventKind::Ready
    };
    cx.log.record(&name, kind, format!("{tools} tools"));
    cx.events.tools_changed();
    // A session asked for a log level before this child (re)started: set it here too.
    if let Some(level) = cx.clients.wanted_log_level() {
        set_log_level(shared, &conn, level);
    }
    // Sessions subscribed to its resources before it (re)started: a new process has no
    // subscriptions, so make them again.
    resubscribe(shared, &conn, cx.clients.subscribed_uris(shared.index));

    // Serve until the child dies, stops answering, or the gateway stops.
    let probe = shared.spec.probe.clone();
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + probe.interval, probe.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probing: Option<Probe> = None;
    // At most one re-listing in flight; notifications meanwhile make one more, no sooner than
    // MIN_RELIST_SPACING after the last one ended.
    let mut relisting: Option<Relist<'_>> = None;
    let mut relist_due = false;
    let mut next_relist = tokio::time::Instant::now();
    // Prompts and resources follow their own `list_changed`, independently of tools; the
    // catalog generation covers them too: one rebuild, one announcer.
    let declares = |f: Feature| declared.contains(&f);
    let mut prompts_follow = std::pin::pin!(lists::follow_changes(
        shared,
        &conn,
        Feature::Prompts,
        MIN_RELIST_SPACING,
        || cx.events.tools_changed()
    ));
    let mut resources_follow = std::pin::pin!(lists::follow_changes(
        shared,
        &conn,
        Feature::Resources,
        MIN_RELIST_SPACING,
        || cx.events.tools_changed()
    ));
    let death: String = loop {
        tokio::select! {
            _ = cx.shutdown.cancelled() => {
                life.stop(child, true, false, |_| shutting_down(&name)).await;
                return Outcome::Shutdown;
            }
            _ = tools_changed.notified(), if !relist_due => relist_due = true,
            _ = tokio::time::sleep_until(next_relist), if relist_due && relisting.is_none() => {
                relist_due = false;
                relisting = Some(Box::pin(list_tools(shared, &conn, &cx.cache, shared.spec.call_timeout)));
            }
            listed = async { relisting.as_mut().expect("guarded").await }, if relisting.is_some() => {
                relisting = None;
                next_relist = tokio::time::Instant::now() + MIN_RELIST_SPACING;
                match listed {
                    Ok(true) => {
                        cx.log.record(&name, EventKind::ToolsChanged, format!("{} tools", shared.tools.lock().map(|t| t.len()).unwrap_or(0)));
                        cx.events.tools_changed();
                    }
                    Ok(false) => tracing::debug!(server = %name, "relisted after list_changed: no change"),
                    Err(e) => tracing::warn!(server = %name, error = %e, "relisting tools after list_changed failed"),
                }
            }
            // Only a child that declared the feature is asked for it again.
            _ = &mut prompts_follow, if declares(Feature::Prompts) => {}
            _ = &mut resources_follow, if declares(Feature::Resources) => {}
            exit = child.ended() => break exit,
            end = &mut reader => {
                // stdout ended: the process is exiting, or left its stdout behind, or broke
                // framing. The session is over either way; the exit status may follow.
                if let Ok(ReaderEnd::Framing(why)) = end {
                    break why;
                }
                let exit = match tokio::time::timeout(Duration::from_millis(100), child.ended()).await {
                    Ok(exit) => exit,
                    Err(_) => "closed its stdout".to_owned(),
                };
                break exit;
            }
            _ = tick.tick(), if probing.is_none() => {
                let conn = conn.clone();
                let timeout = probe.timeout;
                probing = Some(Box::pin(async move { conn.request("ping", None, timeout).await.map(|_| ()) }));
            }
            answer = async { probing.as_mut().expect("guarded").await }, if probing.is_some() => {
                probing = None;
                if let Some(reason) = on_probe(shared, cx, &probe, answer) {
                    break reason;
                }
            }
        }
    };

    let exit = death;
    let was_ready = matches!(
        shared.status.borrow().state,
        State::Ready | State::Unhealthy
    );
    tracing::error!(server = %name, %exit, "child died");
    cx.log.record(&name, EventKind::Died, exit.clone());
    // Withdraw its tools at once; pending calls learn what happened and where to go.
    shared.status.send_modify(|s| {
        s.last_exit = Some(exit.clone());
        s.enter(State::Restarting, Some(exit.clone()));
    });
    cx.events.tools_changed();
    let fallback = (cx.fallback_of)(&name);
    let status = exit.clone();
    life.stop(child, false, true, |delivered| GatewayError::ServerExited {
        server: name.to_string(),
        status: status.clone(),
        delivered,
        fallback: fallback.clone(),
    })
    .await;
    let reason = with_stderr(shared, child.died(&exit));
    Outcome::Ended {
        reason,
        ready_for: was_ready.then(|| ready_at.elapsed()),
    }
}

/// Applies one probe answer; returns a reason when the child must be killed.
fn on_probe(
    shared: &ChildShared,
    cx: &TaskContext,
    policy: &orchestra_config::ProbePolicy,
    answer: Result<(), RequestError>,
) -> Option<String> {
    let name = &shared.name;
    match answer {
        Ok(()) => {
            let was_unhealthy = shared.status.borrow().state == State::Unhealthy;
            shared.status.send_modify(|s| s.probe_failures = 0);
            if was_unhealthy {
                tracing::info!(server = %name, "child answers pings again");
                shared.status.send_modify(|s| s.enter(State::Ready, None));
                cx.log
                    .record(name, EventKind::Recovered, "answers pings again");
                cx.events.tools_changed();
            }
            None
        }
        Err(e) => {
            let mut failures = 0;
            shared.status.send_modify(|s| {
                s.probe_failures += 1;
                failures = s.probe_failures;
            });
            tracing::warn!(server = %name, failures, error = %e, "ping failed");
            if failures >= policy.restart_after {
                return Some(format!(
                    "signal 9 (SIGKILL), sent after {failures} unanswered pings"
                ));
            }
            if failures == policy.unhealthy_after {
                let reason = shared.redact(format!("{failures} pings unanswered ({e})"));
                shared
                    .status
                    .send_modify(|s| s.enter(State::Unhealthy, Some(reason.clone())));
                cx.log.record(name, EventKind::Unhealthy, reason);
                cx.events.tools_changed();
            }
            None
        }
    }
}

fn shutting_down(name: &str) -> GatewayError {
    GatewayError::ServerUnavailable {
        server: name.to_owned(),
        state: "stopping",
        reason: "the gateway is shutting down".into(),
    }
}

/// `initialize`, `notifications/initialized`, then a complete `tools/list`, then — when the
/// child declares prompts — `prompts/list` (whose failure is recorded, not fatal).
async fn handshake(
    shared: &ChildShared,
    conn: &Connection,
    cache: &CatalogCache,
) -> Result<Vec<Feature>, String> {
    // The client capabilities the gateway really passes on (`upstream.rs`): sampling,
    // elicitation and roots requests go to a client session that declared them.
    let params = serde_json::json!({
        "protocolVersion": CHILD_PROTOCOL_VERSION,
        "capabilities": super::clients::capabilities(),
        "clientInfo": { "name": "mcp-orchestra", "version": env!("CARGO_PKG_VERSION") },
    })
    .to_string();
    // The caller also bounds the whole handshake by the same deadline.
    let deadline = shared.spec.startup_timeout;
    let started = Instant::now();
    let result = conn
        .request("initialize", Some(&params), deadline)
        .await
        .map_err(|e| match e {
            RequestError::Timeout => format!(
                "no answer to the handshake (initialize) within {}",
                orchestra_config::duration::format(deadline)
            ),
            e @ RequestError::TooLarge { .. } => format!("initialize {e}"),
            e => format!("initialize failed: {e}"),
        })?;
    let result: Value =
        serde_json::from_str(&result).map_err(|e| format!("initialize result is not JSON: {e}"))?;
    // Both are the child's own text, shown by the health report: redacted as they are kept.
    let protocol_version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .map(|v| shared.redact(v.to_owned()));
    let mut server_info = result.get("serverInfo").cloned();
    if let Some(info) = &mut server_info {
        shared.redactor.redact_json(info);
    }
    let capabilities = result.get("capabilities").cloned();
    let instructions: Option<Arc<str>> = result
        .get("instructions")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .map(Into::into);
    let instructions_changed = {
        let mut kept = shared
            .instructions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let changed = *kept != instructions;
        *kept = instructions;
        changed
    };
    shared.status.send_modify(|s| {
        s.capabilities = capabilities;
        s.protocol_version = protocol_version;
        s.server_info = server_info;
    });
    conn.notify("notifications/initialized", None);
    let tools_changed = list_tools(shared, conn, cache, deadline).await?;
    if instructions_changed && !tools_changed {
        // Kept for the next instant start even when the tools did not change.
        remember_catalog(shared, cache);
    }
    // Within what is left of the startup budget, and ending well before it: the caller's
    // handshake deadline must never be what a slow or broken listing hits, since that would
    // fail a child whose tools are fine.
    let mut declared = Vec::new();
    for feature in [Feature::Prompts, Feature::Resources] {
        if lists::declares(result.get("capabilities"), feature) {
            // Half of what is left each: prompts then resources never use up the whole of it.
            let left = deadline.saturating_sub(started.elapsed());
            let budget = (left / 2).min(shared.spec.call_timeout);
            let _ = lists::relist(shared, conn, feature, budget).await;
            declared.push(feature);
        } else {
            shared.lists.clear(feature);
        }
    }
    Ok(declared)
}

/// Lists every page of the child's tools, applies the config's filters, checks each
/// definition (`tool_def`) and publishes them. Returns whether the published list changed.
async fn list_tools(
    shared: &ChildShared,
    conn: &Connection,
    cache: &CatalogCache,
    timeout: Duration,
) -> Result<bool, String> {
    let all = list_all(conn, "tools/list", "tools", timeout).await?;
    // Config filters first (a tool the user hid is not worth a warning), then MCP's rules.
    let filter = &shared.spec.tools;
    let mut checker = tool_def::Checker::default();
    let mut hidden = 0;
    let mut tools = Vec::with_capacity(all.len());
    for (index, tool) in all.into_iter().enumerate() {
        if tool_def::usable_name(&tool).is_some_and(|n| !filter.admits(n)) {
            hidden += 1;
        } else if let Some(tool) = checker.admit(index, tool) {
            tools.push(tool);
        }
    }
    let report = checker.finish();
    for issue in &report.repaired {
        tracing::warn!(server = %shared.name, tool = issue.tool.as_deref().unwrap_or("?"), index = issue.index, reason = %issue.reason, "repaired a tool definition from the child");
    }
    for issue in &report.dropped {
        tracing::warn!(server = %shared.name, tool = issue.tool.as_deref().unwrap_or("?"), index = issue.index, reason = %issue.reason, "dropped a tool definition from the child");
    }
    shared.hidden_tools.store(hidden, Ordering::Relaxed);
    *shared.tool_report.lock().unwrap_or_else(|p| p.into_inner()) =
        Arc::new(report.redacted(&shared.redactor));
    let mut current = shared.tools.lock().unwrap_or_else(|p| p.into_inner());
    let changed = **current != tools || shared.provisional.load(Ordering::Acquire);
    if changed {
        *current = Arc::new(tools);
    }
    drop(current);
    shared.provisional.store(false, Ordering::Release);
    if changed {
        remember_catalog(shared, cache);
    }
    Ok(changed)
}

/// Writes the child's current tools and instructions to the catalog cache (instant start).
fn remember_catalog(shared: &ChildShared, cache: &CatalogCache) {
    let tools = shared
        .tools
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let instructions = shared
        .instructions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    cache.store(&shared.spec, &tools, instructions.as_deref());
}

/// Every page of one of the child's lists (`tools/list` → `tools`, …), following
/// `nextCursor`, at most [`MAX_PAGES`] pages.
pub(crate) async fn list_all(
    conn: &Connection,
    method: &str,
    key: &str,
    timeout: Duration,
) -> Result<Vec<Value>, ListError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| serde_json::json!({ "cursor": c }).to_string());
        let page = conn
            .request(method, params.as_deref(), timeout)
            .await
            .map_err(|e| ListError::from_request(method, e))?;
        let mut page: Value = serde_json::from_str(&page)
            .map_err(|e| ListError::Other(format!("{method} result is not JSON: {e}")))?;
        match page.get_mut(key).map(Value::take) {
            Some(Value::Array(items)) => all.extend(items),
            _ => {
                return Err(ListError::Other(format!(
                    "{method} result has no `{key}` array"
                )))
            }
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(all)
}

/// Subscribes a fresh child to the resources sessions are subscribed to (in the background;
/// a refusal is logged: the sessions keep their subscriptions for its next life).
fn resubscribe(shared: &ChildShared, conn: &Arc<Connection>, uris: Vec<String>) {
    if uris.is_empty() {
        return;
    }
    let (conn, timeout, server) = (conn.clone(), shared.spec.call_timeout, shared.name.clone());
    tokio::spawn(async move {
        for uri in uris {
            let params = serde_json::json!({ "uri": uri }).to_string();
            if let Err(e) = conn
                .request("resources/subscribe", Some(&params), timeout)
                .await
            {
                tracing::warn!(%server, %uri, error = %e, "could not subscribe the restarted child again");
            }
        }
    });
}

/// `reason` with the child's last stderr line, redacted: it is shown to the client and model.
fn with_stderr(shared: &ChildShared, reason: String) -> String {
    match shared.stderr.last() {
        Some(line) => shared.redact(format!("{reason}; last stderr line: {line}")),
        None => reason,
    }
}

/// What stopping one life of a child needs.
struct Life<'a> {
    shared: &'a ChildShared,
    cx: &'a TaskContext,
    conn: &'a Connection,
}

impl Life<'_> {
    /// Stops the child: answer pending calls with `why` (with `retry`, calls never written
    /// are sent again), close its input, then stop its link — gracefully at shutdown, at once
    /// when it died, hangs or broke the protocol (`link/`).
    async fn stop(
        &self,
        child: &mut Link,
        graceful: bool,
        retry: bool,
        why: impl Fn(bool) -> GatewayError,
    ) {
        self.conn.close(why, retry.then_some(&self.cx.retry)).await;
        *self.shared.conn.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.conn.close_input();
        child.stop(&self.shared.name, graceful, self.cx.grace).await;
    }
}

/// Asks the child for log messages at `level` and above, if it declared logging (sent off the
/// caller's path; a child that refuses keeps its own level, which is only logged).
pub(crate) fn set_log_level(shared: &ChildShared, conn: &Arc<Connection>, level: Level) {
    let declared = shared
        .status
        .borrow()
        .capabilities
        .as_ref()
        .is_some_and(|c| c.get("logging").is_some());
    if !declared {
        return;
    }
    let (conn, server, timeout) = (conn.clone(), shared.name.clone(), shared.spec.call_timeout);
    let params = serde_json::json!({ "level": level.as_str() }).to_string();
    tokio::spawn(async move {
        if let Err(e) = conn
            .request("logging/setLevel", Some(&params), timeout)
            .await
        {
            tracing::warn!(server = %server, error = %e, "the child refused logging/setLevel");
        }
    });
}
