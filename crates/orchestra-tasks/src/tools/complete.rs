//! `orchestrator_complete_subtask`: record the results, honour `next_action`, attribute the
//! tool calls the executing session made meanwhile (shared when it was executing several
//! subtasks), and return progress plus every subtask that is ready now.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    count, load_plan_of, parse, progress_schema, quoted, subtask_ref_schema, Ctx, Reply,
    SubtaskRef, COMPLETE_SUBTASK, NAMES,
};
use crate::error::Error;
use crate::live;
use crate::model::{
    subtask_id, NextAction, Plan, PlanStatus, Progress, RecordedCall, Revision, SubtaskState,
};

/// Results bigger than this are refused (they are injected into every dependent's guidance).
pub const MAX_RESULTS_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    subtask_id: String,
    results: String,
    #[serde(default)]
    artifacts: Vec<Value>,
    next_action: NextAction,
}

#[derive(Serialize)]
struct Output {
    subtask_id: String,
    title: String,
    next_action: NextAction,
    state: SubtaskState,
    plan_status: PlanStatus,
    progress: Progress,
    /// Every subtask that can be executed now.
    ready: Vec<SubtaskRef>,
    /// The ones among them that became ready through this completion.
    newly_ready: Vec<String>,
    /// Subtasks that cannot proceed while this one is blocked.
    blocked_dependents: Vec<String>,
    /// Incomplete subtasks of a plan finished early.
    unfinished: Vec<String>,
    calls_recorded: usize,
    calls_shared: usize,
}

pub fn definition() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "name": COMPLETE_SUBTASK,
        "title": "Complete a subtask",
        "description": "Finish executing a subtask. next_action: \"continue\" (done; its dependents may start), \"needs_revision\" (reopen it; `results` is the revision note, kept), \"blocked\" (it cannot go on; `results` is the reason; its dependents wait; executing it again unblocks it), \"complete\" (done, and the whole plan is finished now, unfinished subtasks kept visible). Returns progress and every subtask that is ready now, so parallel streams proceed together. The tool calls made through the gateway while it was executed are recorded for it.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "subtask_id": { "type": "string" },
                "results": { "type": "string", "description": "What was done (or the revision note, or why it is blocked)." },
                "artifacts": { "type": "array", "items": { "type": ["string", "object"] }, "description": "Files, URIs or objects it produced." },
                "next_action": { "type": "string", "enum": ["continue", "needs_revision", "blocked", "complete"] }
            },
            "required": ["subtask_id", "results", "next_action"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "subtask_id": { "type": "string" },
                "title": { "type": "string" },
                "next_action": { "type": "string", "enum": ["continue", "needs_revision", "blocked", "complete"] },
                "state": { "type": "string", "enum": ["pending", "in_progress", "completed", "needs_revision", "blocked"] },
                "plan_status": { "type": "string", "enum": ["open", "completed", "finished"] },
                "progress": progress_schema(),
                "ready": { "type": "array", "items": subtask_ref_schema() },
                "newly_ready": strings,
                "blocked_dependents": strings,
                "unfinished": strings,
                "calls_recorded": { "type": "integer", "minimum": 0 },
                "calls_shared": { "type": "integer", "minimum": 0 }
            },
            "required": ["subtask_id", "title", "next_action", "state", "plan_status", "progress", "ready", "newly_ready", "blocked_dependents", "unfinished", "calls_recorded", "calls_shared"]
        },
        "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false }
    })
}

