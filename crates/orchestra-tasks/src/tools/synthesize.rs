//! `orchestrator_synthesize_results`: what really happened. Completed results and artifacts
//! in dependency order; what is incomplete or blocked, and why; what was done while its
//! domain was degraded or lost; and per subtask the tool calls the model made through the
//! gateway while executing it. The summary sentence is computed from the states — "all
//! completed" only when they all are.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::execute::artifacts_text;
use super::{parse, progress_schema, quoted, Ctx, Reply, SYNTHESIZE_RESULTS};
use crate::error::Error;
use crate::model::{DomainAt, Plan, PlanStatus, Progress, RecordedCall, SubtaskState};
use crate::time::rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    parent_task_id: String,
}

#[derive(Serialize)]
pub struct Synthesis {
    parent_task_id: String,
    description: String,
    status: PlanStatus,
    summary: String,
    progress: Progress,
    /// Every subtask, in dependency order.
    subtasks: Vec<Entry>,
    completed: Vec<String>,
    incomplete: Vec<String>,
    blocked: Vec<String>,
    degraded: Vec<String>,
    tool_calls: usize,
}

#[derive(Serialize)]
struct Entry {
    id: String,
    title: String,
    specialist: String,
    state: SubtaskState,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<String>,
    artifacts: Vec<Value>,
    revision_notes: Vec<String>,
    /// Why it cannot proceed (blocked itself, or through a blocked dependency).
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<String>,
    /// Dependencies not completed.
    waiting_for: Vec<String>,
    /// Its domain when it was not normal while it was executed.
    degraded_domain: Vec<DomainAt>,
    executions: usize,
    calls: Vec<CallView>,
}

#[derive(Serialize)]
struct CallView {
    tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover_to: Option<String>,
    at: String,
    duration_ms: u64,
    shared_with: Vec<String>,
}

pub fn definition() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let entries = json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "title": { "type": "string" },
                "specialist": { "type": "string" },
                "state": { "type": "string", "enum": ["pending", "in_progress", "completed", "needs_revision", "blocked"] },
                "results": { "type": "string" },
                "artifacts": { "type": "array" },
                "revision_notes": strings,
                "blocked": { "type": "string" },
                "waiting_for": strings,
                "degraded_domain": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": { "domain": { "type": "string" }, "mode": { "type": "string" }, "serving": { "type": "string" } },
                        "required": ["domain", "mode"]
                    }
                },
                "executions": { "type": "integer", "minimum": 0 },
                "calls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "tool": { "type": "string" },
                            "server": { "type": "string" },
                            "outcome": { "type": "string" },
                            "failover_to": { "type": "string" },
                            "at": { "type": "string" },
                            "duration_ms": { "type": "integer", "minimum": 0 },
                            "shared_with": strings
                        },
                        "required": ["tool", "outcome", "at", "duration_ms", "shared_with"]
                    }
                }
            },
            "required": ["id", "title", "specialist", "state", "artifacts", "revision_notes", "waiting_for", "degraded_domain", "executions", "calls"]
        }
    });
    json!({
        "name": SYNTHESIZE_RESULTS,
        "title": "Synthesize results",
        "description": "A truthful synthesis of a plan (also as markdown text): completed results and artifacts in dependency order; what is incomplete or blocked and why; what was done while its domain was degraded or lost; and, per subtask, the tool calls made through the gateway while it was executed (tool, server, outcome, failovers, shared with other subtasks executed at the same time).",
        "inputSchema": {
            "type": "object",
            "properties": { "parent_task_id": { "type": "string" } },
            "required": ["parent_task_id"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "parent_task_id": { "type": "string" },
                "description": { "type": "string" },
                "status": { "type": "string", "enum": ["open", "completed", "finished"] },
                "summary": { "type": "string" },
                "progress": progress_schema(),
                "subtasks": entries,
                "completed": strings,
                "incomplete": strings,
                "blocked": strings,
                "degraded": strings,
                "tool_calls": { "type": "integer", "minimum": 0 }
            },
            "required": ["parent_task_id", "description", "status", "summary", "progress", "subtasks", "completed", "incomplete", "blocked", "degraded", "tool_calls"]
        },
        "annotations": { "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false }
    })
}

pub fn run(ctx: &Ctx, arguments: Option<&str>) -> Result<Reply, Error> {
    let input: Input = parse(arguments)?;
    let plan = ctx
        .store
        .get(&input.parent_task_id)?
        .ok_or(Error::UnknownPlan(input.parent_task_id))?;
    let s = synthesis(&plan);
    Ok(Reply::new(markdown(&plan, &s), s))
}

