//! The orchestrator's tools against a fake gateway: the design document's patterns end to
//! end, dependency enforcement, `next_action`, guidance on live health (degraded, lost,
//! recovered), tool-call attribution (shared calls included), truthful synthesis, status,
//! resources, and bad input. Every successful result is checked against its output schema.

mod common;

use common::*;
use orchestra_tasks::Orchestrator;
use serde_json::{json, Value};

const PLAN: &str = "orchestrator_plan_task";
const EXECUTE: &str = "orchestrator_execute_subtask";
const COMPLETE: &str = "orchestrator_complete_subtask";
const SYNTHESIZE: &str = "orchestrator_synthesize_results";
const STATUS: &str = "orchestrator_get_status";

fn pattern1() -> Value {
    json!({
        "description": "E-commerce platform with microservices",
        "subtasks": [
            { "title": "System Architecture", "specialist": "system_architect" },
            { "title": "Database Design", "specialist": "database_architect", "domain": "data_persistence", "depends_on": [0] },
            { "title": "Service Implementation", "specialist": "backend_developer", "domain": "file_operations", "depends_on": ["System Architecture", "Database Design"] },
            { "title": "API Gateway Setup", "specialist": "api_specialist", "servers": ["files"], "depends_on": [0] },
            { "title": "Container Orchestration", "specialist": "devops_engineer", "depends_on": [2, 3] },
            { "title": "Monitoring & Observability", "specialist": "sre_specialist", "depends_on": [4] }
        ]
    })
}

/// Plans `args`; returns (parent id, subtask ids in plan order, structured).
fn plan(o: &Orchestrator, env: &FakeEnv, args: Value) -> (String, Vec<String>, Value) {
    let (_, s) = ok(o, env, "s1", PLAN, args);
    (
        s["parent_task_id"].as_str().unwrap().to_string(),
        ids(&s["subtasks"]),
        s,
    )
}

fn complete(
    o: &Orchestrator,
    env: &FakeEnv,
    session: &str,
    id: &str,
    results: &str,
    next: &str,
) -> (String, Value) {
    ok(
        o,
        env,
        session,
        COMPLETE,
        json!({ "subtask_id": id, "results": results, "next_action": next }),
    )
}

#[test]
fn pattern_1_runs_end_to_end_with_results_injected_and_a_truthful_synthesis() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, planned) = plan(&o, &env, pattern1());
    assert_eq!(st.len(), 6);
    assert_eq!(ids(&planned["ready"]), [st[0].clone()]);
    assert_eq!(planned["warnings"], json!([]));

    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    assert_eq!(
        g["specialist"]["name"], "architect",
        "system_architect is an alias"
    );
    assert!(text.contains("## Specialist: architect"), "{text}");
    let (_, done) = ok(
        &o,
        &env,
        "s1",
        COMPLETE,
        json!({
            "subtask_id": st[0], "results": "Three services behind a gateway.",
            "artifacts": ["docs/architecture.md", { "uri": "file:///diagram.svg" }], "next_action": "continue"
        }),
    );
    assert_eq!(
        ids(&done["ready"]),
        [st[1].clone(), st[3].clone()],
        "every subtask ready now, so both proceed"
    );
    assert_eq!(done["newly_ready"], json!([st[1], st[3]]));

    // Two in parallel by one session.
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    let (_, g3) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[3] }));
    assert_eq!(
        g3["dependencies"][0]["results"],
        "Three services behind a gateway."
    );
    assert_eq!(
        g3["dependencies"][0]["artifacts"][1]["uri"],
        "file:///diagram.svg"
    );
    complete(
        &o,
        &env,
        "s1",
        &st[1],
        "Orders and users schemas.",
        "continue",
    );
    let (_, d3) = complete(&o, &env, "s1", &st[3], "Gateway routes.", "continue");
    assert_eq!(ids(&d3["ready"]), [st[2].clone()]);

    let (text, g2) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[2] }));
    let injected: Vec<&str> = g2["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["results"].as_str().unwrap())
        .collect();
    assert_eq!(
        injected,
        [
            "Three services behind a gateway.",
            "Orders and users schemas."
        ]
    );
    assert!(text.contains("Orders and users schemas."));
    assert_eq!(g2["usable"]["domain"]["serving"], "files");
    assert_eq!(
        g2["usable"]["tools"],
        json!(["files__read_file", "files__write_file"])
    );
    complete(&o, &env, "s1", &st[2], "Services written.", "continue");
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[4] }));
    complete(&o, &env, "s1", &st[4], "Compose file.", "continue");
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[5] }));
    let (text, last) = complete(&o, &env, "s1", &st[5], "Dashboards.", "continue");
    assert_eq!(last["plan_status"], "completed");
    assert_eq!(last["ready"], json!([]));
    assert!(text.contains("Next: orchestrator_synthesize_results"));

    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": parent }),
    );
    assert_eq!(syn["summary"], "All 6 subtasks completed.");
    assert_eq!(
        syn["completed"],
        json!(st),
        "dependency order (plan order where free)"
    );
    let pos = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from\n{md}"))
    };
    assert!(
        pos("Three services") < pos("Orders and users")
            && pos("Orders and users") < pos("Services written.")
    );
    assert!(
        md.contains("Artifacts: \"docs/architecture.md\", \"{\"uri\":\"file:///diagram.svg\"}\""),
        "{md}"
    );
    assert!(!md.contains("## Blocked") && !md.contains("## Incomplete"));
}

