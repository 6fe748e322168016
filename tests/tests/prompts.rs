//! Prompts through the gateway: children's prompts listed under `<server>__<prompt>`, a
//! `prompts/get` routed to the owning child under its own name and answered with the child's
//! result as is; unknown names get -32602 with close matches; a server without prompts adds
//! none. Compared with real `server-everything` talked to directly.

use std::time::Duration;

use orchestra_tests::{
    everything_direct, everything_entry, fault_server, fault_with, finish, text_of, wait_ready,
    within, Gateway, STEP,
};
use serde_json::{json, Value};

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
    // fault child (no prompts capability) contributes nothing. A cursor that is not the
    // gateway's is refused, as MCP asks.
    let bad = gw
        .request("prompts/list", json!({"cursor": "made-up"}))
        .await
        .expect_err("an unknown cursor");
    assert_eq!(bad["code"], -32602, "{bad}");
    let listed = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    let own = everything_direct("prompts/list", json!({})).await;
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
    let expected = everything_direct(
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
        everything_direct("prompts/get", json!({"name": "simple-prompt"})).await
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
    let own = everything_direct("prompts/list", json!({})).await;
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

/// The exposed names in a `prompts/list` result.
fn prompt_names(listed: &Value) -> Vec<String> {
    listed["prompts"]
        .as_array()
        .unwrap_or_else(|| panic!("no prompts array: {listed}"))
        .iter()
        .map(|p| p["name"].as_str().expect("prompt name").to_owned())
        .collect()
}

/// The text of a `prompts/get` result's first message (the fault child echoes
/// `<name> <arguments>` there).
fn message_text(got: &Value) -> &str {
    got["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no message text: {got}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_prompts_listing_leaves_the_child_ready_with_its_tools() {
    let gw = Gateway::start(&format!(
        "servers:\n{}{}",
        fault_server("broken", "prompts_fail", &[]),
        fault_server("fine", "prompts:1", &[])
    ))
    .await;
    wait_ready(&gw, &["broken", "fine"], Duration::from_secs(30)).await;

    // Its tools are listed and served.
    assert!(gw.tool_names().await.contains(&"broken__echo".to_owned()));
    let echoed = gw
        .call("broken__echo", json!({"text": "still here"}))
        .await
        .expect("broken__echo");
    assert_eq!(text_of(&echoed), "still here");

    // Health says why it has no prompts (the child's own message, as the gateway got it).
    let broken = gw.server_health("broken").await;
    assert_eq!(broken["prompts"], 0, "{broken}");
    let error = broken["prompts_error"]
        .as_str()
        .unwrap_or_else(|| panic!("prompts_error is a string: {broken}"));
    assert!(error.contains("prompts/list"), "{error}");
    assert!(error.contains("failed on purpose"), "{error}");
    // The other child's listing is not affected.
    let fine = gw.server_health("fine").await;
    assert_eq!(fine["prompts"], 1, "{fine}");
    assert_eq!(fine["prompts_error"], Value::Null, "{fine}");

    let listed = within(STEP, "prompts/list", gw.request("prompts/list", json!({})))
        .await
        .expect("prompts/list");
    assert_eq!(prompt_names(&listed), ["fine__prompt_0"]);
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_prompts_list_changed_reaches_the_client_and_the_new_prompt_is_served() {
    let mut gw = Gateway::start(&format!(
        "servers:\n{}",
        fault_server("p", "prompts:2,prompts_change_after:1", &[])
    ))
    .await;
    wait_ready(&gw, &["p"], Duration::from_secs(30)).await;

    // The client lists prompts (from now on changes are announced to it).
    let listed = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    assert_eq!(prompt_names(&listed), ["p__prompt_0", "p__prompt_1"]);
    let err = gw
        .request("prompts/get", json!({"name": "p__added_prompt"}))
        .await
        .expect_err("not added yet");
    assert_eq!(err["code"], -32602, "{err}");
    gw.drain_notifications();

    // One answered call makes the child add a prompt and say so (prompts only: its tools
    // are unchanged, so only the prompt re-listing can bring the new prompt in).
    gw.call("p__echo", json!({"text": "go"}))
        .await
        .expect("p__echo");
    let note = gw
        .next_notification("notifications/prompts/list_changed", STEP)
        .await;
    assert!(
        note.is_some(),
        "no notifications/prompts/list_changed; gateway log:\n{}",
        gw.logs()
    );

    let listed = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    assert_eq!(
        prompt_names(&listed),
        ["p__prompt_0", "p__prompt_1", "p__added_prompt"]
    );
    let got = gw
        .request(
            "prompts/get",
            json!({"name": "p__added_prompt", "arguments": {"topic": "news"}}),
        )
        .await
        .expect("prompts/get of the added prompt");
    // The child got its own name and the client's arguments.
    assert_eq!(
        message_text(&got),
        r#"added_prompt {"topic":"news"}"#,
        "{got}"
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_servers_prompts_are_unlisted_and_a_get_says_it_is_down() {
    // The restart (20 s away) is due after a request's timeout (5 s): a get is answered at
    // once instead of waiting for it.
    let gw = Gateway::start(&format!(
        "gateway: {{call_timeout: 5s}}\nservers:\n{}{}",
        fault_with(
            "owner",
            "prompts:2",
            &[],
            "restart: {initial_backoff: 20s, max_backoff: 20s, jitter: 0.0}"
        ),
        fault_server("other", "prompts:1", &[])
    ))
    .await;
    wait_ready(&gw, &["owner", "other"], Duration::from_secs(30)).await;
    let listed = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    let mut names = prompt_names(&listed);
    names.sort();
    assert_eq!(
        names,
        ["other__prompt_0", "owner__prompt_0", "owner__prompt_1"]
    );
    let got = gw
        .request("prompts/get", json!({"name": "owner__prompt_1"}))
        .await
        .expect("prompts/get while up");
    assert_eq!(message_text(&got), "prompt_1 {}", "{got}");

    // The owner crashes and stays down for its 20 s backoff.
    let err = gw
        .call("owner__crash", json!({}))
        .await
        .expect_err("a crash is answered with an error");
    assert_eq!(err["code"], -31002, "{err}");
    let down = gw
        .wait_server("owner", Duration::from_secs(5), |s| s["state"] != "ready")
        .await;
    let state = down["state"].as_str().expect("state").to_owned();

    // A get of its prompt: -31001 naming the server and its state, not "unknown prompt".
    let err = gw
        .request("prompts/get", json!({"name": "owner__prompt_1"}))
        .await
        .expect_err("owner is down");
    assert_eq!(err["code"], -31001, "{err}");
    let message = err["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("server \"owner\" is {state}")),
        "{message}"
    );
    assert_eq!(err["data"]["server"], "owner", "{err}");
    assert_eq!(err["data"]["state"], state.as_str(), "{err}");
    // The reason is the gateway's record of the crash, not a session closing under a request.
    assert_eq!(err["data"]["reason"], down["reason"], "{err} vs {down}");

    // The list: the other server's prompt only.
    let listed = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    assert_eq!(prompt_names(&listed), ["other__prompt_0"]);
    finish(gw).await;
}
