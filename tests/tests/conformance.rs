//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`, pinned in
//! `scripts/test-deps/conformance/`, run with the Node 22 npm installs beside it): every
//! server scenario, directly against the conformance fixture
//! (`tests/fixtures/conformance_server.py` over Streamable HTTP) and through the gateway's
//! HTTP front with the same fixture as a stdio child behind it (`namespace: false`, so the
//! names the suite asks for are the ones it is offered). Every scenario that passes directly
//! must pass through the gateway; one that fails directly is a fixture gap and must be listed
//! in [`FIXTURE_GAPS`] with its reason. DNS-rebinding protection is the front's own.
//!
//! The run's table (scenario | direct | through the gateway) is written to
//! `target/conformance/table.md` and printed; docs/conformance.md shows it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use orchestra_tests::http_kit::{bound_address, http_at};
use orchestra_tests::{
    deps, everything_entry, finish, new_marker, procs, text_of, wait_ready as wait_servers, within,
    workspace_root, Gateway, MARKER_VAR, STEP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Scenarios the fixture does not serve, with the reason. Empty: it serves every one.
const FIXTURE_GAPS: &[(&str, &str)] = &[];

/// One run of the whole suite (32 scenarios) takes a few seconds; this bounds a hang.
const SUITE_LIMIT: Duration = Duration::from_secs(90);

/// Fewer scenarios than this in a run means the suite did not really run (a renamed option,
/// an empty results folder): the comparison would pass on nothing.
const MIN_SCENARIOS: usize = 30;

/// The pinned Node 22 and the suite's CLI, from `.test-deps/env.sh`.
struct Suite {
    node: String,
    cli: String,
}

fn suite() -> Suite {
    deps(); // installs (idempotently) and writes env.sh
    let env = std::fs::read_to_string(workspace_root().join(".test-deps/env.sh"))
        .expect("reading .test-deps/env.sh");
    let var = |name: &str| {
        env.lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
            .unwrap_or_else(|| panic!("{name} missing from .test-deps/env.sh"))
    };
    Suite {
        node: var("ORCHESTRA_TEST_NODE22"),
        cli: var("ORCHESTRA_TEST_CONFORMANCE"),
    }
}

fn fixture_script() -> PathBuf {
    workspace_root().join("tests/fixtures/conformance_server.py")
}

/// One scenario's outcome: how many checks passed, failed, warned.
#[derive(Debug, Default, Clone)]
struct Outcome {
    passed: usize,
    failed: usize,
    warnings: usize,
    /// The failed checks' messages.
    failures: Vec<String>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.failed == 0
    }

    fn cell(&self) -> String {
        let mut cell = format!(
            "{} ({} passed",
            if self.ok() { "pass" } else { "FAIL" },
            self.passed
        );
        if self.failed > 0 {
            cell.push_str(&format!(", {} failed", self.failed));
        }
        if self.warnings > 0 {
            cell.push_str(&format!(", {} warnings", self.warnings));
        }
        cell.push(')');
        cell
    }
}

