//! `orchestrator_plan_task`: compile the request into a plan, store it, say what is ready and
//! what is at risk right now.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{parse, progress_schema, subtask_ref_schema, Ctx, Reply, SubtaskRef, PLAN_TASK};
use crate::compile::{self, input::PlanInput};
use crate::error::Error;
use crate::live;
use crate::model::{new_plan_id, subtask_id, Origin, Plan, Progress};

#[derive(Serialize)]
struct Output {
    parent_task_id: String,
    description: String,
    subtasks: Vec<Planned>,
    ready: Vec<SubtaskRef>,
    progress: Progress,
    warnings: Vec<Warning>,
}

#[derive(Serialize)]
struct Planned {
    id: String,
    index: usize,
    title: String,
    specialist: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    servers: Vec<String>,
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    origin: Origin,
}

/// Something down or unknown now, and the subtasks it affects.
#[derive(Serialize)]
pub struct Warning {
    pub message: String,
    pub subtasks: Vec<String>,
}

pub fn definition() -> Value {
    let names = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "name": PLAN_TASK,
        "title": "Plan a task",
        "description": "Break a task into subtasks, each for a specialist (architect, implementer, tester, reviewer, researcher, debugger, documenter, devops, database_architect, or any role name) and optionally a domain (from domain_boundaries) and servers. Dependencies name subtasks by 0-based index in `subtasks`, by their `id`, or by title. `workflow_stages` (pipeline: each stage's subtasks depend on every subtask of the stages it depends_on; a stage without subtasks becomes one, for its orchestrator_role) and `parallel_streams` (each stream's subtasks run one after another unless `sequential` is false or a subtask gives its own depends_on) with `sync_points` (a subtask after the last subtasks of the named streams) compile into the same graph. Returns the parent task id, an id per subtask, the subtasks ready now, and warnings about subtasks whose domain or servers are down now. Unknown references, duplicate titles and cycles are rejected, each named.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "description": { "type": "string", "description": "What the whole task is for." },
                "subtasks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": { "type": "string", "description": "Your own short id for it, usable in depends_on." },
                            "title": { "type": "string", "description": "Unique within the plan." },
                            "description": { "type": "string" },
                            "specialist": { "type": "string", "description": "The role that does it." },
                            "domain": { "type": "string", "description": "A domain_boundaries entry: its live server is offered." },
                            "servers": names,
                            "depends_on": {
                                "type": "array",
                                "items": { "type": ["integer", "string"] },
                                "description": "Subtasks to complete first: index in `subtasks` (0-based), id or title."
                            },
                            "stage": { "type": "string", "description": "A workflow_stages entry it belongs to." },
                            "stream": { "type": "string", "description": "A parallel_streams entry it belongs to." }
                        },
                        "required": ["title", "specialist"],
                        "additionalProperties": false
                    }
                },
                "workflow_stages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "stage": { "type": "string" },
                            "servers": names,
                            "orchestrator_role": { "type": "string" },
                            "depends_on": names,
                            "description": { "type": "string" },
                            "domain": { "type": "string" }
                        },
                        "required": ["stage"],
                        "additionalProperties": false
                    }
                },
                "parallel_streams": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "servers": names,
                            "subtasks": { "type": "array", "items": { "type": "string" }, "description": "Titles of subtasks, or new names (each becomes a subtask)." },
                            "specialist": { "type": "string", "description": "For the subtasks the stream creates (default: named after each)." },
                            "sequential": { "type": "boolean", "description": "Default true: each subtask after the previous one." },
                            "domain": { "type": "string" }
                        },
                        "additionalProperties": false
                    }
                },
                "sync_points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "after_streams": names,
                            "coordination": { "type": "string", "description": "What happens there; the sync subtask's title." },
                            "servers": names,
                            "specialist": { "type": "string" },
                            "description": { "type": "string" },
                            "domain": { "type": "string" }
                        },
                        "required": ["after_streams", "coordination"],
                        "additionalProperties": false
                    }
                },
                "context": { "description": "Anything the specialists should know (text or JSON)." }
            },
            "required": ["description"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "parent_task_id": { "type": "string" },
                "description": { "type": "string" },
                "subtasks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": { "type": "string" },
                            "index": { "type": "integer" },
                            "title": { "type": "string" },
                            "specialist": { "type": "string" },
                            "key": { "type": "string" },
                            "domain": { "type": "string" },
                            "servers": names,
                            "depends_on": names,
                            "stage": { "type": "string" },
                            "stream": { "type": "string" },
                            "origin": { "type": "string", "enum": ["given", "stage", "stream", "sync_point"] }
                        },
                        "required": ["id", "index", "title", "specialist", "servers", "depends_on", "origin"]
                    }
                },
                "ready": { "type": "array", "items": subtask_ref_schema() },
                "progress": progress_schema(),
                "warnings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": { "message": { "type": "string" }, "subtasks": names },
                        "required": ["message", "subtasks"]
                    }
                }
            },
            "required": ["parent_task_id", "description", "subtasks", "ready", "progress", "warnings"]
        },
        "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false }
    })
}

