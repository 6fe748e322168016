//! The Task Orchestrator with several sessions on one gateway, in process (see
//! `orchestra_tests::inproc`; the orchestrator is wired as the binary wires it, on a store of
//! the test's own):
//! - a session's tool calls made while it executes a subtask are attributed to that subtask;
//!   while it executes two, a call is shown as shared between them; another session's calls,
//!   and calls made while executing nothing, are attributed to none;
//! - two sessions completing different subtasks of one plan at the same moment, twenty times
//!   over, lose nothing: every completion is counted, each subtask is completed exactly once,
//!   and every ready list is consistent with the completions before it.

use std::collections::BTreeSet;
use std::time::Duration;

use orchestra_tests::inproc::{Client, InProcess};
use orchestra_tests::{fault_server, text_of, STEP};
use serde_json::{json, Value};

/// The echo-like tools of the fault child `work`: one name per call, so each call can be
/// told apart in what is recorded.
const TOOLS: &str = "tool_name:alpha,tool_name:beta,tool_name:gamma,tool_name:delta,tool_name:other,tool_name:epsilon,tool_name:zeta";

/// Attribution windows are in milliseconds: a pause between a call and an execute or complete
/// keeps them in different milliseconds, so what is checked is the attribution rule itself
/// (the same-millisecond case is `calls_at_a_window_edge_…` below).
const EDGE: Duration = Duration::from_millis(3);

async fn gateway() -> InProcess {
    InProcess::start(&format!("servers:\n{}", fault_server("work", TOOLS, &[]))).await
}

fn sc(result: &Value) -> &Value {
    &result["structuredContent"]
}

async fn ok(c: &mut Client, name: &str, args: Value) -> Value {
    let r = c
        .call(name, args)
        .await
        .unwrap_or_else(|e| panic!("{}: {name} answered with a JSON-RPC error: {e}", c.name));
    assert_ne!(r["isError"], true, "{}: {name}: {}", c.name, text_of(&r));
    r
}

