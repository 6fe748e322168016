//! `orchestrator_plan_task`'s arguments → a plan: one dependency graph whatever the shape
//! (explicit `depends_on`, `workflow_stages`, `parallel_streams` with `sync_points`), every
//! problem reported at once at its key path, cycles named.
//!
//! The compiled graph:
//! - `subtasks[i]` is subtask `i`; `depends_on` entries are an index into `subtasks`
//!   (0-based), a planner-given `id`, or a title (of any subtask, generated ones included).
//! - `workflow_stages`: a subtask whose `stage` is S depends on every subtask of each stage S
//!   `depends_on`. A stage with no subtask becomes one (title = the stage, specialist = its
//!   `orchestrator_role`). A stage's `servers` (and `domain`, where the subtask has none)
//!   apply to its subtasks.
//! - `parallel_streams`: a stream's subtasks are the titles its `subtasks` lists (a new name
//!   becomes a subtask, specialist = the stream's `specialist`, else the name itself),
//!   then the subtasks whose `stream` names it. Within a stream each subtask depends on the
//!   previous one (`sequential`, the default) — except one that gives its own `depends_on`
//!   (even `[]`), which replaces that link; `"sequential": false` makes them independent.
//! - `sync_points`: the subtask titled `coordination` (created when there is none; specialist
//!   `coordinator` unless given) depends on the last subtasks of every stream in
//!   `after_streams` — the members no other member of that stream depends on (the last one of
//!   a sequential stream, all of a parallel one).

pub mod input;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Problem;
use crate::graph;
use crate::model::{
    subtask_id, Origin, Plan, PlanStatus, StageInfo, StreamInfo, Subtask, SubtaskState,
};
use crate::suggest::did_you_mean;
use input::{PlanInput, Ref};

/// More would make every status and synthesis unreadable, and is surely a mistake.
pub const MAX_SUBTASKS: usize = 10_000;

/// A subtask being compiled.
struct Draft {
    /// Where it was written, for messages.
    path: String,
    key: Option<String>,
    title: String,
    description: Option<String>,
    specialist: String,
    domain: Option<String>,
    servers: Vec<String>,
    /// Written `depends_on`, with each entry's path; None when absent.
    explicit: Option<Vec<(Ref, String)>>,
    deps: Vec<usize>,
    stage: Option<String>,
    stream: Option<String>,
    origin: Origin,
}