#[test]
fn execute_refuses_until_every_dependency_is_completed_naming_them() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (_, st, _) = plan(&o, &env, pattern1());
    let msg = refused(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[2] }));
    assert_eq!(
        msg,
        format!("subtask {} \"Service Implementation\" cannot start: 2 of its dependencies are not completed: {} \"System Architecture\" (ready, not started); {} \"Database Design\" (pending). Complete them first (orchestrator_get_status lists the ready subtasks).", st[2], st[0], st[1])
    );
    assert!(
        !env.is_watched("s1"),
        "a refused execution leaves the session unwatched"
    );
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    let msg = refused(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    assert!(msg.contains("(in progress)"), "{msg}");
    assert!(env.is_watched("s1"), "still executing the first one");
    let msg = refused(
        &o,
        &env,
        "s1",
        COMPLETE,
        json!({ "subtask_id": st[1], "results": "x", "next_action": "continue" }),
    );
    assert_eq!(msg, format!("subtask {} \"Database Design\" is not being executed, and cannot start before \"System Architecture\" is completed", st[1]));
    complete(&o, &env, "s1", &st[0], "done", "continue");
    let msg = refused(
        &o,
        &env,
        "s1",
        COMPLETE,
        json!({ "subtask_id": st[1], "results": "x", "next_action": "continue" }),
    );
    assert!(
        msg.ends_with("is not being executed: call orchestrator_execute_subtask for it first"),
        "{msg}"
    );
    let msg = refused(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    assert!(msg.contains("is already completed"), "{msg}");
}

#[test]
fn needs_revision_reopens_with_the_note_kept_and_shown_on_the_next_execution() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(&o, &env, pattern1());
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    let (text, r) = complete(
        &o,
        &env,
        "s1",
        &st[0],
        "Missing the payment service.",
        "needs_revision",
    );
    assert_eq!(r["state"], "needs_revision");
    assert_eq!(
        ids(&r["ready"]),
        [st[0].clone()],
        "ready again, dependents still waiting"
    );
    assert!(text.contains("needs revision: reopened"));
    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    assert_eq!(g["revision_notes"], json!(["Missing the payment service."]));
    assert_eq!(g["subtask"]["attempt"], 2);
    assert!(text.contains("## Revision notes (address these)\n- Missing the payment service."));
    complete(&o, &env, "s1", &st[0], "Four services.", "continue");
    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": parent }),
    );
    assert_eq!(
        syn["subtasks"][0]["revision_notes"],
        json!(["Missing the payment service."])
    );
    assert_eq!(syn["subtasks"][0]["results"], "Four services.");
    assert!(
        md.contains("Revised 1 times; notes:\n- Missing the payment service."),
        "{md}"
    );
}

