//! `orchestrator_execute_subtask`: refuse unless every dependency is completed; mark the
//! subtask in progress for this session (its tool calls are journaled from now on); return
//! the specialist's guidance, the results of its dependencies, and the servers and exact
//! tool names it can use right now.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{count, load_plan_of, parse, quoted, Ctx, Reply, EXECUTE_SUBTASK};
use crate::error::Error;
use crate::live::{self, Usable};
use crate::model::{Execution, Plan, SubtaskState};
use crate::specialists::Specialist;
use crate::time::rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    subtask_id: String,
}

#[derive(Serialize)]
struct Output {
    parent_task_id: String,
    plan_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
    subtask: SubtaskView,
    specialist: Specialist,
    dependencies: Vec<DependencyResult>,
    revision_notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<Value>,
    usable: Usable,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Serialize)]
struct SubtaskView {
    id: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    servers: Vec<String>,
    /// 1 for the first execution.
    attempt: usize,
    started_at: String,
}

#[derive(Serialize)]
struct DependencyResult {
    id: String,
    title: String,
    specialist: String,
    results: String,
    artifacts: Vec<Value>,
}

pub fn definition() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let server = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string" },
            "configured": { "type": "boolean" },
            "up": { "type": "boolean" },
            "state": { "type": "string" },
            "reason": { "type": "string" },
            "tools": strings,
            "fallback": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "up": { "type": "boolean" }, "tools": strings },
                "required": ["name", "up", "tools"]
            }
        },
        "required": ["name", "configured", "up", "state", "tools"]
    });
    json!({
        "name": EXECUTE_SUBTASK,
        "title": "Execute a subtask",
        "description": "Start a subtask whose dependencies are all completed (refused otherwise, naming what is missing). Returns the specialist's role, expertise and approach, the task's details, the results and artifacts of its completed dependencies, and the servers and exact tool names it can use right now (its domain's live server — the primary, or the fallback with degraded and lost capabilities, or lost with adaptive guidance — and its named servers). The tool calls you make until you complete it are recorded for it. Executing a blocked subtask again unblocks it.",
        "inputSchema": {
            "type": "object",
            "properties": { "subtask_id": { "type": "string", "description": "From plan_task or get_status." } },
            "required": ["subtask_id"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "parent_task_id": { "type": "string" },
                "plan_description": { "type": "string" },
                "context": {},
                "subtask": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "title": { "type": "string" },
                        "description": { "type": "string" },
                        "domain": { "type": "string" },
                        "servers": strings,
                        "attempt": { "type": "integer", "minimum": 1 },
                        "started_at": { "type": "string" }
                    },
                    "required": ["id", "title", "servers", "attempt", "started_at"]
                },
                "specialist": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "role": { "type": "string" },
                        "expertise": strings,
                        "approach": strings,
                        "guidance": { "type": "string" },
                        "source": { "type": "string", "enum": ["builtin", "configured", "generic"] }
                    },
                    "required": ["name", "role", "expertise", "approach", "source"]
                },
                "dependencies": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": { "type": "string" },
                            "title": { "type": "string" },
                            "specialist": { "type": "string" },
                            "results": { "type": "string" },
                            "artifacts": { "type": "array" }
                        },
                        "required": ["id", "title", "specialist", "results", "artifacts"]
                    }
                },
                "revision_notes": strings,
                "stage": { "type": "object" },
                "stream": { "type": "object" },
                "usable": {
                    "type": "object",
                    "properties": {
                        "domain": {
                            "type": "object",
                            "properties": {
                                "name": { "type": "string" },
                                "mode": { "type": "string", "enum": ["normal", "degraded", "lost", "unknown"] },
                                "owner": { "type": "string" },
                                "serving": { "type": "string" },
                                "tools": strings,
                                "degraded_capabilities": strings,
                                "lost_capabilities": strings,
                                "guidance": { "type": "string" }
                            },
                            "required": ["name", "mode", "tools", "guidance"]
                        },
                        "servers": { "type": "array", "items": server },
                        "tools": strings,
                        "other_servers_up": strings,
                        "adaptive_guidance": { "type": "string" }
                    },
                    "required": ["servers", "tools"]
                },
                "notes": strings
            },
            "required": ["parent_task_id", "plan_description", "subtask", "specialist", "dependencies", "revision_notes", "usable"]
        },
        "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false }
    })
}

