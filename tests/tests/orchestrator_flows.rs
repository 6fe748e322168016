//! The Task Orchestrator end to end.
//!
//! 1. The design document's flows — Pattern 1 (six specialists), Pattern 2 (four phases),
//!    Technique 1 (`workflow_stages`), Technique 2 (`parallel_streams` + `sync_points`) — run by
//!    the official Python SDK (1.x and 2.x) through the built gateway, in front of the real
//!    reference servers under the document's server names. `tests/python/orchestrator_flows.py`
//!    plans, executes every ready subtask with one real tool call from the tools its guidance
//!    offers, completes it, and synthesizes; this file checks the record against what each plan
//!    means: the graph compiled, every ready list exactly the frontier, guidance naming exactly
//!    the servers and tools that are up, and a synthesis that tells what really happened.
//! 2. The rules, with the Rust kit (quicker): dependency enforcement; rejection of unknown
//!    references, duplicate titles and cycles, each named; `needs_revision`, `blocked` and
//!    `complete` honoured.

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use orchestra_tests::{
    deps, fault_server, finish, gateway_bin, new_marker, procs, text_of, wait_ready,
    with_marker_inherited, within, Gateway, TempDir, MARKER_VAR,
};
use serde_json::{json, Value};

// --- 1. the design document's flows through the Python SDK ----------------------------------

/// The domains of the flows' config (the design document's `domain_boundaries`).
const DOMAINS: &[(&str, &str)] = &[
    ("file_operations", "claude-code"),
    ("data_persistence", "database-mcp"),
    ("external_communication", "api-client"),
    ("containerization", "docker-mcp"),
    ("research", "web-search"),
];

/// The document's servers: the real reference servers where one fits (file-system: the
/// filesystem server; database-mcp: the memory server, a knowledge-graph store; web-search:
/// server-everything), the fault child with the tools of the document's stand-ins elsewhere.
fn flows_config(dir: &TempDir) -> String {
    let d = deps();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    format!(
        "gateway: {{call_timeout: 30s, startup_timeout: 30s}}\nservers:\n{}{}{}{}{}{}{}\
         domain_boundaries:\n{}\
         server_alternatives:\n\
         \x20 claude-code: {{fallback: file-system, degraded_capabilities: [basic_file_ops], lost_capabilities: [code_analysis, intelligent_refactoring]}}\n\
         \x20 database-mcp: {{fallback: file-system, degraded_capabilities: [file_storage], lost_capabilities: [queries, transactions, indexing]}}\n\
         orchestrator: {{store: \"{}\"}}\n",
        fault_server("claude-code", "tool_name:write_code,tool_name:run_tests", &[]),
        format_args!(
            "  file-system: {{command: \"{}\", args: [\"{}\"]}}\n",
            d.filesystem,
            work.display()
        ),
        format_args!(
            "  database-mcp: {{command: \"{}\", env: {{MEMORY_FILE_PATH: \"{}\"}}}}\n",
            d.memory,
            dir.join("memory.jsonl").display()
        ),
        format_args!(
            "  web-search: {{command: \"{}\", args: [stdio]}}\n",
            d.everything
        ),
        fault_server("api-client", "tool_name:http_request", &[]),
        fault_server("docker-mcp", "tool_name:compose_up", &[]),
        fault_server("monitoring", "tool_name:create_dashboard", &[]),
        DOMAINS
            .iter()
            .map(|(d, s)| format!("  {d}: {s}\n"))
            .collect::<String>(),
        dir.join("tasks.db").display()
    )
}

/// Kills, on drop, every process still carrying the run's marker (a run that timed out or
/// panicked leaves nothing behind).
struct KillLeftovers(String);

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        for p in procs::with_marker(&self.0) {
            let pid = nix::unistd::Pid::from_raw(p.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Runs orchestrator_flows.py with `python` (its SDK line launches the gateway itself) and
/// returns its JSON document; checks the run left no process behind.
async fn run_flows(python: &str, flows: &[&str], dir: &TempDir) -> Value {
    let config = dir.join("orchestra.yaml");
    std::fs::write(&config, with_marker_inherited(&flows_config(dir))).expect("config");
    let marker = new_marker();
    let _cleanup = KillLeftovers(marker.clone());
    let script = orchestra_tests::workspace_root().join("tests/python/orchestrator_flows.py");
    let out = within(
        Duration::from_secs(90),
        "orchestrator_flows.py to finish",
        tokio::process::Command::new(python)
            .arg(&script)
            .args(["--flows", &flows.join(",")])
            .arg("--workdir")
            .arg(dir.join("work"))
            .arg("--")
            .arg(gateway_bin())
            .args(["serve", "-c"])
            .arg(&config)
            .env(MARKER_VAR, &marker)
            // A catalog cache of the run's own (the script waits for every server itself).
            .env("ORCHESTRA_CACHE_DIR", dir.join("cache"))
            .env("ORCHESTRA_DATA_DIR", dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running orchestrator_flows.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var_os("ORCHESTRA_TEST_SHOW_LOGS").is_some() {
        eprintln!("[orchestrator_flows.py stderr]\n{stderr}");
    }
    assert!(
        out.status.success(),
        "python exited {}: {stderr}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}\n{stderr}"));
    assert!(
        doc.get("session_error").is_none(),
        "the session failed: {}\n{stderr}",
        doc["session_error"]
    );
    procs::assert_none_left(&marker, Duration::from_secs(10)).await;
    doc
}

/// What one subtask of a flow must compile to.
struct Spec {
    title: &'static str,
    /// As the plan names it (written, or generated from a stage, stream or sync point).
    specialist: &'static str,
    domain: Option<&'static str>,
    /// Its servers: its own, its stage's or stream's, or its sync point's.
    servers: &'static [&'static str],
    deps: &'static [&'static str],
    /// `given`, `stage`, `stream` or `sync_point`.
    origin: &'static str,
}

const fn spec(
    title: &'static str,
    specialist: &'static str,
    domain: Option<&'static str>,
    servers: &'static [&'static str],
    deps: &'static [&'static str],
    origin: &'static str,
) -> Spec {
    Spec {
        title,
        specialist,
        domain,
        servers,
        deps,
        origin,
    }
}

