//! A plan and its subtasks as stored: what was asked (compiled from `orchestrator_plan_task`)
//! and what happened (states, results, executions with the tool calls made meanwhile).
//! Derived facts — ready, blocked through a dependency, progress — are computed here from the
//! stored ones, never stored, so they cannot disagree.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph;

/// One plan (the design document's parent task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The parent task id (`task-…`).
    pub id: String,
    pub description: String,
    /// Whatever the planner passed as `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    pub status: PlanStatus,
    /// The subtask whose `next_action: complete` finished the plan early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_by: Option<usize>,
    pub created_ms: u64,
    pub updated_ms: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamInfo>,
    /// Shared, so that copying a plan of 1,000 subtasks (the store's diff, its cache) copies
    /// pointers; [`Plan::subtask_mut`] copies the one subtask that changes.
    pub subtasks: Vec<Arc<Subtask>>,
}

/// A plan's life: open until every subtask is completed, or until one finishes it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Open,
    /// Every subtask completed.
    Completed,
    /// A subtask completed with `next_action: complete` while others were unfinished.
    Finished,
}

/// A `workflow_stages` entry, kept for guidance and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    pub stage: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// A `parallel_streams` entry, kept for guidance and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    pub sequential: bool,
    /// Its subtasks, in stream order (indexes into the plan).
    pub subtasks: Vec<usize>,
}

/// One subtask: its specification and its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subtask {
    /// Position in the plan; `subtasks[i]` of the request for the ones given there.
    pub index: usize,
    /// `<parent task id>.<index>`.
    pub id: String,
    /// The planner's own id for it (`subtasks[i].id`), usable in `depends_on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub specialist: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Indexes of the subtasks it needs completed first, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    pub origin: Origin,
    pub state: SubtaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Value>,
    /// Why it is blocked (its own `blocked` completion), while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// Every `needs_revision` note, oldest first; kept after the revision is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<u64>,
}

/// Where a subtask came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `subtasks[i]`.
    Given,
    /// A `workflow_stages` entry without subtasks of its own.
    Stage,
    /// A new name in a `parallel_streams` entry's `subtasks`.
    Stream,
    /// A `sync_points` entry.
    SyncPoint,
}

/// What is stored of a subtask's progress. `ready` and "blocked by a dependency" are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubtaskState {
    /// Not started (ready once its dependencies are completed).
    Pending,
    InProgress,
    Completed,
    /// Completed with `next_action: needs_revision`: to be executed again, note kept.
    NeedsRevision,
    /// Completed with `next_action: blocked`; executing it again unblocks it.
    Blocked,
}

/// A `needs_revision` note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub note: String,
    pub at_ms: u64,
}

/// One execution of a subtask: from `execute_subtask` to `complete_subtask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub session: String,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// The `next_action` it ended with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<NextAction>,
    /// The `results` it ended with (a revision note or a blocking reason included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
    /// Ended without completion because another session took the subtask over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_over_by: Option<String>,
    /// The subtask's domain when it was started, and when it was completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_at_start: Option<DomainAt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_at_end: Option<DomainAt>,
    /// The tool calls the session made meanwhile (recorded at completion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<RecordedCall>,
}

/// A domain's mode at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainAt {
    pub domain: String,
    /// "normal" | "degraded" | "lost" | "unknown" (not configured)
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
}

/// A tool call attributed to an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedCall {
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_to: Option<String>,
    pub at_ms: u64,
    pub duration_ms: u64,
    /// The other subtasks (ids) the same session was executing when the call was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// `complete_subtask`'s `next_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    Continue,
    NeedsRevision,
    Blocked,
    Complete,
}

/// Counts of a plan's subtasks by what they are waiting for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub total: usize,
    pub completed: usize,
    pub in_progress: usize,
    /// Can be executed now (`pending` or `needs_revision` with every dependency completed).
    pub ready: usize,
    /// Waiting for dependencies.
    pub waiting: usize,
    pub needs_revision: usize,
    /// Blocked themselves, or through a blocked dependency.
    pub blocked: usize,
}

impl Plan {
    /// Dependencies as adjacency lists, for [`graph`].
    pub fn deps(&self) -> Vec<&[usize]> {
        self.subtasks
            .iter()
            .map(|s| s.depends_on.as_slice())
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.status == PlanStatus::Open
    }

    /// The subtask at `index`, to change (copied first if shared).
    pub fn subtask_mut(&mut self, index: usize) -> &mut Subtask {
        Arc::make_mut(&mut self.subtasks[index])
    }

    /// Finds a subtask by its id.
    pub fn subtask(&self, id: &str) -> Option<&Subtask> {
        let index = index_in_id(&self.id, id)?;
        self.subtasks
            .get(index)
            .map(|s| &**s)
            .filter(|s| s.id == id)
    }

