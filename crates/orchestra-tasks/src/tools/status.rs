//! `orchestrator_get_status`: one plan in full, or — without an id — every open plan, so a
//! model can resume after a restart: states, the ready frontier, what is in progress and by
//! whom, blocked reasons, and the subtasks at risk because their domain or servers are down
//! now.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{parse, progress_schema, subtask_ref_schema, Ctx, Reply, SubtaskRef, GET_STATUS};
use crate::env::Snapshot;
use crate::error::Error;
use crate::live;
use crate::model::{Plan, PlanStatus, Progress, SubtaskState};
use crate::time::rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    parent_task_id: Option<String>,
}

#[derive(Serialize)]
struct Output {
    plans: Vec<PlanView>,
    /// Plans not listed because they are completed or finished (only without an id).
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_plans: Option<usize>,
}

#[derive(Serialize)]
pub struct PlanView {
    parent_task_id: String,
    description: String,
    status: PlanStatus,
    created_at: String,
    updated_at: String,
    progress: Progress,
    ready: Vec<SubtaskRef>,
    in_progress: Vec<Running>,
    blocked: Vec<Blocked>,
    at_risk: Vec<AtRisk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtasks: Option<Vec<SubtaskLine>>,
}

#[derive(Serialize)]
struct Running {
    id: String,
    title: String,
    session: String,
    since: String,
}

#[derive(Serialize)]
struct Blocked {
    id: String,
    title: String,
    reason: String,
    /// The blocked subtask it waits for, when it is not blocked itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<String>,
}

#[derive(Serialize)]
struct AtRisk {
    id: String,
    title: String,
    risks: Vec<String>,
}

#[derive(Serialize)]
struct SubtaskLine {
    id: String,
    title: String,
    specialist: String,
    state: SubtaskState,
    ready: bool,
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    servers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    revisions: usize,
    /// The blocked subtask it waits for, when blocked through a dependency.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<String>,
}

pub fn definition() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let plan = json!({
        "type": "object",
        "properties": {
            "parent_task_id": { "type": "string" },
            "description": { "type": "string" },
            "status": { "type": "string", "enum": ["open", "completed", "finished"] },
            "created_at": { "type": "string" },
            "updated_at": { "type": "string" },
            "progress": progress_schema(),
            "ready": { "type": "array", "items": subtask_ref_schema() },
            "in_progress": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "id": { "type": "string" }, "title": { "type": "string" }, "session": { "type": "string" }, "since": { "type": "string" } },
                    "required": ["id", "title", "session", "since"]
                }
            },
            "blocked": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "id": { "type": "string" }, "title": { "type": "string" }, "reason": { "type": "string" }, "blocked_by": { "type": "string" } },
                    "required": ["id", "title", "reason"]
                }
            },
            "at_risk": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "id": { "type": "string" }, "title": { "type": "string" }, "risks": strings },
                    "required": ["id", "title", "risks"]
                }
            },
            "subtasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "title": { "type": "string" },
                        "specialist": { "type": "string" },
                        "state": { "type": "string", "enum": ["pending", "in_progress", "completed", "needs_revision", "blocked"] },
                        "ready": { "type": "boolean" },
                        "depends_on": strings,
                        "domain": { "type": "string" },
                        "servers": strings,
                        "stage": { "type": "string" },
                        "stream": { "type": "string" },
                        "revisions": { "type": "integer", "minimum": 0 },
                        "blocked_by": { "type": "string" }
                    },
                    "required": ["id", "title", "specialist", "state", "ready", "depends_on", "servers", "revisions"]
                }
            }
        },
        "required": ["parent_task_id", "description", "status", "created_at", "updated_at", "progress", "ready", "in_progress", "blocked", "at_risk"]
    });
    json!({
        "name": GET_STATUS,
        "title": "Task status",
        "description": "A plan's status: subtask states, the ready frontier, what is in progress, blocked reasons, and subtasks at risk because their domain or servers are down now. Without parent_task_id: every open plan (to resume after a restart).",
        "inputSchema": {
            "type": "object",
            "properties": { "parent_task_id": { "type": "string" } },
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "plans": { "type": "array", "items": plan },
                "closed_plans": { "type": "integer", "minimum": 0 }
            },
            "required": ["plans"]
        },
        "annotations": { "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false }
    })
}

pub fn run(ctx: &Ctx, arguments: Option<&str>) -> Result<Reply, Error> {
    let input: Input = parse(arguments)?;
    let snapshot = ctx.env.snapshot();
    match input.parent_task_id {
        Some(id) => {
            let plan = ctx.store.get(&id)?.ok_or(Error::UnknownPlan(id))?;
            let view = plan_view(&plan, &snapshot, true);
            let text = plan_text(&plan, &view);
            Ok(Reply::new(
                text,
                Output {
                    plans: vec![view],
                    closed_plans: None,
                },
            ))
        }
        None => {
            let all = ctx.store.plans(false)?;
            let closed = all.iter().filter(|p| p.status != PlanStatus::Open).count();
            let mut views = Vec::new();
            let mut text = String::new();
            for summary in all.iter().filter(|p| p.status == PlanStatus::Open) {
                // Gone between the listing and now (no deletion exists yet): skip it.
                let Some(plan) = ctx.store.get(&summary.id)? else {
                    continue;
                };
                let view = plan_view(&plan, &snapshot, false);
                text.push_str(&plan_text(&plan, &view));
                text.push_str("\n\n");
                views.push(view);
            }
            if views.is_empty() {
                text.push_str("No open plans.");
            } else {
                text.insert_str(0, &format!("{} open plans:\n\n", views.len()));
            }
            if closed > 0 {
                text.push_str(&format!("\n{closed} completed or finished plans are not listed (get_status with a parent_task_id shows one)."));
            }
            Ok(Reply::new(
                text.trim_end().to_string(),
                Output {
                    plans: views,
                    closed_plans: Some(closed),
                },
            ))
        }
    }
}