const PATTERN1: &[Spec] = &[
    spec(
        "System Architecture",
        "system_architect",
        Some("research"),
        &[],
        &[],
        "given",
    ),
    spec(
        "Database Design",
        "database_architect",
        Some("data_persistence"),
        &[],
        &["System Architecture"],
        "given",
    ),
    spec(
        "Service Implementation",
        "backend_developer",
        Some("file_operations"),
        &[],
        &["Database Design"],
        "given",
    ),
    spec(
        "API Gateway Setup",
        "api_specialist",
        Some("external_communication"),
        &[],
        &["Service Implementation"],
        "given",
    ),
    spec(
        "Container Orchestration",
        "devops_engineer",
        Some("containerization"),
        &[],
        &["Service Implementation"],
        "given",
    ),
    spec(
        "Monitoring & Observability",
        "sre_specialist",
        None,
        &["monitoring"],
        &["API Gateway Setup", "Container Orchestration"],
        "given",
    ),
];

const PATTERN2: &[Spec] = &[
    spec(
        "Data Discovery & Architecture",
        "data_architect",
        Some("research"),
        &["api-client", "database-mcp"],
        &[],
        "given",
    ),
    spec(
        "Pipeline Implementation",
        "pipeline_engineer",
        Some("file_operations"),
        &["file-system", "database-mcp"],
        &["Data Discovery & Architecture"],
        "given",
    ),
    spec(
        "ML Integration",
        "ml_engineer",
        Some("file_operations"),
        &["api-client", "docker-mcp"],
        &["Pipeline Implementation"],
        "given",
    ),
    spec(
        "Deployment & Monitoring",
        "mlops_specialist",
        Some("containerization"),
        &["database-mcp", "api-client"],
        &["ML Integration"],
        "given",
    ),
];

const TECHNIQUE1: &[Spec] = &[
    spec(
        "Survey data sources",
        "researcher",
        Some("research"),
        &["web-search", "api-client"],
        &[],
        "given",
    ),
    spec(
        "Validate external APIs",
        "api_specialist",
        None,
        &["web-search", "api-client"],
        &[],
        "given",
    ),
    spec(
        "Implement services",
        "backend_developer",
        None,
        &["claude-code", "docker-mcp"],
        &["design"],
        "given",
    ),
    spec(
        "Containerize",
        "devops_engineer",
        None,
        &["claude-code", "docker-mcp"],
        &["Implement services", "design"],
        "given",
    ),
    spec(
        "design",
        "system_architect",
        None,
        &["database-mcp", "claude-code"],
        &["Survey data sources", "Validate external APIs"],
        "stage",
    ),
];

const FRONT: &[&str] = &["claude-code", "web-search"];
const BACK: &[&str] = &["claude-code", "database-mcp", "api-client"];
const INFRA: &[&str] = &["docker-mcp", "monitoring", "api-client"];
const TECHNIQUE2: &[Spec] = &[
    spec("ui_design", "ui_design", None, FRONT, &[], "stream"),
    spec(
        "component_implementation",
        "component_implementation",
        None,
        FRONT,
        &["ui_design"],
        "stream",
    ),
    spec(
        "testing",
        "testing",
        None,
        FRONT,
        &["component_implementation"],
        "stream",
    ),
    spec("api_design", "api_design", None, BACK, &[], "stream"),
    spec(
        "database_setup",
        "database_setup",
        None,
        BACK,
        &["api_design"],
        "stream",
    ),
    spec(
        "service_implementation",
        "service_implementation",
        None,
        BACK,
        &["database_setup"],
        "stream",
    ),
    spec(
        "container_setup",
        "container_setup",
        None,
        INFRA,
        &[],
        "stream",
    ),
    spec(
        "orchestration",
        "orchestration",
        None,
        INFRA,
        &["container_setup"],
        "stream",
    ),
    spec(
        "monitoring_config",
        "monitoring_config",
        None,
        INFRA,
        &["orchestration"],
        "stream",
    ),
    spec(
        "integration_testing",
        "coordinator",
        None,
        &["claude-code", "api-client"],
        &["testing", "service_implementation"],
        "sync_point",
    ),
];

const FLOWS: &[(&str, &[Spec])] = &[
    ("pattern1", PATTERN1),
    ("pattern2", PATTERN2),
    ("technique1", TECHNIQUE1),
    ("technique2", TECHNIQUE2),
];

fn owner_of(domain: &str) -> &'static str {
    DOMAINS
        .iter()
        .find(|(d, _)| *d == domain)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no domain {domain}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