/// Plans `subtasks`; returns the parent id and the subtask ids in order.
async fn plan(c: &mut Client, subtasks: Value) -> (String, Vec<String>) {
    let r = ok(
        c,
        "orchestrator_plan_task",
        json!({"description": "sessions", "subtasks": subtasks}),
    )
    .await;
    let ids = sc(&r)["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    (sc(&r)["parent_task_id"].as_str().unwrap().to_owned(), ids)
}

async fn execute(c: &mut Client, id: &str) -> Value {
    ok(c, "orchestrator_execute_subtask", json!({"subtask_id": id})).await
}

async fn complete(c: &mut Client, id: &str) -> Value {
    ok(
        c,
        "orchestrator_complete_subtask",
        json!({"subtask_id": id, "results": format!("{id} done"), "next_action": "continue"}),
    )
    .await
}

async fn work(c: &mut Client, tool: &str) {
    ok(c, &format!("work__{tool}"), json!({"text": tool})).await;
}

/// (tool, shared_with) of each call the synthesis lists for `entry`.
fn calls_of(entry: &Value) -> Vec<(String, Vec<String>)> {
    entry["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no calls: {entry}"))
        .iter()
        .map(|c| {
            assert_eq!(
                (&c["server"], &c["outcome"]),
                (&json!("work"), &json!("ok")),
                "{c}"
            );
            let shared = c["shared_with"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            (c["tool"].as_str().unwrap().to_owned(), shared)
        })
        .collect()
}

/// Session a executes S1, then S2 while S1 is still in progress, and completes both; session
/// b executes S3 all the while. Each call counts for exactly the subtasks its own session was
/// executing when it was made: shared between S1 and S2 while a executed both, never across
/// sessions, and for nothing when its session executed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_count_for_the_subtasks_their_session_was_executing() {
    let gw = gateway().await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;
    let (parent, ids) = plan(
        &mut a,
        json!([
            {"title": "S1", "specialist": "implementer"},
            {"title": "S2", "specialist": "tester"},
            {"title": "S3", "specialist": "reviewer"}
        ]),
    )
    .await;
    let (s1, s2, s3) = (&ids[0], &ids[1], &ids[2]);

    work(&mut b, "zeta").await; // b executes nothing yet: nobody's
    execute(&mut a, s1).await;
    execute(&mut b, s3).await;
    work(&mut a, "alpha").await; // S1 only
    work(&mut b, "delta").await; // S3 only, though a is executing S1 meanwhile
    tokio::time::sleep(EDGE).await;
    execute(&mut a, s2).await;
    work(&mut a, "beta").await; // S1 and S2: shared
    tokio::time::sleep(EDGE).await;
    let done = complete(&mut a, s1).await;
    assert_eq!(
        (&sc(&done)["calls_recorded"], &sc(&done)["calls_shared"]),
        (&json!(2), &json!(1)),
        "{done}"
    );
    tokio::time::sleep(EDGE).await;
    work(&mut a, "gamma").await; // S2 only
    tokio::time::sleep(EDGE).await;
    let done = complete(&mut a, s2).await;
    assert_eq!(
        (&sc(&done)["calls_recorded"], &sc(&done)["calls_shared"]),
        (&json!(2), &json!(1)),
        "{done}"
    );
    work(&mut a, "epsilon").await; // a executes nothing now: nobody's
    work(&mut b, "other").await; // S3 only
    let done = complete(&mut b, s3).await;
    assert_eq!(
        (&sc(&done)["calls_recorded"], &sc(&done)["calls_shared"]),
        (&json!(2), &json!(0)),
        "{done}"
    );

    let s = ok(
        &mut b,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    let entries = sc(&s)["subtasks"].as_array().unwrap();
    let entry = |id: &str| entries.iter().find(|e| e["id"] == id).unwrap();
    let t = |tool: &str, shared: &[&String]| {
        (
            format!("work__{tool}"),
            shared.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        calls_of(entry(s1)),
        [t("alpha", &[]), t("beta", &[s2])],
        "S1"
    );
    assert_eq!(
        calls_of(entry(s2)),
        [t("beta", &[s1]), t("gamma", &[])],
        "S2"
    );
    assert_eq!(
        calls_of(entry(s3)),
        [t("delta", &[]), t("other", &[])],
        "S3"
    );
    assert_eq!(
        sc(&s)["tool_calls"],
        6,
        "zeta and epsilon are nobody's: {s}"
    );
    let markdown = text_of(&s);
    assert!(
        markdown.contains("- `work__beta` → work: ok ("),
        "{markdown}"
    );
    assert!(markdown.contains("), shared with \"S2\""), "{markdown}");
    assert!(
        !markdown.contains("work__zeta") && !markdown.contains("work__epsilon"),
        "{markdown}"
    );
    for c in [&a, &b] {
        c.assert_clean_output();
    }
    gw.finish().await;
}

/// BUG (orchestra-tasks `tools/complete.rs` `attributed_calls`, with `at_ms` in whole
/// milliseconds): execution windows are closed intervals of wall-clock milliseconds, so a call
/// made just *before* a subtask was executed, in the same millisecond, counts for it (here
/// most rounds: alpha, answered before y's execute was sent, is recorded for y and shown as
/// shared); a call just *after* a completion can be shown as shared with it the same way.
/// Expected: a call is attributed by the order of events (e.g. a sequence number per session,
/// or the journal's position at execute/complete), not by equal milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_at_a_window_edge_are_not_attributed_across_it() {
    let gw = gateway().await;
    let mut a = gw.session("a", json!({})).await;
    let rounds = 40;
    let subtasks: Vec<Value> = (0..2 * rounds)
        .map(|i| json!({"title": format!("T{i}"), "specialist": "implementer"}))
        .collect();
    let (parent, ids) = plan(&mut a, json!(subtasks)).await;
    for k in 0..rounds {
        let (x, y) = (&ids[2 * k], &ids[2 * k + 1]);
        execute(&mut a, x).await;
        work(&mut a, "alpha").await; // before y was executed: x's alone
        execute(&mut a, y).await;
        complete(&mut a, x).await;
        work(&mut a, "beta").await; // after x was completed: y's alone
        complete(&mut a, y).await;
    }
    let s = ok(
        &mut a,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    let wrong: Vec<String> = sc(&s)["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            // Each subtask made exactly one call, its own alone.
            let calls = calls_of(e);
            calls.len() != 1 || calls.iter().any(|(_, shared)| !shared.is_empty())
        })
        .map(|e| format!("{}: {}", e["title"], e["calls"]))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} subtasks have calls misattributed: {wrong:#?}",
        wrong.len(),
        2 * rounds
    );
    gw.finish().await;
}

/// BUG (orchestra-tasks execute/complete vs the wiring's `CallJournal::watch`, which nests):
/// every execute turns the session's journal on once more, but a completion turns it off once
/// only when the session executes nothing any more, so after executing two subtasks at a time
/// (or a refused execute while executing) the journal stays on for good: every later call of
/// the session is recorded (up to 10 000 kept) though nobody will ever read it. Expected:
/// journaling off once the session executes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_off_once_the_session_executes_nothing() {
    let gw = gateway().await;
    let mut a = gw.session("a", json!({})).await;
    let (_, ids) = plan(
        &mut a,
        json!([
            {"title": "S1", "specialist": "implementer"},
            {"title": "S2", "specialist": "tester"}
        ]),
    )
    .await;
    let journal = gw.gateway().sessions().list()[0].journal.clone();
    execute(&mut a, &ids[0]).await;
    execute(&mut a, &ids[1]).await;
    assert!(journal.is_on(), "journaling while executing");
    complete(&mut a, &ids[0]).await;
    complete(&mut a, &ids[1]).await;
    assert!(
        !journal.is_on(),
        "the session executes nothing: journaling off"
    );
    gw.finish().await;
}