/// A plan's status, with every subtask when `detailed`.
pub fn plan_view(plan: &Plan, snapshot: &Snapshot, detailed: bool) -> PlanView {
    let roots = plan.blocked_roots();
    let id = |i: usize| plan.subtasks[i].id.clone();
    let ready: Vec<usize> = plan.ready();
    let in_progress = plan
        .subtasks
        .iter()
        .filter(|s| s.state == SubtaskState::InProgress)
        .filter_map(|s| {
            s.running().map(|r| Running {
                id: s.id.clone(),
                title: s.title.clone(),
                session: r.session.clone(),
                since: rfc3339(r.started_ms),
            })
        })
        .collect();
    let blocked = plan
        .subtasks
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let root = roots[i]?;
            let r = &plan.subtasks[root];
            let reason = r
                .blocked_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into());
            Some(if root == i {
                Blocked {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    reason,
                    blocked_by: None,
                }
            } else {
                Blocked {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    reason: format!("waits for \"{}\", which is blocked: {reason}", r.title),
                    blocked_by: Some(r.id.clone()),
                }
            })
        })
        .collect();
    let at_risk = plan
        .subtasks
        .iter()
        .filter(|s| s.state != SubtaskState::Completed)
        .filter_map(|s| {
            let risks = live::risks(snapshot, s);
            (!risks.is_empty()).then(|| AtRisk {
                id: s.id.clone(),
                title: s.title.clone(),
                risks: risks.into_iter().map(|r| r.0).collect(),
            })
        })
        .collect();
    let subtasks = detailed.then(|| {
        plan.subtasks
            .iter()
            .map(|s| SubtaskLine {
                id: s.id.clone(),
                title: s.title.clone(),
                specialist: s.specialist.clone(),
                state: s.state,
                ready: plan.is_ready(s.index),
                depends_on: s.depends_on.iter().map(|&d| id(d)).collect(),
                domain: s.domain.clone(),
                servers: s.servers.clone(),
                stage: s.stage.clone(),
                stream: s.stream.clone(),
                revisions: s.revisions.len(),
                blocked_by: roots[s.index].filter(|&r| r != s.index).map(id),
            })
            .collect()
    });
    PlanView {
        parent_task_id: plan.id.clone(),
        description: plan.description.clone(),
        status: plan.status,
        created_at: rfc3339(plan.created_ms),
        updated_at: rfc3339(plan.updated_ms),
        progress: plan.progress(),
        ready: ready
            .iter()
            .map(|&i| SubtaskRef::of(&plan.subtasks[i]))
            .collect(),
        in_progress,
        blocked,
        at_risk,
        subtasks,
    }
}

fn plan_text(plan: &Plan, v: &PlanView) -> String {
    let p = &v.progress;
    let mut t = format!(
        "Plan {} ({}): \"{}\" — {} of {} completed, {} in progress, {} ready, {} waiting, {} blocked; updated {}.",
        v.parent_task_id, v.status.as_str(), v.description, p.completed, p.total, p.in_progress, p.ready, p.waiting, p.blocked, v.updated_at
    );
    if let Some(f) = plan.finished_by {
        t.push_str(&format!(
            "\nFinished early by \"{}\" (next_action complete).",
            plan.subtasks[f].title
        ));
    }
    if !v.ready.is_empty() {
        t.push_str("\nReady:");
        for r in &v.ready {
            t.push_str(&format!("\n- {} \"{}\" [{}]", r.id, r.title, r.specialist));
        }
    }
    if !v.in_progress.is_empty() {
        t.push_str("\nIn progress:");
        for r in &v.in_progress {
            t.push_str(&format!(
                "\n- {} \"{}\" (session {}, since {})",
                r.id, r.title, r.session, r.since
            ));
        }
    }
    if !v.blocked.is_empty() {
        t.push_str("\nBlocked:");
        for b in &v.blocked {
            t.push_str(&format!("\n- {} \"{}\": {}", b.id, b.title, b.reason));
        }
    }
    if !v.at_risk.is_empty() {
        t.push_str("\nAt risk now:");
        for r in &v.at_risk {
            t.push_str(&format!(
                "\n- {} \"{}\": {}",
                r.id,
                r.title,
                r.risks.join("; ")
            ));
        }
    }
    if let Some(lines) = &v.subtasks {
        t.push_str("\nSubtasks:");
        for s in lines {
            let state = match &s.blocked_by {
                Some(b) => format!("blocked (waits for {b})"),
                None if s.ready => "ready".to_string(),
                None => s.state.as_str().replace('_', " "),
            };
            t.push_str(&format!(
                "\n- {} \"{}\" [{}]: {state}",
                s.id, s.title, s.specialist
            ));
            if !s.depends_on.is_empty() {
                t.push_str(&format!(" (after {})", s.depends_on.join(", ")));
            }
        }
    }
    t
}
