//! The gateway as a whole: start order, the merged catalog, shutdown.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use orchestra_config::Config;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, ServerTools};
use crate::catalog_cache::CatalogCache;
use crate::child::connection::RetryFn;
use crate::child::task::{self, ChildEvent, TaskContext};
use crate::child::{ChildHandle, State};
use crate::domains;
use crate::events::EventLog;
use crate::front::registry::Sessions;
use crate::front::FrontSink;
use crate::health;
use crate::listing::{ListKind, Merged};
use crate::local::LocalTools;
use crate::prompts::{PromptCatalog, ServerPrompts};
use crate::redact::Redactor;
use crate::reply::SessionId;
use crate::resources::{ResourceCatalog, ServerResources};
use crate::upstream::Upstream;
use crate::watchdog::Watchdog;

/// A server's own instructions are cut to this many bytes in the gateway's (one verbose child
/// must not crowd out the rest).
const MAX_CHILD_INSTRUCTIONS: usize = 8 * 1024;

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match crate::redact::cut(text, max) {
        head if head.len() == text.len() => text.into(),
        head => format!("{head}… (cut)").into(),
    }
}

/// How long to gather more tool changes before telling the client (a restart storm or a burst
/// of child list_changed notifications becomes one notification).
const LIST_CHANGED_DEBOUNCE: Duration = Duration::from_millis(50);
/// Least time between two list_changed notifications.
const LIST_CHANGED_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Options that are not configuration: how this process runs.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    /// The gateway's own executable, re-run as the watchdog. None: no watchdog (library use).
    pub watchdog_exe: Option<PathBuf>,
    /// Where last known catalogs are kept for instant start.
    pub catalog_cache: CatalogCache,
    /// The gateway's own tools (health is always there).
    pub local_tools: LocalTools,
}

/// The running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    children: Vec<ChildHandle>,
    catalog: RwLock<Arc<BuiltCatalog>>,
    rebuild: Mutex<()>,
    /// Bumped by child tasks whenever a server's tools change.
    generation: Arc<AtomicU64>,
    front: FrontSink,
    started: Instant,
    started_wall: SystemTime,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    watchdog: Option<Arc<Watchdog>>,
    /// Calls waiting for their server, by client id, so that a cancellation reaches them too
    /// (calls already sent are cancelled through their child's connection).
    parked: dashmap::DashMap<(SessionId, Box<str>), CancellationToken>,
    log: Arc<EventLog>,
    /// The gateway's own tools.
    local: LocalTools,
    /// The client sessions being served.
    sessions: Arc<Sessions>,
    /// Children's requests sent to client sessions and not yet answered.
    upstream: Arc<Upstream>,
    /// The level children were last set to (0: none).
    applied_log_level: std::sync::atomic::AtomicU8,
}

/// Every merged list, built together from one snapshot of the children.
pub struct BuiltCatalog {
    generation: u64,
    catalog: Arc<Catalog>,
    prompts: Arc<PromptCatalog>,
    resources: Arc<ResourceCatalog>,
}

impl BuiltCatalog {
    /// The merged list of `kind`.
    pub fn merged(&self, kind: ListKind) -> &Merged {
        match kind {
            ListKind::Tools => self.catalog.merged(),
            ListKind::Prompts => self.prompts.merged(),
            ListKind::Resources => self.resources.resources(),
            ListKind::ResourceTemplates => self.resources.templates(),
        }
    }
}