pub fn run(ctx: &Ctx, arguments: Option<&str>) -> Result<Reply, Error> {
    let input: PlanInput = parse(arguments)?;
    let mut plan = compile::compile(input, &new_plan_id(), ctx.now).map_err(Error::Plan)?;
    // A repeated id is astronomically unlikely; draw again rather than overwrite.
    let mut tries = 0;
    while !ctx.store.insert(&plan)? {
        tries += 1;
        if tries == 5 {
            return Err(Error::Refused(
                "could not draw an unused parent task id".into(),
            ));
        }
        renumber(&mut plan, new_plan_id());
    }
    let snapshot = ctx.env.snapshot();
    let warnings = warnings(&plan, &snapshot);
    Ok(reply(&plan, warnings))
}

/// Every problem the live view shows, with the subtasks it affects.
pub fn warnings(plan: &Plan, snapshot: &crate::env::Snapshot) -> Vec<Warning> {
    let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &plan.subtasks {
        for risk in live::risks(snapshot, s) {
            by_message.entry(risk.0).or_default().push(s.id.clone());
        }
    }
    by_message
        .into_iter()
        .map(|(message, subtasks)| Warning { message, subtasks })
        .collect()
}

fn renumber(plan: &mut Plan, id: String) {
    for i in 0..plan.subtasks.len() {
        plan.subtask_mut(i).id = subtask_id(&id, i);
    }
    plan.id = id;
}

fn reply(plan: &Plan, warnings: Vec<Warning>) -> Reply {
    let ready: Vec<usize> = plan.ready();
    let ids = |deps: &[usize]| {
        deps.iter()
            .map(|&d| plan.subtasks[d].id.clone())
            .collect::<Vec<_>>()
    };
    let mut text = format!(
        "Planned {}: \"{}\" — {} subtasks, {} ready now.\n",
        plan.id,
        plan.description,
        plan.subtasks.len(),
        ready.len()
    );
    for s in &plan.subtasks {
        text.push_str(&format!("- {} \"{}\" [{}]", s.id, s.title, s.specialist));
        if let Some(d) = &s.domain {
            text.push_str(&format!(" domain {d}"));
        }
        if !s.servers.is_empty() {
            text.push_str(&format!(" servers {}", s.servers.join(", ")));
        }
        if s.depends_on.is_empty() {
            text.push_str(" — ready");
        } else {
            text.push_str(&format!(" — after {}", ids(&s.depends_on).join(", ")));
        }
        text.push('\n');
    }
    if !warnings.is_empty() {
        text.push_str("Warnings (live server health now):\n");
        for w in &warnings {
            let titles: Vec<&str> = w
                .subtasks
                .iter()
                .filter_map(|id| plan.subtask(id))
                .map(|s| s.title.as_str())
                .collect();
            text.push_str(&format!(
                "- {}: affects {}\n",
                w.message,
                super::quoted(titles)
            ));
        }
    }
    text.push_str("Next: orchestrator_execute_subtask with the id of a ready subtask.");
    let output = Output {
        parent_task_id: plan.id.clone(),
        description: plan.description.clone(),
        subtasks: plan
            .subtasks
            .iter()
            .map(|s| Planned {
                id: s.id.clone(),
                index: s.index,
                title: s.title.clone(),
                specialist: s.specialist.clone(),
                key: s.key.clone(),
                domain: s.domain.clone(),
                servers: s.servers.clone(),
                depends_on: ids(&s.depends_on),
                stage: s.stage.clone(),
                stream: s.stream.clone(),
                origin: s.origin,
            })
            .collect(),
        ready: ready
            .iter()
            .map(|&i| SubtaskRef::of(&plan.subtasks[i]))
            .collect(),
        progress: plan.progress(),
        warnings,
    };
    Reply::new(text, output)
}