fn set<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> BTreeSet<String> {
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// The subtasks whose dependencies are all in `done` and that are not done themselves.
fn frontier(specs: &[Spec], done: &[String]) -> BTreeSet<String> {
    specs
        .iter()
        .filter(|s| !done.iter().any(|d| d == s.title))
        .filter(|s| s.deps.iter().all(|d| done.iter().any(|x| x == d)))
        .map(|s| s.title.to_owned())
        .collect()
}

/// Every tool the session was listed for `server`, exactly.
fn tools_of(all: &[String], server: &str) -> BTreeSet<String> {
    let prefix = format!("{server}__");
    let found = set(all.iter().filter(|t| t.starts_with(&prefix)));
    assert!(
        !found.is_empty(),
        "server {server} has no listed tools: {all:?}"
    );
    found
}

/// One flow of the script's record, checked against its specs.
fn check_flow(doc: &Value, name: &str, specs: &[Spec], workdir: &std::path::Path) {
    let sdk = &doc["sdk"];
    let at = format!("SDK {sdk}.x, {name}");
    let rec = &doc["flows"][name];
    assert!(
        rec.get("error").is_none(),
        "{at}: the flow raised {}\n{}",
        rec["error"],
        doc["tracebacks"][name].as_str().unwrap_or_default()
    );
    assert_eq!(
        rec["schema_errors"],
        json!([]),
        "{at}: structuredContent vs outputSchema"
    );
    let listed = strings(&doc["tools"]);

    // The plan: the graph the request means.
    let plan = &rec["plan"];
    assert_eq!(plan["is_error"], false, "{at}: plan: {}", plan["text"]);
    let planned = &plan["structured"];
    let parent = planned["parent_task_id"]
        .as_str()
        .expect("parent id")
        .to_owned();
    let subtasks = planned["subtasks"].as_array().expect("subtasks");
    assert_eq!(subtasks.len(), specs.len(), "{at}: {planned:#}");
    let title_of: HashMap<String, String> = subtasks
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let titles_of = |ids: &Value| -> BTreeSet<String> {
        strings(ids).iter().map(|id| title_of[id].clone()).collect()
    };
    for spec in specs {
        let s = subtasks
            .iter()
            .find(|s| s["title"] == spec.title)
            .unwrap_or_else(|| panic!("{at}: no subtask \"{}\" in {planned:#}", spec.title));
        assert_eq!(s["specialist"], spec.specialist, "{at}: {s}");
        assert_eq!(s["domain"].as_str(), spec.domain, "{at}: {s}");
        assert_eq!(set(strings(&s["servers"])), set(spec.servers), "{at}: {s}");
        assert_eq!(titles_of(&s["depends_on"]), set(spec.deps), "{at}: {s}");
        assert_eq!(s["origin"], spec.origin, "{at}: {s}");
    }
    let by_title = |t: &str| specs.iter().find(|s| s.title == t).expect("a spec");
    let ready_titles = |refs: &Value| -> BTreeSet<String> {
        refs.as_array()
            .expect("ready")
            .iter()
            .map(|r| title_of[r["id"].as_str().unwrap()].clone())
            .collect()
    };
    assert_eq!(
        ready_titles(&planned["ready"]),
        frontier(specs, &[]),
        "{at}: first ready"
    );
    assert_eq!(
        planned["warnings"],
        json!([]),
        "{at}: every server is up: {planned:#}"
    );

    // The loop: each step's ready list is exactly the frontier; guidance tells the truth.
    let steps = rec["steps"].as_array().expect("steps");
    let mut done: Vec<String> = Vec::new();
    let mut completed: HashMap<String, (String, Value)> = HashMap::new();
    let mut calls: HashMap<String, String> = HashMap::new();
    for (k, step) in steps.iter().enumerate() {
        let title = step["title"].as_str().expect("title").to_owned();
        let spec = by_title(&title);
        let at = format!("{at}, step {k} \"{title}\"");
        let ready: BTreeSet<String> = strings(&step["ready_before"])
            .iter()
            .map(|id| title_of[id].clone())
            .collect();
        assert_eq!(
            ready,
            frontier(specs, &done),
            "{at}: the ready list is the frontier"
        );

        let ex = &step["execute"];
        assert_eq!(ex["is_error"], false, "{at}: execute: {}", ex["text"]);
        let g = &ex["structured"];
        assert_eq!(g["parent_task_id"], parent.as_str(), "{at}");
        assert_eq!(g["subtask"]["title"], title.as_str(), "{at}");
        assert_eq!(g["subtask"]["attempt"], 1, "{at}");
        assert_eq!(g["revision_notes"], json!([]), "{at}");
        let role = g["specialist"]["role"].as_str().expect("role");
        assert!(
            !role.is_empty() && ex["text"].as_str().unwrap().contains(role),
            "{at}: {g}"
        );
        // Its dependencies' results and artifacts, exactly as they were completed.
        let deps = g["dependencies"].as_array().expect("dependencies");
        assert_eq!(
            set(deps.iter().map(|d| d["title"].as_str().unwrap())),
            set(spec.deps),
            "{at}"
        );
        for d in deps {
            let (results, artifacts) = &completed[d["title"].as_str().unwrap()];
            assert_eq!(d["results"], results.as_str(), "{at}: {d}");
            assert_eq!(&d["artifacts"], artifacts, "{at}: {d}");
            assert!(
                ex["text"].as_str().unwrap().contains(results.as_str()),
                "{at}: results injected"
            );
        }
        check_usable(&at, g, ex["text"].as_str().unwrap(), spec, &listed);

        // One real call with an offered tool, then the completion.
        let call = &step["call"];
        let tool = call["tool"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no call: {step}"));
        assert!(
            strings(&g["usable"]["tools"]).iter().any(|t| t == tool),
            "{at}: {tool} offered"
        );
        assert_eq!(call["is_error"], false, "{at}: {call}");
        if tool == "file-system__write_file" {
            let path = call["arguments"]["path"].as_str().unwrap();
            assert!(path.starts_with(workdir.to_str().unwrap()), "{at}: {path}");
            let written = std::fs::read_to_string(path).unwrap_or_default();
            assert!(
                written.contains(title.as_str()),
                "{at}: {path} was written: {written:?}"
            );
        }
        let c = &step["complete"];
        assert_eq!(c["is_error"], false, "{at}: complete: {}", c["text"]);
        let c = &c["structured"];
        assert_eq!(
            (&c["state"], &c["calls_recorded"], &c["calls_shared"]),
            (&json!("completed"), &json!(1), &json!(0)),
            "{at}: {c}"
        );
        assert_eq!(c["progress"]["completed"], done.len() + 1, "{at}: {c}");
        let after: Vec<String> = done.iter().cloned().chain([title.clone()]).collect();
        assert_eq!(
            ready_titles(&c["ready"]),
            frontier(specs, &after),
            "{at}: every subtask ready now"
        );
        let request = &step["complete_request"];
        completed.insert(
            title.clone(),
            (
                request["results"].as_str().unwrap().to_owned(),
                request["artifacts"].clone(),
            ),
        );
        calls.insert(title.clone(), tool.to_owned());
        done.push(title);
    }
    assert_eq!(
        done.len(),
        specs.len(),
        "{at}: each subtask executed once: {done:?}"
    );
    assert_eq!(set(&done), set(specs.iter().map(|s| s.title)), "{at}");

    // The synthesis: what happened, in dependency order, and nothing else.
    let syn = &rec["synthesis"];
    assert_eq!(syn["is_error"], false, "{at}: {}", syn["text"]);
    let s = &syn["structured"];
    assert_eq!(s["status"], "completed", "{at}: {s:#}");
    assert_eq!(
        s["summary"],
        format!("All {} subtasks completed.", specs.len()),
        "{at}"
    );
    for key in ["incomplete", "blocked", "degraded"] {
        assert_eq!(s[key], json!([]), "{at}: {key}");
    }
    assert_eq!(
        s["completed"].as_array().map(Vec::len),
        Some(specs.len()),
        "{at}"
    );
    assert_eq!(
        s["tool_calls"],
        specs.len(),
        "{at}: one call per subtask, no more"
    );
    let entries = s["subtasks"].as_array().expect("entries");
    let mut before: Vec<String> = Vec::new();
    for e in entries {
        let title = e["title"].as_str().unwrap().to_owned();
        let spec = by_title(&title);
        for d in spec.deps {
            assert!(
                before.iter().any(|b| b == d),
                "{at}: \"{title}\" listed before its dependency \"{d}\""
            );
        }
        let (results, artifacts) = &completed[&title];
        assert_eq!(e["state"], "completed", "{at}: {e}");
        assert_eq!(e["results"], results.as_str(), "{at}: {e}");
        assert_eq!(&e["artifacts"], artifacts, "{at}: {e}");
        assert_eq!(
            (
                &e["executions"],
                &e["revision_notes"],
                &e["degraded_domain"]
            ),
            (&json!(1), &json!([]), &json!([])),
            "{at}: {e}"
        );
        let tool = &calls[&title];
        let server = tool.split("__").next().unwrap();
        let recorded = e["calls"].as_array().expect("calls");
        assert_eq!(recorded.len(), 1, "{at}: \"{title}\": {e}");
        let r = &recorded[0];
        assert_eq!(
            (&r["tool"], &r["server"], &r["outcome"], &r["shared_with"]),
            (&json!(tool), &json!(server), &json!("ok"), &json!([])),
            "{at}: {r}"
        );
        assert!(r.get("failover_to").is_none(), "{at}: {r}");
        before.push(title);
    }
    let markdown = syn["text"].as_str().unwrap();
    assert_eq!(
        rec["synthesis_resource"].as_str(),
        Some(markdown),
        "{at}: the resource is the synthesis"
    );
    assert!(
        markdown.contains("## Completed (in dependency order)"),
        "{at}: {markdown}"
    );
    for (title, (results, _)) in &completed {
        assert!(
            markdown.contains(results.as_str()),
            "{at}: {title}'s results: {markdown}"
        );
        assert!(
            markdown.contains(&format!("`{}`", calls[title])),
            "{at}: {title}'s call: {markdown}"
        );
    }
    for absent in [
        "## Blocked",
        "## Incomplete",
        "degraded or lost",
        "No tool calls were recorded",
    ] {
        assert!(
            !markdown.contains(absent),
            "{at}: claims \"{absent}\": {markdown}"
        );
    }

    // Status: done, nothing ready; no longer among the open plans; a resource.
    let status = &rec["status"]["structured"]["plans"][0];
    assert_eq!(
        (&status["status"], &status["ready"]),
        (&json!("completed"), &json!([])),
        "{at}: {status}"
    );
    assert_eq!(status["progress"]["completed"], specs.len(), "{at}");
    let open = &rec["open_plans"]["structured"]["plans"];
    assert!(
        !open
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["parent_task_id"] == parent.as_str()),
        "{at}: {open}"
    );
    let uris = strings(&rec["resources"]);
    for uri in [
        format!("orchestrator://plans/{parent}"),
        format!("orchestrator://plans/{parent}/synthesis"),
    ] {
        assert!(uris.contains(&uri), "{at}: {uri} in {uris:?}");
    }
}

/// The guidance's servers and tools are exactly those of the subtask's domain owner and its
/// own servers, all up, with every tool the session is listed for them.
fn check_usable(at: &str, g: &Value, text: &str, spec: &Spec, listed: &[String]) {
    let u = &g["usable"];
    let owner = spec.domain.map(owner_of);
    let mut expected: Vec<&str> = owner.into_iter().collect();
    for s in spec.servers {
        if !expected.contains(s) {
            expected.push(s);
        }
    }
    let servers = u["servers"].as_array().expect("servers");
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected, "{at}: {u:#}");
    let mut all = BTreeSet::new();
    for s in servers {
        let name = s["name"].as_str().unwrap();
        assert_eq!(
            (&s["up"], &s["configured"], &s["state"]),
            (&json!(true), &json!(true), &json!("ready")),
            "{at}: {s}"
        );
        let tools = tools_of(listed, name);
        assert_eq!(
            set(strings(&s["tools"])),
            tools,
            "{at}: {name}'s exact tools"
        );
        assert!(text.contains(name), "{at}: the text names {name}");
        all.extend(tools);
    }
    match (spec.domain, owner) {
        (Some(domain), Some(owner)) => {
            let d = &u["domain"];
            assert_eq!(
                (&d["name"], &d["mode"], &d["owner"], &d["serving"]),
                (
                    &json!(domain),
                    &json!("normal"),
                    &json!(owner),
                    &json!(owner)
                ),
                "{at}: {d}"
            );
            assert_eq!(
                set(strings(&d["tools"])),
                tools_of(listed, owner),
                "{at}: {d}"
            );
            assert!(
                text.contains(&format!("Domain \"{domain}\" is normal")),
                "{at}: {text}"
            );
        }
        _ => assert!(u.get("domain").is_none(), "{at}: {u}"),
    }
    assert_eq!(
        set(strings(&u["tools"])),
        all,
        "{at}: the tools are those of its servers"
    );
    for t in &all {
        assert!(text.contains(t.as_str()), "{at}: the text names {t}");
    }
    assert!(
        u.get("adaptive_guidance").is_none(),
        "{at}: nothing is down: {u}"
    );
    assert!(u.get("other_servers_up").is_none(), "{at}: {u}");
}