pub fn run(ctx: &Ctx, arguments: Option<&str>) -> Result<Reply, Error> {
    let input: Input = parse(arguments)?;
    let plan_id = load_plan_of(ctx.store, &input.subtask_id)?.id;
    // Journal first, so no call made right after the subtask starts is missed.
    ctx.env.watch(ctx.session, true);
    let snapshot = ctx.env.snapshot();
    let mut notes: Vec<String> = Vec::new();
    let result = ctx.store.update(&plan_id, &mut |plan| {
        notes.clear();
        start(plan, &input.subtask_id, ctx, &snapshot, &mut notes)
    });
    let plan = match result {
        Ok(plan) => plan,
        Err(e) => {
            super::complete::unwatch_if_idle(ctx, ctx.session);
            return Err(e);
        }
    };
    let s = plan.subtask(&input.subtask_id).expect("checked above");
    // A session this call took the subtask over from may be executing nothing any more.
    if let [.., previous, _] = s.executions.as_slice() {
        if previous.taken_over_by.as_deref() == Some(ctx.session)
            && previous.ended_ms == Some(ctx.now)
        {
            super::complete::unwatch_if_idle(ctx, &previous.session);
        }
    }
    let usable = live::usable(&snapshot, s);
    Ok(reply(ctx, &plan, s.index, usable, notes))
}

