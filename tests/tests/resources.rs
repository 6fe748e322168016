//! Resources through the gateway: children's resources and templates listed under
//! `orchestra://<server>/<child uri>` (every page, children's cursors followed), read from
//! their child (also by a child's own URI from a tool result), subscriptions forwarded and
//! updates delivered with the subscribed URI, and the faults: a 20 MB read, repeated URIs,
//! a server that is down (guidance, or its fallback's same resource).

use std::time::Duration;

use orchestra_tests::{
    everything_direct, everything_entry, fault_server, fault_with, finish, wait_ready, within,
    Gateway, TempDir, STEP,
};
use serde_json::{json, Value};

const EVERYTHING: &str = "orchestra://everything/";

/// A read's contents without what server-everything makes up on every read: its dynamic
/// resources say when they were "created at" (a clock time), in text or base64.
fn stable(mut read: Value) -> Value {
    for content in read["contents"].as_array_mut().into_iter().flatten() {
        if let Some(text) = content["text"].as_str() {
            let kept = text.split(" created at ").next().unwrap_or(text).to_owned();
            content["text"] = Value::String(kept);
        }
        if content["blob"].is_string() {
            content["blob"] = json!("(a blob with a clock time in it)");
        }
    }
    read
}

/// Every page of a list through the gateway.
async fn list_all(gw: &Gateway, method: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = gw.request(method, params).await.expect(method);
        all.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
    panic!("{method}: more than 100 pages");
}

