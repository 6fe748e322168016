//! The five tools: each module has its definition (input and output schema) and its run.
//! Every run returns readable text plus structured content matching its output schema, or an
//! [`Error`] that becomes an `isError` result.

pub mod complete;
pub mod execute;
pub mod plan;
pub mod status;
pub mod synthesize;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::env::Environment;
use crate::error::Error;
use crate::model::{Plan, Subtask};
use crate::specialists::Specialists;
use crate::store::Store;
pub use crate::text::{count, quoted};

pub const PLAN_TASK: &str = "orchestrator_plan_task";
pub const EXECUTE_SUBTASK: &str = "orchestrator_execute_subtask";
pub const COMPLETE_SUBTASK: &str = "orchestrator_complete_subtask";
pub const SYNTHESIZE_RESULTS: &str = "orchestrator_synthesize_results";
pub const GET_STATUS: &str = "orchestrator_get_status";

/// The orchestrator's own tools: calls to them are bookkeeping, not work, so they are not
/// attributed to subtasks.
pub const NAMES: [&str; 5] = [
    PLAN_TASK,
    EXECUTE_SUBTASK,
    COMPLETE_SUBTASK,
    SYNTHESIZE_RESULTS,
    GET_STATUS,
];

/// Everything one call may use.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub specialists: &'a Specialists,
    pub env: &'a dyn Environment,
    pub session: &'a str,
    pub now: u64,
}

/// Readable text and structured content.
pub struct Reply {
    pub text: String,
    pub structured: Value,
}

impl Reply {
    pub fn new(text: String, structured: impl Serialize) -> Self {
        Self {
            text,
            structured: serde_json::to_value(structured).expect("tool output serializes"),
        }
    }

    /// The `tools/call` result.
    pub fn into_result(self) -> Value {
        json!({
            "content": [{ "type": "text", "text": self.text }],
            "structuredContent": self.structured,
        })
    }
}

/// A subtask named in a reply.
#[derive(Debug, Clone, Serialize)]
pub struct SubtaskRef {
    pub id: String,
    pub title: String,
    pub specialist: String,
}

impl SubtaskRef {
    pub fn of(s: &Subtask) -> Self {
        Self {
            id: s.id.clone(),
            title: s.title.clone(),
            specialist: s.specialist.clone(),
        }
    }
}

/// The arguments, strictly: an unknown key or a wrong type is an error naming its path.
pub fn parse<T: DeserializeOwned>(arguments: Option<&str>) -> Result<T, Error> {
    let text = arguments.unwrap_or("{}");
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::Arguments(inner.to_string())
        } else {
            Error::Arguments(format!("{path}: {inner}"))
        }
    })
}

/// The plan a subtask id belongs to, or why not.
pub fn load_plan_of(store: &dyn Store, subtask_id: &str) -> Result<Plan, Error> {
    let plan_id = crate::model::plan_of(subtask_id)
        .ok_or_else(|| Error::UnknownSubtask(subtask_id.to_string()))?;
    let plan = store
        .get(plan_id)?
        .ok_or_else(|| Error::UnknownSubtask(subtask_id.to_string()))?;
    if plan.subtask(subtask_id).is_none() {
        return Err(Error::UnknownSubtask(subtask_id.to_string()));
    }
    Ok(plan)
}

/// The JSON schema of a subtask reference list (shared by output schemas).
pub fn subtask_ref_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "title": { "type": "string" },
            "specialist": { "type": "string" }
        },
        "required": ["id", "title", "specialist"]
    })
}

/// The progress counts' schema.
pub fn progress_schema() -> Value {
    let count = json!({ "type": "integer", "minimum": 0 });
    json!({
        "type": "object",
        "properties": {
            "total": count, "completed": count, "in_progress": count, "ready": count,
            "waiting": count, "needs_revision": count, "blocked": count
        },
        "required": ["total", "completed", "in_progress", "ready", "waiting", "needs_revision", "blocked"]
    })
}
