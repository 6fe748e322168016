//! The Task Orchestrator inside the built gateway: its five tools listed after health, a plan
//! executed with the servers and tools that are really up, the calls made meanwhile attributed
//! to the subtask, the plan readable as a resource, and a store that survives a SIGKILL.

use std::time::Duration;

use orchestra_tests::{fault_server, finish, text_of, wait_ready, Gateway, TempDir};
use serde_json::{json, Value};

fn structured(result: &Value) -> &Value {
    &result["structuredContent"]
}

fn config(store: &std::path::Path) -> String {
    format!(
        "servers:\n{}{}\
         domain_boundaries: {{file_operations: files, research: web}}\n\
         orchestrator:\n  store: {}\n",
        fault_server("files", "", &[]),
        fault_server("web", "", &[]),
        store.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_runs_on_live_servers_with_calls_attributed_and_survives_a_kill() {
    let dir = TempDir::new("orchestrator-wiring");
    let store = dir.join("tasks.db");
    let gw = Gateway::start(&config(&store)).await;
    wait_ready(&gw, &["files", "web"], Duration::from_secs(30)).await;
    let tools = gw.tool_names().await;
    for name in [
        "orchestrator_plan_task",
        "orchestrator_execute_subtask",
        "orchestrator_complete_subtask",
        "orchestrator_synthesize_results",
        "orchestrator_get_status",
    ] {
        assert!(tools.iter().any(|t| t == name), "{name} listed: {tools:?}");
    }
    assert!(!store.exists(), "no store until the orchestrator is used");
    let instructions = gw.initialize_result["instructions"]
        .as_str()
        .unwrap_or_default();
    assert!(
        instructions.contains("orchestrator_plan_task"),
        "the instructions say how to use it: {instructions}"
    );

    let plan = gw
        .call(
            "orchestrator_plan_task",
            json!({
                "description": "Research then write",
                "subtasks": [
                    {"title": "Research", "specialist": "researcher", "domain": "research"},
                    {"title": "Write", "specialist": "documenter", "domain": "file_operations", "depends_on": ["Research"]}
                ]
            }),
        )
        .await
        .expect("plan_task");
    assert_ne!(plan["isError"], true, "{plan}");
    let plan = structured(&plan).clone();
    let parent = plan["parent_task_id"]
        .as_str()
        .expect("parent id")
        .to_owned();
    let research = plan["subtasks"][0]["id"].as_str().unwrap().to_owned();
    let write = plan["subtasks"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(plan["ready"][0]["id"], research.as_str(), "{plan}");
    assert!(store.exists(), "the store is opened on first use");

    // Write depends on Research: refused, naming what is missing.
    let refused = gw
        .call("orchestrator_execute_subtask", json!({"subtask_id": write}))
        .await
        .expect("a refusal is a tool result");
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        text_of(&refused).contains("Research"),
        "{}",
        text_of(&refused)
    );

    // Research: the web server and its exact tool names, as they are now.
    let guidance = gw
        .call(
            "orchestrator_execute_subtask",
            json!({"subtask_id": research}),
        )
        .await
        .expect("execute");
    assert_ne!(guidance["isError"], true, "{guidance}");
    let text = text_of(&guidance);
    assert!(
        text.contains("web__echo"),
        "live tool names offered: {text}"
    );

    // A call made while executing it is attributed to it.
    gw.call("web__echo", json!({"text": "found it"}))
        .await
        .expect("echo");
    let done = gw
        .call(
            "orchestrator_complete_subtask",
            json!({"subtask_id": research, "results": "found it", "next_action": "continue"}),
        )
        .await
        .expect("complete");
    assert_ne!(done["isError"], true, "{done}");
    assert_eq!(
        structured(&done)["ready"][0]["id"],
        write.as_str(),
        "{done}"
    );
    assert_eq!(structured(&done)["calls_recorded"], 1, "{done}");

    // The plan is a resource.
    let listed = gw.request("resources/list", json!({})).await.expect("list");
    let uris: Vec<&str> = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert!(
        uris.iter()
            .any(|u| u.starts_with("orchestrator://") && u.contains(&parent)),
        "{uris:?}"
    );
    let synthesis_uri = format!("orchestrator://plans/{parent}/synthesis");
    let read = gw
        .request("resources/read", json!({"uri": synthesis_uri}))
        .await
        .expect("read the synthesis");
    let markdown = read["contents"][0]["text"].as_str().unwrap_or_default();
    assert!(
        markdown.contains("web__echo"),
        "the synthesis shows the call: {markdown}"
    );

    // SIGKILL the gateway mid-plan; a new one on the same store has everything.
    gw.signal(nix::sys::signal::Signal::SIGKILL);
    let mut gw = gw;
    let _ = gw.wait_exit(Duration::from_secs(10)).await;
    let gw = Gateway::start(&config(&store)).await;
    let status = gw
        .call("orchestrator_get_status", json!({}))
        .await
        .expect("status");
    assert!(text_of(&status).contains(&parent), "{}", text_of(&status));
    let status = gw
        .call("orchestrator_get_status", json!({"parent_task_id": parent}))
        .await
        .expect("status");
    assert_eq!(
        structured(&status)["plans"][0]["ready"][0]["id"],
        write.as_str(),
        "{status}"
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_opened_leaves_the_children_served_and_says_why() {
    let dir = TempDir::new("orchestrator-no-store");
    // A file where the store's folder should be: it cannot be created.
    let blocker = dir.join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let gw = Gateway::start(&config(&blocker.join("tasks.db"))).await;
    wait_ready(&gw, &["files", "web"], Duration::from_secs(30)).await;
    let refused = gw
        .call(
            "orchestrator_plan_task",
            json!({"description": "d", "subtasks": [{"title": "t", "specialist": "researcher"}]}),
        )
        .await
        .expect("a tool result");
    assert_eq!(refused["isError"], true, "{refused}");
    let text = text_of(&refused);
    assert!(
        text.contains("could not be opened") && text.contains("not-a-folder"),
        "{text}"
    );
    gw.call("files__echo", json!({"text": "still here"}))
        .await
        .expect("the children are served");
    let listed = gw.request("resources/list", json!({})).await.expect("list");
    assert!(listed["resources"].is_array(), "{listed}");
    finish(gw).await;
}