/// Checks specific to one flow's shape.
fn check_shape(doc: &Value, name: &str) {
    let at = format!("SDK {}.x, {name}", doc["sdk"]);
    let steps = doc["flows"][name]["steps"].as_array().expect("steps");
    let step = |title: &str| {
        steps
            .iter()
            .find(|s| s["title"] == title)
            .unwrap_or_else(|| panic!("{at}: no step {title}"))
    };
    match name {
        "pattern2" => {
            for s in steps {
                let g = &s["execute"]["structured"];
                assert_eq!(
                    g["context"],
                    json!({"scenario": "churn prediction", "datasets": ["crm", "billing"]}),
                    "{at}"
                );
                assert!(
                    s["execute"]["text"].as_str().unwrap().contains("Context: "),
                    "{at}"
                );
            }
        }
        "technique1" => {
            for (title, stage, role) in [
                ("Survey data sources", "discovery", "research_coordinator"),
                ("design", "design", "system_architect"),
                ("Containerize", "implementation", "implementation_manager"),
            ] {
                let ex = &step(title)["execute"];
                assert_eq!(ex["structured"]["stage"]["stage"], stage, "{at}: {title}");
                assert_eq!(
                    ex["structured"]["stage"]["orchestrator_role"], role,
                    "{at}: {title}"
                );
                assert!(
                    ex["text"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("Stage: {stage} (coordinated by {role})")),
                    "{at}: {title}"
                );
            }
            // The stage without subtasks became one, for its orchestrator_role.
            assert_eq!(
                step("design")["execute"]["structured"]["specialist"]["source"],
                "builtin",
                "{at}"
            );
        }
        "technique2" => {
            for (title, stream) in [
                ("ui_design", "frontend_stream"),
                ("database_setup", "backend_stream"),
                ("monitoring_config", "infrastructure_stream"),
            ] {
                let g = &step(title)["execute"]["structured"];
                assert_eq!(g["stream"]["stream"], stream, "{at}: {title}");
                assert_eq!(g["stream"]["sequential"], true, "{at}: {title}");
            }
            // The streams ran side by side: each head was executed before any stream's second.
            let order: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
            assert_eq!(
                &order[..3],
                ["ui_design", "api_design", "container_setup"],
                "{at}: {order:?}"
            );
        }
        _ => {}
    }
}

