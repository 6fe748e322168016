//! The SQLite store: migrations from an empty file, a newer schema refused, reopening keeps
//! everything (a restart in the middle of a plan), concurrent completions from threads and
//! from separate connections (two gateways on one file) lose nothing, and a failed update
//! changes nothing.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use orchestra_tasks::model::SubtaskState;
use orchestra_tasks::{Error, Orchestrator, Specialists, SqliteStore, Store, StoreError};
use serde_json::json;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("orchestra-tasks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn on_file(path: &std::path::Path, clock: &Clock) -> Orchestrator {
    let c = clock.clone();
    Orchestrator::new(
        Box::new(SqliteStore::open(path).unwrap()),
        Specialists::builtin(),
    )
    .with_clock(move || c.now())
}

#[test]
fn an_empty_file_is_migrated_to_the_current_schema_in_a_new_directory() {
    let dir = temp_dir("migrate");
    let path = dir.join("nested/deeper/tasks.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    assert!(path.exists());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["executions", "plans", "subtasks"]);
    drop(store);
    // Opening again runs nothing twice.
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_database_from_a_newer_build_is_refused_not_damaged() {
    let dir = temp_dir("newer");
    let path = dir.join("tasks.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let err = SqliteStore::open(&path).err().expect("refused");
    assert!(
        matches!(
            err,
            StoreError::Newer {
                found: 7,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("has schema version 7; this build knows versions up to 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_restart_in_the_middle_of_a_plan_loses_nothing() {
    let dir = temp_dir("reopen");
    let path = dir.join("tasks.db");
    let clock = Clock::at(1_000);
    let env = FakeEnv::standard();
    let o = on_file(&path, &clock);
    let (_, planned) = ok(
        &o,
        &env,
        "s1",
        "orchestrator_plan_task",
        json!({
            "description": "survives",
            "context": { "repo": "shop" },
            "subtasks": [
                { "title": "A", "specialist": "architect" },
                { "title": "B", "specialist": "implementer", "depends_on": ["A"], "domain": "data_persistence" },
                { "title": "C", "specialist": "tester", "depends_on": ["A"] }
            ]
        }),
    );
    let parent = planned["parent_task_id"].as_str().unwrap().to_string();
    let st = ids(&planned["subtasks"]);
    ok(
        &o,
        &env,
        "s1",
        "orchestrator_execute_subtask",
        json!({ "subtask_id": st[0] }),
    );
    env.record("s1", "files__read_file", "files", "ok", None, 1_200);
    clock.set(1_500);
    ok(
        &o,
        &env,
        "s1",
        "orchestrator_complete_subtask",
        json!({ "subtask_id": st[0], "results": "design", "artifacts": ["a.md"], "next_action": "continue" }),
    );
    ok(
        &o,
        &env,
        "s1",
        "orchestrator_execute_subtask",
        json!({ "subtask_id": st[1] }),
    );
    ok(
        &o,
        &env,
        "s1",
        "orchestrator_execute_subtask",
        json!({ "subtask_id": st[2] }),
    );
    ok(
        &o,
        &env,
        "s1",
        "orchestrator_complete_subtask",
        json!({ "subtask_id": st[2], "results": "flaky env", "next_action": "blocked" }),
    );
    let before = SqliteStore::open(&path)
        .unwrap()
        .get(&parent)
        .unwrap()
        .unwrap();
    drop(o);

    // A new gateway: new sessions, same file.
    let o = on_file(&path, &clock);
    let after = SqliteStore::open(&path)
        .unwrap()
        .get(&parent)
        .unwrap()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(after.context, Some(json!({ "repo": "shop" })));
    assert_eq!(
        after.subtasks[0].executions[0].calls[0].tool,
        "files__read_file"
    );
    assert_eq!(after.subtasks[1].state, SubtaskState::InProgress);
    assert_eq!(
        after.subtasks[2].blocked_reason.as_deref(),
        Some("flaky env")
    );
    let (_, status) = ok(&o, &env, "fresh", "orchestrator_get_status", json!({}));
    assert_eq!(status["plans"][0]["parent_task_id"], parent.as_str());
    assert_eq!(status["plans"][0]["in_progress"][0]["id"], st[1].as_str());
    let (_, g) = ok(
        &o,
        &env,
        "fresh",
        "orchestrator_execute_subtask",
        json!({ "subtask_id": st[1] }),
    );
    assert_eq!(
        g["dependencies"][0]["results"], "design",
        "results survive for injection"
    );
    ok(
        &o,
        &env,
        "fresh",
        "orchestrator_complete_subtask",
        json!({ "subtask_id": st[1], "results": "built", "next_action": "continue" }),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Plans `n` independent subtasks; returns (parent, ids).
fn wide_plan(o: &Orchestrator, env: &FakeEnv, n: usize) -> (String, Vec<String>) {
    let subtasks: Vec<_> = (0..n)
        .map(|i| json!({ "title": format!("t{i}"), "specialist": "implementer" }))
        .collect();
    let (_, p) = ok(
        o,
        env,
        "s0",
        "orchestrator_plan_task",
        json!({ "description": "wide", "subtasks": subtasks }),
    );
    (
        p["parent_task_id"].as_str().unwrap().to_string(),
        ids(&p["subtasks"]),
    )
}

fn run_half(o: &Orchestrator, env: &FakeEnv, session: &str, ids: &[String]) {
    for id in ids {
        ok(
            o,
            env,
            session,
            "orchestrator_execute_subtask",
            json!({ "subtask_id": id }),
        );
        ok(
            o,
            env,
            session,
            "orchestrator_complete_subtask",
            json!({ "subtask_id": id, "results": format!("{session} did {id}"), "next_action": "continue" }),
        );
    }
}

fn assert_all_done(store: &SqliteStore, parent: &str, n: usize) {
    let plan = store.get(parent).unwrap().unwrap();
    let done = plan
        .subtasks
        .iter()
        .filter(|s| s.state == SubtaskState::Completed)
        .count();
    assert_eq!(done, n, "every completion kept");
    assert!(plan
        .subtasks
        .iter()
        .all(|s| s.executions.len() == 1 && s.results.is_some()));
    assert_eq!(
        plan.status.as_str(),
        "completed",
        "the last completion saw all the others"
    );
}

#[test]
fn two_threads_completing_subtasks_of_one_plan_lose_nothing() {
    let dir = temp_dir("threads");
    let path = dir.join("tasks.db");
    let clock = Clock::at(1_000);
    let env = Arc::new(FakeEnv::standard());
    let o = Arc::new(on_file(&path, &clock));
    let n = 40;
    let (parent, st) = wide_plan(&o, &env, n);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = st
        .chunks(n / 2)
        .enumerate()
        .map(|(k, half)| {
            let (o, env, barrier, half) = (o.clone(), env.clone(), barrier.clone(), half.to_vec());
            thread::spawn(move || {
                barrier.wait();
                run_half(&o, &env, &format!("session{k}"), &half);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_all_done(&SqliteStore::open(&path).unwrap(), &parent, n);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two stores on one file are two connections, as two gateway processes would have: only the
/// database's own locking (`BEGIN IMMEDIATE`) keeps their read-modify-writes apart.
#[test]
fn two_connections_completing_subtasks_of_one_plan_lose_nothing() {
    let dir = temp_dir("connections");
    let path = dir.join("tasks.db");
    let clock = Clock::at(1_000);
    let env = Arc::new(FakeEnv::standard());
    let first = on_file(&path, &clock);
    let n = 40;
    let (parent, st) = wide_plan(&first, &env, n);
    let orchestrators = [Arc::new(first), Arc::new(on_file(&path, &clock))];
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = st
        .chunks(n / 2)
        .zip(orchestrators.iter())
        .enumerate()
        .map(|(k, (half, o))| {
            let (o, env, barrier, half) = (o.clone(), env.clone(), barrier.clone(), half.to_vec());
            thread::spawn(move || {
                barrier.wait();
                run_half(&o, &env, &format!("gateway{k}"), &half);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_all_done(&SqliteStore::open(&path).unwrap(), &parent, n);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_or_panicking_update_changes_nothing() {
    let store = SqliteStore::in_memory().unwrap();
    let plan = orchestra_tasks::compile::compile(
        serde_json::from_value(json!({ "description": "d", "subtasks": [{ "title": "A", "specialist": "x" }, { "title": "B", "specialist": "x" }] })).unwrap(),
        "task-fixed",
        5,
    )
    .unwrap();
    assert!(store.insert(&plan).unwrap());
    assert!(!store.insert(&plan).unwrap(), "an id is never reused");
    let refused = store.update("task-fixed", &mut |p| {
        p.subtask_mut(0).state = SubtaskState::Completed;
        p.description = "changed".into();
        Err(Error::Refused("no".into()))
    });
    assert!(matches!(refused, Err(Error::Refused(_))));
    assert_eq!(store.get("task-fixed").unwrap().unwrap(), plan);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.update("task-fixed", &mut |p| {
            p.subtask_mut(1).state = SubtaskState::Blocked;
            panic!("crash inside the transaction");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(
        store.get("task-fixed").unwrap().unwrap(),
        plan,
        "rolled back"
    );
    let updated = store
        .update("task-fixed", &mut |p| {
            p.subtask_mut(1).state = SubtaskState::Blocked;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        store.get("task-fixed").unwrap().unwrap(),
        updated,
        "the store is usable after the panic"
    );
    assert!(matches!(
        store.update("task-none", &mut |_| Ok(())),
        Err(Error::UnknownPlan(_))
    ));
}
