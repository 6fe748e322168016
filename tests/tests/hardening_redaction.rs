//! Secrets a child prints never reach the client or the model: what the gateway composes from a
//! child's stderr (the health report's stderr tail, reason and events, the answer for a tool
//! whose server is down) shows `[REDACTED]` where the child wrote a credential or a value
//! configured as a secret.

use std::time::Duration;

use orchestra_tests::{fault_with, finish, str_of, text_of, unavailable_detail, Gateway};
use serde_json::{json, Value};

const MARKER: &str = "[REDACTED]";
/// An OpenAI-shaped key, a GitHub token, a database password, and a value configured in the
/// server's `env` (it matches no credential shape: only the configuration makes it secret).
const OPENAI_KEY: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
const GITHUB_TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s";
const DB_PASSWORD: &str = "hunter2";
const CONFIGURED: &str = "Wx7-tango-Q9-lima";

/// The parts of each secret that must not appear anywhere (a kept prefix like `ghp_` is fine).
fn secrets() -> [&'static str; 4] {
    [
        &OPENAI_KEY["sk-proj-".len()..],
        &GITHUB_TOKEN["ghp_".len()..],
        DB_PASSWORD,
        CONFIGURED,
    ]
}

fn assert_redacted(what: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret:?}: {text}"
        );
    }
    assert!(
        text.contains(MARKER),
        "{what} shows no redaction marker: {text}"
    );
}

/// A child that prints credentials to stderr at start and again when it crashes: the stderr
/// tail, the reason, the events (structured and in the summary text) and the unavailable-tool
/// answer keep what names each secret and hide the secret itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_on_a_childs_stderr_are_redacted_everywhere_they_are_shown() {
    let last = format!(
        "fatal: upstream refused {CONFIGURED} with API_KEY={OPENAI_KEY} token={GITHUB_TOKEN} \
         via postgres://admin:{DB_PASSWORD}@db/x"
    );
    let lines = [
        format!("API_KEY={OPENAI_KEY}"),
        format!("token={GITHUB_TOKEN}"),
        format!("connecting to postgres://admin:{DB_PASSWORD}@db/x"),
        last,
    ];
    let mode = lines
        .iter()
        .map(|l| format!("stderr_line:{l}"))
        .collect::<Vec<_>>()
        .join(",");
    let yaml = format!(
        "gateway: {{startup_timeout: 10s}}\nservers:\n{}",
        fault_with(
            "leaky",
            &mode,
            &[("WEATHER_API_TOKEN", CONFIGURED)],
            // Back after the call's timeout: a call gets the unavailable answer, not a wait.
            "call_timeout: 5s, restart: {initial_backoff: 20s, jitter: 0.0}",
        )
    );
    let gw = Gateway::start(&yaml).await;

    // At start: the tail holds all four lines, each with its name kept and its secret hidden.
    let leaky = gw
        .wait_server("leaky", Duration::from_secs(15), |s| {
            s["state"] == "ready" && s["stderr_tail"].as_array().is_some_and(|t| t.len() >= 4)
        })
        .await;
    let tail: Vec<&str> = leaky["stderr_tail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tail[..4],
        [
            "API_KEY=[REDACTED]",
            "token=[REDACTED]",
            "connecting to postgres://admin:[REDACTED]@db/x",
            "fatal: upstream refused [REDACTED] with API_KEY=[REDACTED] token=[REDACTED] \
             via postgres://admin:[REDACTED]@db/x",
        ],
        "{leaky}"
    );

    // It crashes, printing the lines again as its last words.
    let crashed = gw.call("leaky__crash", json!({})).await;
    let error = crashed.expect_err("a call in flight when its server exits is an error");
    for secret in secrets() {
        assert!(!error.to_string().contains(secret), "{error}");
    }
    let leaky = gw
        .wait_server("leaky", Duration::from_secs(10), |s| {
            s["state"] == "restarting"
                && s["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("last stderr line"))
        })
        .await;
    let reason = str_of(&leaky, "reason");
    assert_redacted("the reason", reason);
    assert!(
        reason.contains("API_KEY=[REDACTED]") && reason.contains("postgres://admin:[REDACTED]@db"),
        "the reason keeps what names each secret: {reason}"
    );

    // The whole health answer: structured report (tail, reason, events) and summary text.
    let health = gw
        .call("orchestrator_health", json!({}))
        .await
        .expect("health");
    assert_redacted(
        "the health report",
        &health["structuredContent"].to_string(),
    );
    assert_redacted("the health summary", &text_of(&health));
    let events = health["structuredContent"]["events"].as_array().unwrap();
    let restarting = events
        .iter()
        .find(|e| e["server"] == "leaky" && e["kind"] == "restarting")
        .unwrap_or_else(|| panic!("no restarting event: {events:?}"));
    assert_redacted("the restarting event", str_of(restarting, "detail"));

    // The answer the model gets for the down server's tool.
    let answer = gw
        .call("leaky__echo", json!({ "text": "hi" }))
        .await
        .expect("an isError result");
    let detail = unavailable_detail(&answer, "leaky");
    assert_redacted("the unavailable answer's text", &text_of(&answer));
    assert_redacted("the unavailable answer's reason", str_of(&detail, "reason"));
    assert_redacted("the unavailable answer", &answer.to_string());

    finish(gw).await;
}

