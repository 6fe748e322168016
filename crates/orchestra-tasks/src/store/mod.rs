//! Where plans live. A small interface — insert, get, one atomic read-modify-write, two
//! listings — so that a shared PostgreSQL store for several gateway replicas can come later
//! (`update` maps onto `SELECT … FOR UPDATE`); [`SqliteStore`] is the default.

mod migrations;
mod sqlite;

pub use sqlite::SqliteStore;

use serde::Serialize;

use crate::error::Error;
use crate::model::{Plan, PlanStatus};

/// Persistent plans.
pub trait Store: Send + Sync {
    /// Stores a new plan; `Ok(false)` when a plan with its id exists already.
    fn insert(&self, plan: &Plan) -> Result<bool, StoreError>;

    /// The plan, as stored now.
    fn get(&self, plan_id: &str) -> Result<Option<Plan>, StoreError>;

    /// Changes one plan atomically: `change` edits the plan as stored now; when it returns
    /// `Ok` the edited plan is stored (and returned), else nothing changes and its error is
    /// returned. Concurrent updates of one plan — from threads or from other processes on
    /// the same database — run one after the other, so none is lost. `change` may run more
    /// than once (a store may retry), so it must not have side effects besides the plan.
    /// The number of subtasks never changes. [`Error::UnknownPlan`] when there is no such plan.
    fn update(
        &self,
        plan_id: &str,
        change: &mut dyn FnMut(&mut Plan) -> Result<(), Error>,
    ) -> Result<Plan, Error>;

    /// Every plan (or the open ones), newest first.
    fn plans(&self, open_only: bool) -> Result<Vec<PlanSummary>, StoreError>;

    /// The executions by `session` that overlap `[from_ms, to_ms]` (a running one lasts until
    /// now), in any plan.
    fn executions(
        &self,
        session: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<ExecutionWindow>, StoreError>;
}

/// A plan in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanSummary {
    pub id: String,
    pub description: String,
    pub status: PlanStatus,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub subtasks: usize,
    pub completed: usize,
}

/// When a session executed a subtask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionWindow {
    pub plan_id: String,
    pub subtask: usize,
    /// Which execution of the subtask (0 for the first).
    pub attempt: usize,
    pub session: String,
    pub started_ms: u64,
    /// None while it runs.
    pub ended_ms: Option<u64>,
}

/// The store failed (not the request).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("database {path}: {message}")]
    Database { path: String, message: String },
    #[error("database {path} has schema version {found}; this build knows versions up to {known} (a newer mcp-orchestra wrote it)")]
    Newer {
        path: String,
        found: i64,
        known: usize,
    },
    #[error("database {path}: stored {what} is unreadable: {message}")]
    Corrupt {
        path: String,
        what: String,
        message: String,
    },
}