/// Compiles the request into a plan with id `plan_id`, or every problem found.
pub fn compile(input: PlanInput, plan_id: &str, now_ms: u64) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let description = input.description.trim().to_string();
    if description.is_empty() {
        problems.push(Problem::new(
            "description",
            "is empty: say what the plan is for",
        ));
    }
    let given = input.subtasks.len();
    let mut drafts = given_subtasks(input.subtasks, &mut problems);
    let mut stage_cycle = false;
    let stages = stages(
        &input.workflow_stages,
        &mut drafts,
        &mut problems,
        &mut stage_cycle,
    );
    let streams = streams(input.parallel_streams.0, &mut drafts, &mut problems);
    let syncs = sync_points(input.sync_points, &streams, &mut drafts, &mut problems);
    resolve_explicit(&mut drafts, given, &mut problems);
    stage_dependencies(&input.workflow_stages, &mut drafts);
    for (sync, after) in syncs {
        for &s in &after {
            let members = &streams[s].subtasks;
            let deps: Vec<&[usize]> = drafts.iter().map(|d| d.deps.as_slice()).collect();
            let last = graph::sinks(&deps, members);
            drafts[sync].deps.extend(last);
        }
    }
    if drafts.is_empty() {
        problems.push(Problem::new(
            "subtasks",
            "the plan has no subtasks: give `subtasks`, `workflow_stages` or `parallel_streams`",
        ));
    }
    if drafts.len() > MAX_SUBTASKS {
        problems.push(Problem::new(
            "subtasks",
            format!(
                "{} subtasks is more than the {MAX_SUBTASKS} a plan may have",
                drafts.len()
            ),
        ));
    }
    for d in &mut drafts {
        d.deps.sort_unstable();
        d.deps.dedup();
    }
    // Unresolved references were left out, so any cycle found is real; a stage cycle would
    // show again as subtask cycles, so it is reported once, as a stage cycle.
    if !stage_cycle {
        let deps: Vec<&[usize]> = drafts.iter().map(|d| d.deps.as_slice()).collect();
        for cycle in graph::cycles(&deps) {
            let mut names: Vec<String> = cycle
                .iter()
                .map(|&i| format!("\"{}\"", drafts[i].title))
                .collect();
            names.push(names[0].clone());
            let message = if cycle.len() == 1 {
                format!("\"{}\" depends on itself", drafts[cycle[0]].title)
            } else {
                format!("dependency cycle: {}", names.join(" → "))
            };
            problems.push(Problem::new(drafts[cycle[0]].path.clone(), message));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let subtasks = drafts
        .into_iter()
        .enumerate()
        .map(|(index, d)| {
            Arc::new(Subtask {
                index,
                id: subtask_id(plan_id, index),
                key: d.key,
                title: d.title,
                description: d.description,
                specialist: d.specialist,
                domain: d.domain,
                servers: d.servers,
                depends_on: d.deps,
                stage: d.stage,
                stream: d.stream,
                origin: d.origin,
                state: SubtaskState::Pending,
                results: None,
                artifacts: Vec::new(),
                blocked_reason: None,
                revisions: Vec::new(),
                executions: Vec::new(),
                completed_ms: None,
            })
        })
        .collect();
    Ok(Plan {
        id: plan_id.to_string(),
        description,
        context: input.context,
        status: PlanStatus::Open,
        finished_by: None,
        created_ms: now_ms,
        updated_ms: now_ms,
        stages,
        streams,
        subtasks,
    })
}

fn given_subtasks(subtasks: Vec<input::SubtaskInput>, problems: &mut Vec<Problem>) -> Vec<Draft> {
    let mut drafts: Vec<Draft> = Vec::with_capacity(subtasks.len());
    // Owned keys: `drafts` grows while they are looked up (a plan may have 10,000 subtasks,
    // so no quadratic scans).
    let mut titles: HashMap<String, usize> = HashMap::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    for (i, s) in subtasks.into_iter().enumerate() {
        let path = format!("subtasks[{i}]");
        let title = s.title.trim().to_string();
        if title.is_empty() {
            problems.push(Problem::new(format!("{path}.title"), "is empty"));
        } else if let Some(&other) = titles.get(title.as_str()) {
            problems.push(Problem::new(
                format!("{path}.title"),
                format!("duplicate title \"{title}\": subtasks[{other}] has it too (titles name subtasks, so they must differ)"),
            ));
        }
        if s.specialist.trim().is_empty() {
            problems.push(Problem::new(
                format!("{path}.specialist"),
                "is empty: name a role (architect, implementer, tester, …)",
            ));
        }
        let key = s.id.map(|k| k.trim().to_string());
        if let Some(k) = &key {
            if k.is_empty() {
                problems.push(Problem::new(format!("{path}.id"), "is empty"));
            } else if let Some(&other) = keys.get(k.as_str()) {
                problems.push(Problem::new(
                    format!("{path}.id"),
                    format!("duplicate id \"{k}\": subtasks[{other}] has it too"),
                ));
            }
        }
        let explicit = s.depends_on.map(|refs| {
            refs.into_iter()
                .enumerate()
                .map(|(j, r)| (r, format!("{path}.depends_on[{j}]")))
                .collect()
        });
        titles.entry(title.clone()).or_insert(i);
        if let Some(k) = key.as_ref().filter(|k| !k.is_empty()) {
            keys.entry(k.clone()).or_insert(i);
        }
        drafts.push(Draft {
            path,
            key,
            title,
            description: s.description,
            specialist: s.specialist.trim().to_string(),
            domain: s.domain,
            servers: dedup(s.servers),
            explicit,
            deps: Vec::new(),
            stage: s.stage,
            stream: s.stream,
            origin: Origin::Given,
        });
    }
    drafts
}

/// Checks the stages, gives stage-less stages their subtask, and applies stage servers and
/// domains. Dependencies between stages are added later (`stage_dependencies`), once every
/// subtask exists.
fn stages(
    stages: &[input::StageInput],
    drafts: &mut Vec<Draft>,
    problems: &mut Vec<Problem>,
    stage_cycle: &mut bool,
) -> Vec<StageInfo> {
    let names: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
    let mut stage_deps: Vec<Vec<usize>> = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let path = format!("workflow_stages[{i}]");
        if s.stage.trim().is_empty() {
            problems.push(Problem::new(format!("{path}.stage"), "is empty"));
        } else if let Some(other) = names[..i].iter().position(|n| *n == s.stage) {
            problems.push(Problem::new(
                format!("{path}.stage"),
                format!(
                    "duplicate stage \"{}\": workflow_stages[{other}] has it too",
                    s.stage
                ),
            ));
        }
        let mut deps = Vec::new();
        for (j, d) in s.depends_on.iter().enumerate() {
            match names.iter().position(|n| n == d) {
                Some(k) => deps.push(k),
                None => problems.push(Problem::new(
                    format!("{path}.depends_on[{j}]"),
                    format!(
                        "unknown stage \"{d}\"{}",
                        did_you_mean(d, names.iter().copied())
                    ),
                )),
            }
        }
        stage_deps.push(deps);
    }
    let stage_cycles = graph::cycles(&stage_deps);
    *stage_cycle = !stage_cycles.is_empty();
    for cycle in stage_cycles {
        let mut chain: Vec<String> = cycle.iter().map(|&i| format!("\"{}\"", names[i])).collect();
        chain.push(chain[0].clone());
        problems.push(Problem::new(
            format!("workflow_stages[{}].depends_on", cycle[0]),
            if cycle.len() == 1 {
                format!("stage \"{}\" depends on itself", names[cycle[0]])
            } else {
                format!("stage cycle: {}", chain.join(" → "))
            },
        ));
    }
    for d in drafts.iter() {
        if let Some(stage) = &d.stage {
            if !names.contains(&stage.as_str()) {
                let hint = if names.is_empty() {
                    " (declare it in `workflow_stages`)".to_string()
                } else {
                    did_you_mean(stage, names.iter().copied())
                };
                problems.push(Problem::new(
                    format!("{}.stage", d.path),
                    format!("unknown stage \"{stage}\"{hint}"),
                ));
            }
        }
    }
    for (i, s) in stages.iter().enumerate() {
        let has_members = drafts.iter().any(|d| d.stage.as_deref() == Some(&s.stage));
        if !has_members && !s.stage.trim().is_empty() {
            let title = s.stage.trim().to_string();
            if let Some(other) = drafts.iter().find(|d| d.title == title) {
                problems.push(Problem::new(
                    format!("workflow_stages[{i}]"),
                    format!("stage \"{title}\" has no subtasks, so it becomes a subtask of that title, but {} already has it: give that subtask `\"stage\": \"{title}\"` or rename one", other.path),
                ));
                continue;
            }
            drafts.push(Draft {
                path: format!("workflow_stages[{i}]"),
                key: None,
                title,
                description: Some(
                    s.description
                        .clone()
                        .unwrap_or_else(|| format!("The \"{}\" stage of the workflow.", s.stage)),
                ),
                specialist: s
                    .orchestrator_role
                    .clone()
                    .unwrap_or_else(|| "coordinator".to_string()),
                domain: None,
                servers: Vec::new(),
                explicit: None,
                deps: Vec::new(),
                stage: Some(s.stage.clone()),
                stream: None,
                origin: Origin::Stage,
            });
        }
    }
    for d in drafts.iter_mut() {
        if let Some(s) = d
            .stage
            .as_ref()
            .and_then(|n| stages.iter().find(|s| s.stage == *n))
        {
            merge_servers(&mut d.servers, &s.servers);
            if d.domain.is_none() {
                d.domain.clone_from(&s.domain);
            }
        }
    }
    stages
        .iter()
        .map(|s| StageInfo {
            stage: s.stage.clone(),
            servers: s.servers.clone(),
            orchestrator_role: s.orchestrator_role.clone(),
            depends_on: s.depends_on.clone(),
        })
        .collect()
}

