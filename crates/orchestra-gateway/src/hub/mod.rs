//! The gateway's shared state (the hub): configuration, children, the merged catalogs, the
//! session registry, parked calls, the event log and the gateway's own tools — with what
//! every layer above reads of it. No start or shutdown logic: that is the composition root's
//! (`app.rs`), which fills this in.

pub mod local;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use orchestra_config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, ServerTools};
use crate::child::ChildHandle;
use crate::containment::watchdog::Watchdog;
use crate::domains;
use crate::events::EventLog;
use crate::hub::local::{LocalResources, LocalTools};
use crate::listing::{ListKind, Merged};
use crate::prompts::{PromptCatalog, ServerPrompts};
use crate::reply::SessionId;
use crate::resources::{ResourceCatalog, ServerResources};
use crate::sessions::Sessions;
use crate::sink::FrontSink;
use crate::upstream::Upstream;

/// The running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

/// The shared state. Fields are the composition root's to fill (`app.rs`).
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) children: Vec<ChildHandle>,
    pub(crate) catalog: RwLock<Arc<BuiltCatalog>>,
    pub(crate) rebuild: Mutex<()>,
    /// Bumped by child tasks whenever a server's tools change.
    pub(crate) generation: Arc<AtomicU64>,
    pub(crate) front: FrontSink,
    pub(crate) started: Instant,
    pub(crate) started_wall: SystemTime,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) watchdog: Option<Arc<Watchdog>>,
    /// Calls waiting for their server, by client id, so that a cancellation reaches them too
    /// (calls already sent are cancelled through their child's connection).
    pub(crate) parked: dashmap::DashMap<(SessionId, Box<str>), CancellationToken>,
    pub(crate) log: Arc<EventLog>,
    /// The gateway's own tools.
    pub(crate) local: LocalTools,
    /// The gateway's own resources, if any.
    pub(crate) local_resources: Option<Arc<dyn LocalResources>>,
    /// Announces a change of the lists (bumps the generation, wakes the announcer).
    pub(crate) changes: crate::child::task::Events,
    /// The client sessions being served.
    pub(crate) sessions: Arc<Sessions>,
    /// Children's requests sent to client sessions and not yet answered.
    pub(crate) upstream: Arc<Upstream>,
    /// The level children were last set to (0: none).
    pub(crate) applied_log_level: std::sync::atomic::AtomicU8,
}

/// Every merged list, built together from one snapshot of the children.
pub struct BuiltCatalog {
    pub(crate) generation: u64,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) prompts: Arc<PromptCatalog>,
    pub(crate) resources: Arc<ResourceCatalog>,
}

impl BuiltCatalog {
    /// The merged list of `kind`.
    pub fn merged(&self, kind: ListKind) -> &Merged {
        match kind {
            ListKind::Tools => &self.catalog,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => self.resources.resources(),
            ListKind::ResourceTemplates => self.resources.templates(),
        }
    }
}

impl Gateway {
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn children(&self) -> &[ChildHandle] {
        &self.inner.children
    }

    pub fn front(&self) -> FrontSink {
        self.inner.front.clone()
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    pub fn started_at(&self) -> SystemTime {
        self.inner.started_wall
    }

    /// The current merged catalog (rebuilt on first use after any server's tools changed).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.built().catalog.clone()
    }

    /// The current merged prompt catalog (rebuilt with the tool catalog).
    pub fn prompts(&self) -> Arc<PromptCatalog> {
        self.built().prompts.clone()
    }

    /// The current merged resource catalog (rebuilt with the tool catalog).
    pub fn resources(&self) -> Arc<ResourceCatalog> {
        self.built().resources.clone()
    }

    /// Every current merged list (rebuilt on first use after any server's lists changed).
    pub fn built(&self) -> Arc<BuiltCatalog> {
        let wanted = self.inner.generation.load(Ordering::Acquire);
        {
            let built = self.inner.catalog.read().unwrap_or_else(|p| p.into_inner());
            if built.generation == wanted {
                return built.clone();
            }
        }
        let _one_builder = self.inner.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = self.inner.generation.load(Ordering::Acquire);
        let own = self.inner.local.definitions();
        let tools: Vec<_> = self.inner.children.iter().map(ChildHandle::tools).collect();
        let catalog = Arc::new(Catalog::build(
            &self.inner.config.gateway.separator,
            &own,
            self.inner
                .children
                .iter()
                .zip(&tools)
                .map(|(c, t)| ServerTools {
                    index: c.shared.index,
                    name: c.name(),
                    tools: t,
                    listed: c.is_listed(),
                    namespaced: c.spec().namespace,
                }),
        ));
        let prompts: Vec<_> = self
            .inner
            .children
            .iter()
            .map(ChildHandle::prompts)
            .collect();
        let prompts = Arc::new(PromptCatalog::build(
            &self.inner.config.gateway.separator,
            self.inner
                .children
                .iter()
                .zip(&prompts)
                .map(|(c, p)| ServerPrompts {
                    index: c.shared.index,
                    name: c.name(),
                    prompts: p,
                    listed: c.is_listed(),
                    namespaced: c.spec().namespace,
                }),
        ));
        let lists: Vec<_> = self
            .inner
            .children
            .iter()
            .map(|c| {
                (
                    c.list(ListKind::Resources),
                    c.list(ListKind::ResourceTemplates),
                )
            })
            .collect();
        let own_resources = self
            .inner
            .local_resources
            .as_ref()
            .map(|r| r.list())
            .unwrap_or_default();
        let resources = Arc::new(ResourceCatalog::build(
            &own_resources,
            self.inner
                .children
                .iter()
                .zip(&lists)
                .map(|(c, (resources, templates))| ServerResources {
                    index: c.shared.index,
                    name: c.name(),
                    resources,
                    templates,
                    listed: c.is_listed(),
                    namespaced: c.spec().namespace,
                }),
        ));
        let built = Arc::new(BuiltCatalog {
            generation: wanted,
            catalog,
            prompts,
            resources,
        });
        *self
            .inner
            .catalog
            .write()
            .unwrap_or_else(|p| p.into_inner()) = built.clone();
        built
    }

