//! Several client sessions on one gateway and its shared children, in process (see
//! `orchestra_tests::inproc`): what one session sends, asks or is told never leaks into
//! another — colliding request ids and progress tokens, cancellation, log levels, list
//! changes, resource updates and server→client requests.

use std::time::Duration;

use orchestra_tests::inproc::{is_method, Client, InProcess};
use orchestra_tests::{everything_entry, fault_server, fault_with, text_of, within, TempDir, STEP};
use serde_json::{json, Value};

/// Long enough for a message already on its way to arrive: used to show one did not.
const QUIET: Duration = Duration::from_millis(500);

fn call_params(tool: &str, arguments: Value) -> Value {
    json!({"name": tool, "arguments": arguments})
}

/// The text of the result in response `m` (panics on an error response).
fn result_text(m: &Value) -> String {
    assert!(m.get("error").is_none(), "an error response: {m}");
    text_of(&m["result"])
}

/// The `notifications/*` with `method` among `messages`.
fn with_method<'a>(messages: &'a [Value], method: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| is_method(m, method)).collect()
}

/// The responses among `messages`.
fn responses(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m.get("method").is_none())
        .collect()
}

#[tokio::test]
async fn colliding_request_ids_are_answered_to_their_own_session() {
    let gw = InProcess::start(&format!("servers:\n{}", everything_entry())).await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;

    // Three calls in flight at once: A's 1 and "1" (distinct ids), and B's 1.
    let echo = |text: &str| call_params("everything__echo", json!({"message": text}));
    a.send_request(json!(1), "tools/call", echo("a-number"))
        .await;
    a.send_request(json!("1"), "tools/call", echo("a-string"))
        .await;
    b.send_request(json!(1), "tools/call", echo("b-number"))
        .await;

    let a_num = a.response(&json!(1), STEP).await;
    let a_str = a.response(&json!("1"), STEP).await;
    let b_num = b.response(&json!(1), STEP).await;
    assert_eq!(result_text(&a_num), "Echo: a-number");
    assert_eq!(result_text(&a_str), "Echo: a-string");
    assert_eq!(result_text(&b_num), "Echo: b-number");
    // Exactly one answer each: nothing else arrives on either session.
    assert_eq!(responses(&a.drain(QUIET).await), Vec::<&Value>::new());
    assert_eq!(responses(&b.drain(QUIET).await), Vec::<&Value>::new());
    a.assert_clean_output();
    b.assert_clean_output();
    drop((a, b));
    gw.finish().await;
}

#[tokio::test]
async fn colliding_progress_tokens_reach_only_their_own_session_in_order() {
    let gw = InProcess::start(&format!("servers:\n{}", everything_entry())).await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;

    // Same request id, same progress token; the step counts tell the two apart.
    let long = |steps: u64| {
        json!({
            "name": "everything__trigger-long-running-operation",
            "arguments": {"duration": 1.5, "steps": steps},
            "_meta": {"progressToken": "tok"}
        })
    };
    a.send_request(json!(1), "tools/call", long(3)).await;
    b.send_request(json!(1), "tools/call", long(5)).await;

    for (client, steps) in [(&mut a, 3u64), (&mut b, 5)] {
        let got = client.until_response(&json!(1), STEP).await;
        let (answer, before) = got.split_last().expect("the response");
        assert!(
            result_text(answer).contains(&format!("Steps: {steps}")),
            "{}: {answer}",
            client.name
        );
        let progress = with_method(before, "notifications/progress");
        let seen: Vec<(Value, Value, Value)> = progress
            .iter()
            .map(|p| {
                let p = &p["params"];
                (
                    p["progressToken"].clone(),
                    p["progress"].clone(),
                    p["total"].clone(),
                )
            })
            .collect();
        let expected: Vec<(Value, Value, Value)> = (1..=steps)
            .map(|i| (json!("tok"), json!(i), json!(steps)))
            .collect();
        assert_eq!(
            seen, expected,
            "{}: its own progress, in order",
            client.name
        );
    }
    // Nothing of the other session's arrives later either.
    for client in [&mut a, &mut b] {
        let late = client.drain(QUIET).await;
        assert!(
            with_method(&late, "notifications/progress").is_empty(),
            "{}: {late:?}",
            client.name
        );
    }
    drop((a, b));
    gw.finish().await;
}