fn stage_dependencies(stages: &[input::StageInput], drafts: &mut [Draft]) {
    let members = |name: &str, drafts: &[Draft]| -> Vec<usize> {
        (0..drafts.len())
            .filter(|&i| drafts[i].stage.as_deref() == Some(name))
            .collect()
    };
    for s in stages {
        let before: Vec<usize> = s
            .depends_on
            .iter()
            .filter(|d| **d != s.stage)
            .flat_map(|d| members(d, drafts))
            .collect();
        if before.is_empty() {
            continue;
        }
        for i in members(&s.stage, drafts) {
            drafts[i].deps.extend(&before);
        }
    }
}

/// Builds the streams: members, generated subtasks, the sequential chain, servers.
fn streams(
    streams: Vec<(String, input::StreamInput)>,
    drafts: &mut Vec<Draft>,
    problems: &mut Vec<Problem>,
) -> Vec<StreamInfo> {
    let names: Vec<String> = streams.iter().map(|(n, _)| n.clone()).collect();
    for d in drafts.iter() {
        if let Some(stream) = &d.stream {
            if !names.contains(stream) {
                let hint = if names.is_empty() {
                    " (declare it in `parallel_streams`)".to_string()
                } else {
                    did_you_mean(stream, names.iter().map(String::as_str))
                };
                problems.push(Problem::new(
                    format!("{}.stream", d.path),
                    format!("unknown stream \"{stream}\"{hint}"),
                ));
            }
        }
    }
    let mut member_of: HashMap<usize, String> = HashMap::new();
    let mut out = Vec::with_capacity(streams.len());
    for (name, s) in streams {
        let path = format!("parallel_streams.{name}");
        if name.trim().is_empty() {
            problems.push(Problem::new(path.clone(), "a stream needs a name"));
        }
        let mut members: Vec<usize> = Vec::new();
        for (k, entry) in s.subtasks.iter().enumerate() {
            let entry_path = format!("{path}.subtasks[{k}]");
            let title = entry.trim();
            if title.is_empty() {
                problems.push(Problem::new(entry_path, "is empty"));
                continue;
            }
            let found = drafts
                .iter()
                .position(|d| d.title == title || d.key.as_deref() == Some(title));
            let i = match found {
                Some(i) => {
                    if members.contains(&i) {
                        problems.push(Problem::new(
                            entry_path,
                            format!("\"{title}\" is listed twice in this stream"),
                        ));
                        continue;
                    }
                    if let Some(other) = member_of.get(&i) {
                        problems.push(Problem::new(entry_path, format!("\"{title}\" is already in stream \"{other}\": a subtask belongs to one stream")));
                        continue;
                    }
                    if let Some(other) = drafts[i].stream.as_ref().filter(|o| **o != name) {
                        problems.push(Problem::new(entry_path, format!("\"{title}\" is in stream \"{other}\" (its `stream`), not \"{name}\"")));
                        continue;
                    }
                    i
                }
                None => {
                    drafts.push(Draft {
                        path: entry_path,
                        key: None,
                        title: title.to_string(),
                        description: None,
                        specialist: s.specialist.clone().unwrap_or_else(|| title.to_string()),
                        domain: None,
                        servers: Vec::new(),
                        explicit: None,
                        deps: Vec::new(),
                        stage: None,
                        stream: None,
                        origin: Origin::Stream,
                    });
                    drafts.len() - 1
                }
            };
            members.push(i);
        }
        for (i, d) in drafts.iter().enumerate() {
            if d.stream.as_deref() == Some(name.as_str()) && !members.contains(&i) {
                members.push(i);
            }
        }
        if members.is_empty() && s.subtasks.is_empty() {
            problems.push(Problem::new(
                format!("{path}.subtasks"),
                "the stream has no subtasks",
            ));
        }
        let sequential = s.sequential.unwrap_or(true);
        for (k, &i) in members.iter().enumerate() {
            member_of.insert(i, name.clone());
            let d = &mut drafts[i];
            d.stream = Some(name.clone());
            merge_servers(&mut d.servers, &s.servers);
            if d.domain.is_none() {
                d.domain.clone_from(&s.domain);
            }
            if sequential && k > 0 && d.explicit.is_none() {
                d.deps.push(members[k - 1]);
            }
        }
        out.push(StreamInfo {
            stream: name,
            servers: s.servers,
            sequential,
            subtasks: members,
        });
    }
    out
}

