//! The Task Orchestrator: the five tools' definitions and dispatch, and plans as MCP
//! resources. It owns a [`Store`] and the [`Specialists`]; everything live (server health,
//! the session's tool calls) comes from the [`Environment`] passed to each call.

use serde_json::{json, Value};

use crate::env::Environment;
use crate::error::Error;
use crate::specialists::Specialists;
use crate::store::Store;
use crate::tools::{self, status::plan_view, synthesize, Ctx};

/// Where plans are listed as resources.
pub const RESOURCE_PREFIX: &str = "orchestrator://plans/";

/// The coordinator of plans, subtasks and specialists.
pub struct Orchestrator {
    store: Box<dyn Store>,
    specialists: Specialists,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Orchestrator {
    pub fn new(store: Box<dyn Store>, specialists: Specialists) -> Self {
        Self {
            store,
            specialists,
            clock: Box::new(crate::time::now_ms),
        }
    }

    /// Replaces the wall clock (unix ms) — tests place executions and calls in time with it.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The five tools' MCP definitions (name, title, description, inputSchema, outputSchema,
    /// annotations), in the order a model uses them.
    pub fn tool_definitions() -> Vec<Value> {
        vec![
            tools::plan::definition(),
            tools::execute::definition(),
            tools::complete::definition(),
            tools::synthesize::definition(),
            tools::status::definition(),
        ]
    }

    /// Whether `tool` is one of the orchestrator's.
    pub fn is_tool(tool: &str) -> bool {
        tools::NAMES.contains(&tool)
    }

    /// One tool call: `arguments` is the raw `arguments` JSON (None if absent). Returns the
    /// MCP `CallToolResult`: readable `content` and `structuredContent`, or `isError: true`
    /// with a precise message for bad input or a refused operation. Blocking (the store):
    /// call it off the async runtime.
    pub fn call(
        &self,
        tool: &str,
        arguments: Option<&str>,
        session: &str,
        env: &dyn Environment,
    ) -> Value {
        let ctx = Ctx {
            store: self.store.as_ref(),
            specialists: &self.specialists,
            env,
            session,
            now: (self.clock)(),
        };
        let result = match tool {
            tools::PLAN_TASK => tools::plan::run(&ctx, arguments),
            tools::EXECUTE_SUBTASK => tools::execute::run(&ctx, arguments),
            tools::COMPLETE_SUBTASK => tools::complete::run(&ctx, arguments),
            tools::SYNTHESIZE_RESULTS => tools::synthesize::run(&ctx, arguments),
            tools::GET_STATUS => tools::status::run(&ctx, arguments),
            other => Err(Error::Refused(format!(
                "unknown tool \"{other}\": the orchestrator's tools are {}",
                tools::quoted(tools::NAMES)
            ))),
        };
        match result {
            Ok(reply) => reply.into_result(),
            Err(e) => e.to_result(),
        }
    }

    /// Every plan as two MCP `Resource`s: `orchestrator://plans/<id>` (the plan as JSON) and
    /// `orchestrator://plans/<id>/synthesis` (markdown). Empty when the store fails (the
    /// failure is in the next read).
    pub fn resources(&self) -> Vec<Value> {
        let Ok(plans) = self.store.plans(false) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(plans.len() * 2);
        for p in plans {
            let what = format!(
                "{} of {} subtasks completed, {}",
                p.completed,
                p.subtasks,
                p.status.as_str()
            );
            out.push(json!({
                "uri": format!("{RESOURCE_PREFIX}{}", p.id),
                "name": p.id,
                "title": format!("Plan: {}", p.description),
                "description": format!("The plan {} as JSON ({what}).", p.id),
                "mimeType": "application/json",
            }));
            out.push(json!({
                "uri": format!("{RESOURCE_PREFIX}{}/synthesis", p.id),
                "name": format!("{}/synthesis", p.id),
                "title": format!("Synthesis: {}", p.description),
                "description": format!("What was done in plan {}, as markdown ({what}).", p.id),
                "mimeType": "text/markdown",
            }));
        }
        out
    }

    /// A `ReadResourceResult` (`{"contents": [...]}`), or None when the URI is not one of
    /// ours or names no plan.
    pub fn read_resource(&self, uri: &str, env: &dyn Environment) -> Option<Value> {
        let rest = uri.strip_prefix(RESOURCE_PREFIX)?;
        let (id, synthesis) = match rest.strip_suffix("/synthesis") {
            Some(id) => (id, true),
            None => (rest, false),
        };
        if id.is_empty() || id.contains('/') {
            return None;
        }
        let plan = self.store.get(id).ok()??;
        let content = if synthesis {
            let s = synthesize::synthesis(&plan);
            json!({ "uri": uri, "mimeType": "text/markdown", "text": synthesize::markdown(&plan, &s) })
        } else {
            let status = plan_view(&plan, &env.snapshot(), false);
            let body = json!({ "plan": plan, "status": status });
            json!({
                "uri": uri,
                "mimeType": "application/json",
                "text": serde_json::to_string_pretty(&body).expect("plans serialize"),
            })
        };
        Some(json!({ "contents": [content] }))
    }
}