#[tokio::test]
async fn a_cancellation_cancels_only_the_cancelling_sessions_call() {
    let scratch = TempDir::new("multi-cancel");
    let log = scratch.join("slow.log");
    let config = format!(
        "servers:\n{}{}",
        everything_entry(),
        fault_server("slow", "", &[("FAULT_LOG", &log.display().to_string())])
    );
    let gw = InProcess::start(&config).await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;

    // Both sessions have a call with id 7 in flight to the fault child, and one with id 8 to
    // server-everything; A cancels both of its own.
    let sleep = call_params("slow__sleep", json!({"ms": 2000}));
    let long = call_params(
        "everything__trigger-long-running-operation",
        json!({"duration": 2, "steps": 2}),
    );
    for client in [&a, &b] {
        client
            .send_request(json!(7), "tools/call", sleep.clone())
            .await;
        client
            .send_request(json!(8), "tools/call", long.clone())
            .await;
    }
    for id in [7, 8] {
        a.send(&json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "a changed its mind"}
        }))
        .await;
    }

    // B's calls complete as if nothing happened.
    let b7 = b.response(&json!(7), STEP).await;
    let b8 = b.response(&json!(8), STEP).await;
    assert!(b7.get("result").is_some(), "{b7}");
    assert!(result_text(&b8).contains("completed"), "{b8}");
    // A's are not answered (a cancelled request gets no response), even after B's ended.
    let late = a.drain(Duration::from_secs(1)).await;
    assert_eq!(
        responses(&late),
        Vec::<&Value>::new(),
        "A's cancelled calls"
    );
    // The fault child was told of exactly one cancellation, with A's reason.
    let told: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cancelled "))
        .map(str::to_owned)
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].ends_with("a changed its mind"), "{told:?}");
    drop((a, b));
    gw.finish().await;
}

