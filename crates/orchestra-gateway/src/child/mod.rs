//! One configured child server: its handle (this file), the task that owns its process
//! ([`task`]), the JSON-RPC session ([`connection`]), its state ([`state`]) and statistics.

pub mod backoff;
pub mod clients;
pub mod connection;
pub(crate) mod link;
pub mod lists;
pub mod process;
pub mod state;
pub mod stats;
pub mod stderr;
pub(crate) mod task;

use std::sync::{Arc, Mutex, RwLock};

use orchestra_config::Server;
use serde_json::Value;
use tokio::sync::watch;

pub use connection::Connection;
pub use state::{State, Status};
pub use stats::Stats;
pub use stderr::StderrTail;

use crate::listing::ListKind;
use crate::redact::Redactor;

/// The gateway's handle on one child server. Cheap to clone; the owning task lives as long as
/// the gateway and is the only writer of status, connection and tools.
#[derive(Clone)]
pub struct ChildHandle {
    pub(crate) shared: Arc<ChildShared>,
}

pub(crate) struct ChildShared {
    pub index: usize,
    pub spec: Server,
    pub name: Arc<str>,
    pub status: watch::Sender<Status>,
    pub conn: RwLock<Option<Arc<Connection>>>,
    /// The tools exposed for this server (config filters applied), as the child defined them.
    pub tools: Mutex<Arc<Vec<Value>>>,
    /// How many of the child's tools the config's filters hide.
    pub hidden_tools: std::sync::atomic::AtomicUsize,
    /// The child's tool definitions that were repaired or dropped at its last listing.
    pub tool_report: Mutex<Arc<crate::tool_def::ToolReport>>,
    /// The child's prompts, resources and resource templates (empty for a capability it
    /// does not declare), with why a listing failed (its tools are served anyway).
    pub lists: lists::OptionalLists,
    /// The `instructions` the child gave at `initialize` (or, until it is ready, last time).
    pub instructions: Mutex<Option<Arc<str>>>,
    /// `tools` came from the catalog cache and the child has not listed them itself yet.
    pub provisional: std::sync::atomic::AtomicBool,
    pub stats: Arc<Stats>,
    pub stderr: StderrTail,
    /// Removes secrets from what the child writes before the gateway shows it.
    pub redactor: Arc<Redactor>,
}

impl ChildShared {
    /// `text` (a reason that may quote the child) with secrets redacted.
    pub fn redact(&self, text: String) -> String {
        self.redactor.redact_owned(text)
    }
}

impl ChildHandle {
    pub(crate) fn new(index: usize, spec: Server, redactor: Arc<Redactor>) -> Self {
        let name: Arc<str> = spec.name.as_str().into();
        Self {
            shared: Arc::new(ChildShared {
                index,
                name,
                spec,
                status: watch::Sender::new(Status::starting()),
                conn: RwLock::new(None),
                tools: Mutex::new(Arc::new(Vec::new())),
                lists: Default::default(),
                instructions: Mutex::new(None),
                hidden_tools: Default::default(),
                tool_report: Default::default(),
                provisional: Default::default(),
                stats: Arc::new(Stats::new(redactor.clone())),
                stderr: StderrTail::new(redactor.clone()),
                redactor,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its index in the configuration.
    pub fn index(&self) -> usize {
        self.shared.index
    }

    pub fn spec(&self) -> &Server {
        &self.shared.spec
    }

    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    pub fn state(&self) -> State {
        self.shared.status.borrow().state
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    /// The live session, if the child is up.
    pub fn connection(&self) -> Option<Arc<Connection>> {
        self.shared
            .conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tools this server exposes right now (empty unless ready).
    pub fn tools(&self) -> Arc<Vec<Value>> {
        self.shared
            .tools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The prompts this server defines (its last listing; listed to the client only while
    /// [`ChildHandle::is_listed`]).
    pub fn prompts(&self) -> Arc<Vec<Value>> {
        self.shared.lists.get(ListKind::Prompts)
    }

    /// One of this server's lists (its last listing), tools included.
    pub fn list(&self, kind: ListKind) -> Arc<Vec<Value>> {
        match kind {
            ListKind::Tools => self.tools(),
            _ => self.shared.lists.get(kind),
        }
    }

    /// Why the last listing of `feature` failed, if it did (redacted: it may quote the child).
    pub fn list_error(&self, feature: lists::Feature) -> Option<String> {
        self.shared.lists.error(feature)
    }

    /// Entries of `feature`'s lists left out at the last listing (no key, a repeated key).
    pub fn list_dropped(&self, feature: lists::Feature) -> Vec<String> {
        self.shared.lists.dropped(feature)
    }

    /// The child's own `instructions`, if it gave any.
    pub fn instructions(&self) -> Option<Arc<str>> {
        self.shared
            .instructions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Seeds the instructions from the catalog cache before the first start.
    pub(crate) fn seed_instructions(&self, text: String) {
        *self
            .shared
            .instructions
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(text.into());
    }

    /// Why the last prompts listing failed, if it did (redacted: it may quote the child).
    pub fn prompts_error(&self) -> Option<String> {
        self.list_error(lists::Feature::Prompts)
    }

    /// Whether the child declared `feature` in its current life (or its last one).
    pub fn declares(&self, feature: lists::Feature) -> bool {
        lists::declares(self.shared.status.borrow().capabilities.as_ref(), feature)
    }

    /// Whether the client sees this server's tools: it is ready, or it is still starting and
    /// its tools are known from the last run (instant start).
    pub fn is_listed(&self) -> bool {
        match self.state() {
            State::Ready => true,
            State::Starting => self
                .shared
                .provisional
                .load(std::sync::atomic::Ordering::Acquire),
            _ => false,
        }
    }

    /// Seeds the tools from the catalog cache before the first start. They are checked again:
    /// a cache written by an older version may hold definitions strict clients reject.
    pub(crate) fn seed_tools(&self, tools: Vec<Value>) {
        let (tools, _) = crate::tool_def::sanitize(tools);
        *self.shared.tools.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(tools);
        self.shared
            .provisional
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn hidden_tools(&self) -> usize {
        self.shared
            .hidden_tools
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The tool definitions repaired or dropped when the child last listed its tools.
    pub fn tool_report(&self) -> Arc<crate::tool_def::ToolReport> {
        self.shared
            .tool_report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn stderr_tail(&self) -> Vec<String> {
        self.shared.stderr.snapshot()
    }
}
