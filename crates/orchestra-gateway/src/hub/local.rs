//! The gateway's own tools (`orchestrator_*`), listed and dispatched like a child's: one
//! registry instead of a special case per tool in the catalog and in dispatch. Health is the
//! first; the Task Orchestrator's tools register here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use super::Gateway;
use crate::reply::Caller;

/// What a local tool's call returns: the `tools/call` result (content, structuredContent,
/// isError), never a protocol error — a bad argument is a result the model can read.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Value> + Send + 'a>>;

/// One of the gateway's own tools.
pub trait LocalTool: Send + Sync {
    /// Its exposed name (no separator: the gateway's tools are not namespaced by a server).
    fn name(&self) -> &str;
    /// The definition listed in `tools/list`.
    fn definition(&self) -> Value;
    /// Runs a call for `caller` (its session: the orchestrator keeps per-session state);
    /// `arguments` is the call's raw `arguments` JSON, if any.
    fn call<'a>(
        &'a self,
        gw: &'a Gateway,
        caller: &'a Caller,
        arguments: Option<&'a str>,
    ) -> ToolFuture<'a>;
}

/// The gateway's own resources (the orchestrator's plans): listed before the children's,
/// under a URI scheme of their own, read without a child.
pub trait LocalResources: Send + Sync {
    /// Whether `uri` is one of its own (decided by its scheme).
    fn owns(&self, uri: &str) -> bool;
    /// MCP `Resource` objects, listed first.
    fn list(&self) -> Vec<Value>;
    /// A `resources/read` result, or `None` for a URI it owns but does not know.
    fn read<'a>(&'a self, gw: &'a Gateway, uri: &'a str) -> ReadFuture<'a>;
}

/// What reading a local resource returns.
pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = Option<Value>> + Send + 'a>>;

/// Every local tool's name starts with this: `orchestrator` is a reserved server name, so no
/// child's exposed tool can, and a call to a child's tool (the hot path) is told apart with
/// one short comparison instead of one per local tool.
pub const LOCAL_PREFIX: &str = "orchestrator_";

/// Every local tool, in listing order.
#[derive(Clone)]
pub struct LocalTools {
    tools: Vec<Arc<dyn LocalTool>>,
}

impl Default for LocalTools {
    /// None yet: the composition root (`app.rs`) puts the health tool first.
    fn default() -> Self {
        Self { tools: Vec::new() }
    }
}

impl LocalTools {
    /// The registry with `tool` first, before the ones already there.
    ///
    /// # Panics
    /// When the tool's name does not start with [`LOCAL_PREFIX`] (a programming error).
    pub fn with_first(mut self, tool: Arc<dyn LocalTool>) -> Self {
        assert!(tool.name().starts_with(LOCAL_PREFIX), "{}", tool.name());
        self.tools.insert(0, tool);
        self
    }

    /// The registry with `tool` added after the ones already there.
    ///
    /// # Panics
    /// When the tool's name does not start with [`LOCAL_PREFIX`] (a programming error).
    pub fn with(mut self, tool: Arc<dyn LocalTool>) -> Self {
        assert!(tool.name().starts_with(LOCAL_PREFIX), "{}", tool.name());
        self.tools.push(tool);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn LocalTool>> {
        if !name.starts_with(LOCAL_PREFIX) {
            return None;
        }
        self.tools.iter().find(|t| t.name() == name)
    }

    pub fn definitions(&self) -> Vec<Value> {
        self.tools.iter().map(|t| t.definition()).collect()
    }
}

impl std::fmt::Debug for LocalTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|t| t.name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health;

    #[test]
    fn health_is_registered_and_found_by_name() {
        let tools = LocalTools::default().with_first(crate::health::tool());
        assert!(tools.get(health::TOOL_NAME).is_some());
        assert!(tools.get("orchestrator_nope").is_none());
        let names: Vec<Value> = tools
            .definitions()
            .iter()
            .map(|d| d["name"].clone())
            .collect();
        assert_eq!(names, [Value::from(health::TOOL_NAME)]);
    }
}