/// The levels of the `notifications/message` among `messages`, in order.
fn log_levels(messages: &[Value]) -> Vec<String> {
    with_method(messages, "notifications/message")
        .iter()
        .map(|m| m["params"]["level"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// What the fault child was set to, in order (`set_level` lines of its log).
fn set_levels(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("set_level "))
        .map(str::to_owned)
        .collect()
}

async fn wait_set_levels(log: &std::path::Path, expected: &[&str]) {
    let what = format!("the child to be set to {expected:?}");
    within(STEP, &what, async {
        while set_levels(log) != expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Calls the noisy child's echo and returns every message the session got up to its answer.
async fn noisy_call(client: &mut Client, id: u64) -> Vec<Value> {
    client
        .send_request(
            json!(id),
            "tools/call",
            call_params("noisy__echo", json!({"text": "hi"})),
        )
        .await;
    client.until_response(&json!(id), STEP).await
}

const ALL: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];
const ERROR_AND_UP: [&str; 4] = ["error", "critical", "alert", "emergency"];

#[tokio::test]
async fn log_levels_are_per_session_and_children_follow_the_most_verbose_one_still_asked() {
    let scratch = TempDir::new("multi-log");
    let log = scratch.join("noisy.log");
    let config = format!(
        "servers:\n{}",
        fault_with(
            "noisy",
            "log_all_levels",
            &[("FAULT_LOG", &log.display().to_string())],
            ""
        )
    );
    let gw = InProcess::start(&config).await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;
    let mut unset = gw.session("unset", json!({})).await;

    a.request("logging/setLevel", json!({"level": "debug"}))
        .await
        .expect("setLevel");
    wait_set_levels(&log, &["debug"]).await;
    b.request("logging/setLevel", json!({"level": "error"}))
        .await
        .expect("setLevel");

    // The child sends all eight levels before each answer (whoever called); each session gets
    // what its own level admits, the one that never asked gets everything.
    let got = noisy_call(&mut a, 1).await;
    assert_eq!(log_levels(&got), ALL, "a (debug)");
    assert_eq!(
        log_levels(&b.drain(QUIET).await),
        ERROR_AND_UP,
        "b, from a's call"
    );
    let got = noisy_call(&mut b, 1).await;
    assert_eq!(log_levels(&got), ERROR_AND_UP, "b (error)");
    assert_eq!(log_levels(&a.drain(QUIET).await), ALL, "a, from b's call");
    assert_eq!(
        log_levels(&unset.drain(QUIET).await),
        [ALL, ALL].concat(),
        "unset: both calls"
    );
    // B asked for less than A: the child stayed at debug.
    assert_eq!(set_levels(&log), ["debug"]);

    // A leaves: the most verbose level still asked is B's, and the child is told so.
    drop(a);
    wait_set_levels(&log, &["debug", "error"]).await;
    let got = noisy_call(&mut b, 2).await;
    assert_eq!(log_levels(&got), ERROR_AND_UP, "b after a left");
    drop((b, unset));
    gw.finish().await;
}

#[tokio::test]
async fn list_changed_goes_only_to_sessions_whose_own_list_changed() {
    let config = format!(
        "servers:\n{}",
        fault_server("changing", "tools_change_after:1", &[])
    );
    let gw = InProcess::start(&config).await;
    let mut listed = gw.session("listed", json!({})).await;
    let mut never_listed = gw.session("never_listed", json!({})).await;
    let mut prompts_only = gw.session("prompts_only", json!({})).await;

    let before = listed.request("tools/list", json!({})).await.expect("list");
    prompts_only
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    // One answered call makes the child add `added_later` and say its tools changed.
    listed
        .call("changing__echo", json!({"text": "x"}))
        .await
        .expect("call");
    listed
        .take(STEP, "listed: tools/list_changed", |m| {
            is_method(m, "notifications/tools/list_changed")
        })
        .await;
    let after = listed.request("tools/list", json!({})).await.expect("list");
    assert_ne!(before, after);
    assert!(
        after.to_string().contains("changing__added_later"),
        "{after}"
    );

    // A session that lists only now has seen the new list: nothing to tell it.
    let mut late = gw.session("late", json!({})).await;
    let late_list = late.request("tools/list", json!({})).await.expect("list");
    assert_eq!(late_list, after);

    // Past the announcer's debounce and least interval: nobody else was told anything, and
    // the session that was told is not told again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for client in [&mut listed, &mut never_listed, &mut prompts_only, &mut late] {
        let got = client.drain(QUIET).await;
        let told: Vec<&Value> = got
            .iter()
            .filter(|m| {
                m["method"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("list_changed"))
            })
            .collect();
        assert!(told.is_empty(), "{}: {told:?}", client.name);
        // Its output still works: the silence is not a dead session.
        client.request("ping", json!({})).await.expect("ping");
    }
    drop((listed, never_listed, prompts_only, late));
    gw.finish().await;
}

/// server-everything's static document `name`, as the gateway names it.
fn document(name: &str) -> String {
    format!("orchestra://everything/demo://resource/static/document/{name}")
}

#[tokio::test]
async fn resource_updates_reach_only_the_sessions_subscribed_to_them() {
    let gw = InProcess::start(&format!("servers:\n{}", everything_entry())).await;
    let mut a = gw.session("a", json!({})).await;
    let mut b = gw.session("b", json!({})).await;
    let mut none = gw.session("none", json!({})).await;
    let (x, y) = (document("architecture.md"), document("features.md"));

    a.request("resources/subscribe", json!({"uri": x}))
        .await
        .expect("subscribe");
    for uri in [&x, &y] {
        b.request("resources/subscribe", json!({"uri": uri}))
            .await
            .expect("subscribe");
    }
    // server-everything sends an update for every subscribed URI at once, then every 5 s.
    none.call("everything__toggle-subscriber-updates", json!({}))
        .await
        .expect("toggle");

    let updated = |uri: &str| {
        let uri = uri.to_owned();
        move |m: &Value| {
            is_method(m, "notifications/resources/updated") && m["params"]["uri"] == uri
        }
    };
    a.take(STEP, "a: x updated", updated(&x)).await;
    b.take(STEP, "b: x updated", updated(&x)).await;
    b.take(STEP, "b: y updated", updated(&y)).await;
    // The next round comes 5 s later; within a second, A has had all it will get now.
    for client in [&mut a, &mut none] {
        let got = client.drain(Duration::from_secs(1)).await;
        let uris: Vec<&Value> = with_method(&got, "notifications/resources/updated")
            .iter()
            .map(|m| &m["params"]["uri"])
            .collect();
        let allowed: &[&str] = if client.name == "a" { &[&x] } else { &[] };
        assert!(
            uris.iter().all(|u| allowed.iter().any(|a| u == a)),
            "{}: {uris:?}",
            client.name
        );
    }
    drop((a, b, none));
    gw.finish().await;
}

/// Over stdio a child's request says nothing of the call it serves: the gateway infers the
/// session from the calls the child holds (see `upstream.rs`). So each session's call is made
/// while the child holds no other session's call; both sessions could answer sampling.
#[tokio::test]
async fn a_server_request_reaches_only_the_session_whose_call_caused_it() {
    let gw = InProcess::start(&format!("servers:\n{}", everything_entry())).await;
    let sampling = json!({"sampling": {}});
    let mut a = gw.session("a", sampling.clone()).await;
    let mut b = gw.session("b", sampling).await;

    sampling_round(&mut a, &mut b).await;
    sampling_round(&mut b, &mut a).await;
    drop((a, b));
    gw.finish().await;
}

/// While another session's call is in flight at the same child, a child's request cannot be
/// attributed to one session (stdio says nothing about it), so no session is asked — it might
/// carry the other client's data — and the call that caused it gets the child's own answer to
/// the refusal at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_request_during_calls_of_two_sessions_goes_to_neither() {
    let gw = InProcess::start(&format!("servers:\n{}", everything_entry())).await;
    let sampling = json!({"sampling": {}});
    let mut a = gw.session("a", sampling.clone()).await;
    let mut b = gw.session("b", sampling).await;
    // A's call keeps the child busy for 3 s.
    a.send_request(
        json!(1),
        "tools/call",
        call_params(
            "everything__trigger-long-running-operation",
            json!({"duration": 3, "steps": 3}),
        ),
    )
    .await;
    b.send_request(
        json!(1),
        "tools/call",
        call_params(
            "everything__trigger-sampling-request",
            json!({"prompt": "from b", "maxTokens": 5}),
        ),
    )
    .await;
    let answer = b.response(&json!(1), STEP).await;
    let refused = answer.get("error").is_some()
        || answer["result"]["isError"] == true
        || result_text(&answer).to_lowercase().contains("error");
    assert!(refused, "b's call reports the refusal: {answer}");
    let seen_b = b.drain(QUIET).await;
    let seen_a = a.until_response(&json!(1), Duration::from_secs(10)).await;
    for (name, seen) in [("a", &seen_a), ("b", &seen_b)] {
        assert!(
            with_method(seen, "sampling/createMessage").is_empty(),
            "{name} was asked: {seen:?}"
        );
    }
    drop((a, b));
    gw.finish().await;
}

/// `asking` triggers a sampling request with request id 1, is asked, answers, and gets its
/// call's result with its answer in; `other` sees none of it.
async fn sampling_round(asking: &mut Client, other: &mut Client) {
    let name = asking.name.clone();
    // The same request id in both sessions.
    asking
        .send_request(
            json!(1),
            "tools/call",
            call_params(
                "everything__trigger-sampling-request",
                json!({"prompt": format!("from {name}"), "maxTokens": 5}),
            ),
        )
        .await;
    let asked = asking
        .take(STEP, &format!("{name}: sampling/createMessage"), |m| {
            is_method(m, "sampling/createMessage")
        })
        .await;
    let prompt = asked["params"]["messages"][0]["content"]["text"].to_string();
    assert!(prompt.contains(&format!("from {name}")), "{name}: {asked}");
    let id = asked.get("id").cloned().expect("a request has an id");
    asking
        .send(&json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": {
                "role": "assistant",
                "content": {"type": "text", "text": format!("answer for {name}")},
                "model": "test-model",
                "stopReason": "endTurn"
            }
        }))
        .await;
    let answer = asking.response(&json!(1), STEP).await;
    let text = result_text(&answer);
    assert!(text.contains(&format!("answer for {name}")), "{text}");
    // The other session was neither asked nor answered anything.
    let seen = other.drain(QUIET).await;
    assert!(
        with_method(&seen, "sampling/createMessage").is_empty(),
        "{}: {seen:?}",
        other.name
    );
    assert_eq!(responses(&seen), Vec::<&Value>::new(), "{}", other.name);
}