/// Creates or finds each sync point's subtask; returns (subtask, streams it follows), whose
/// dependencies are added once every explicit dependency is known.
fn sync_points(
    syncs: Vec<input::SyncPointInput>,
    streams: &[StreamInfo],
    drafts: &mut Vec<Draft>,
    problems: &mut Vec<Problem>,
) -> Vec<(usize, Vec<usize>)> {
    let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, sp) in syncs.into_iter().enumerate() {
        let path = format!("sync_points[{i}]");
        let title = sp.coordination.trim().to_string();
        if title.is_empty() {
            problems.push(Problem::new(
                format!("{path}.coordination"),
                "is empty: name what happens at the sync point",
            ));
            continue;
        }
        if sp.after_streams.is_empty() {
            problems.push(Problem::new(
                format!("{path}.after_streams"),
                "is empty: name the streams it waits for",
            ));
        }
        let mut after = Vec::new();
        for (j, name) in sp.after_streams.iter().enumerate() {
            match streams.iter().position(|s| s.stream == *name) {
                Some(s) => after.push(s),
                None => problems.push(Problem::new(
                    format!("{path}.after_streams[{j}]"),
                    format!(
                        "unknown stream \"{name}\"{}",
                        did_you_mean(name, streams.iter().map(|s| s.stream.as_str()))
                    ),
                )),
            }
        }
        let index = match drafts.iter().position(|d| d.title == title) {
            Some(existing) => {
                if out.iter().any(|(s, _)| *s == existing) {
                    problems.push(Problem::new(
                        format!("{path}.coordination"),
                        format!("\"{title}\" is already a sync point"),
                    ));
                    continue;
                }
                if let Some(s) = after
                    .iter()
                    .find(|&&s| streams[s].subtasks.contains(&existing))
                {
                    problems.push(Problem::new(
                        format!("{path}.coordination"),
                        format!("\"{title}\" is in stream \"{}\", so it cannot wait for that stream's end", streams[*s].stream),
                    ));
                    continue;
                }
                existing
            }
            None => {
                let names: Vec<&str> = sp.after_streams.iter().map(String::as_str).collect();
                drafts.push(Draft {
                    path: path.clone(),
                    key: None,
                    title: title.clone(),
                    description: Some(sp.description.clone().unwrap_or_else(|| {
                        format!("Synchronization point after {}: {title}.", names.join(", "))
                    })),
                    specialist: sp
                        .specialist
                        .clone()
                        .unwrap_or_else(|| "coordinator".to_string()),
                    domain: None,
                    servers: Vec::new(),
                    explicit: None,
                    deps: Vec::new(),
                    stage: None,
                    stream: None,
                    origin: Origin::SyncPoint,
                });
                drafts.len() - 1
            }
        };
        let d = &mut drafts[index];
        merge_servers(&mut d.servers, &sp.servers);
        if d.domain.is_none() {
            d.domain = sp.domain;
        }
        out.push((index, after));
    }
    out
}

