//! A session's call journal — what the Task Orchestrator attributes to the subtask being
//! executed: each tool call with the server that answered, how it ended and whether a
//! fallback served it; nothing recorded while nobody watches; another session's calls never
//! in it. In-process, against the fault child.

use std::time::Duration;

use orchestra_gateway::journal::Outcome;
use orchestra_tests::inproc::InProcess;
use orchestra_tests::{fault_server, fault_with, within, STEP};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_session_records_each_call_with_its_server_and_outcome() {
    let down = "restart: {initial_backoff: 30s, max_backoff: 30s, jitter: 0.0}";
    let gw = InProcess::start(&format!(
        "gateway: {{call_timeout: 5s}}\nservers:\n{}{}{}\
         server_alternatives: {{primary: {{fallback: backup}}}}\n",
        fault_server("work", "", &[]),
        fault_with("primary", "", &[], down),
        fault_server("backup", "", &[]),
    ))
    .await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;
    let sessions = gw.gateway().sessions().list();
    let (journal_a, journal_b) = (sessions[0].journal.clone(), sessions[1].journal.clone());

    // Not watched: nothing is kept.
    a.call("work__echo", json!({"text": "before"}))
        .await
        .expect("echo");
    assert!(journal_a.since(0).is_empty());

    journal_a.watch(true);
    a.call("work__echo", json!({"text": "x"}))
        .await
        .expect("echo");
    a.call("work__fail", json!({}))
        .await
        .expect("a tool error is a result");
    let _ = a.call("nobody__nothing", json!({})).await;
    let _ = a.call("primary__crash", json!({})).await;
    within(STEP, "primary is seen down", async {
        while gw
            .gateway()
            .children()
            .iter()
            .any(|c| c.name() == "primary" && c.state().is_up())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    a.call("primary__echo", json!({"text": "via backup"}))
        .await
        .expect("served by the fallback");
    b.call("work__echo", json!({"text": "someone else"}))
        .await
        .expect("echo");

    let calls = journal_a.since(0);
    let seen: Vec<(&str, Option<&str>, Outcome, bool)> = calls
        .iter()
        .map(|c| (&*c.tool, c.server.as_deref(), c.outcome, c.failed_over))
        .collect();
    assert_eq!(
        seen,
        [
            ("work__echo", Some("work"), Outcome::Ok, false),
            ("work__fail", Some("work"), Outcome::ToolError, false),
            ("nobody__nothing", None, Outcome::Error, false),
            ("primary__crash", Some("primary"), Outcome::Error, false),
            ("primary__echo", Some("backup"), Outcome::Ok, true),
        ]
    );
    assert!(
        journal_b.since(0).is_empty(),
        "another session's calls are its own"
    );
    journal_a.watch(false);
    a.call("work__echo", json!({"text": "after"}))
        .await
        .expect("echo");
    assert_eq!(
        journal_a.since(0).len(),
        5,
        "nothing recorded once unwatched"
    );
    drop((a, b));
    gw.finish().await;
}