async fn all_flows_with(python: &str, sdk: u64) {
    let dir = TempDir::new("orch-flows");
    let names: Vec<&str> = FLOWS.iter().map(|(n, _)| *n).collect();
    let doc = run_flows(python, &names, &dir).await;
    assert_eq!(doc["sdk"], sdk, "the SDK line that ran");
    for (name, specs) in FLOWS {
        check_flow(&doc, name, specs, &dir.join("work"));
        check_shape(&doc, name);
    }
    // The memory server really holds what the data subtasks created.
    let memory = std::fs::read_to_string(dir.join("memory.jsonl")).unwrap_or_default();
    assert!(memory.contains("Database Design"), "memory.jsonl: {memory}");
}

/// mcp 1.x (`ClientSession`; it also validates each structuredContent against the tool's
/// outputSchema itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn design_document_flows_with_the_python_sdk_1x() {
    all_flows_with(&deps().python, 1).await;
}

/// mcp 2.x (`mcp.Client`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn design_document_flows_with_the_python_sdk_2x() {
    all_flows_with(&deps().python2, 2).await;
}

// --- 2. the rules, with the Rust kit -------------------------------------------------------

fn sc(result: &Value) -> &Value {
    &result["structuredContent"]
}

/// A gateway with one fault child `work` (no domains): the rules need no real server.
async fn rules_gateway() -> Gateway {
    let gw = Gateway::start(&format!("servers:\n{}", fault_server("work", "", &[]))).await;
    wait_ready(&gw, &["work"], Duration::from_secs(20)).await;
    gw
}