/// Resolves written `depends_on` entries: an index into `subtasks`, else an id, else a title.
fn resolve_explicit(drafts: &mut [Draft], given: usize, problems: &mut Vec<Problem>) {
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    let mut by_title: HashMap<&str, usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(k) = &d.key {
            by_key.entry(k.as_str()).or_insert(i);
        }
        by_title.entry(d.title.as_str()).or_insert(i);
    }
    let mut resolved: Vec<(usize, usize)> = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        let Some(refs) = &d.explicit else { continue };
        for (r, path) in refs {
            let target = match r {
                Ref::Index(n) => match usize::try_from(*n).ok().filter(|&n| n < given) {
                    Some(n) => n,
                    None => {
                        problems.push(Problem::new(path.clone(), format!("index {n} is out of range: `subtasks` has {given} entries (0 to {})", given.saturating_sub(1))));
                        continue;
                    }
                },
                Ref::Name(name) => {
                    let name = name.trim();
                    match (by_key.get(name), by_title.get(name)) {
                        (Some(&a), Some(&b)) if a != b => {
                            problems.push(Problem::new(
                                path.clone(),
                                format!(
                                    "\"{name}\" is ambiguous: the id of {} and the title of {}",
                                    drafts[a].path, drafts[b].path
                                ),
                            ));
                            continue;
                        }
                        (Some(&a), _) | (None, Some(&a)) => a,
                        (None, None) => {
                            let candidates = drafts.iter().flat_map(|d| {
                                d.key.as_deref().into_iter().chain([d.title.as_str()])
                            });
                            problems.push(Problem::new(
                                path.clone(),
                                format!(
                                    "unknown subtask \"{name}\"{}",
                                    did_you_mean(name, candidates)
                                ),
                            ));
                            continue;
                        }
                    }
                }
            };
            if target == i {
                problems.push(Problem::new(
                    path.clone(),
                    format!("\"{}\" depends on itself", d.title),
                ));
                continue;
            }
            resolved.push((i, target));
        }
    }
    for (i, target) in resolved {
        drafts[i].deps.push(target);
    }
}

fn merge_servers(into: &mut Vec<String>, more: &[String]) {
    for s in more {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(list.len());
    merge_servers(&mut out, &list);
    out
}
