//! Protocol edges on both sides: what the client may send that is not a well-formed request,
//! and requests a child sends that the gateway does not pass on.

use std::time::Duration;

use orchestra_tests::{fault_server, finish, text_of, within, Gateway, TempDir, STEP};
use serde_json::{json, Value};

/// Fault matrix B8: a child's server→client request (`roots/list`) is refused with -32601
/// when no session declared the capability (this client declares none) and never reaches
/// the client; the child keeps serving. (Forwarding: tests/tests/server_requests.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_request_to_the_client_is_refused_not_forwarded() {
    let dir = TempDir::new("srvreq");
    let log = dir.join("child.log");
    let log_s = log.display().to_string();
    let config = format!(
        "servers:\n{}",
        fault_server(
            "asker",
            "server_request:roots/list",
            &[("FAULT_LOG", log_s.as_str())]
        )
    );
    let mut gw = Gateway::start(&config).await;
    let echo = gw
        .call("asker__echo", json!({"text": "still fine"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "still fine");
    let response = within(STEP, "the child to log the gateway's answer", async {
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.starts_with("response srv-1 ")) {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let answer: Value =
        serde_json::from_str(response.trim_start_matches("response srv-1 ")).unwrap();
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("roots/list"),
        "{answer}"
    );
    let leaked: Vec<Value> = gw
        .drain_notifications()
        .into_iter()
        .filter(|n| n["method"] == "roots/list")
        .collect();
    assert!(
        leaked.is_empty(),
        "the child's request reached the client: {leaked:?}"
    );
    finish(gw).await;
}

/// Fault matrix C1/C2/C7: a batch is -32600, garbage is -32700, an unknown method -32601, a
/// call without a name -32602 — each answered, and the session carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_client_input_is_answered_and_the_session_survives() {
    let config = format!("servers:\n{}", fault_server("f", "", &[]));
    let mut gw = Gateway::start(&config).await;

    gw.write_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
        .await;
    let batch = gw.next_null_id_error().await;
    assert_eq!(batch["error"]["code"], -32600, "{batch}");
    assert_eq!(batch["id"], Value::Null);

    gw.write_raw("{this is not json").await;
    let parse = gw.next_null_id_error().await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");

    let err = gw
        .request("resources/subscribe", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -32602, "a subscribe without a uri: {err}");
    let err = gw.request("no/such/method", json!({})).await.unwrap_err();
    assert_eq!(err["code"], -32601, "{err}");
    let err = gw
        .request("tools/call", json!({"arguments": {}}))
        .await
        .unwrap_err();
    assert_eq!(err["code"], -32602, "{err}");
    assert!(err["message"].as_str().unwrap().contains("name"), "{err}");

    // Still serving.
    let echo = gw
        .call("f__echo", json!({"text": "after the garbage"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "after the garbage");
    let pong = gw.request("ping", json!({})).await.unwrap();
    assert_eq!(pong, json!({}));
    finish(gw).await;
}

/// A client asking for an unknown protocol version gets the newest one the gateway speaks
/// (the client decides whether to go on); a known older one is accepted as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_versions_are_negotiated() {
    let config = format!("servers:\n{}", fault_server("f", "", &[]));
    for (asked, expected) in [("2025-06-18", "2025-06-18"), ("1999-01-01", "2025-11-25")] {
        let gw = Gateway::spawn(&config, &[]);
        let init = gw
            .request(
                "initialize",
                json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
            )
            .await
            .unwrap();
        assert_eq!(init["protocolVersion"], expected, "asked {asked}");
        assert_eq!(init["serverInfo"]["name"], "mcp-orchestra");
        finish(gw).await;
    }
}

/// The gateway keeps what each session negotiated (era, client, capabilities) — what decides
/// what may be sent to it — and health lists the live sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_lists_the_session_with_what_it_negotiated() {
    let config = format!("servers:\n{}", fault_server("f", "", &[]));
    let gw = Gateway::spawn(&config, &[]);
    gw.request(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"roots": {"listChanged": true}, "sampling": {}},
            "clientInfo": {"name": "session-probe", "version": "7"},
        }),
    )
    .await
    .unwrap();
    let health = gw.health().await;
    let sessions = health["sessions"].as_array().expect("sessions listed");
    assert_eq!(sessions.len(), 1, "{health}");
    let s = &sessions[0];
    assert_eq!(s["transport"], "stdio");
    assert_eq!(s["protocol_version"], "2025-06-18");
    assert_eq!(s["client"]["name"], "session-probe");
    assert!(s["capabilities"]["sampling"].is_object(), "{s}");
    assert!(s["capabilities"]["roots"]["listChanged"] == true, "{s}");
    finish(gw).await;
}

/// A 2026-07-28-era client opens with `server/discover`: it gets an immediate -32601 that
/// says to initialize (what makes SDK clients fall back), and the handshake then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_discover_gets_an_immediate_answer_that_leads_to_initialize() {
    let config = format!("servers:\n{}", fault_server("f", "", &[]));
    let gw = Gateway::spawn(&config, &[]);
    let started = std::time::Instant::now();
    let err = gw.request("server/discover", json!({})).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once"
    );
    assert_eq!(err["code"], -32601, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("send initialize"),
        "{err}"
    );
    let init = gw
        .request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
        )
        .await
        .expect("initialize after the probe");
    assert_eq!(init["protocolVersion"], "2025-11-25");
    finish(gw).await;
}