#[test]
fn blocked_blocks_its_dependents_with_the_reason_until_executed_again() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(&o, &env, pattern1());
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    complete(&o, &env, "s1", &st[0], "arch", "continue");
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    let (_, r) = complete(
        &o,
        &env,
        "s1",
        &st[1],
        "No database credentials.",
        "blocked",
    );
    assert_eq!(r["state"], "blocked");
    assert_eq!(r["blocked_dependents"], json!([st[2], st[4], st[5]]));
    assert_eq!(
        ids(&r["ready"]),
        [st[3].clone()],
        "the independent branch goes on"
    );

    let (text, s) = ok(&o, &env, "s1", STATUS, json!({ "parent_task_id": parent }));
    let blocked = &s["plans"][0]["blocked"];
    assert_eq!(
        blocked[0],
        json!({ "id": st[1], "title": "Database Design", "reason": "No database credentials." })
    );
    assert_eq!(
        blocked[1]["reason"],
        "waits for \"Database Design\", which is blocked: No database credentials."
    );
    assert_eq!(blocked[1]["blocked_by"], st[1].as_str());
    assert_eq!(s["plans"][0]["progress"]["blocked"], 4);
    assert!(text.contains("Blocked:"));
    let msg = refused(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[2] }));
    assert!(
        msg.contains(&format!(
            "{} \"Database Design\" (blocked: No database credentials.)",
            st[1]
        )),
        "{msg}"
    );
    let msg = refused(
        &o,
        &env,
        "s1",
        COMPLETE,
        json!({ "subtask_id": st[1], "results": "x", "next_action": "continue" }),
    );
    assert!(
        msg.contains("is blocked (No database credentials.); execute it again to unblock it"),
        "{msg}"
    );

    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": parent }),
    );
    assert_eq!(
        syn["summary"],
        "Not finished: 1 of 6 subtasks completed, 5 incomplete. 4 blocked."
    );
    assert!(
        md.contains(&format!(
            "- Database Design (`{}`): No database credentials.",
            st[1]
        )),
        "{md}"
    );

    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    assert!(g["notes"][0]
        .as_str()
        .unwrap()
        .contains("was blocked (No database credentials.)"));
    assert!(text.contains("executing it again unblocks it"));
    let (_, s) = ok(&o, &env, "s1", STATUS, json!({ "parent_task_id": parent }));
    assert_eq!(s["plans"][0]["blocked"], json!([]));
    let (_, r) = complete(&o, &env, "s1", &st[1], "schema", "continue");
    assert_eq!(
        r["newly_ready"],
        json!([st[2]]),
        "unblocked and completed: its dependent may start"
    );
}

#[test]
fn complete_finishes_the_plan_early_keeping_the_unfinished_visible() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(&o, &env, pattern1());
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    let (text, r) = complete(&o, &env, "s1", &st[0], "Prototype is enough.", "complete");
    assert_eq!(r["plan_status"], "finished");
    assert_eq!(r["unfinished"], json!(st[1..].to_vec()));
    assert_eq!(r["ready"], json!([]), "a finished plan has nothing ready");
    assert!(
        text.contains("Unfinished (kept visible): \"Database Design\""),
        "{text}"
    );
    let msg = refused(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    assert!(
        msg.contains("is finished by \"System Architecture\" (next_action complete)"),
        "{msg}"
    );
    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": parent }),
    );
    assert_eq!(syn["summary"], "Finished early by \"System Architecture\" (next_action complete): 1 of 6 subtasks completed, 5 unfinished.");
    assert_eq!(syn["incomplete"], json!(st[1..].to_vec()));
    assert!(md.contains("## Incomplete"));
    assert!(
        !md.contains("All "),
        "never claims everything was done:\n{md}"
    );
    let (_, s) = ok(&o, &env, "s1", STATUS, json!({}));
    assert_eq!(s["plans"], json!([]));
    assert_eq!(s["closed_plans"], 1);
}

