//! Issue 10, configuration stage: a `url:` server is accepted by the config, but this build
//! cannot connect to remote children yet. The gateway must say so plainly (`misconfigured`, with
//! the reason, never retried, never contacted) while its other children serve as usual.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

use orchestra_tests::{
    everything_entry, finish, str_of, text_of, unavailable_detail, within, Gateway, STEP,
};
use serde_json::json;

const REASON: &str = "remote (url) servers are not supported by this build yet";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_server_is_reported_misconfigured_and_the_others_serve() {
    // A real listener at the url: if the gateway tried to reach the server, it would show here.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
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
    assert_eq!(remote["state"], "misconfigured", "{remote}");
    assert_eq!(str_of(&remote, "reason"), REASON, "{remote}");
    assert_eq!(remote["pid"], serde_json::Value::Null, "{remote}");

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

    // A call aimed at the url server gets the reason, not a hang or a protocol error.
    let answer = within(STEP, "call remote", gw.call("remote__anything", json!({})))
        .await
        .expect("an isError result, not a protocol error");
    let detail = unavailable_detail(&answer, "remote");
    assert_eq!(detail["state"], "misconfigured", "{answer}");
    assert!(text_of(&answer).contains(REASON), "{answer}");

    // Never retried (a 100ms backoff would have counted restarts by now), never contacted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let remote = within(STEP, "health", gw.server_health("remote")).await;
    assert_eq!(
        (remote["state"].as_str(), remote["restarts"].as_u64()),
        (Some("misconfigured"), Some(0)),
        "{remote}"
    );
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the gateway connected to the url server: {other:?}"),
    }
    let health = within(STEP, "health", gw.health()).await;
    assert_eq!(health["gateway"]["servers_total"], 2, "{health}");
    assert_eq!(health["gateway"]["servers_ready"], 1, "{health}");
    finish(gw).await;
}