    /// Can be executed now.
    pub fn is_ready(&self, i: usize) -> bool {
        let s = &self.subtasks[i];
        self.is_open()
            && matches!(s.state, SubtaskState::Pending | SubtaskState::NeedsRevision)
            && s.depends_on
                .iter()
                .all(|&d| self.subtasks[d].state == SubtaskState::Completed)
    }

    /// The ready frontier, in plan order.
    pub fn ready(&self) -> Vec<usize> {
        (0..self.subtasks.len())
            .filter(|&i| self.is_ready(i))
            .collect()
    }

    /// The dependencies of `i` that are not completed.
    pub fn missing(&self, i: usize) -> Vec<usize> {
        self.subtasks[i]
            .depends_on
            .iter()
            .copied()
            .filter(|&d| self.subtasks[d].state != SubtaskState::Completed)
            .collect()
    }

    /// For every subtask, the blocked subtask that blocks it: itself when blocked, else the
    /// first blocked one among its (transitive) dependencies; None when nothing blocks it.
    pub fn blocked_roots(&self) -> Vec<Option<usize>> {
        let deps = self.deps();
        let mut root: Vec<Option<usize>> = vec![None; self.subtasks.len()];
        for i in graph::topo_order(&deps) {
            let s = &self.subtasks[i];
            root[i] = if s.state == SubtaskState::Blocked {
                Some(i)
            } else if s.state == SubtaskState::Completed {
                None
            } else {
                s.depends_on.iter().find_map(|&d| root[d])
            };
        }
        root
    }

    pub fn progress(&self) -> Progress {
        let roots = self.blocked_roots();
        let mut p = Progress {
            total: self.subtasks.len(),
            ..Progress::default()
        };
        for (i, s) in self.subtasks.iter().enumerate() {
            match s.state {
                SubtaskState::Completed => p.completed += 1,
                SubtaskState::InProgress => p.in_progress += 1,
                _ if roots[i].is_some() => p.blocked += 1,
                _ if self.is_ready(i) => p.ready += 1,
                _ => p.waiting += 1,
            }
            if s.state == SubtaskState::NeedsRevision {
                p.needs_revision += 1;
            }
        }
        p
    }

    /// The subtasks in an order where each comes after its dependencies (plan order among
    /// independent ones).
    pub fn dependency_order(&self) -> Vec<usize> {
        graph::topo_order(&self.deps())
    }
}

impl Subtask {
    /// The execution still running, if any.
    pub fn running(&self) -> Option<&Execution> {
        self.executions.last().filter(|e| e.ended_ms.is_none())
    }
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Open => "open",
            PlanStatus::Completed => "completed",
            PlanStatus::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(PlanStatus::Open),
            "completed" => Some(PlanStatus::Completed),
            "finished" => Some(PlanStatus::Finished),
            _ => None,
        }
    }
}

impl SubtaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubtaskState::Pending => "pending",
            SubtaskState::InProgress => "in_progress",
            SubtaskState::Completed => "completed",
            SubtaskState::NeedsRevision => "needs_revision",
            SubtaskState::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(SubtaskState::Pending),
            "in_progress" => Some(SubtaskState::InProgress),
            "completed" => Some(SubtaskState::Completed),
            "needs_revision" => Some(SubtaskState::NeedsRevision),
            "blocked" => Some(SubtaskState::Blocked),
            _ => None,
        }
    }
}

impl NextAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NextAction::Continue => "continue",
            NextAction::NeedsRevision => "needs_revision",
            NextAction::Blocked => "blocked",
            NextAction::Complete => "complete",
        }
    }
}

/// A subtask's id: `<parent task id>.<index>`.
pub fn subtask_id(plan_id: &str, index: usize) -> String {
    format!("{plan_id}.{index}")
}

/// A fresh parent task id: `task-` and 10 hex digits, unlikely to repeat across processes
/// and restarts (the store refuses a repeat anyway, and the caller draws again).
pub fn new_plan_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process; time and a counter separate draws within it.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("task-{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// The plan id of a subtask id (plan ids contain no `.`).
pub fn plan_of(subtask_id: &str) -> Option<&str> {
    let (plan, index) = subtask_id.rsplit_once('.')?;
    (!plan.is_empty() && !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
        .then_some(plan)
}

fn index_in_id(plan_id: &str, subtask_id: &str) -> Option<usize> {
    let rest = subtask_id.strip_prefix(plan_id)?.strip_prefix('.')?;
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtask_ids_round_trip() {
        let id = subtask_id("task-ab12", 7);
        assert_eq!(id, "task-ab12.7");
        assert_eq!(plan_of(&id), Some("task-ab12"));
        assert_eq!(index_in_id("task-ab12", &id), Some(7));
        assert_eq!(plan_of("task-ab12"), None);
        assert_eq!(plan_of("task-ab12.x"), None);
        assert_eq!(plan_of(".3"), None);
        let (a, b) = (new_plan_id(), new_plan_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), "task-".len() + 10);
        assert!(!a.contains('.'));
    }
}