#[test]
fn guidance_follows_live_health_degraded_then_lost_then_recovered() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let plan_args = json!({
        "description": "data",
        "subtasks": [
            { "title": "Schema", "specialist": "database architect", "domain": "data_persistence", "servers": ["search"] },
            { "title": "Migrate", "specialist": "dba", "domain": "data_persistence" },
            { "title": "Again", "specialist": "dba", "domain": "data_persistence" }
        ]
    });
    env.down("db", "exited with status 1");
    let (_, st, planned) = plan(&o, &env, plan_args);
    assert_eq!(
        planned["warnings"],
        json!([{ "message": "domain \"data_persistence\" is degraded: \"db\" is down, \"files\" serves it; lost: queries, transactions", "subtasks": st }])
    );
    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    let d = &g["usable"]["domain"];
    assert_eq!(d["mode"], "degraded");
    assert_eq!(d["serving"], "files");
    assert_eq!(d["tools"], json!(["files__read_file", "files__write_file"]));
    assert_eq!(d["lost_capabilities"], json!(["queries", "transactions"]));
    assert_eq!(
        g["usable"]["tools"],
        json!([
            "files__read_file",
            "files__write_file",
            "search__web_search"
        ])
    );
    let db = &g["usable"]["servers"][0];
    assert_eq!(
        (db["name"].as_str(), db["up"].as_bool()),
        (Some("db"), Some(false))
    );
    assert_eq!(db["fallback"]["name"], "files");
    assert!(text.contains("Domain \"data_persistence\" is degraded: its server \"db\" is down (restarting: exited with status 1), so \"files\" serves it with reduced capabilities; still available: file_storage; lost: queries, transactions."), "{text}");
    assert!(text.contains("- db: DOWN (restarting: exited with status 1); its calls go to fallback files (2 tools)"), "{text}");
    assert!(g["usable"]["adaptive_guidance"]
        .as_str()
        .unwrap()
        .contains("defer advanced features that need: queries, transactions"));
    complete(&o, &env, "s1", &st[0], "schema as files", "continue");

    env.down("files", "killed");
    env.down("db", "exited with status 1");
    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    assert_eq!(g["usable"]["domain"]["mode"], "lost");
    assert_eq!(g["usable"]["tools"], json!([]));
    assert!(
        text.contains("Domain \"data_persistence\" is lost"),
        "{text}"
    );
    assert!(text.contains("Adaptive guidance: Redesign this subtask for the servers available now: domain \"data_persistence\" cannot be used; no tool of its servers can be called now; prioritize core functionality and defer advanced features that need: queries, transactions."), "{text}");
    let (_, s) = ok(
        &o,
        &env,
        "s1",
        STATUS,
        json!({ "parent_task_id": st[1].split('.').next().unwrap() }),
    );
    assert_eq!(
        s["plans"][0]["at_risk"].as_array().unwrap().len(),
        2,
        "the two not completed"
    );
    complete(&o, &env, "s1", &st[1], "deferred the migration", "continue");

    env.up("files");
    env.up("db");
    let (text, g) = ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[2] }));
    assert_eq!(g["usable"]["domain"]["mode"], "normal");
    assert_eq!(g["usable"]["tools"], json!(["db__query", "db__migrate"]));
    assert!(g["usable"].get("adaptive_guidance").is_none());
    assert!(text.contains("Domain \"data_persistence\" is normal: use \"db\" (2 tools)."));
    complete(&o, &env, "s1", &st[2], "migrated", "continue");

    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": st[0].split('.').next().unwrap() }),
    );
    assert_eq!(syn["degraded"], json!([st[0], st[1]]));
    assert_eq!(
        syn["summary"],
        "All 3 subtasks completed. 2 executed while their domain was degraded or lost."
    );
    assert!(md.contains("## Executed while a domain was degraded or lost"));
    assert!(
        md.contains("Executed while domain \"data_persistence\" was degraded (served by files)."),
        "{md}"
    );
    assert!(md.contains("domain \"data_persistence\" was lost"), "{md}");
}

