//! The gateway in front of the five real reference servers: one catalog, namespaced names,
//! definitions and results passed through unchanged, calls routed to the right child.

use std::time::Duration;

use orchestra_tests::{deps, procs, text_of, within, Gateway, TempDir, STEP};
use serde_json::{json, Value};

fn five_servers(data: &TempDir, repo: &std::path::Path) -> String {
    let d = deps();
    format!(
        r#"
gateway: {{call_timeout: 20s, startup_timeout: 30s}}
servers:
  everything: {{command: "{everything}", args: [stdio]}}
  files: {{command: "{filesystem}", args: ["{data}"]}}
  memory: {{command: "{memory}", env: {{MEMORY_FILE_PATH: "{data}/memory.jsonl"}}}}
  time: {{command: "{time}", args: ["--local-timezone", "UTC"]}}
  git: {{command: "{git}", args: ["--repository", "{repo}"]}}
domain_boundaries:
  file_operations: files
  data_persistence: {{primary: memory, secondary: [files]}}
  research: everything
"#,
        everything = d.everything,
        filesystem = d.filesystem,
        memory = d.memory,
        time = d.time,
        git = d.git,
        data = data.path().display(),
        repo = repo.display(),
    )
}

fn git_repo(dir: &TempDir) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(&["add", "README"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "first",
    ]);
    repo
}

/// A raw session with one server, to compare what the gateway shows against the original.
async fn direct_tools(command: &str, args: &[&str]) -> Vec<Value> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut child = tokio::process::Command::new(command)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}});
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    for m in [init, initialized, list] {
        stdin.write_all(format!("{m}\n").as_bytes()).await.unwrap();
    }
    within(STEP, "direct tools/list", async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("server closed stdout");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == 2 {
                return v["result"]["tools"].as_array().unwrap().clone();
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_real_servers_behind_one_entry() {
    let data = TempDir::new("data");
    std::fs::write(data.join("note.txt"), "the quick brown fox\n").unwrap();
    let repo = git_repo(&data);
    let gw = Gateway::start(&five_servers(&data, &repo)).await;

    assert_eq!(gw.initialize_result["protocolVersion"], "2025-11-25");
    assert_eq!(
        gw.initialize_result["capabilities"]["tools"]["listChanged"],
        true
    );

    let names = gw.tool_names().await;
    for expected in [
        "orchestrator_health",
        "everything__echo",
        "files__read_text_file",
        "memory__create_entities",
        "time__get_current_time",
        "git__git_status",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    for n in &names {
        assert!(
            n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "exposed name {n:?} breaks ^[a-zA-Z0-9_-]{{1,64}}$"
        );
    }
    for server in ["everything__", "files__", "memory__", "time__", "git__"] {
        assert!(
            names.iter().filter(|n| n.starts_with(server)).count() >= 2,
            "{server} tools: {names:?}"
        );
    }

    // Definitions pass through unchanged but for the name.
    let listed = gw.request("tools/list", json!({})).await.unwrap();
    let original = direct_tools(&deps().everything, &["stdio"]).await;
    let echo_direct = original
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("direct echo");
    let mut echo_gw = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything__echo")
        .unwrap()
        .clone();
    echo_gw["name"] = json!("echo");
    assert_eq!(&echo_gw, echo_direct, "tool definition changed in transit");

    // Calls route to the right child, results come back unchanged.
    let echo = gw
        .call(
            "everything__echo",
            json!({"message": "through the gateway"}),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&echo), "Echo: through the gateway");

    let file = gw
        .call(
            "files__read_text_file",
            json!({"path": data.join("note.txt")}),
        )
        .await
        .unwrap();
    assert!(text_of(&file).contains("quick brown fox"), "{file}");

    gw.call(
        "memory__create_entities",
        json!({"entities": [{"name": "orchestra", "entityType": "project", "observations": ["routes calls"]}]}),
    )
    .await
    .unwrap();
    let graph = gw.call("memory__read_graph", json!({})).await.unwrap();
    assert!(graph.to_string().contains("routes calls"), "{graph}");

    let now = gw
        .call("time__get_current_time", json!({"timezone": "UTC"}))
        .await
        .unwrap();
    assert!(text_of(&now).contains("UTC"), "{now}");

    let status = gw
        .call("git__git_status", json!({"repo_path": repo}))
        .await
        .unwrap();
    assert!(
        text_of(&status).contains("working tree clean")
            || text_of(&status).contains("nothing to commit"),
        "{status}"
    );

    // structuredContent passes through.
    let structured = gw
        .call(
            "everything__get-structured-content",
            json!({"location": "New York"}),
        )
        .await
        .unwrap();
    assert!(
        structured.get("structuredContent").is_some(),
        "{structured}"
    );

    // A child's own tool error is its isError result, not ours.
    let bad = gw
        .call(
            "files__read_text_file",
            json!({"path": "/definitely/not/allowed"}),
        )
        .await
        .unwrap();
    assert_eq!(bad["isError"], true, "{bad}");

    // Health tells the truth about all five.
    let health = gw.health().await;
    assert_eq!(health["gateway"]["servers_ready"], 5, "{health}");
    let files = health["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "files")
        .unwrap();
    assert_eq!(files["state"], "ready");
    assert!(files["calls"].as_u64().unwrap() >= 2);
    assert!(
        files["errors"].as_u64().unwrap() >= 1,
        "isError results count as errors: {files}"
    );
    assert!(files["latency_p50_ms"].as_f64().unwrap() > 0.0);
    assert!(files["pid"].as_u64().is_some());
    let domains = health["domains"].as_array().unwrap();
    let persistence = domains
        .iter()
        .find(|d| d["name"] == "data_persistence")
        .unwrap();
    assert_eq!(persistence["serving"], "memory");
    assert_eq!(persistence["mode"], "normal");

    gw.assert_clean_stdout();
    let marker = gw.marker.clone();
    let (status, _gw) = gw.close(Duration::from_secs(20)).await;
    assert!(status.success(), "gateway exit: {status}");
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tools_are_named_with_close_matches() {
    let d = deps();
    let gw = Gateway::start(&format!(
        "servers:\n  everything: {{command: \"{}\", args: [stdio]}}\n",
        d.everything
    ))
    .await;
    let err = gw.call("everything__ecoh", json!({})).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    assert_eq!(
        err["message"],
        "unknown tool \"everything__ecoh\" (did you mean \"everything__echo\"?)"
    );
    assert_eq!(err["data"]["tool"], "everything__ecoh");

    let err = gw.call("nowhere__thing", json!({})).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("unknown tool \"nowhere__thing\""));

    let err = gw.request("no/such/method", json!({})).await.unwrap_err();
    assert_eq!(err["code"], -32601);
    gw.assert_clean_stdout();
    let marker = gw.marker.clone();
    let (status, _gw) = gw.close(Duration::from_secs(20)).await;
    assert!(status.success());
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}
