//! Wires the Task Orchestrator (`orchestra-tasks`, which knows nothing of the gateway) into the
//! gateway: its five tools as the gateway's own tools, its plans as the gateway's own
//! resources, and the live view it plans and guides by — servers, domains, tools, and the tool
//! calls each session makes — read from the running gateway.
//!
//! The store is opened on first use, not at start: a gateway whose model never plans creates
//! no database, and one whose store cannot be opened still serves every child (the tools then
//! answer with why).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use orchestra_gateway::child::State;
use orchestra_gateway::domains;
use orchestra_gateway::hub::local::{
    LocalResources, LocalTool, LocalTools, ReadFuture, ToolFuture,
};
use orchestra_gateway::reply::Caller;
use orchestra_gateway::Gateway;
use orchestra_tasks::{
    DomainView, Environment, Orchestrator, ServerView, Snapshot, SpecialistOverride, Specialists,
    SqliteStore, ToolCall,
};
use serde_json::{json, Value};

/// Where plans live unless the config says otherwise: the user's data directory
/// (`$ORCHESTRA_DATA_DIR`, else `$XDG_DATA_HOME/mcp-orchestra`, else
/// `~/.local/share/mcp-orchestra`) — never the client's working directory.
pub fn default_store() -> Option<PathBuf> {
    let dir = std::env::var_os("ORCHESTRA_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("mcp-orchestra"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/mcp-orchestra"))
        })?;
    Some(dir.join("tasks.db"))
}

/// This gateway process's sessions as the orchestrator names them: the session id prefixed
/// with an id of this process's life, so that a session of a later run (ids start again at
/// `s1`) is never taken for the one that executed a subtask before a restart.
fn session_key(boot: &str, session: &str) -> String {
    format!("{boot}/{session}")
}

/// An id for this process's life: its start time and pid.
fn boot_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{}", std::process::id())
}

/// The orchestrator, opened on first use.
pub struct Lazy {
    /// This process's life (see [`session_key`]).
    boot: String,
    path: Option<PathBuf>,
    specialists: Specialists,
    opened: OnceLock<Result<Arc<Orchestrator>, String>>,
}

impl Lazy {
    pub fn new(config: &orchestra_config::Orchestrator) -> Arc<Self> {
        let mut specialists = Specialists::builtin();
        for s in &config.specialists {
            specialists = specialists.with(
                &s.name,
                SpecialistOverride {
                    role: s.role.clone(),
                    expertise: s.expertise.clone(),
                    approach: s.approach.clone(),
                    guidance: s.guidance.clone(),
                },
            );
        }
        Arc::new(Self {
            boot: boot_id(),
            path: config.store.clone().or_else(default_store),
            specialists,
            opened: OnceLock::new(),
        })
    }

    /// The orchestrator, opening its store now if this is the first use.
    fn get(&self) -> Result<Arc<Orchestrator>, String> {
        self.opened
            .get_or_init(|| {
                let path = self.path.as_deref().ok_or_else(|| {
                    "no place for the task store: set orchestrator.store in the config \
                     (HOME, XDG_DATA_HOME and ORCHESTRA_DATA_DIR are all unset)"
                        .to_owned()
                })?;
                let store = SqliteStore::open(path).map_err(|e| {
                    format!(
                        "the task store at {} could not be opened: {e}",
                        path.display()
                    )
                })?;
                tracing::info!(store = %path.display(), "task store opened");
                // The journal's clock: its calls and the orchestrator's executes and
                // completions are then ordered exactly, even within one millisecond.
                Ok(Arc::new(
                    Orchestrator::new(Box::new(store), self.specialists.clone())
                        .with_clock(orchestra_gateway::journal::tick),
                ))
            })
            .clone()
    }

    /// The orchestrator only if its store already exists (listing resources must not create
    /// a database nobody asked for).
    fn if_present(&self) -> Option<Arc<Orchestrator>> {
        if self.opened.get().is_none() && !self.path.as_deref().is_some_and(Path::exists) {
            return None;
        }
        self.get().ok()
    }
}

/// The gateway's own tools, with the orchestrator's after health.
pub fn tools(lazy: &Arc<Lazy>) -> LocalTools {
    Orchestrator::tool_definitions()
        .into_iter()
        .fold(LocalTools::default(), |tools, definition| {
            let name = definition["name"].as_str().unwrap_or_default().to_owned();
            tools.with(Arc::new(OrchestratorTool {
                name,
                definition,
                lazy: lazy.clone(),
            }))
        })
}

struct OrchestratorTool {
    name: String,
    definition: Value,
    lazy: Arc<Lazy>,
}