#[test]
fn tool_calls_are_attributed_to_the_subtasks_being_executed_and_shared_when_several_were() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(
        &o,
        &env,
        json!({
            "description": "two at once",
            "subtasks": [{ "title": "A", "specialist": "implementer" }, { "title": "B", "specialist": "tester" }, { "title": "C", "specialist": "tester" }]
        }),
    );
    env.record("s1", "files__read_file", "files", "ok", None, 900); // before: nobody's
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    assert!(env.is_watched("s1"));
    env.record("s1", "files__read_file", "files", "ok", None, 1_500);
    env.record("s2", "search__web_search", "search", "ok", None, 1_600); // another session
    clock.set(2_000);
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[1] }));
    env.record(
        "s1",
        "db__query",
        "files",
        "tool_error",
        Some("files"),
        2_500,
    );
    env.record(
        "s1",
        "orchestrator_get_status",
        "orchestra",
        "ok",
        None,
        2_600,
    ); // bookkeeping
    clock.set(3_000);
    let (text, a) = complete(&o, &env, "s1", &st[0], "a", "continue");
    assert_eq!(
        (a["calls_recorded"].as_u64(), a["calls_shared"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        text.contains("Recorded 2 tool calls for it (1 shared"),
        "{text}"
    );
    assert!(env.is_watched("s1"), "B is still being executed");
    env.record("s1", "files__write_file", "files", "error", None, 3_500);
    clock.set(4_000);
    complete(&o, &env, "s1", &st[1], "b", "continue");
    assert!(!env.is_watched("s1"), "executing nothing any more");
    env.record("s1", "files__read_file", "files", "ok", None, 4_500); // after: nobody's

    let (md, syn) = ok(
        &o,
        &env,
        "s1",
        SYNTHESIZE,
        json!({ "parent_task_id": parent }),
    );
    let calls = |i: usize| -> Vec<(String, Vec<String>)> {
        syn["subtasks"][i]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["tool"].as_str().unwrap().to_string(),
                    serde_json::from_value(c["shared_with"].clone()).unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        calls(0),
        [
            ("files__read_file".to_string(), vec![]),
            ("db__query".to_string(), vec![st[1].clone()])
        ]
    );
    assert_eq!(
        calls(1),
        [
            ("db__query".to_string(), vec![st[0].clone()]),
            ("files__write_file".to_string(), vec![])
        ]
    );
    assert_eq!(syn["subtasks"][2]["calls"], json!([]));
    assert_eq!(syn["tool_calls"], 4, "the shared call is shown for both");
    assert_eq!(syn["subtasks"][0]["calls"][1]["failover_to"], "files");
    assert!(
        md.contains(
            "- `db__query` → files: tool_error, failed over to files (7 ms), shared with \"B\""
        ),
        "{md}"
    );
    assert!(
        md.contains("- `files__write_file` → files: error (7 ms)\n"),
        "{md}"
    );
}

#[test]
fn a_subtask_left_in_progress_by_a_session_that_is_gone_is_taken_over() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (_, st, _) = plan(&o, &env, pattern1());
    ok(&o, &env, "old", EXECUTE, json!({ "subtask_id": st[0] }));
    let (_, again) = ok(&o, &env, "old", EXECUTE, json!({ "subtask_id": st[0] }));
    assert!(again["notes"][0]
        .as_str()
        .unwrap()
        .starts_with("You are already executing this subtask"));
    assert_eq!(again["subtask"]["attempt"], 1);
    clock.set(2_000);
    env.live.lock().unwrap().push("old".into());
    let msg = refused(&o, &env, "new", EXECUTE, json!({ "subtask_id": st[0] }));
    assert!(
        msg.contains("is being executed by another connected session (since 1970-01-01T00:00:01Z)"),
        "{msg}"
    );
    assert!(env.is_watched("old") && !env.is_watched("new"));
    env.live.lock().unwrap().clear(); // "old" disconnected (a gateway restart)
    let (_, g) = ok(&o, &env, "new", EXECUTE, json!({ "subtask_id": st[0] }));
    assert!(g["notes"][0]
        .as_str()
        .unwrap()
        .contains("this session takes it over"));
    assert!(
        !env.is_watched("old"),
        "the session taken over from executes nothing now"
    );
    assert!(env.is_watched("new"));
    assert_eq!(g["subtask"]["attempt"], 2);
    let (_, s) = ok(&o, &env, "x", STATUS, json!({}));
    assert_eq!(s["plans"][0]["in_progress"][0]["session"], "new");
    complete(&o, &env, "new", &st[0], "done", "continue");
}

#[test]
fn status_without_an_id_lists_the_open_plans_to_resume() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (p1, st1, _) = plan(&o, &env, pattern1());
    clock.set(2_000);
    let (p2, _, _) = plan(
        &o,
        &env,
        json!({ "description": "second", "subtasks": [{ "title": "X", "specialist": "researcher" }] }),
    );
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st1[0] }));
    let (text, s) = ok(&o, &env, "s9", STATUS, json!({}));
    let listed: Vec<&str> = s["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["parent_task_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&p1.as_str()) && listed.contains(&p2.as_str()));
    assert!(
        s["plans"][0].get("subtasks").is_none(),
        "the overview leaves the subtask list out"
    );
    assert!(text.starts_with("2 open plans:"), "{text}");
    assert!(
        text.contains(&format!(
            "In progress:\n- {} \"System Architecture\" (session s1",
            st1[0]
        )),
        "{text}"
    );
    let (_, one) = ok(&o, &env, "s9", STATUS, json!({ "parent_task_id": p1 }));
    assert_eq!(one["plans"][0]["subtasks"].as_array().unwrap().len(), 6);
    assert_eq!(
        one["plans"][0]["subtasks"][1]["depends_on"],
        json!([st1[0]])
    );
}

