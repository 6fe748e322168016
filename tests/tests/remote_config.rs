//! Issue 10, configuration stage: a `url:` server (with `headers:`) is accepted by the config
//! and supervised like a process (`remote_children.rs` covers real remotes). One that cannot
//! be reached is reported plainly — down, with why, retried after backoff — while the
//! gateway's other children serve as usual.

use std::time::Duration;

use orchestra_tests::{
    everything_entry, finish, str_of, text_of, unavailable_detail, within, Gateway, STEP,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_url_server_is_reported_down_and_the_others_serve() {
    // A port nobody listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let yaml = format!(
        "gateway: {{restart: {{initial_backoff: 100ms}}}}\nservers:\n{}  remote: {{url: \"{url}\", headers: {{X-Team: \"${{TEAM:-core}}\"}}}}\n",
        everything_entry()
    );
    let gw = within(STEP, "gateway start", Gateway::start(&yaml)).await;

    let remote = within(
        STEP,
        "remote leaves starting",
        gw.wait_server("remote", Duration::from_secs(10), |s| {
            s["state"] != "starting"
        }),
    )
    .await;
    assert_eq!(remote["state"], "restarting", "{remote}");
    assert!(
        str_of(&remote, "reason").contains("cannot connect"),
        "{remote}"
    );
    assert_eq!(remote["pid"], serde_json::Value::Null, "{remote}");
    assert_eq!(str_of(&remote, "command"), url, "{remote}");

    // The other child serves as usual.
    within(
        STEP,
        "everything ready",
        gw.wait_server("everything", Duration::from_secs(15), |s| {
            s["state"] == "ready"
        }),
    )
    .await;
    let echo = within(
        STEP,
        "echo",
        gw.call("everything__echo", json!({"message": "still here"})),
    )
    .await
    .expect("everything__echo");
    assert_eq!(text_of(&echo), "Echo: still here", "{echo}");

    // A call aimed at the url server gets why it is down, not a hang or a protocol error.
    let answer = within(STEP, "call remote", gw.call("remote__anything", json!({})))
        .await
        .expect("an isError result, not a protocol error");
    let detail = unavailable_detail(&answer, "remote");
    // Restarting, or — after five quick refusals — failed by the crash-loop breaker.
    let state = detail["state"].as_str().unwrap_or_default();
    assert!(["restarting", "failed"].contains(&state), "{answer}");
    assert!(text_of(&answer).contains("cannot connect"), "{answer}");

    // Retried with backoff (100ms here), as a process that cannot start would be.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let remote = within(STEP, "health", gw.server_health("remote")).await;
    assert!(remote["restarts"].as_u64().unwrap_or(0) >= 1, "{remote}");
    let health = within(STEP, "health", gw.health()).await;
    assert_eq!(health["gateway"]["servers_total"], 2, "{health}");
    assert_eq!(health["gateway"]["servers_ready"], 1, "{health}");
    finish(gw).await;
}