pub fn run(ctx: &Ctx, arguments: Option<&str>) -> Result<Reply, Error> {
    let input: Input = parse(arguments)?;
    if input.results.len() > MAX_RESULTS_BYTES {
        return Err(Error::Arguments(format!(
            "results: {} bytes is more than the {MAX_RESULTS_BYTES} allowed; put long output in an artifact (a file) and summarize",
            input.results.len()
        )));
    }
    let plan = load_plan_of(ctx.store, &input.subtask_id)?;
    let s = plan.subtask(&input.subtask_id).expect("checked");
    let i = s.index;
    let Some(run) = s.running().filter(|_| s.state == SubtaskState::InProgress) else {
        return Err(not_in_progress(&plan, i));
    };
    let attempt = s.executions.len() - 1;
    let session = run.session.clone();
    let calls = attributed_calls(ctx, &plan.id, i, &session, run.started_ms)?;
    let domain_at_end = s
        .domain
        .as_deref()
        .map(|d| live::domain_at(&ctx.env.snapshot(), d));

    let mut out: Option<Output> = None;
    let updated = ctx.store.update(&plan.id, &mut |p| {
        // Re-checked inside the transaction: another session may have got here first.
        let s = &p.subtasks[i];
        if s.state != SubtaskState::InProgress || s.executions.len() != attempt + 1 {
            return Err(Error::Refused(format!(
                "subtask {} \"{}\" changed meanwhile (it is {} now): another session completed or took it over",
                s.id,
                s.title,
                s.state.as_str()
            )));
        }
        let ready_before: HashSet<usize> = p.ready().into_iter().collect();
        let s = p.subtask_mut(i);
        let e = s.executions.last_mut().expect("running");
        e.ended_ms = Some(ctx.now);
        e.outcome = Some(input.next_action);
        e.results = Some(input.results.clone());
        e.calls = calls.clone();
        e.domain_at_end = domain_at_end.clone();
        if !input.artifacts.is_empty() {
            s.artifacts = input.artifacts.clone();
        }
        match input.next_action {
            NextAction::Continue | NextAction::Complete => {
                s.state = SubtaskState::Completed;
                s.results = Some(input.results.clone());
                s.completed_ms = Some(ctx.now);
            }
            NextAction::NeedsRevision => {
                s.state = SubtaskState::NeedsRevision;
                s.revisions.push(Revision {
                    note: input.results.clone(),
                    at_ms: ctx.now,
                });
            }
            NextAction::Blocked => {
                s.state = SubtaskState::Blocked;
                s.blocked_reason = Some(input.results.clone());
            }
        }
        if p.subtasks.iter().all(|s| s.state == SubtaskState::Completed) {
            p.status = PlanStatus::Completed;
        } else if input.next_action == NextAction::Complete && p.is_open() {
            p.status = PlanStatus::Finished;
            p.finished_by = Some(i);
        }
        p.updated_ms = ctx.now;
        let ready = p.ready();
        let newly_ready = ready.iter().filter(|r| !ready_before.contains(r)).map(|&r| p.subtasks[r].id.clone()).collect();
        let roots = p.blocked_roots();
        let blocked_dependents = (0..p.subtasks.len())
            .filter(|&j| j != i && roots[j] == Some(i))
            .map(|j| p.subtasks[j].id.clone())
            .collect();
        let unfinished = if p.status == PlanStatus::Finished {
            p.subtasks.iter().filter(|s| s.state != SubtaskState::Completed).map(|s| s.id.clone()).collect()
        } else {
            Vec::new()
        };
        let s = &p.subtasks[i];
        out = Some(Output {
            subtask_id: s.id.clone(),
            title: s.title.clone(),
            next_action: input.next_action,
            state: s.state,
            plan_status: p.status,
            progress: p.progress(),
            ready: ready.iter().map(|&r| SubtaskRef::of(&p.subtasks[r])).collect(),
            newly_ready,
            blocked_dependents,
            unfinished,
            calls_recorded: calls.len(),
            calls_shared: calls.iter().filter(|c| !c.shared_with.is_empty()).count(),
        });
        Ok(())
    })?;
    unwatch_if_idle(ctx, &session);
    let out = out.expect("set by a successful update");
    Ok(Reply::new(text(&updated, &out), out))
}

/// Stops journaling `session` when it is executing nothing any more.
pub fn unwatch_if_idle(ctx: &Ctx, session: &str) {
    match ctx.store.executions(session, ctx.now, ctx.now) {
        Ok(windows) if windows.iter().all(|w| w.ended_ms.is_some()) => {
            ctx.env.watch(session, false)
        }
        // On a store error keep journaling: a few extra calls kept beats calls lost.
        _ => {}
    }
}

