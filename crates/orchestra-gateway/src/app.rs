//! The composition root: start order (watchdog, one task per child, wiring the child tasks
//! to the routes and the sessions, the list_changed announcer) and shutdown. The state it
//! builds is the hub's (`hub/`).

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use orchestra_config::Config;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog_cache::CatalogCache;
use crate::child::connection::RetryFn;
use crate::child::task::{self, ChildEvent, TaskContext};
use crate::child::{ChildHandle, State};
use crate::containment::watchdog::Watchdog;
use crate::events::EventLog;
use crate::health;
use crate::hub::local::{LocalResources, LocalTools};
use crate::hub::{BuiltCatalog, Gateway, Inner};
use crate::listing::ListKind;
use crate::redact::Redactor;
use crate::sessions::Sessions;
use crate::sink::FrontSink;
use crate::upstream::Upstream;

/// How long to gather more tool changes before telling the client (a restart storm or a burst
/// of child list_changed notifications becomes one notification).
const LIST_CHANGED_DEBOUNCE: Duration = Duration::from_millis(50);
/// Least time between two list_changed notifications.
const LIST_CHANGED_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Options that are not configuration: how this process runs.
#[derive(Default, Clone)]
pub struct StartOptions {
    /// The gateway's own executable, re-run as the watchdog. None: no watchdog (library use).
    pub watchdog_exe: Option<PathBuf>,
    /// Where last known catalogs are kept for instant start.
    pub catalog_cache: CatalogCache,
    /// The gateway's own tools (health is always there).
    pub local_tools: LocalTools,
    /// The gateway's own resources (the orchestrator's plans), if any.
    pub local_resources: Option<Arc<dyn LocalResources>>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("watchdog_exe", &self.watchdog_exe)
            .field("local_tools", &self.local_tools)
            .field("local_resources", &self.local_resources.is_some())
            .finish_non_exhaustive()
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
        let changes = task::Events::new(events_tx, generation.clone());
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
                // Health is always the first of the gateway's own tools.
                local: options.local_tools.clone().with_first(health::tool()),
                local_resources: options.local_resources.clone(),
                changes: changes.clone(),
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
            events: changes.clone(),
            shutdown: gw.inner.shutdown.clone(),
            watchdog: gw.inner.watchdog.clone(),
            grace: gw.inner.config.gateway.shutdown_grace,
            log: gw.inner.log.clone(),
            fallback_of,
            cache: options.catalog_cache.clone(),
            retry,
            clients: gw.inner.upstream.clone(),
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