async fn tool(gw: &Gateway, name: &str, args: Value) -> Value {
    gw.call(name, args)
        .await
        .unwrap_or_else(|e| panic!("{name} answered with a JSON-RPC error: {e}"))
}

/// A successful call's result (panics with its text if it is an error).
async fn ok(gw: &Gateway, name: &str, args: Value) -> Value {
    let r = tool(gw, name, args).await;
    assert_ne!(r["isError"], true, "{name}: {}", text_of(&r));
    r
}

/// An isError result's text (panics if the call succeeded).
async fn refused(gw: &Gateway, name: &str, args: Value) -> String {
    let r = tool(gw, name, args).await;
    assert_eq!(r["isError"], true, "{name} should be refused: {r}");
    text_of(&r)
}

/// Plans `subtasks`; returns the parent id and the subtask ids by title.
async fn plan(gw: &Gateway, subtasks: Value) -> (String, HashMap<String, String>) {
    let r = ok(
        gw,
        "orchestrator_plan_task",
        json!({"description": "rules", "subtasks": subtasks}),
    )
    .await;
    let p = sc(&r);
    let ids = p["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["title"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (p["parent_task_id"].as_str().unwrap().to_owned(), ids)
}

async fn execute(gw: &Gateway, id: &str) -> Value {
    ok(
        gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id}),
    )
    .await
}

async fn complete(gw: &Gateway, id: &str, results: &str, next: &str) -> Value {
    ok(
        gw,
        "orchestrator_complete_subtask",
        json!({"subtask_id": id, "results": results, "next_action": next}),
    )
    .await
}

fn ready_ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("no ready list: {v}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Execute is refused until every dependency is completed, naming each missing one with its
/// state (and only those); completing a subtask nobody executes is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_is_refused_until_every_dependency_is_completed_naming_them() {
    let gw = rules_gateway().await;
    let (_, id) = plan(
        &gw,
        json!([
            {"title": "Schema", "specialist": "database_architect"},
            {"title": "Service", "specialist": "implementer", "depends_on": ["Schema"]},
            {"title": "Tests", "specialist": "tester", "depends_on": ["Service"]},
            {"title": "Release", "specialist": "devops", "depends_on": [0, 1]}
        ]),
    )
    .await;

    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Tests"]}),
    )
    .await;
    assert!(
        why.contains(&format!("{} \"Service\" (pending)", id["Service"])),
        "{why}"
    );
    assert!(
        why.contains("1 of its dependencies is not completed"),
        "{why}"
    );
    assert!(
        !why.contains("\"Schema\""),
        "only direct dependencies are named: {why}"
    );
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Release"]}),
    )
    .await;
    assert!(
        why.contains(&format!("{} \"Schema\" (ready, not started)", id["Schema"])),
        "{why}"
    );
    assert!(
        why.contains(&format!("{} \"Service\" (pending)", id["Service"])),
        "{why}"
    );
    assert!(
        why.contains("2 of its dependencies are not completed"),
        "{why}"
    );
    let why = refused(
        &gw,
        "orchestrator_complete_subtask",
        json!({"subtask_id": id["Schema"], "results": "x", "next_action": "continue"}),
    )
    .await;
    assert!(
        why.contains("is not being executed: call orchestrator_execute_subtask"),
        "{why}"
    );

    execute(&gw, &id["Schema"]).await;
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Release"]}),
    )
    .await;
    assert!(
        why.contains(&format!("{} \"Schema\" (in progress)", id["Schema"])),
        "{why}"
    );
    let done = complete(&gw, &id["Schema"], "tables: users, orders", "continue").await;
    assert_eq!(
        ready_ids(&sc(&done)["ready"]),
        set([&id["Service"]]),
        "{done}"
    );
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Release"]}),
    )
    .await;
    assert!(
        why.contains("\"Service\"") && !why.contains("\"Schema\""),
        "{why}"
    );
    execute(&gw, &id["Service"]).await;
    let done = complete(&gw, &id["Service"], "service up", "continue").await;
    assert_eq!(
        ready_ids(&sc(&done)["ready"]),
        set([&id["Tests"], &id["Release"]]),
        "both at once"
    );
    let g = execute(&gw, &id["Release"]).await;
    let deps: Vec<&str> = sc(&g)["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["results"].as_str().unwrap())
        .collect();
    assert_eq!(deps, ["tables: users, orders", "service up"], "{g}");
    finish(gw).await;
}