/// The calls `session` made since `started_ms` (the orchestrator's own tools left out),
/// each marked with the other subtasks the session was executing when it was made.
fn attributed_calls(
    ctx: &Ctx,
    plan_id: &str,
    i: usize,
    session: &str,
    started_ms: u64,
) -> Result<Vec<RecordedCall>, Error> {
    let calls: Vec<_> = ctx
        .env
        .calls(session, started_ms)
        .into_iter()
        .filter(|c| {
            c.at_ms >= started_ms && c.at_ms <= ctx.now && !NAMES.contains(&c.tool.as_str())
        })
        .collect();
    let windows = if calls.is_empty() {
        Vec::new()
    } else {
        ctx.store.executions(session, started_ms, ctx.now)?
    };
    Ok(calls
        .into_iter()
        .map(|c| {
            let mut shared_with: Vec<String> = windows
                .iter()
                .filter(|w| !(w.plan_id == plan_id && w.subtask == i))
                .filter(|w| w.started_ms <= c.at_ms && w.ended_ms.is_none_or(|end| c.at_ms <= end))
                .map(|w| subtask_id(&w.plan_id, w.subtask))
                .collect();
            shared_with.dedup();
            RecordedCall {
                tool: c.tool,
                server: c.server,
                outcome: c.outcome,
                failover_to: c.failover_to,
                at_ms: c.at_ms,
                duration_ms: c.duration_ms,
                shared_with,
            }
        })
        .collect())
}

/// The refusal for completing a subtask that is not being executed.
fn not_in_progress(plan: &Plan, i: usize) -> Error {
    let s = &plan.subtasks[i];
    let what = match s.state {
        SubtaskState::Completed => "is already completed".to_string(),
        SubtaskState::Blocked => format!(
            "is blocked ({}); execute it again to unblock it, then complete it",
            s.blocked_reason.as_deref().unwrap_or("no reason given")
        ),
        _ if plan.is_ready(i) => {
            "is not being executed: call orchestrator_execute_subtask for it first".to_string()
        }
        _ if !plan.is_open() => format!(
            "was not started, and plan {} is {}",
            plan.id,
            plan.status.as_str()
        ),
        _ => {
            let missing: Vec<&str> = plan
                .missing(i)
                .iter()
                .map(|&d| plan.subtasks[d].title.as_str())
                .collect();
            format!(
                "is not being executed, and cannot start before {} {} completed",
                quoted(&missing),
                if missing.len() == 1 { "is" } else { "are" }
            )
        }
    };
    Error::Refused(format!("subtask {} \"{}\" {what}", s.id, s.title))
}

fn text(plan: &Plan, out: &Output) -> String {
    let p = &out.progress;
    let title = |id: &String| {
        plan.subtask(id)
            .map(|s| s.title.clone())
            .unwrap_or_default()
    };
    let mut t = match out.next_action {
        NextAction::Continue => format!("Completed {} \"{}\".", out.subtask_id, out.title),
        NextAction::Complete => format!(
            "Completed {} \"{}\" and finished the plan.",
            out.subtask_id, out.title
        ),
        NextAction::NeedsRevision => format!(
            "{} \"{}\" needs revision: reopened, note kept; execute it again.",
            out.subtask_id, out.title
        ),
        NextAction::Blocked => format!(
            "{} \"{}\" is blocked; execute it again once the cause is gone.",
            out.subtask_id, out.title
        ),
    };
    t.push_str(&format!(
        "\nPlan {} is {}: {} of {} subtasks completed, {} in progress, {} ready, {} waiting, {} blocked.",
        plan.id, out.plan_status.as_str(), p.completed, p.total, p.in_progress, p.ready, p.waiting, p.blocked
    ));
    if out.calls_recorded > 0 {
        t.push_str(&format!(
            "\nRecorded {} for it ({} shared with other subtasks the session was executing).",
            count(out.calls_recorded, "tool call"),
            out.calls_shared
        ));
    }
    if !out.blocked_dependents.is_empty() {
        t.push_str(&format!(
            "\nWaiting on it while it is blocked: {}.",
            quoted(out.blocked_dependents.iter().map(title))
        ));
    }
    if !out.unfinished.is_empty() {
        t.push_str(&format!(
            "\nUnfinished (kept visible): {}.",
            quoted(out.unfinished.iter().map(title))
        ));
    }
    if out.ready.is_empty() {
        if out.plan_status == PlanStatus::Open {
            t.push_str("\nNothing is ready now.");
        } else {
            t.push_str("\nNext: orchestrator_synthesize_results.");
        }
    } else {
        t.push_str("\nReady now (all can proceed in parallel):");
        for r in &out.ready {
            let new = if out.newly_ready.contains(&r.id) {
                " (new)"
            } else {
                ""
            };
            t.push_str(&format!(
                "\n- {} \"{}\" [{}]{new}",
                r.id, r.title, r.specialist
            ));
        }
    }
    t
}