/// Runs every server scenario (`--suite all`: the active ones and the pending ones) against
/// `url`, and reads each scenario's `checks.json` from the results folder.
async fn run_suite(
    suite: &Suite,
    url: &str,
    out: &Path,
    marker: &str,
) -> BTreeMap<String, Outcome> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("results folder");
    let mut cmd = Command::new(&suite.node);
    cmd.arg(&suite.cli)
        .args(["server", "--url", url, "--suite", "all", "-o"])
        .arg(out)
        .env(MARKER_VAR, marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = within(SUITE_LIMIT, "the conformance suite's run", cmd.output())
        .await
        .expect("running the conformance suite");
    // Its exit status is 1 when any scenario fails: the checks say which, so they are read
    // instead; its output is kept for the failure message.
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::write(out.join("suite.log"), &log).expect("writing the suite's log");
    let mut outcomes = BTreeMap::new();
    for entry in std::fs::read_dir(out).expect("results folder").flatten() {
        let dir = entry.file_name().to_string_lossy().into_owned();
        let Some(scenario) = scenario_of(&dir) else {
            continue;
        };
        let checks: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(entry.path().join("checks.json"))
                .unwrap_or_else(|e| panic!("{dir}/checks.json: {e}\n{log}")),
        )
        .expect("checks.json is JSON");
        let mut outcome = Outcome::default();
        for check in &checks {
            match check["status"].as_str() {
                Some("SUCCESS") => outcome.passed += 1,
                Some("FAILURE") => {
                    outcome.failed += 1;
                    outcome.failures.push(format!(
                        "{}: {}",
                        check["id"].as_str().unwrap_or("?"),
                        check["errorMessage"].as_str().unwrap_or("")
                    ));
                }
                Some("WARNING") => outcome.warnings += 1,
                _ => {}
            }
        }
        assert!(
            outcomes.insert(scenario.to_owned(), outcome).is_none(),
            "{scenario} ran twice\n{log}"
        );
    }
    assert!(
        outcomes.len() >= MIN_SCENARIOS,
        "only {} scenarios ran against {url}:\n{log}",
        outcomes.len()
    );
    outcomes
}

/// `server-<scenario>-<YYYY>-<MM>-<DD>T<hh>-<mm>-<ss>-<ms>Z` → `<scenario>`.
fn scenario_of(dir: &str) -> Option<&str> {
    let rest = dir.strip_prefix("server-")?;
    let mut end = rest.len();
    for _ in 0..6 {
        end = rest[..end].rfind('-')?;
    }
    Some(&rest[..end])
}

/// Starts the fixture over Streamable HTTP on a free port; returns it and its URL.
async fn start_fixture(marker: &str) -> (tokio::process::Child, String) {
    let mut cmd = Command::new(&deps().python);
    cmd.arg(fixture_script())
        .args(["--http", "0"])
        .env(MARKER_VAR, marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawning the conformance fixture");
    let stdout = child.stdout.take().expect("stdout");
    let url = within(STEP, "the fixture's `listening` line", async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.expect("fixture stdout") {
            if let Some(url) = line.strip_prefix("listening ") {
                return url.to_owned();
            }
        }
        panic!("the fixture exited before listening");
    })
    .await;
    (child, url)
}