/// A plan with an unknown reference, a duplicate title, an out-of-range index and a cycle is
/// rejected with every problem at its key path, the cycle naming exactly its members; nothing
/// is stored. Stage and stream shapes are checked the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_are_rejected_naming_each_problem() {
    let gw = rules_gateway().await;
    let why = refused(
        &gw,
        "orchestrator_plan_task",
        json!({"description": "broken", "subtasks": [
            {"title": "Design", "specialist": "architect"},
            {"title": "Build", "specialist": "implementer", "depends_on": ["Desing"]},
            {"title": "Design", "specialist": "reviewer"},
            {"title": "Ship", "specialist": "devops", "depends_on": [9]}
        ]}),
    )
    .await;
    assert!(why.starts_with("plan rejected: 3 problems:"), "{why}");
    assert!(
        why.contains(
            "subtasks[1].depends_on[0]: unknown subtask \"Desing\" (did you mean \"Design\"?)"
        ),
        "{why}"
    );
    assert!(
        why.contains("subtasks[2].title: duplicate title \"Design\": subtasks[0] has it too"),
        "{why}"
    );
    assert!(
        why.contains(
            "subtasks[3].depends_on[0]: index 9 is out of range: `subtasks` has 4 entries (0 to 3)"
        ),
        "{why}"
    );

    let why = refused(
        &gw,
        "orchestrator_plan_task",
        json!({"description": "cyclic", "subtasks": [
            {"title": "Free", "specialist": "researcher"},
            {"title": "A", "specialist": "architect", "depends_on": ["C"]},
            {"title": "B", "specialist": "implementer", "depends_on": ["A", "Free"]},
            {"title": "C", "specialist": "tester", "depends_on": ["B"]},
            {"title": "Selfish", "specialist": "tester", "depends_on": ["Selfish"]}
        ]}),
    )
    .await;
    assert!(why.starts_with("plan rejected: 2 problems:"), "{why}");
    let cycle = why
        .lines()
        .find(|l| l.contains("dependency cycle"))
        .unwrap_or_else(|| panic!("no cycle named: {why}"));
    let members: BTreeSet<&str> = cycle
        .split(": dependency cycle: ")
        .nth(1)
        .expect("the cycle")
        .split(" → ")
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["\"A\"", "\"B\"", "\"C\""]),
        "{cycle}"
    );
    assert_eq!(
        cycle.matches(" → ").count(),
        3,
        "closed: back to its first member: {cycle}"
    );
    assert!(
        why.contains("subtasks[4].depends_on[0]: \"Selfish\" depends on itself"),
        "{why}"
    );

    let why = refused(
        &gw,
        "orchestrator_plan_task",
        json!({"description": "shapes",
            "workflow_stages": [
                {"stage": "one", "depends_on": ["two"]},
                {"stage": "two", "depends_on": ["one"]},
                {"stage": "three", "depends_on": ["fuor"]}
            ],
            "parallel_streams": {"front": {"subtasks": ["ui"]}},
            "sync_points": [{"after_streams": ["front", "back"], "coordination": "merge"}]
        }),
    )
    .await;
    assert!(
        why.contains("stage cycle: \"one\" → \"two\" → \"one\""),
        "{why}"
    );
    assert!(
        why.contains("workflow_stages[2].depends_on[0]: unknown stage \"fuor\""),
        "{why}"
    );
    assert!(
        why.contains("sync_points[0].after_streams[1]: unknown stream \"back\""),
        "{why}"
    );

    let status = ok(&gw, "orchestrator_get_status", json!({})).await;
    assert_eq!(
        sc(&status)["plans"],
        json!([]),
        "nothing rejected was stored: {status}"
    );
    finish(gw).await;
}

/// `needs_revision` reopens the subtask with its note, which the next execute shows; its
/// dependents wait; the synthesis keeps the note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_revision_reopens_with_the_note_in_the_next_execute() {
    let gw = rules_gateway().await;
    let (parent, id) = plan(
        &gw,
        json!([
            {"title": "Schema", "specialist": "database_architect"},
            {"title": "Service", "specialist": "implementer", "depends_on": ["Schema"]}
        ]),
    )
    .await;
    let note = "add an index on orders.customer_id";
    execute(&gw, &id["Schema"]).await;
    let r = complete(&gw, &id["Schema"], note, "needs_revision").await;
    assert_eq!(sc(&r)["state"], "needs_revision", "{r}");
    assert_eq!(
        ready_ids(&sc(&r)["ready"]),
        set([&id["Schema"]]),
        "reopened, the dependent waits"
    );
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Service"]}),
    )
    .await;
    assert!(
        why.contains(&format!("{} \"Schema\"", id["Schema"])),
        "{why}"
    );

    let again = execute(&gw, &id["Schema"]).await;
    assert_eq!(sc(&again)["revision_notes"], json!([note]), "{again}");
    assert_eq!(sc(&again)["subtask"]["attempt"], 2, "{again}");
    let text = text_of(&again);
    assert!(
        text.contains(&format!("## Revision notes (address these)\n- {note}")),
        "{text}"
    );
    let r = complete(&gw, &id["Schema"], "indexed", "continue").await;
    assert_eq!(ready_ids(&sc(&r)["ready"]), set([&id["Service"]]), "{r}");

    let s = ok(
        &gw,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    let e = &sc(&s)["subtasks"][0];
    assert_eq!(
        (&e["title"], &e["results"], &e["executions"]),
        (&json!("Schema"), &json!("indexed"), &json!(2)),
        "{e}"
    );
    assert_eq!(e["revision_notes"], json!([note]), "{e}");
    assert!(
        text_of(&s).contains(&format!("Revised 1 times; notes:\n- {note}")),
        "{}",
        text_of(&s)
    );
    finish(gw).await;
}

