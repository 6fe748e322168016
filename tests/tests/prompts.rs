//! Prompts through the gateway: children's prompts listed under `<server>__<prompt>`, a
//! `prompts/get` routed to the owning child under its own name and answered with the child's
//! result as is; unknown names get -32602 with close matches; a server without prompts adds
//! none. Compared with real `server-everything` talked to directly.

use std::process::Stdio;
use std::time::Duration;

use orchestra_tests::{
    deps, everything_entry, fault_server, finish, wait_ready, within, Gateway, STEP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Asks real `server-everything` directly (no gateway) with a raw JSON-RPC exchange over its
/// stdio: initialize, initialized, then `method` — and returns that request's result.
async fn direct(method: &str, params: Value) -> Value {
    let mut child = tokio::process::Command::new(&deps().everything)
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server-everything");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut script = String::new();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "direct", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}),
    ] {
        script.push_str(&msg.to_string());
        script.push('\n');
    }
    within(
        STEP,
        "write to server-everything",
        stdin.write_all(script.as_bytes()),
    )
    .await
    .unwrap();
    let result = within(STEP, "server-everything's answer", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("stdout open");
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg["id"] == 2 {
                return msg;
            }
        }
    })
    .await;
    drop(stdin);
    let _ = within(STEP, "server-everything exits", child.wait()).await;
    result["result"].clone()
}

fn config() -> String {
    format!(
        "servers:\n{}{}",
        everything_entry(),
        fault_server("plain", "", &[])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_listed_namespaced_and_got_from_their_child() {
    let gw = Gateway::start(&config()).await;
    assert_eq!(
        gw.initialize_result["capabilities"]["prompts"]["listChanged"], true,
        "{}",
        gw.initialize_result
    );
    wait_ready(&gw, &["everything", "plain"], Duration::from_secs(60)).await;

    // The list: every prompt of server-everything, renamed, definitions otherwise as is; the
    // fault child (no prompts capability) contributes nothing. A cursor is accepted.
    let listed = gw
        .request("prompts/list", json!({"cursor": "ignored"}))
        .await
        .expect("prompts/list");
    let own = direct("prompts/list", json!({})).await;
    let own = own["prompts"].as_array().expect("child lists prompts");
    assert!(!own.is_empty());
    let served = listed["prompts"].as_array().expect("prompts array");
    assert_eq!(served.len(), own.len(), "{listed}");
    for (theirs, ours) in own.iter().zip(served) {
        let mut expected = theirs.clone();
        expected["name"] = json!(format!("everything__{}", theirs["name"].as_str().unwrap()));
        assert_eq!(ours, &expected);
    }
    assert!(served
        .iter()
        .all(|p| p["name"].as_str().unwrap().starts_with("everything__")));
    let with_args = served
        .iter()
        .find(|p| p["name"] == "everything__args-prompt")
        .expect("args-prompt listed");
    assert_eq!(with_args["arguments"][0]["name"], "city");

    // A get with arguments: the same messages as the child gives directly.
    let args = json!({"city": "Lisbon", "state": "Estremadura"});
    let got = gw
        .request(
            "prompts/get",
            json!({"name": "everything__args-prompt", "arguments": args}),
        )
        .await
        .expect("prompts/get");
    let expected = direct(
        "prompts/get",
        json!({"name": "args-prompt", "arguments": args}),
    )
    .await;
    assert!(got["messages"].as_array().is_some_and(|m| !m.is_empty()));
    assert_eq!(got, expected);
    assert!(got.to_string().contains("Lisbon"), "{got}");

    // And one without arguments.
    let got = gw
        .request("prompts/get", json!({"name": "everything__simple-prompt"}))
        .await
        .expect("prompts/get");
    assert_eq!(
        got,
        direct("prompts/get", json!({"name": "simple-prompt"})).await
    );

    // The child's own error (a required argument missing) comes back as the child's error.
    let err = gw
        .request(
            "prompts/get",
            json!({"name": "everything__args-prompt", "arguments": {}}),
        )
        .await
        .expect_err("missing required argument");
    assert!(err["code"].is_i64(), "{err}");

    // Unknown prompt: -32602 naming it, with close matches.
    let err = gw
        .request("prompts/get", json!({"name": "everything__args-promt"}))
        .await
        .expect_err("unknown prompt");
    assert_eq!(err["code"], -32602, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("everything__args-promt"),
        "{err}"
    );
    assert_eq!(err["data"]["suggestions"][0], "everything__args-prompt");

    // A fault-child tool name is not a prompt.
    let err = gw
        .request("prompts/get", json!({"name": "plain__echo"}))
        .await
        .expect_err("a tool is not a prompt");
    assert_eq!(err["code"], -32602, "{err}");

    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_prompts_lists_none() {
    let gw = Gateway::start(&format!("servers:\n{}", fault_server("plain", "", &[]))).await;
    wait_ready(&gw, &["plain"], Duration::from_secs(30)).await;
    let listed = within(STEP, "prompts/list", gw.request("prompts/list", json!({})))
        .await
        .expect("prompts/list");
    assert_eq!(listed, json!({"prompts": []}));
    // Its tools are served as before.
    assert!(!gw.tool_names().await.is_empty());
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_counts_each_servers_prompts() {
    let gw = Gateway::start(&config()).await;
    wait_ready(&gw, &["everything", "plain"], Duration::from_secs(60)).await;
    let own = direct("prompts/list", json!({})).await;
    let everything = gw.server_health("everything").await;
    assert_eq!(
        everything["prompts"].as_u64(),
        own["prompts"].as_array().map(|p| p.len() as u64),
        "{everything}"
    );
    assert_eq!(everything["prompts_error"], Value::Null);
    let plain = gw.server_health("plain").await;
    assert_eq!(plain["prompts"], 0, "{plain}");
    finish(gw).await;
}
