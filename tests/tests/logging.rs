//! Logging through the gateway: `logging/setLevel` is the session's own filter, children are
//! set to the most verbose level any session asked for, and children's `notifications/message`
//! reach the session with the server's name in `logger`.

use std::time::Duration;

use orchestra_tests::{
    everything_entry, fault_with, finish, wait_ready, within, Gateway, TempDir, STEP,
};
use serde_json::{json, Value};

/// Drains the log messages that arrive within `quiet` of each other.
async fn log_messages(gw: &mut Gateway, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(n) = gw.next_notification("notifications/message", quiet).await {
        got.push(n["params"].clone());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gets_child_messages_at_or_above_its_level_named_by_server() {
    let scratch = TempDir::new("logging");
    let log = scratch.join("fault.log");
    let config = format!(
        "servers:\n{}",
        fault_with(
            "noisy",
            "log_all_levels",
            &[("FAULT_LOG", &log.display().to_string())],
            ""
        )
    );
    let mut gw = Gateway::start(&config).await;
    wait_ready(&gw, &["noisy"], STEP).await;
    let init_caps = &gw.initialize_result["capabilities"];
    assert!(
        init_caps["logging"].is_object(),
        "logging is advertised: {init_caps}"
    );

    // Bad levels are the client's mistake, said so.
    let err = gw
        .request("logging/setLevel", json!({"level": "verbose"}))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -32602, "{err}");

    gw.request("logging/setLevel", json!({"level": "warning"}))
        .await
        .expect("setLevel accepted");
    // The child was told the level too.
    within(STEP, "the child to get logging/setLevel", async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("request logging/setLevel")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // The child sends all eight levels on every call; the session asked for warning and up.
    gw.call("noisy__echo", json!({"text": "hi"}))
        .await
        .expect("call");
    let got = log_messages(&mut gw, Duration::from_millis(500)).await;
    let levels: Vec<&str> = got.iter().filter_map(|p| p["level"].as_str()).collect();
    assert_eq!(
        levels,
        ["warning", "error", "critical", "alert", "emergency"],
        "{got:?}"
    );
    assert!(
        got.iter().all(|p| p["logger"] == "noisy/fault"),
        "the server's name leads the logger: {got:?}"
    );
    finish(gw).await;
}

/// With the real server-everything: its simulated logging reaches the client through the
/// gateway, named by the server. (Its messages come at random levels, one at once and then
/// one every 5 s, so the session asks for everything; the filter is pinned by the test above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_log_messages_reach_the_client() {
    let config = format!("servers:\n{}", everything_entry());
    let mut gw = Gateway::start(&config).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    gw.request("logging/setLevel", json!({"level": "debug"}))
        .await
        .expect("setLevel accepted");
    gw.call("everything__toggle-simulated-logging", json!({}))
        .await
        .expect("logging toggled");
    let first = gw
        .next_notification("notifications/message", Duration::from_secs(12))
        .await
        .expect("a log message from server-everything");
    assert_eq!(first["params"]["logger"], "everything", "{first}");
    assert!(
        first["params"]["data"]
            .as_str()
            .is_some_and(|d| d.contains("message")),
        "{first}"
    );
    finish(gw).await;
}
