//! The orchestrator on a plan of 1,000 subtasks, on a SQLite file (WAL) as in production:
//! planning it, completing one subtask (with the ready frontier it returns), executing one,
//! the full status, and the pure ready-frontier computation in memory.
//! Run with `cargo bench -p orchestra-tasks`.

use std::cell::RefCell;
use std::collections::VecDeque;

use divan::{black_box, Bencher};
use orchestra_tasks::{Environment, Orchestrator, Snapshot, Specialists, SqliteStore, ToolCall};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

const N: usize = 1_000;

/// A gateway with three servers up and an empty call journal.
struct Env(Snapshot);

impl Environment for Env {
    fn snapshot(&self) -> Snapshot {
        self.0.clone()
    }
    fn calls(&self, _session: &str, _since_ms: u64) -> Vec<ToolCall> {
        Vec::new()
    }
    fn watch(&self, _session: &str, _on: bool) {}
}

fn env() -> Env {
    let server = |name: &str| orchestra_tasks::ServerView {
        name: name.into(),
        up: true,
        state: "ready".into(),
        reason: None,
        tools: (0..20).map(|t| format!("{name}__tool_{t}")).collect(),
        fallback: None,
    };
    Env(Snapshot {
        servers: vec![server("files"), server("db"), server("search")],
        domains: Vec::new(),
        separator: "__".into(),
    })
}

/// 1,000 subtasks in 10 parallel chains of 100, each subtask also depending on the one ten
/// chains back every tenth step: wide enough to have many ready at once, deep enough that
/// the frontier moves.
fn plan_args() -> Value {
    let subtasks: Vec<Value> = (0..N)
        .map(|i| {
            let mut deps = Vec::new();
            if i >= 10 {
                deps.push(i - 10);
            }
            if i >= 100 && i % 10 == 0 {
                deps.push(i - 99);
            }
            let specialist = ["architect", "implementer", "tester", "reviewer"][i % 4];
            let server = ["files", "db", "search"][i % 3];
            json!({
                "title": format!("Subtask {i}"),
                "specialist": specialist,
                "servers": [server],
                "description": "Do the part of the work this subtask names, and record what was done.",
                "depends_on": deps,
            })
        })
        .collect();
    json!({ "description": "A plan of 1,000 subtasks", "subtasks": subtasks })
}

fn orchestrator(name: &str) -> Orchestrator {
    let dir = std::env::temp_dir().join(format!(
        "orchestra-tasks-bench-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(dir.join("tasks.db")).unwrap();
    Orchestrator::new(Box::new(store), Specialists::builtin())
}

fn call(o: &Orchestrator, env: &Env, tool: &str, args: &str) -> Value {
    let r = o.call(tool, Some(args), "bench", env);
    assert!(r.get("isError").is_none(), "{tool}: {r}");
    r
}

/// Ready subtask ids of the current plan, refilled with a new plan when used up.
struct Feed {
    ready: VecDeque<String>,
}

impl Feed {
    fn next(&mut self, o: &Orchestrator, env: &Env, args: &str) -> String {
        if self.ready.is_empty() {
            let r = call(o, env, "orchestrator_plan_task", args);
            self.refill(&r);
        }
        self.ready.pop_front().unwrap()
    }

    fn refill(&mut self, result: &Value) {
        for s in result["structuredContent"]["ready"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            if !self.ready.contains(&id) {
                self.ready.push_back(id);
            }
        }
    }
}

#[divan::bench(sample_count = 20)]
fn plan_1000(bencher: Bencher) {
    let o = orchestrator("plan");
    let env = env();
    let args = plan_args().to_string();
    bencher.bench_local(|| black_box(call(&o, &env, "orchestrator_plan_task", &args)));
}

/// `orchestrator_complete_subtask` on a 1,000-subtask plan: the transaction, the attribution
/// query, and the ready frontier and progress it returns.
#[divan::bench(sample_count = 200)]
fn complete_on_1000(bencher: Bencher) {
    let o = orchestrator("complete");
    let env = env();
    let args = plan_args().to_string();
    let feed = RefCell::new(Feed {
        ready: VecDeque::new(),
    });
    bencher
        .with_inputs(|| {
            let id = feed.borrow_mut().next(&o, &env, &args);
            call(&o, &env, "orchestrator_execute_subtask", &json!({ "subtask_id": id }).to_string());
            json!({ "subtask_id": id, "results": "Done: the part this subtask names.", "next_action": "continue" }).to_string()
        })
        .bench_local_values(|complete| {
            let r = call(&o, &env, "orchestrator_complete_subtask", &complete);
            feed.borrow_mut().refill(&r);
            r
        });
}

/// `orchestrator_execute_subtask` on a 1,000-subtask plan (guidance with live servers).
#[divan::bench(sample_count = 200)]
fn execute_on_1000(bencher: Bencher) {
    let o = orchestrator("execute");
    let env = env();
    let args = plan_args().to_string();
    let feed = RefCell::new(Feed {
        ready: VecDeque::new(),
    });
    bencher
        .with_inputs(|| {
            json!({ "subtask_id": feed.borrow_mut().next(&o, &env, &args) }).to_string()
        })
        .bench_local_values(|execute| call(&o, &env, "orchestrator_execute_subtask", &execute));
}

/// `orchestrator_get_status` of a 1,000-subtask plan (every subtask listed).
#[divan::bench(sample_count = 50)]
fn status_of_1000(bencher: Bencher) {
    let o = orchestrator("status");
    let env = env();
    let r = call(&o, &env, "orchestrator_plan_task", &plan_args().to_string());
    let id = r["structuredContent"]["parent_task_id"].as_str().unwrap();
    let args = json!({ "parent_task_id": id }).to_string();
    bencher.bench_local(|| black_box(call(&o, &env, "orchestrator_get_status", &args)));
}

/// The ready frontier alone, on the plan in memory.
#[divan::bench]
fn ready_frontier_1000(bencher: Bencher) {
    let plan = orchestra_tasks::compile::compile(
        serde_json::from_value(plan_args()).unwrap(),
        "task-bench",
        0,
    )
    .unwrap();
    bencher.bench_local(|| black_box(&plan).ready());
}