/// `blocked` blocks the subtask and its dependents with the reason (in the answer, status,
/// refusals and the synthesis) while independent work stays ready; executing it again
/// unblocks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_blocks_it_and_its_dependents_with_the_reason() {
    let gw = rules_gateway().await;
    let (parent, id) = plan(
        &gw,
        json!([
            {"title": "Contract", "specialist": "api_specialist"},
            {"title": "Payments", "specialist": "implementer", "depends_on": ["Contract"]},
            {"title": "Checkout", "specialist": "implementer", "depends_on": ["Payments"]},
            {"title": "Docs", "specialist": "documenter"}
        ]),
    )
    .await;
    let reason = "the payment provider's sandbox keys have not arrived";
    execute(&gw, &id["Contract"]).await;
    complete(&gw, &id["Contract"], "contract v1", "continue").await;
    execute(&gw, &id["Payments"]).await;
    let r = complete(&gw, &id["Payments"], reason, "blocked").await;
    let c = sc(&r);
    assert_eq!(c["state"], "blocked", "{r}");
    assert_eq!(c["blocked_dependents"], json!([id["Checkout"]]), "{r}");
    assert_eq!(ready_ids(&c["ready"]), set([&id["Docs"]]), "{r}");
    assert_eq!(c["progress"]["blocked"], 2, "itself and its dependent: {r}");

    let status = ok(
        &gw,
        "orchestrator_get_status",
        json!({"parent_task_id": parent}),
    )
    .await;
    let blocked = &sc(&status)["plans"][0]["blocked"];
    assert_eq!(
        blocked,
        &json!([
            {"id": id["Payments"], "title": "Payments", "reason": reason},
            {"id": id["Checkout"], "title": "Checkout", "reason": format!("waits for \"Payments\", which is blocked: {reason}"), "blocked_by": id["Payments"]}
        ]),
        "{status}"
    );
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Checkout"]}),
    )
    .await;
    assert!(
        why.contains(&format!("\"Payments\" (blocked: {reason})")),
        "{why}"
    );
    let s = ok(
        &gw,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    assert_eq!(
        set(strings(&sc(&s)["blocked"])),
        set([&id["Payments"], &id["Checkout"]]),
        "{s}"
    );
    assert!(
        text_of(&s).contains(&format!(
            "## Blocked\n\n- Payments (`{}`): {reason}",
            id["Payments"]
        )),
        "{}",
        text_of(&s)
    );
    assert_eq!(sc(&s)["status"], "open", "{s}");

    let again = execute(&gw, &id["Payments"]).await;
    assert!(
        text_of(&again).contains(&format!("This subtask was blocked ({reason})")),
        "{}",
        text_of(&again)
    );
    let r = complete(&gw, &id["Payments"], "keys arrived; integrated", "continue").await;
    assert_eq!(
        ready_ids(&sc(&r)["ready"]),
        set([&id["Checkout"], &id["Docs"]]),
        "{r}"
    );
    assert_eq!(sc(&r)["progress"]["blocked"], 0, "{r}");
    finish(gw).await;
}

/// `complete` finishes the plan early: the rest is kept visible as unfinished, nothing more
/// can start, the synthesis says so, and the plan is no longer among the open ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_finishes_the_plan_early_keeping_the_rest_visible() {
    let gw = rules_gateway().await;
    let (parent, id) = plan(
        &gw,
        json!([
            {"title": "Spike", "specialist": "researcher"},
            {"title": "Build", "specialist": "implementer", "depends_on": ["Spike"]},
            {"title": "Docs", "specialist": "documenter"}
        ]),
    )
    .await;
    execute(&gw, &id["Spike"]).await;
    let r = complete(
        &gw,
        &id["Spike"],
        "the spike answered everything",
        "complete",
    )
    .await;
    let c = sc(&r);
    assert_eq!(
        (&c["state"], &c["plan_status"]),
        (&json!("completed"), &json!("finished")),
        "{r}"
    );
    assert_eq!(
        set(strings(&c["unfinished"])),
        set([&id["Build"], &id["Docs"]]),
        "{r}"
    );
    assert_eq!(c["ready"], json!([]), "{r}");
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Docs"]}),
    )
    .await;
    assert!(
        why.contains(&format!(
            "plan {parent} is finished by \"Spike\" (next_action complete)"
        )),
        "{why}"
    );

    let s = ok(
        &gw,
        "orchestrator_synthesize_results",
        json!({"parent_task_id": parent}),
    )
    .await;
    let s = sc(&s);
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(s["summary"], "Finished early by \"Spike\" (next_action complete): 1 of 3 subtasks completed, 2 unfinished.", "{s}");
    assert_eq!(
        set(strings(&s["incomplete"])),
        set([&id["Build"], &id["Docs"]]),
        "{s}"
    );
    let open = ok(&gw, "orchestrator_get_status", json!({})).await;
    assert_eq!(
        (&sc(&open)["plans"], &sc(&open)["closed_plans"]),
        (&json!([]), &json!(1)),
        "{open}"
    );
    finish(gw).await;
}

/// BUG (orchestra-tasks `tools/execute.rs` `not_ready`): a dependency that needs revision is
/// ready again, and the refusal describes it as "ready, not started" — it was executed and
/// sent back with a note. Expected: "needs revision" (as status and synthesis say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_that_needs_revision_is_named_so() {
    let gw = rules_gateway().await;
    let (_, id) = plan(
        &gw,
        json!([
            {"title": "Schema", "specialist": "database_architect"},
            {"title": "Service", "specialist": "implementer", "depends_on": ["Schema"]}
        ]),
    )
    .await;
    execute(&gw, &id["Schema"]).await;
    complete(&gw, &id["Schema"], "add an index", "needs_revision").await;
    let why = refused(
        &gw,
        "orchestrator_execute_subtask",
        json!({"subtask_id": id["Service"]}),
    )
    .await;
    assert!(
        why.contains(&format!("{} \"Schema\" (needs revision)", id["Schema"])),
        "{why}"
    );
    finish(gw).await;
}