#[test]
fn plans_are_resources_the_plan_as_json_and_the_synthesis_as_markdown() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(&o, &env, pattern1());
    let list = o.resources();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["uri"], format!("orchestrator://plans/{parent}"));
    assert_eq!(list[0]["mimeType"], "application/json");
    assert_eq!(
        list[1]["uri"],
        format!("orchestrator://plans/{parent}/synthesis")
    );
    assert_eq!(list[1]["mimeType"], "text/markdown");
    let read = o
        .read_resource(&format!("orchestrator://plans/{parent}"), &env)
        .unwrap();
    let body: Value = serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["plan"]["subtasks"][1]["id"], st[1].as_str());
    assert_eq!(body["status"]["ready"][0]["id"], st[0].as_str());
    let md = o
        .read_resource(&format!("orchestrator://plans/{parent}/synthesis"), &env)
        .unwrap();
    assert_eq!(md["contents"][0]["mimeType"], "text/markdown");
    assert!(md["contents"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("# Synthesis: E-commerce platform"));
    assert!(o
        .read_resource("orchestrator://plans/task-nope", &env)
        .is_none());
    assert!(o.read_resource("orchestra://files/x", &env).is_none());
    assert!(o
        .read_resource(&format!("orchestrator://plans/{parent}/other"), &env)
        .is_none());
}

#[test]
fn bad_input_is_an_error_result_that_says_what_is_wrong() {
    let clock = Clock::at(1_000);
    let o = orchestrator(&clock);
    let env = FakeEnv::standard();
    let (parent, st, _) = plan(&o, &env, pattern1());
    let bad_action = format!(
        "{{\"subtask_id\": \"{}\", \"results\": \"r\", \"next_action\": \"done\"}}",
        st[0]
    );
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        (PLAN, None, "invalid arguments: missing field `description`"),
        (PLAN, Some("{\"description\": \"d\", \"subtasks\": [{\"title\": \"A\"}]}"), "invalid arguments: subtasks[0]: missing field `specialist`"),
        (PLAN, Some("{\"description\": \"d\", \"subtasks\": [{\"title\": \"A\", \"specialist\": \"x\", \"depends_on\": [true]}]}"), "invalid arguments: subtasks[0].depends_on[0]: invalid type: boolean `true`, expected a subtask's index in `subtasks` (0-based), id or title"),
        (PLAN, Some("{\"description\": \"d\", \"subtasks\": [{\"title\": \"A\", \"specialist\": \"x\", \"depends_on\": [\"B\"]}]}"), "plan rejected: 1 problem:\n- subtasks[0].depends_on[0]: unknown subtask \"B\""),
        (PLAN, Some("not json"), "invalid arguments: expected ident at line 1 column 2"),
        (EXECUTE, Some("{\"subtask_id\": \"task-nope.1\"}"), "unknown subtask_id \"task-nope.1\""),
        (EXECUTE, Some("{\"subtask\": \"x\"}"), "invalid arguments: subtask: unknown field `subtask`, expected `subtask_id`"),
        (COMPLETE, Some(&bad_action), "invalid arguments: next_action: unknown variant `done`, expected one of `continue`, `needs_revision`, `blocked`, `complete`"),
        (SYNTHESIZE, Some("{\"parent_task_id\": \"task-nope\"}"), "unknown parent_task_id \"task-nope\""),
        (STATUS, Some("{\"parent_task_id\": \"task-nope\"}"), "unknown parent_task_id \"task-nope\""),
        ("orchestrator_nope", None, "unknown tool \"orchestrator_nope\""),
    ];
    for (tool, args, expected) in cases {
        let r = o.call(tool, args, "s1", &env);
        assert_eq!(r["isError"], json!(true), "{tool} {args:?}");
        let text = text_of(&r);
        assert!(
            text.starts_with(expected),
            "{tool} {args:?}:\n{text}\nexpected to start with:\n{expected}"
        );
    }
    let huge = "x".repeat(orchestra_tasks::tools::complete::MAX_RESULTS_BYTES + 1);
    ok(&o, &env, "s1", EXECUTE, json!({ "subtask_id": st[0] }));
    let msg = refused(
        &o,
        &env,
        "s1",
        COMPLETE,
        json!({ "subtask_id": st[0], "results": huge, "next_action": "continue" }),
    );
    assert!(msg.contains("put long output in an artifact"));
    let _ = parent;
}

#[test]
fn every_tool_definition_is_complete() {
    let defs = Orchestrator::tool_definitions();
    let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, [PLAN, EXECUTE, COMPLETE, SYNTHESIZE, STATUS]);
    for d in &defs {
        for key in [
            "title",
            "description",
            "inputSchema",
            "outputSchema",
            "annotations",
        ] {
            assert!(d.get(key).is_some(), "{} lacks {key}", d["name"]);
        }
        assert_eq!(d["inputSchema"]["type"], "object");
        assert_eq!(d["outputSchema"]["type"], "object");
        assert!(Orchestrator::is_tool(d["name"].as_str().unwrap()));
    }
}