/// What a child says about itself and its tools is shown by the health report too: its
/// `serverInfo` and `protocolVersion`, and the tool definitions the gateway dropped (quoted by
/// name). A credential there is hidden like one on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_server_info_and_tool_reports_are_redacted() {
    // The second tool named CONFIGURED is a duplicate: dropped, and reported by its name.
    let mode = format!(
        "server_version:token={GITHUB_TOKEN},tool_name:{CONFIGURED},tool_name:{CONFIGURED}"
    );
    let yaml = format!(
        "gateway: {{startup_timeout: 10s}}\nservers:\n{}",
        fault_with("chatty", &mode, &[("WEATHER_API_TOKEN", CONFIGURED)], "")
    );
    let gw = Gateway::start(&yaml).await;
    let chatty = gw
        .wait_server("chatty", Duration::from_secs(15), |s| s["state"] == "ready")
        .await;
    assert_eq!(
        chatty["server_info"]["version"], "token=[REDACTED]",
        "{chatty}"
    );
    assert_eq!(chatty["protocol_version"], "token=[REDACTED]", "{chatty}");
    let dropped = chatty["tools_dropped"].as_array().expect("tools_dropped");
    assert_eq!(dropped.len(), 1, "{chatty}");
    assert_eq!(dropped[0]["tool"], MARKER, "{chatty}");
    for secret in secrets() {
        assert!(!chatty.to_string().contains(secret), "{secret} in {chatty}");
    }
    let health = gw
        .call("orchestrator_health", json!({}))
        .await
        .expect("health");
    for secret in secrets() {
        assert!(
            !health.to_string().contains(secret),
            "{secret} in the health answer: {health}"
        );
    }
    finish(gw).await;
}

/// Configured values that say how a child runs (an environment name, a log level, a host, a
/// region) are not secrets, so the child's log lines that mention them stay readable; a
/// configured secret is still hidden, as a whole word only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_configured_values_do_not_shred_a_childs_stderr() {
    let plain = "WARNING:root:retrying in production against localhost in us-east-1";
    let secret = format!("upstream refused {CONFIGURED}; see the reproduction steps");
    let yaml = format!(
        "gateway: {{startup_timeout: 10s}}\nservers:\n{}",
        fault_with(
            "plain",
            &format!("stderr_line:{plain},stderr_line:{secret}"),
            &[
                ("NODE_ENV", "production"),
                ("FASTMCP_LOG_LEVEL", "WARNING"),
                ("HOST", "localhost"),
                ("AWS_REGION", "us-east-1"),
                ("WEATHER_API_TOKEN", CONFIGURED),
            ],
            "",
        )
    );
    let gw = Gateway::start(&yaml).await;
    let server = gw
        .wait_server("plain", Duration::from_secs(15), |s| {
            s["state"] == "ready" && s["stderr_tail"].as_array().is_some_and(|t| t.len() >= 2)
        })
        .await;
    let tail: Vec<&str> = server["stderr_tail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tail[..2],
        [
            plain,
            "upstream refused [REDACTED]; see the reproduction steps"
        ],
        "{server}"
    );
    finish(gw).await;
}