/// Checks that the subtask can start and marks it in progress for `ctx.session`.
fn start(
    plan: &mut Plan,
    id: &str,
    ctx: &Ctx,
    snapshot: &crate::env::Snapshot,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let i = plan
        .subtask(id)
        .ok_or_else(|| Error::UnknownSubtask(id.to_string()))?
        .index;
    if !plan.is_open() {
        let by = plan
            .finished_by
            .map(|f| format!(" by \"{}\" (next_action complete)", plan.subtasks[f].title))
            .unwrap_or_default();
        return Err(Error::Refused(format!(
            "plan {} is {}{by}: no subtask of it can start; orchestrator_synthesize_results shows what was done and what was left",
            plan.id,
            plan.status.as_str()
        )));
    }
    let s = &plan.subtasks[i];
    match s.state {
        SubtaskState::Completed => {
            return Err(Error::Refused(format!(
                "subtask {id} \"{}\" is already completed{}; plan a follow-up subtask to change it",
                s.title,
                s.completed_ms
                    .map(|t| format!(" (at {})", rfc3339(t)))
                    .unwrap_or_default()
            )))
        }
        SubtaskState::InProgress => {
            let run = s.running().expect("in progress has a running execution");
            if run.session == ctx.session {
                notes.push(format!(
                    "You are already executing this subtask (since {}); here is its guidance again.",
                    rfc3339(run.started_ms)
                ));
                return Ok(());
            }
            if ctx.env.is_live(&run.session) {
                return Err(Error::Refused(format!(
                    "subtask {id} \"{}\" is being executed by another connected session (since {}); wait for it to complete it (orchestrator_get_status shows when), or execute a ready subtask",
                    s.title,
                    rfc3339(run.started_ms)
                )));
            }
            // The other session is gone (a gateway restart ends every session), and nothing
            // else could ever finish the subtask: take it over, and say so.
            notes.push(format!(
                "Another session was executing this subtask since {}; that execution is ended and this session takes it over.",
                rfc3339(run.started_ms)
            ));
            let now = ctx.now;
            let me = ctx.session.to_string();
            let last = plan.subtask_mut(i).executions.last_mut().expect("running");
            last.ended_ms = Some(now);
            last.taken_over_by = Some(me);
        }
        SubtaskState::Blocked => {
            notes.push(format!(
                "This subtask was blocked ({}); executing it again unblocks it and the subtasks waiting for it.",
                s.blocked_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        SubtaskState::Pending | SubtaskState::NeedsRevision => {
            let missing = plan.missing(i);
            if !missing.is_empty() {
                return Err(not_ready(plan, i, &missing));
            }
        }
    }
    let domain_at_start = plan.subtasks[i]
        .domain
        .as_deref()
        .map(|d| live::domain_at(snapshot, d));
    let s = plan.subtask_mut(i);
    s.state = SubtaskState::InProgress;
    s.blocked_reason = None;
    s.executions.push(Execution {
        session: ctx.session.to_string(),
        started_ms: ctx.now,
        ended_ms: None,
        outcome: None,
        results: None,
        taken_over_by: None,
        domain_at_start,
        domain_at_end: None,
        calls: Vec::new(),
    });
    plan.updated_ms = ctx.now;
    Ok(())
}

/// The refusal for a subtask with dependencies not completed: each named, with its state.
fn not_ready(plan: &Plan, i: usize, missing: &[usize]) -> Error {
    let roots = plan.blocked_roots();
    let s = &plan.subtasks[i];
    let items: Vec<String> = missing
        .iter()
        .map(|&d| {
            let dep = &plan.subtasks[d];
            let state = match roots[d] {
                Some(r) if r == d => format!(
                    "blocked: {}",
                    dep.blocked_reason.as_deref().unwrap_or("no reason given")
                ),
                Some(r) => format!("waiting for blocked \"{}\"", plan.subtasks[r].title),
                // Sent back with a note: ready again, but not "not started".
                None if dep.state == SubtaskState::NeedsRevision => "needs revision".to_string(),
                None if plan.is_ready(d) => "ready, not started".to_string(),
                None => dep.state.as_str().replace('_', " "),
            };
            format!("{} \"{}\" ({state})", dep.id, dep.title)
        })
        .collect();
    Error::Refused(format!(
        "subtask {} \"{}\" cannot start: {} of its dependencies {} not completed: {}. Complete {} first (orchestrator_get_status lists the ready subtasks).",
        s.id,
        s.title,
        missing.len(),
        if missing.len() == 1 { "is" } else { "are" },
        items.join("; "),
        if missing.len() == 1 { "it" } else { "them" },
    ))
}

fn reply(ctx: &Ctx, plan: &Plan, i: usize, usable: Usable, notes: Vec<String>) -> Reply {
    let s = &plan.subtasks[i];
    let run = s.running().expect("just started");
    let specialist = ctx.specialists.get(&s.specialist);
    let dependencies: Vec<DependencyResult> = s
        .depends_on
        .iter()
        .map(|&d| {
            let dep = &plan.subtasks[d];
            DependencyResult {
                id: dep.id.clone(),
                title: dep.title.clone(),
                specialist: dep.specialist.clone(),
                results: dep.results.clone().unwrap_or_default(),
                artifacts: dep.artifacts.clone(),
            }
        })
        .collect();
    let revision_notes: Vec<String> = s.revisions.iter().map(|r| r.note.clone()).collect();
    let stage = s
        .stage
        .as_ref()
        .and_then(|n| plan.stages.iter().find(|st| st.stage == *n))
        .map(|st| json!(st));
    let stream = s
        .stream
        .as_ref()
        .and_then(|n| plan.streams.iter().find(|st| st.stream == *n))
        .map(
            |st| json!({ "stream": st.stream, "servers": st.servers, "sequential": st.sequential }),
        );

    let mut t = String::new();
    t.push_str(&format!("# Subtask {} \"{}\"\n", s.id, s.title));
    t.push_str(&format!("Plan {}: {}\n", plan.id, plan.description));
    if let Some(c) = &plan.context {
        let c = c
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| c.to_string());
        t.push_str(&format!("Context: {c}\n"));
    }
    if let Some(d) = &s.description {
        t.push_str(&format!("Task: {d}\n"));
    }
    if let Some(st) = s
        .stage
        .as_ref()
        .and_then(|n| plan.stages.iter().find(|x| x.stage == *n))
    {
        t.push_str(&format!("Stage: {}", st.stage));
        if let Some(r) = &st.orchestrator_role {
            t.push_str(&format!(" (coordinated by {r})"));
        }
        t.push('\n');
    }
    if let Some(st) = &s.stream {
        t.push_str(&format!("Stream: {st}\n"));
    }
    for n in &notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t.push_str(&format!(
        "\n## Specialist: {}\n{}\n",
        specialist.name, specialist.role
    ));
    t.push_str(&format!(
        "Expertise: {}.\nApproach:\n",
        specialist.expertise.join("; ")
    ));
    for (k, step) in specialist.approach.iter().enumerate() {
        t.push_str(&format!("{}. {step}\n", k + 1));
    }
    if let Some(g) = &specialist.guidance {
        t.push_str(&format!("Guidance: {g}\n"));
    }
    if !revision_notes.is_empty() {
        t.push_str("\n## Revision notes (address these)\n");
        for n in &revision_notes {
            t.push_str(&format!("- {n}\n"));
        }
    }
    if !dependencies.is_empty() {
        t.push_str("\n## Results of its dependencies\n");
        for d in &dependencies {
            t.push_str(&format!(
                "### {} \"{}\" [{}]\n{}\n",
                d.id, d.title, d.specialist, d.results
            ));
            if !d.artifacts.is_empty() {
                t.push_str(&format!("Artifacts: {}\n", artifacts_text(&d.artifacts)));
            }
        }
    }
    t.push_str("\n## Servers and tools you can use now\n");
    if let Some(d) = &usable.domain {
        t.push_str(&format!("{}\n", d.guidance));
    }
    for g in &usable.servers {
        if g.up {
            t.push_str(&format!(
                "- {}: up ({})\n",
                g.name,
                count(g.tools.len(), "tool")
            ));
        } else {
            t.push_str(&format!(
                "- {}: DOWN ({}{})",
                g.name,
                g.state,
                g.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
            match &g.fallback {
                Some(f) if f.up => t.push_str(&format!(
                    "; its calls go to fallback {} ({})\n",
                    f.name,
                    count(f.tools.len(), "tool")
                )),
                Some(f) => t.push_str(&format!("; its fallback {} is down too\n", f.name)),
                None => t.push_str("; no fallback\n"),
            }
        }
    }
    if usable.tools.is_empty() {
        t.push_str("Tools: none of this subtask's servers can be called now.\n");
    } else {
        t.push_str(&format!("Tools: {}\n", usable.tools.join(", ")));
    }
    if !usable.other_servers_up.is_empty() {
        t.push_str(&format!(
            "This subtask names no server or domain; servers up now: {}\n",
            usable.other_servers_up.join(", ")
        ));
    }
    if let Some(a) = &usable.adaptive_guidance {
        t.push_str(&format!("Adaptive guidance: {a}\n"));
    }
    t.push_str(&format!(
        "\nWhen done: orchestrator_complete_subtask{{\"subtask_id\": \"{}\", \"results\": …, \"artifacts\": […], \"next_action\": \"continue\" | \"needs_revision\" | \"blocked\" | \"complete\"}}.",
        s.id
    ));

    let output = Output {
        parent_task_id: plan.id.clone(),
        plan_description: plan.description.clone(),
        context: plan.context.clone(),
        subtask: SubtaskView {
            id: s.id.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            domain: s.domain.clone(),
            servers: s.servers.clone(),
            attempt: s.executions.len(),
            started_at: rfc3339(run.started_ms),
        },
        specialist,
        dependencies,
        revision_notes,
        stage,
        stream,
        usable,
        notes,
    };
    Reply::new(t, output)
}

/// Artifacts for text: strings as they are, anything else as compact JSON.
pub fn artifacts_text(artifacts: &[Value]) -> String {
    quoted(artifacts.iter().map(|a| match a {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }))
}