/// The synthesis of `plan` (also the `…/synthesis` resource).
pub fn synthesis(plan: &Plan) -> Synthesis {
    let roots = plan.blocked_roots();
    let progress = plan.progress();
    let order = plan.dependency_order();
    let mut entries = Vec::with_capacity(order.len());
    let (mut completed, mut incomplete, mut blocked, mut degraded) =
        (vec![], vec![], vec![], vec![]);
    let mut tool_calls = 0;
    for &i in &order {
        let s = &plan.subtasks[i];
        let blocked_text = roots[i].map(|r| {
            let root = &plan.subtasks[r];
            let reason = root.blocked_reason.as_deref().unwrap_or("no reason given");
            if r == i {
                reason.to_string()
            } else {
                format!("waits for \"{}\", which is blocked: {reason}", root.title)
            }
        });
        let mut degraded_domain: Vec<DomainAt> = Vec::new();
        for e in &s.executions {
            for d in [&e.domain_at_start, &e.domain_at_end].into_iter().flatten() {
                if d.mode != "normal" && !degraded_domain.contains(d) {
                    degraded_domain.push(d.clone());
                }
            }
        }
        let calls: Vec<CallView> = s
            .executions
            .iter()
            .flat_map(|e| e.calls.iter())
            .map(call_view)
            .collect();
        tool_calls += calls.len();
        if s.state == SubtaskState::Completed {
            completed.push(s.id.clone());
        } else {
            incomplete.push(s.id.clone());
        }
        if blocked_text.is_some() {
            blocked.push(s.id.clone());
        }
        if !degraded_domain.is_empty() {
            degraded.push(s.id.clone());
        }
        entries.push(Entry {
            id: s.id.clone(),
            title: s.title.clone(),
            specialist: s.specialist.clone(),
            state: s.state,
            results: s.results.clone(),
            artifacts: s.artifacts.clone(),
            revision_notes: s.revisions.iter().map(|r| r.note.clone()).collect(),
            blocked: blocked_text,
            waiting_for: plan
                .missing(i)
                .iter()
                .map(|&d| plan.subtasks[d].id.clone())
                .collect(),
            degraded_domain,
            executions: s.executions.len(),
            calls,
        });
    }
    let summary = summary(
        plan,
        &progress,
        incomplete.len(),
        blocked.len(),
        degraded.len(),
    );
    Synthesis {
        parent_task_id: plan.id.clone(),
        description: plan.description.clone(),
        status: plan.status,
        summary,
        progress,
        subtasks: entries,
        completed,
        incomplete,
        blocked,
        degraded,
        tool_calls,
    }
}

fn summary(
    plan: &Plan,
    p: &Progress,
    incomplete: usize,
    blocked: usize,
    degraded: usize,
) -> String {
    let mut out = match plan.status {
        PlanStatus::Completed => format!("All {} subtasks completed.", p.total),
        PlanStatus::Finished => format!(
            "Finished early by \"{}\" (next_action complete): {} of {} subtasks completed, {incomplete} unfinished.",
            plan.finished_by.map(|f| plan.subtasks[f].title.as_str()).unwrap_or("?"),
            p.completed,
            p.total
        ),
        PlanStatus::Open => format!("Not finished: {} of {} subtasks completed, {incomplete} incomplete.", p.completed, p.total),
    };
    if blocked > 0 {
        out.push_str(&format!(" {blocked} blocked."));
    }
    if degraded > 0 {
        out.push_str(&format!(
            " {degraded} executed while their domain was degraded or lost."
        ));
    }
    out
}

fn call_view(c: &RecordedCall) -> CallView {
    CallView {
        tool: c.tool.clone(),
        server: c.server.clone(),
        outcome: c.outcome.clone(),
        failover_to: c.failover_to.clone(),
        at: rfc3339(c.at_ms),
        duration_ms: c.duration_ms,
        shared_with: c.shared_with.clone(),
    }
}

