//! The orchestrator's errors, and the one conversion to what the model sees: a `tools/call`
//! result with `isError: true` and a message precise enough to act on.

use serde_json::{json, Value};

use crate::store::StoreError;

/// Why a tool call did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments do not parse; the message names the key path.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    /// The plan is rejected; every problem, each at its key path.
    #[error("{}", plan_rejected(.0))]
    Plan(Vec<Problem>),
    #[error("unknown parent_task_id \"{0}\"")]
    UnknownPlan(String),
    #[error("unknown subtask_id \"{0}\" (subtask ids look like \"task-1a2b3c4d5e.3\"; get_status lists them)")]
    UnknownSubtask(String),
    /// Refused in the present state of the plan or subtask; the message says why and what to
    /// do instead.
    #[error("{0}")]
    Refused(String),
    #[error("the task store failed: {0}")]
    Store(#[from] StoreError),
}

/// One thing wrong with a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a key path into the request (`subtasks[2].depends_on[0]`).
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Error {
    /// The `tools/call` result for this error (the only conversion to the wire).
    pub fn to_result(&self) -> Value {
        json!({
            "content": [{ "type": "text", "text": self.to_string() }],
            "isError": true,
        })
    }
}

fn plan_rejected(problems: &[Problem]) -> String {
    let mut out = match problems.len() {
        1 => "plan rejected: 1 problem:".to_string(),
        n => format!("plan rejected: {n} problems:"),
    };
    for p in problems {
        if p.path.is_empty() {
            out.push_str(&format!("\n- {}", p.message));
        } else {
            out.push_str(&format!("\n- {}: {}", p.path, p.message));
        }
    }
    out
}