impl LocalTool for OrchestratorTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Value {
        self.definition.clone()
    }

    fn call<'a>(
        &'a self,
        gw: &'a Gateway,
        caller: &'a Caller,
        arguments: Option<&'a str>,
    ) -> ToolFuture<'a> {
        Box::pin(async move {
            let env = Live {
                gw: gw.clone(),
                boot: self.lazy.boot.clone(),
            };
            let (lazy, name) = (self.lazy.clone(), self.name.clone());
            let session = session_key(&self.lazy.boot, &caller.session.to_string());
            let arguments = arguments.map(str::to_owned);
            // The store is blocking (SQLite): off the runtime's one thread.
            let result = tokio::task::spawn_blocking(move || match lazy.get() {
                Ok(orch) => orch.call(&name, arguments.as_deref(), &session, &env),
                Err(why) => tool_error(&why),
            })
            .await
            .unwrap_or_else(|e| tool_error(&format!("the orchestrator failed: {e}")));
            if matches!(
                self.name.as_str(),
                "orchestrator_plan_task" | "orchestrator_complete_subtask"
            ) && result.get("isError") != Some(&Value::Bool(true))
            {
                // Plans are resources: a new plan (or a finished one) changes their list.
                gw.local_lists_changed();
            }
            result
        })
    }
}

fn tool_error(text: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": true })
}

/// Plans as the gateway's own resources (`orchestrator://plans/…`).
pub struct Plans(pub Arc<Lazy>);

impl LocalResources for Plans {
    fn owns(&self, uri: &str) -> bool {
        uri.starts_with("orchestrator://")
    }

    fn list(&self) -> Vec<Value> {
        self.0
            .if_present()
            .map(|o| o.resources())
            .unwrap_or_default()
    }

    fn read<'a>(&'a self, gw: &'a Gateway, uri: &'a str) -> ReadFuture<'a> {
        Box::pin(async move {
            let env = Live {
                gw: gw.clone(),
                boot: self.0.boot.clone(),
            };
            let (lazy, uri) = (self.0.clone(), uri.to_owned());
            tokio::task::spawn_blocking(move || lazy.get().ok()?.read_resource(&uri, &env))
                .await
                .ok()
                .flatten()
        })
    }
}

/// The running gateway as the orchestrator sees it.
struct Live {
    gw: Gateway,
    /// This process's life: sessions of other lives are gone.
    boot: String,
}

impl Live {
    /// The live session the orchestrator's key names, if it is one of this process's.
    fn session(&self, key: &str) -> Option<Arc<orchestra_gateway::sessions::SessionState>> {
        let (boot, id) = key.split_once('/')?;
        if boot != self.boot {
            return None;
        }
        self.gw
            .sessions()
            .list()
            .into_iter()
            .find(|s| s.id.to_string() == id)
    }
}

impl Environment for Live {
    fn snapshot(&self) -> Snapshot {
        let gw = &self.gw;
        let config = gw.config();
        let separator = config.gateway.separator.clone();
        let catalog = gw.catalog();
        // A server that is starting counts as up for planning: calls to its tools wait for it
        // (they are parked until it is ready), so its domain is not lost.
        let usable = |name: &str| {
            gw.children()
                .iter()
                .find(|c| c.name() == name)
                .is_some_and(|c| c.state().is_up() || c.state() == State::Starting)
        };
        let servers = gw
            .children()
            .iter()
            .map(|child| {
                let status = child.status();
                let starting = status.state == State::Starting;
                let up = status.state.is_up() || starting;
                let prefix = format!("{}{separator}", child.name());
                ServerView {
                    name: child.name().to_owned(),
                    up,
                    state: status.state.as_str().to_owned(),
                    reason: status.reason.clone().or_else(|| {
                        starting.then(|| {
                            "starting: calls to its tools wait until it is ready".to_owned()
                        })
                    }),
                    tools: if up {
                        catalog
                            .keys()
                            .filter(|n| n.starts_with(&prefix))
                            .map(str::to_owned)
                            .collect()
                    } else {
                        Vec::new()
                    },
                    // Where its calls go now (the first live server of its fallback chain),
                    // else the configured fallback, down too (the orchestrator says so).
                    fallback: gw.live_fallback(child.name()).or_else(|| {
                        config
                            .alternative_for(&child.spec().name)
                            .map(|a| a.fallback.as_str().to_owned())
                    }),
                }
            })
            .collect();
        let domains = domains::states(config, &usable)
            .into_iter()
            .map(|d| DomainView {
                name: d.name,
                owner: d.owner,
                mode: d.mode.as_str().to_owned(),
                serving: d.serving,
                degraded_capabilities: d.degraded_capabilities,
                lost_capabilities: d.lost_capabilities,
            })
            .collect();
        Snapshot {
            servers,
            domains,
            separator,
        }
    }

    fn calls(&self, session: &str, since_ms: u64) -> Vec<ToolCall> {
        let Some(state) = self.session(session) else {
            return Vec::new();
        };
        state
            .journal
            .since(since_ms)
            .into_iter()
            .map(|c| ToolCall {
                tool: c.tool.to_string(),
                server: c.server.as_deref().map(str::to_owned),
                outcome: c.outcome.as_str().to_owned(),
                failover_to: c
                    .failed_over
                    .then(|| c.server.as_deref().map(str::to_owned))
                    .flatten(),
                at_ms: c.at_ms(),
                duration_ms: c.duration.as_millis() as u64,
            })
            .collect()
    }

    fn watch(&self, session: &str, on: bool) {
        if let Some(state) = self.session(session) {
            state.journal.watch(on);
        }
    }

    fn is_live(&self, session: &str) -> bool {
        self.session(session).is_some()
    }
}
