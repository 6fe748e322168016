//! The gateway's own tools (`orchestrator_*`), listed and dispatched like a child's: one
//! registry instead of a special case per tool in the catalog and in dispatch. Health is the
//! first; the Task Orchestrator's tools register here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::app::Gateway;
use crate::health;

/// What a local tool's call returns: the `tools/call` result (content, structuredContent,
/// isError), never a protocol error — a bad argument is a result the model can read.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Value> + Send + 'a>>;

/// One of the gateway's own tools.
pub trait LocalTool: Send + Sync {
    /// Its exposed name (no separator: the gateway's tools are not namespaced by a server).
    fn name(&self) -> &str;
    /// The definition listed in `tools/list`.
    fn definition(&self) -> Value;
    /// Runs a call; `arguments` is the call's raw `arguments` JSON, if any.
    fn call<'a>(&'a self, gw: &'a Gateway, arguments: Option<&'a str>) -> ToolFuture<'a>;
}

/// Every local tool, in listing order.
#[derive(Clone)]
pub struct LocalTools {
    tools: Vec<Arc<dyn LocalTool>>,
}

impl Default for LocalTools {
    fn default() -> Self {
        Self {
            tools: vec![Arc::new(Health)],
        }
    }
}

impl LocalTools {
    /// The registry with `tool` added after the ones already there.
    pub fn with(mut self, tool: Arc<dyn LocalTool>) -> Self {
        self.tools.push(tool);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn LocalTool>> {
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

/// `orchestrator_health`: see [`crate::health`].
struct Health;

impl LocalTool for Health {
    fn name(&self) -> &str {
        health::TOOL_NAME
    }

    fn definition(&self) -> Value {
        health::tool_definition()
    }

    fn call<'a>(&'a self, gw: &'a Gateway, _arguments: Option<&'a str>) -> ToolFuture<'a> {
        Box::pin(async move { health::call(gw) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_registered_and_found_by_name() {
        let tools = LocalTools::default();
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