/// The synthesis as markdown (the tool's text and the resource).
pub fn markdown(plan: &Plan, s: &Synthesis) -> String {
    let title_of = |id: &String| {
        plan.subtask(id)
            .map(|x| x.title.clone())
            .unwrap_or_else(|| id.clone())
    };
    let mut t = format!(
        "# Synthesis: {}\n\nPlan `{}` ({}). {}\n",
        s.description,
        s.parent_task_id,
        s.status.as_str(),
        s.summary
    );
    let done: Vec<&Entry> = s
        .subtasks
        .iter()
        .filter(|e| e.state == SubtaskState::Completed)
        .collect();
    if !done.is_empty() {
        t.push_str("\n## Completed (in dependency order)\n");
        for e in done {
            t.push_str(&format!(
                "\n### {} — {} (`{}`)\n\n{}\n",
                e.title,
                e.specialist,
                e.id,
                e.results.as_deref().unwrap_or("")
            ));
            entry_details(&mut t, e, &title_of);
        }
    }
    let blocked: Vec<&Entry> = s.subtasks.iter().filter(|e| e.blocked.is_some()).collect();
    if !blocked.is_empty() {
        t.push_str("\n## Blocked\n\n");
        for e in &blocked {
            t.push_str(&format!(
                "- {} (`{}`): {}\n",
                e.title,
                e.id,
                e.blocked.as_deref().unwrap_or("")
            ));
        }
    }
    let open: Vec<&Entry> = s
        .subtasks
        .iter()
        .filter(|e| e.state != SubtaskState::Completed && e.blocked.is_none())
        .collect();
    if !open.is_empty() {
        t.push_str("\n## Incomplete\n\n");
        for e in &open {
            let sub = plan.subtask(&e.id).expect("own entry");
            let what = match e.state {
                SubtaskState::InProgress => sub
                    .running()
                    .map(|r| {
                        format!(
                            "in progress (session {}, since {})",
                            r.session,
                            rfc3339(r.started_ms)
                        )
                    })
                    .unwrap_or_else(|| "in progress".into()),
                _ if !e.waiting_for.is_empty() => format!(
                    "waiting for {}",
                    quoted(e.waiting_for.iter().map(&title_of))
                ),
                SubtaskState::NeedsRevision => "needs revision, not re-executed".into(),
                _ => "not started".into(),
            };
            t.push_str(&format!("- {} (`{}`): {what}\n", e.title, e.id));
        }
    }
    let calls_elsewhere: Vec<&Entry> = s
        .subtasks
        .iter()
        .filter(|e| {
            e.state != SubtaskState::Completed
                && (!e.calls.is_empty()
                    || !e.revision_notes.is_empty()
                    || !e.degraded_domain.is_empty())
        })
        .collect();
    if !calls_elsewhere.is_empty() {
        t.push_str("\n## Work recorded on unfinished subtasks\n");
        for e in calls_elsewhere {
            t.push_str(&format!(
                "\n### {} — {} (`{}`)\n",
                e.title, e.specialist, e.id
            ));
            entry_details(&mut t, e, &title_of);
        }
    }
    if !s.degraded.is_empty() {
        t.push_str("\n## Executed while a domain was degraded or lost\n\n");
        for e in s.subtasks.iter().filter(|e| !e.degraded_domain.is_empty()) {
            let modes: Vec<String> = e.degraded_domain.iter().map(domain_text).collect();
            t.push_str(&format!(
                "- {} (`{}`): {}\n",
                e.title,
                e.id,
                modes.join("; ")
            ));
        }
    }
    t
}

fn entry_details(t: &mut String, e: &Entry, title_of: &dyn Fn(&String) -> String) {
    if !e.artifacts.is_empty() {
        t.push_str(&format!("\nArtifacts: {}\n", artifacts_text(&e.artifacts)));
    }
    if !e.revision_notes.is_empty() {
        t.push_str(&format!(
            "\nRevised {} times; notes:\n",
            e.revision_notes.len()
        ));
        for n in &e.revision_notes {
            t.push_str(&format!("- {n}\n"));
        }
    }
    if !e.degraded_domain.is_empty() {
        let modes: Vec<String> = e.degraded_domain.iter().map(domain_text).collect();
        t.push_str(&format!("\nExecuted while {}.\n", modes.join("; ")));
    }
    if e.calls.is_empty() {
        if e.executions > 0 {
            t.push_str(
                "\nNo tool calls were recorded through the gateway while it was executed.\n",
            );
        }
    } else {
        t.push_str(&format!("\nTool calls ({}):\n", e.calls.len()));
        for c in &e.calls {
            t.push_str(&format!("- `{}`", c.tool));
            if let Some(s) = &c.server {
                t.push_str(&format!(" → {s}"));
            }
            t.push_str(&format!(": {}", c.outcome));
            if let Some(f) = &c.failover_to {
                t.push_str(&format!(", failed over to {f}"));
            }
            t.push_str(&format!(" ({} ms)", c.duration_ms));
            if !c.shared_with.is_empty() {
                t.push_str(&format!(
                    ", shared with {}",
                    quoted(c.shared_with.iter().map(title_of))
                ));
            }
            t.push('\n');
        }
    }
}

fn domain_text(d: &DomainAt) -> String {
    match &d.serving {
        Some(s) => format!("domain \"{}\" was {} (served by {s})", d.domain, d.mode),
        None => format!("domain \"{}\" was {}", d.domain, d.mode),
    }
}