impl Gateway {
    /// Starts every child in parallel and returns at once. Lines for the client go to
    /// `front` (the process's stdout when serving, nowhere for one-shot commands).
    pub fn start(config: Config, front: FrontSink, options: StartOptions) -> std::io::Result<Self> {
        let watchdog = match &options.watchdog_exe {
            Some(exe) => Some(Arc::new(Watchdog::spawn(exe)?)),
            None => None,
        };
        // One redactor for every child: a secret configured for one server may still be
        // printed by another (they all inherit the gateway's environment).
        let redactor = Arc::new(Redactor::for_config(&config));
        let children: Vec<ChildHandle> = config
            .servers
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, s)| ChildHandle::new(i, s, redactor.clone()))
            .collect();
        for child in &children {
            if let Some(tools) = options.catalog_cache.load(child.spec()) {
                tracing::debug!(
                    server = child.name(),
                    tools = tools.len(),
                    "using the cached catalog until the child is ready"
                );
                child.seed_tools(tools);
            }
            if let Some(text) = options.catalog_cache.load_instructions(child.spec()) {
                child.seed_instructions(text);
            }
        }
        let generation = Arc::new(AtomicU64::new(1));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let sessions: Arc<Sessions> = Arc::default();
        let upstream = Upstream::new(sessions.clone());
        let gw = Gateway {
            inner: Arc::new(Inner {
                catalog: RwLock::new(Arc::new(BuiltCatalog {
                    generation: 0,
                    catalog: Arc::default(),
                    prompts: Arc::default(),
                    resources: Arc::default(),
                })),
                rebuild: Mutex::new(()),
                generation: generation.clone(),
                front: front.clone(),
                started: Instant::now(),
                started_wall: SystemTime::now(),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                watchdog,
                parked: dashmap::DashMap::new(),
                log: Arc::new(EventLog::new(redactor)),
                local: options.local_tools.clone(),
                sessions,
                upstream,
                applied_log_level: Default::default(),
                children,
                config,
            }),
        };
        let weak = Arc::downgrade(&gw.inner);
        let fallback_of: task::FallbackOf = Arc::new(move |server: &str| {
            let gw = Gateway {
                inner: weak.upgrade()?,
            };
            gw.live_fallback(server)
        });
        let weak = Arc::downgrade(&gw.inner);
        let retry: RetryFn = Arc::new(move |call| {
            if let Some(inner) = weak.upgrade() {
                crate::route::retry_call(Gateway { inner }, call);
            }
        });
        let cx = TaskContext {
            events: task::Events::new(events_tx, generation),
            shutdown: gw.inner.shutdown.clone(),
            watchdog: gw.inner.watchdog.clone(),
            grace: gw.inner.config.gateway.shutdown_grace,
            log: gw.inner.log.clone(),
            fallback_of,
            cache: options.catalog_cache.clone(),
            retry,
            sessions: gw.inner.sessions.clone(),
            upstream: gw.inner.upstream.clone(),
        };
        for child in &gw.inner.children {
            gw.inner
                .tracker
                .spawn(task::run(child.shared.clone(), cx.clone()));
        }
        gw.inner
            .tracker
            .spawn(announce_changes(gw.clone(), events_rx));
        Ok(gw)
    }

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
        let resources = Arc::new(ResourceCatalog::build(
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

    /// The `instructions` given to the client at initialize.
    pub fn instructions(&self) -> String {
        let names: Vec<&str> = self.inner.children.iter().map(ChildHandle::name).collect();
        let separator = &self.inner.config.gateway.separator;
        let mut text = format!(
            "mcp-orchestra aggregates {} MCP servers ({}). Their tools and prompts are named \
             <server>{separator}<name>. Call {} to see which servers and domains are up, what \
             failed and why.",
            names.len(),
            names.join(", "),
            health::TOOL_NAME
        );
        // Each server's own instructions, under its name: known once it has been ready (now,
        // or in the last run with this same configuration).
        for child in &self.inner.children {
            let Some(own) = child.instructions() else {
                continue;
            };
            let name = child.name();
            let _ = write!(
                text,
                "\n\n## Server \"{name}\" (its tools and prompts are {name}{separator}*)\n\n{}",
                cut(&own, MAX_CHILD_INSTRUCTIONS)
            );
        }
        text
    }

    /// Stops every child (stdin EOF, SIGTERM, SIGKILL to its group; reaped), waits with a
    /// deadline and names whatever did not stop.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let grace = self.inner.config.gateway.shutdown_grace;
        // EOF wait + SIGTERM grace + reap, with margin.
        let deadline = grace * 2 + Duration::from_secs(5);
        if tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_err()
        {
            let stuck: Vec<&str> = self
                .inner
                .children
                .iter()
                .filter(|c| c.state() != State::Stopped)
                .map(ChildHandle::name)
                .collect();
            tracing::error!(?stuck, ?deadline, "children did not stop in time");
        }
        if let Some(w) = &self.inner.watchdog {
            w.stop();
        }
    }
}

/// Tells the client when the catalog changed: a burst of changes becomes one notification
/// (debounce), and notifications are at least [`LIST_CHANGED_MIN_INTERVAL`] apart, so a
/// restart storm cannot flood the client. A change that is undone before it is announced
/// (down and back up) is not announced at all.
async fn announce_changes(gw: Gateway, mut events: mpsc::UnboundedReceiver<ChildEvent>) {
    let mut last_sent: Option<tokio::time::Instant> = None;
    let shutdown = gw.shutdown_token();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => if e.is_none() { return },
        }
        let mut until = tokio::time::Instant::now() + LIST_CHANGED_DEBOUNCE;
        if let Some(last) = last_sent {
            until = until.max(last + LIST_CHANGED_MIN_INTERVAL);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(until) => {}
        }
        while events.try_recv().is_ok() {}
        // Each session is told about the lists it has seen, when they really changed for it
        // (resources and their templates share one notification).
        let mut sent = false;
        let built = gw.built();
        for session in gw.inner.sessions.list() {
            let mut told: Vec<&str> = Vec::new();
            for kind in ListKind::ALL {
                let method = kind.list_changed();
                if session.list_changed(kind, built.merged(kind).digest())
                    && !told.contains(&method)
                {
                    session.notify(method, None);
                    told.push(method);
                }
            }
            if !told.is_empty() {
                tracing::info!(session = %session.id, lists = ?told, "lists changed; notifying the session");
                sent = true;
            }
        }
        if sent {
            last_sent = Some(tokio::time::Instant::now());
        }
    }
}