    /// Sets every ready child that declared logging to the most verbose level any session
    /// asked for, when that changed.
    pub(crate) fn apply_log_level(&self) {
        let Some(level) = self.inner.sessions.wanted_log_level() else {
            return;
        };
        if self
            .inner
            .applied_log_level
            .swap(level.to_u8(), Ordering::AcqRel)
            == level.to_u8()
        {
            return;
        }
        for child in self.inner.children.iter().filter(|c| c.state().is_up()) {
            if let Some(conn) = child.connection() {
                crate::child::task::set_log_level(&child.shared, &conn, level);
            }
        }
    }

    /// After a session ended: children are set to the most verbose level the sessions still
    /// open asked for (the one that left may have been the only one asking for that much; left
    /// as is, every child would keep sending what no one reads). With no level asked any
    /// more, children keep theirs: MCP has no way to unset it.
    pub(crate) fn relax_log_level(&self) {
        // A session dropped outside the runtime (or while stopping) has no one to tell.
        if tokio::runtime::Handle::try_current().is_ok() && !self.inner.shutdown.is_cancelled() {
            self.apply_log_level();
        }
    }

    /// The client sessions being served.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Children's requests waiting for a client's answer (sampling, elicitation, roots).
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    /// The gateway's own resources, if any.
    pub fn local_resources(&self) -> Option<&Arc<dyn LocalResources>> {
        self.inner.local_resources.as_ref()
    }

    /// Says that the gateway's own lists changed (a new plan): the catalogs are rebuilt and
    /// sessions that listed them are told.
    pub fn local_lists_changed(&self) {
        self.inner.changes.tools_changed();
    }

    /// The gateway's own tools.
    pub fn local_tools(&self) -> &LocalTools {
        &self.inner.local
    }

    /// Recent supervision events.
    pub fn events(&self) -> &EventLog {
        &self.inner.log
    }

    /// Whether `server` is up (ready) now.
    pub fn is_up(&self, server: &str) -> bool {
        self.inner
            .children
            .iter()
            .any(|c| c.name() == server && c.state().is_up())
    }

    /// The live stand-in for `server` along its `server_alternatives` fallback chain.
    pub fn live_fallback(&self, server: &str) -> Option<String> {
        domains::live_fallback(&self.inner.config, server, &|s| self.is_up(s))
            .map(|s| s.as_str().to_owned())
    }

    /// Every domain's mode (normal, degraded, lost) and serving server, now.
    pub fn domain_states(&self) -> Vec<domains::DomainState> {
        domains::states(&self.inner.config, &|s| self.is_up(s))
    }

    /// Whether every child has finished starting (ready or failed).
    pub fn is_settled(&self) -> bool {
        self.inner.children.iter().all(|c| c.state().is_settled())
    }

    /// Waits until every child has finished starting, at most the longest startup timeout
    /// (plus a second for the kill that follows a timeout).
    pub async fn wait_settled(&self) {
        let budget = self
            .inner
            .children
            .iter()
            .map(|c| c.spec().startup_timeout)
            .max()
            .unwrap_or_default()
            + Duration::from_secs(1);
        let all = async {
            for child in &self.inner.children {
                let mut rx = child.subscribe();
                let _ = rx.wait_for(|s| s.state.is_settled()).await;
            }
        };
        let _ = tokio::time::timeout(budget, all).await;
    }

    /// Whether a `tools/list` can be answered now with the whole catalog: every server has
    /// finished starting, or its tools are known from the last run.
    pub fn can_list_now(&self) -> bool {
        self.inner
            .children
            .iter()
            .all(|c| c.state().is_settled() || c.is_listed())
    }

    /// Registers a call that will wait for its server; the token fires if the client cancels.
    pub(crate) fn park_call(&self, session: SessionId, id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        self.inner
            .parked
            .insert((session, id.into()), token.clone());
        token
    }

    pub(crate) fn unpark_call(&self, session: SessionId, id: &str) {
        self.inner.parked.remove(&(session, Box::<str>::from(id)));
    }

    /// Cancels a waiting call; false if no call with that id is waiting.
    pub(crate) fn cancel_parked(&self, session: SessionId, id: &str) -> bool {
        match self.inner.parked.remove(&(session, Box::<str>::from(id))) {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Runs a task the gateway owns (waited for at shutdown).
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.tracker.spawn(fut);
    }
}