/// Waits until `GET /readyz` answers 200: the fixture behind the gateway is ready.
async fn wait_ready(addr: SocketAddr) {
    within(STEP, "the gateway's /readyz", async {
        while http_at(addr, "GET", "/readyz", &[], "").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

fn table(direct: &BTreeMap<String, Outcome>, gateway: &BTreeMap<String, Outcome>) -> String {
    let mut text = String::from("| scenario | direct | through the gateway |\n|---|---|---|\n");
    for (scenario, d) in direct {
        let g = gateway
            .get(scenario)
            .map_or("not run".to_owned(), Outcome::cell);
        text.push_str(&format!("| {scenario} | {} | {g} |\n", d.cell()));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_that_passes_directly_passes_through_the_gateway() {
    let suite = suite();
    let results = workspace_root().join("target/conformance");

    // Directly: the fixture over Streamable HTTP.
    let marker = new_marker();
    let (mut fixture, url) = start_fixture(&marker).await;
    let direct = run_suite(&suite, &url, &results.join("direct"), &marker).await;
    fixture.start_kill().expect("stopping the fixture");
    within(STEP, "the fixture's exit", fixture.wait())
        .await
        .expect("wait");
    procs::assert_none_left(&marker, STEP).await;

    // Through the gateway: the same fixture as a stdio child, the HTTP front only.
    let config = format!(
        "orchestrator: {{enabled: false}}\nservers:\n  conformance: {{command: \"{}\", args: [\"{}\"], namespace: false}}\n",
        deps().python,
        fixture_script().display()
    );
    let mut gw = Gateway::spawn_with_args(&config, &[], &["--listen", "127.0.0.1:0", "--no-stdio"]);
    let addr = bound_address(&gw).await;
    wait_ready(addr).await;
    let through = run_suite(
        &suite,
        &format!("http://{addr}/mcp"),
        &results.join("gateway"),
        &gw.marker.clone(),
    )
    .await;
    gw.signal(nix::sys::signal::Signal::SIGTERM);
    let status = gw.wait_exit(STEP).await;
    assert!(status.success(), "{status}: {}", gw.logs());
    procs::assert_none_left(&gw.marker, STEP).await;

    let table = table(&direct, &through);
    std::fs::write(results.join("table.md"), &table).expect("writing the table");
    println!("{table}");

    // A scenario that fails directly is the fixture's gap, and must be known.
    for (scenario, outcome) in &direct {
        if !outcome.ok() {
            assert!(
                FIXTURE_GAPS.iter().any(|(s, _)| s == scenario),
                "{scenario} fails directly, a fixture gap not listed in FIXTURE_GAPS: {:?}\n{table}",
                outcome.failures
            );
        }
    }
    // The same scenarios ran both ways, and each one that passes directly passes through
    // the gateway.
    assert_eq!(
        direct.keys().collect::<Vec<_>>(),
        through.keys().collect::<Vec<_>>(),
        "{table}"
    );
    let regressions: Vec<String> = direct
        .iter()
        .filter(|(_, d)| d.ok())
        .filter_map(|(s, _)| {
            let g = &through[s];
            (!g.ok()).then(|| format!("{s}: {:?}", g.failures))
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "pass directly, fail through the gateway:\n{}\n{table}",
        regressions.join("\n")
    );
    // The gateway's own DNS-rebinding protection was checked and held.
    let dns = &through["dns-rebinding-protection"];
    assert!(dns.ok() && dns.passed > 0, "{table}");
}

/// `namespace: false` over the stdio front, beside a namespaced server: the fixture's tools,
/// prompts and resources keep the child's own names and URIs (the gateway's own tool keeps
/// its name, server-everything's stay prefixed), and a call made while the fixture is still
/// starting waits for it instead of being refused as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unnamespaced_server_is_served_under_its_own_names() {
    let config = format!(
        "servers:\n  conformance: {{command: \"{}\", args: [\"{}\"], namespace: false}}\n{}",
        deps().python,
        fixture_script().display(),
        everything_entry()
    );
    let gw = Gateway::start(&config).await;
    let fixture = gw.server_health("conformance").await;
    assert_eq!(
        fixture["state"], "starting",
        "the call below must meet a starting server"
    );
    let r = gw
        .call("test_simple_text", json!({}))
        .await
        .expect("a call to a starting unnamespaced server waits for it");
    assert_eq!(text_of(&r), "This is a simple text response for testing.");

    wait_servers(&gw, &["conformance", "everything"], STEP).await;
    let tools = gw.tool_names().await;
    for name in [
        "orchestrator_health",
        "test_simple_text",
        "everything__echo",
    ] {
        assert!(tools.iter().any(|t| t == name), "{name} not in {tools:?}");
    }
    assert!(
        !tools.iter().any(|t| t.starts_with("conformance__")),
        "{tools:?}"
    );

    let prompts = gw
        .request("prompts/list", json!({}))
        .await
        .expect("prompts/list");
    let prompts: Vec<&str> = prompts["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(prompts.contains(&"test_simple_prompt"), "{prompts:?}");
    let got = gw
        .request(
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a", "arg2": "b"}}),
        )
        .await
        .expect("prompts/get");
    assert_eq!(
        got["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='a', arg2='b'"
    );

    let resources = gw
        .request("resources/list", json!({}))
        .await
        .expect("resources/list");
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert!(uris.contains(&"test://static-text"), "{uris:?}");
    assert!(
        uris.iter()
            .any(|u| u.starts_with("orchestra://everything/")),
        "the namespaced server's URIs stay under its name: {uris:?}"
    );
    let read = gw
        .request("resources/read", json!({"uri": "test://template/7/data"}))
        .await
        .expect("resources/read");
    assert_eq!(read["contents"][0]["uri"], "test://template/7/data");
    assert!(read["contents"][0]["text"]
        .as_str()
        .unwrap_or("")
        .contains("Data for ID: 7"));
    finish(gw).await;
}