/// `entry` with `key` stripped of the exposed prefix (what the child itself lists).
fn unexposed(mut entry: Value, key: &str, prefix: &str) -> Value {
    let uri = entry[key].as_str().expect("uri").to_owned();
    let own = uri
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{uri} does not start with {prefix}"));
    entry[key] = Value::String(own.to_owned());
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_templates_are_listed_namespaced_and_read_from_their_child() {
    let gw = Gateway::start(&format!(
        "servers:\n{}{}",
        everything_entry(),
        fault_server("plain", "", &[])
    ))
    .await;
    assert_eq!(
        gw.initialize_result["capabilities"]["resources"],
        json!({"subscribe": true, "listChanged": true}),
        "{}",
        gw.initialize_result
    );
    wait_ready(&gw, &["everything", "plain"], Duration::from_secs(60)).await;

    // The same entries as the child lists itself, each under the exposed URI.
    let direct = everything_direct("resources/list", json!({})).await;
    let listed: Vec<Value> = list_all(&gw, "resources/list", "resources")
        .await
        .into_iter()
        .map(|r| unexposed(r, "uri", EVERYTHING))
        .collect();
    assert!(!listed.is_empty());
    assert_eq!(Value::from(listed.clone()), direct["resources"]);

    let direct_templates = everything_direct("resources/templates/list", json!({})).await;
    let templates: Vec<Value> = list_all(&gw, "resources/templates/list", "resourceTemplates")
        .await
        .into_iter()
        .map(|t| unexposed(t, "uriTemplate", EVERYTHING))
        .collect();
    assert_eq!(
        Value::from(templates.clone()),
        direct_templates["resourceTemplates"]
    );

    // A listed resource reads as it does directly, with the URI the client used.
    let own = listed[0]["uri"].as_str().unwrap().to_owned();
    let exposed = format!("{EVERYTHING}{own}");
    let read = gw
        .request("resources/read", json!({ "uri": exposed }))
        .await
        .expect("read");
    let direct_read = everything_direct("resources/read", json!({ "uri": own })).await;
    assert_eq!(read["contents"][0]["uri"], exposed.as_str(), "{read}");
    assert_eq!(
        unexposed(read["contents"][0].clone(), "uri", EVERYTHING),
        direct_read["contents"][0]
    );

    // A template expands to a URI the gateway maps back to the child's expansion.
    let template = templates[0]["uriTemplate"].as_str().unwrap();
    let expanded = template.split('{').next().unwrap().to_owned() + "1";
    let read = gw
        .request(
            "resources/read",
            json!({ "uri": format!("{EVERYTHING}{expanded}") }),
        )
        .await
        .expect("templated read");
    let direct_read = everything_direct("resources/read", json!({ "uri": expanded })).await;
    assert_eq!(
        stable(json!({"contents": [unexposed(read["contents"][0].clone(), "uri", EVERYTHING)]})),
        stable(direct_read)
    );

    // Completion of a template's argument goes to the template's owner under its own URI.
    let arg = template
        .split('{')
        .nth(1)
        .and_then(|s| s.split('}').next())
        .unwrap();
    let params = |uri: &str| json!({"ref": {"type": "ref/resource", "uri": uri}, "argument": {"name": arg, "value": "1"}});
    let completed = gw
        .request(
            "completion/complete",
            params(&format!("{EVERYTHING}{template}")),
        )
        .await
        .expect("completion");
    let direct_completed = everything_direct("completion/complete", params(template)).await;
    assert_eq!(completed, direct_completed);

    // Unknown resources: MCP's "resource not found", naming the URI.
    let unknown = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://nobody/x://y" }),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown["code"], -32002, "{unknown}");
    assert!(unknown["message"]
        .as_str()
        .unwrap()
        .contains("orchestra://nobody/x://y"));
    let bad_cursor = gw
        .request("resources/list", json!({ "cursor": "nonsense" }))
        .await
        .unwrap_err();
    assert_eq!(bad_cursor["code"], -32602, "{bad_cursor}");
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_link_in_a_tool_result_is_readable_as_the_child_wrote_it() {
    let gw = Gateway::start(&format!(
        "servers:\n{}{}",
        everything_entry(),
        fault_server("plain", "resources:2", &[])
    ))
    .await;
    wait_ready(&gw, &["everything", "plain"], Duration::from_secs(60)).await;
    let result = gw
        .call("everything__get-resource-links", json!({ "count": 2 }))
        .await
        .expect("get-resource-links");
    let links: Vec<String> = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .map(|c| c["uri"].as_str().unwrap().to_owned())
        .collect();
    assert!(!links.is_empty(), "{result}");
    for uri in links {
        assert!(
            !uri.starts_with("orchestra:"),
            "links are the child's own: {uri}"
        );
        let read = gw
            .request("resources/read", json!({ "uri": uri }))
            .await
            .unwrap_or_else(|e| panic!("read {uri}: {e}"));
        let direct = everything_direct("resources/read", json!({ "uri": uri })).await;
        assert_eq!(stable(read), stable(direct), "{uri}");
    }
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reaches_the_subscriber_with_the_uri_it_subscribed_with() {
    let mut gw = Gateway::start(&format!("servers:\n{}", everything_entry())).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    let listed = list_all(&gw, "resources/list", "resources").await;
    let uri = listed[0]["uri"].as_str().unwrap().to_owned();
    gw.request("resources/subscribe", json!({ "uri": uri }))
        .await
        .expect("subscribe");
    gw.call("everything__toggle-subscriber-updates", json!({}))
        .await
        .expect("toggle updates");
    // server-everything sends updates for subscribed URIs every 5 s.
    let updated = gw
        .next_notification("notifications/resources/updated", Duration::from_secs(15))
        .await
        .expect("an update for the subscribed resource");
    assert_eq!(updated["params"]["uri"], uri.as_str(), "{updated}");
    gw.request("resources/unsubscribe", json!({ "uri": uri }))
        .await
        .expect("unsubscribe");
    gw.drain_notifications();
    assert!(
        gw.next_notification("notifications/resources/updated", Duration::from_secs(7))
            .await
            .is_none(),
        "no update after unsubscribing"
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_forwarded_once_and_renewed_when_the_child_restarts() {
    let dir = TempDir::new("resources-sub");
    let log = dir.join("fault.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let gw = Gateway::start(&format!(
        "gateway: {{call_timeout: 5s}}\nservers:\n{}",
        fault_with(
            "items",
            "resources:3",
            &[("FAULT_LOG", log.to_str().unwrap())],
            "restart: {initial_backoff: 100ms, max_backoff: 100ms, jitter: 0.0}"
        )
    ))
    .await;
    wait_ready(&gw, &["items"], Duration::from_secs(30)).await;
    let uri = "orchestra://items/fault://item/1";
    for _ in 0..2 {
        gw.request("resources/subscribe", json!({ "uri": uri }))
            .await
            .expect("subscribe");
    }
    assert_eq!(
        log_text().matches("subscribe fault://item/1").count(),
        1,
        "{}",
        log_text()
    );
    let pid = gw.server_health("items").await["pid"].clone();
    let _ = gw.call("items__crash", json!({})).await;
    within(
        Duration::from_secs(20),
        "the child subscribed again after its restart",
        async {
            loop {
                let health = gw.server_health("items").await;
                if health["state"] == "ready"
                    && health["pid"] != pid
                    && log_text().matches("\nsubscribe fault://item/1").count()
                        + usize::from(log_text().starts_with("subscribe fault://item/1"))
                        >= 2
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await;
    gw.request("resources/unsubscribe", json!({ "uri": uri }))
        .await
        .expect("unsubscribe");
    assert!(
        log_text().contains("unsubscribe fault://item/1"),
        "{}",
        log_text()
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lists_are_paged_both_ways() {
    let gw = Gateway::start(&format!(
        "servers:\n{}",
        fault_server("many", "resources:2500,page_size:300", &[])
    ))
    .await;
    wait_ready(&gw, &["many"], Duration::from_secs(30)).await;
    let first = gw
        .request("resources/list", json!({}))
        .await
        .expect("page 1");
    assert_eq!(first["resources"].as_array().unwrap().len(), 1000);
    assert!(first["nextCursor"].is_string(), "more pages follow");
    let all = list_all(&gw, "resources/list", "resources").await;
    assert_eq!(
        all.len(),
        2500,
        "every page of the child, every page served"
    );
    let uris: std::collections::HashSet<&str> =
        all.iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris.len(), 2500, "no entry twice");
    assert!(uris.contains("orchestra://many/fault://item/2499"));
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_uris_and_prompt_names_keep_the_first_and_say_so() {
    let gw = Gateway::start(&format!(
        "servers:\n{}",
        fault_server("twice", "resources:2,prompts:2,duplicate_entries", &[])
    ))
    .await;
    wait_ready(&gw, &["twice"], Duration::from_secs(30)).await;
    let resources = list_all(&gw, "resources/list", "resources").await;
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["item_0", "item_1"],
        "the first of a repeated URI is kept"
    );
    let prompts = list_all(&gw, "prompts/list", "prompts").await;
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert_eq!(prompts[0]["description"], "The prompt_0 prompt");
    let health = gw.server_health("twice").await;
    assert!(
        health["resources_dropped"][0]
            .as_str()
            .unwrap()
            .contains("fault://item/0"),
        "{health}"
    );
    assert!(
        health["prompts_dropped"][0]
            .as_str()
            .unwrap()
            .contains("prompt_0"),
        "{health}"
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_megabyte_read_is_refused_or_passed_by_max_message_size() {
    let big = 20 * 1024 * 1024;
    let gw = Gateway::start(&format!(
        "servers:\n{}{}",
        fault_server("limited", &format!("resources:1,huge_resource:{big}"), &[]),
        fault_with(
            "roomy",
            &format!("resources:1,huge_resource:{big}"),
            &[],
            "max_message_size: 32MiB"
        )
    ))
    .await;
    wait_ready(&gw, &["limited", "roomy"], Duration::from_secs(30)).await;
    let refused = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://limited/fault://huge" }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused["code"], -31005, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("limited"),
        "{refused}"
    );
    // The same child goes on serving.
    let small = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://limited/fault://item/0" }),
        )
        .await
        .expect("a small read after the big one");
    assert_eq!(small["contents"][0]["text"], "item 0");
    let passed = within(
        Duration::from_secs(30),
        "a 20 MB read",
        gw.request(
            "resources/read",
            json!({ "uri": "orchestra://roomy/fault://huge" }),
        ),
    )
    .await
    .expect("read under a raised limit");
    assert_eq!(passed["contents"][0]["text"].as_str().unwrap().len(), big);
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_servers_resource_is_read_from_its_fallback_or_explained() {
    let down = "restart: {initial_backoff: 30s, max_backoff: 30s, jitter: 0.0}";
    let gw = Gateway::start(&format!(
        "gateway: {{call_timeout: 5s}}\nservers:\n{}{}{}\
         domain_boundaries: {{files: primary, notes: lonely}}\n\
         server_alternatives: {{primary: {{fallback: backup, degraded_capabilities: [reads], lost_capabilities: [writes]}}}}\n",
        fault_with("primary", "resources:3,huge_resource:10,prompts:1", &[], down),
        fault_server("backup", "resources:2,prompts:1", &[]),
        fault_with("lonely", "resources:1", &[], down),
    ))
    .await;
    wait_ready(
        &gw,
        &["primary", "backup", "lonely"],
        Duration::from_secs(30),
    )
    .await;
    for name in ["primary", "lonely"] {
        let _ = gw.call(&format!("{name}__crash"), json!({})).await;
        gw.wait_server(name, Duration::from_secs(10), |s| {
            s["state"] == "restarting"
        })
        .await;
    }
    // The listing drops the down servers' resources.
    let listed = list_all(&gw, "resources/list", "resources").await;
    assert!(listed.iter().all(|r| r["uri"]
        .as_str()
        .unwrap()
        .starts_with("orchestra://backup/")));

    // The fallback has the same resource: it serves the read, and says so.
    let read = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://primary/fault://item/1" }),
        )
        .await
        .expect("read through the fallback");
    assert_eq!(read["contents"][0]["text"], "item 1");
    assert_eq!(
        read["_meta"]["mcp-orchestra/failover"]["served_by"], "backup",
        "{read}"
    );
    // The same for a prompt of the same name.
    let got = gw
        .request("prompts/get", json!({ "name": "primary__prompt_0" }))
        .await
        .expect("prompt through the fallback");
    assert_eq!(
        got["_meta"]["mcp-orchestra/failover"]["served_by"], "backup",
        "{got}"
    );
    // Not at the fallback (it neither lists it nor has a template it fits): why, and what to
    // use instead.
    let missing = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://primary/fault://huge" }),
        )
        .await
        .unwrap_err();
    assert_eq!(missing["code"], -31001, "{missing}");
    let text = missing["message"].as_str().unwrap();
    assert!(
        text.contains("primary") && text.contains("restarting"),
        "{text}"
    );
    assert!(
        text.contains("orchestra://backup/fault://item/0"),
        "alternatives named: {text}"
    );
    assert_eq!(missing["data"]["fallback"], "backup", "{missing}");
    // No stand-in at all.
    let lonely = gw
        .request(
            "resources/read",
            json!({ "uri": "orchestra://lonely/fault://item/0" }),
        )
        .await
        .unwrap_err();
    assert_eq!(lonely["code"], -31001, "{lonely}");
    assert!(
        lonely["message"]
            .as_str()
            .unwrap()
            .contains("No alternative resources"),
        "{lonely}"
    );
    finish(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_waits_for_a_starting_server_and_a_cancelled_one_reaches_the_child() {
    let dir = TempDir::new("resources-cancel");
    let log = dir.join("fault.log");
    let gw = Gateway::start(&format!(
        "servers:\n{}{}",
        fault_server("slow", "resources:1,slow_start:1500", &[]),
        fault_server(
            "stuck",
            "resources:1,hang_on:resources/read",
            &[("FAULT_LOG", log.to_str().unwrap())]
        ),
    ))
    .await;
    let read = gw
        .send_request(
            "resources/read",
            json!({ "uri": "orchestra://slow/fault://item/0" }),
        )
        .await;
    let answer = within(
        Duration::from_secs(20),
        "a read parked until the start",
        read,
    )
    .await
    .expect("answer");
    assert_eq!(
        answer["result"]["contents"][0]["text"], "item 0",
        "{answer}"
    );

    // A read the client cancels: the child is told, and the client gets no answer.
    wait_ready(&gw, &["stuck"], Duration::from_secs(30)).await;
    let (id, pending) = gw
        .send_request_with_id(
            "resources/read",
            json!({ "uri": "orchestra://stuck/fault://item/0" }),
        )
        .await;
    within(STEP, "the read reaches the child", async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("request resources/read")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    gw.notify(
        "notifications/cancelled",
        json!({ "requestId": id, "reason": "changed my mind" }),
    )
    .await;
    within(STEP, "the child is sent notifications/cancelled", async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("cancelled")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let late = tokio::time::timeout(Duration::from_millis(500), pending).await;
    assert!(
        late.is_err(),
        "a cancelled request gets no answer: {late:?}"
    );
    finish(gw).await;
}