fn ready_of(done: &Value) -> BTreeSet<String> {
    sc(done)["ready"]
        .as_array()
        .unwrap_or_else(|| panic!("no ready list: {done}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends a completion without waiting for it (its answer is taken with `answer`).
async fn send_complete(c: &Client, request_id: u64, id: &str) {
    c.send_request(
        json!(request_id),
        "tools/call",
        json!({"name": "orchestrator_complete_subtask", "arguments":
            {"subtask_id": id, "results": format!("{id} done by {}", c.name), "next_action": "continue"}}),
    )
    .await;
}

async fn answer(c: &mut Client, request_id: u64) -> Value {
    let m = c.response(&json!(request_id), STEP).await;
    let r = m["result"].clone();
    assert_ne!(r["isError"], true, "{}: {}", c.name, text_of(&r));
    assert!(m.get("error").is_none(), "{m}");
    r
}

/// Twenty rounds: a and b each execute one of forty parallel subtasks, then both completions
/// are sent at once. Each pair of answers counts 2k+1 and 2k+2 completed (one after the
/// other, neither lost); no ready list offers a subtask completed before it; the final
/// subtask, after all forty, becomes ready exactly once, in the last round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_completing_one_plan_at_the_same_moment_lose_nothing() {
    let gw = gateway().await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;
    let rounds = 20;
    let mut subtasks: Vec<Value> = (0..2 * rounds)
        .map(|i| json!({"title": format!("P{i}"), "specialist": "implementer"}))
        .collect();
    subtasks.push(json!({"title": "Sink", "specialist": "reviewer", "depends_on": (0..2 * rounds).collect::<Vec<_>>()}));
    let (parent, ids) = plan(&mut a, json!(subtasks)).await;
    let sink = ids[2 * rounds].clone();

    let mut completed: BTreeSet<String> = BTreeSet::new();
    let mut sink_ready = 0;
    for k in 0..rounds {
        let (x, y) = (ids[2 * k].clone(), ids[2 * k + 1].clone());
        execute(&mut a, &x).await;
        execute(&mut b, &y).await;
        let rid = 100 + k as u64;
        // Both in flight at once: each runs on the store off its session's reader.
        send_complete(&a, rid, &x).await;
        send_complete(&b, rid, &y).await;
        let (ra, rb) = (answer(&mut a, rid).await, answer(&mut b, rid).await);
        let mut counts = Vec::new();
        for (r, own, other) in [(&ra, &x, &y), (&rb, &y, &x)] {
            let c = sc(r);
            assert_eq!(
                (&c["subtask_id"], &c["state"]),
                (&json!(own), &json!("completed")),
                "{c}"
            );
            let n = c["progress"]["completed"].as_u64().unwrap();
            counts.push(n);
            let ready = ready_of(r);
            for id in completed.iter().chain([own]) {
                assert!(
                    !ready.contains(id),
                    "round {k}: {id} is completed but offered as ready: {c}"
                );
            }
            if n == 2 * k as u64 + 2 {
                assert!(
                    !ready.contains(other),
                    "round {k}: the later answer offers {other}: {c}"
                );
            }
            if c["newly_ready"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == sink.as_str())
            {
                sink_ready += 1;
            }
        }
        counts.sort_unstable();
        assert_eq!(
            counts,
            [2 * k as u64 + 1, 2 * k as u64 + 2],
            "round {k}: one after the other, none lost"
        );
        completed.insert(x);
        completed.insert(y);
    }
    assert_eq!(sink_ready, 1, "the last subtask became ready exactly once");
    execute(&mut a, &sink).await;
    let last = complete(&mut a, &sink).await;
    assert_eq!(sc(&last)["plan_status"], "completed", "{last}");

    let status = ok(
        &mut b,
        "orchestrator_get_status",
        json!({"parent_task_id": parent}),
    )
    .await;
    let p = &sc(&status)["plans"][0];
    assert_eq!(p["progress"]["completed"], 2 * rounds + 1, "{p}");
    let lines = p["subtasks"].as_array().unwrap();
    assert!(lines.iter().all(|s| s["state"] == "completed"), "{p}");
    let s = ok(
        &mut b,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    for e in sc(&s)["subtasks"].as_array().unwrap() {
        assert_eq!(e["executions"], 1, "completed exactly once: {e}");
        let id = e["id"].as_str().unwrap();
        let expected = match e["title"].as_str().unwrap()[1..].parse::<usize>() {
            Ok(i) => format!("{id} done by {}", if i % 2 == 0 { "a" } else { "b" }),
            Err(_) => format!("{id} done"), // Sink
        };
        assert_eq!(e["results"], expected, "{e}");
    }
    for c in [&a, &b] {
        c.assert_clean_output();
    }
    gw.finish().await;
}
