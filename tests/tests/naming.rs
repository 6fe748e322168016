//! What the client sees as tool names: namespaced, within model-API limits, shortened
//! deterministically when needed (and the mapping shown), filtered as configured.

use std::process::Command;
use std::time::Duration;

use orchestra_tests::{fault_child, procs, text_of, Gateway, TempDir};
use serde_json::json;

const LONG: &str =
    "a_tool_name_so_long_that_with_its_server_prefix_it_breaks_the_64_character_limit";

fn config() -> String {
    format!(
        "servers:\n  odd:\n    command: \"{}\"\n    env: {{FAULT_MODE: \"tool_name:{LONG},tool_name:dotted.name\"}}\n    tools: {{deny: [\"crash\", \"s*p\"]}}\n",
        fault_child().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_and_odd_names_are_shortened_and_still_routed() {
    let gw = Gateway::start(&config()).await;
    let names = gw.tool_names().await;
    for n in &names {
        assert!(
            n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{n}"
        );
    }
    let long = names
        .iter()
        .find(|n| n.starts_with("odd__a_tool_name_so_long"))
        .expect("shortened long name")
        .clone();
    assert_eq!(long.len(), 64);
    let dotted = names
        .iter()
        .find(|n| n.starts_with("odd__dotted_name_"))
        .expect("sanitized dotted name")
        .clone();

    // The shortened names route to the original tools.
    let r = gw.call(&long, json!({"text": "long one"})).await.unwrap();
    assert_eq!(text_of(&r), "long one");
    let r = gw
        .call(&dotted, json!({"text": "dotted one"}))
        .await
        .unwrap();
    assert_eq!(text_of(&r), "dotted one");

    // The mapping is visible to the model.
    let health = gw.health().await;
    let renamed = health["renamed_tools"].as_array().unwrap();
    assert!(
        renamed
            .iter()
            .any(|r| r["exposed"] == long.as_str() && r["tool"] == LONG && r["server"] == "odd"),
        "{renamed:?}"
    );
    assert!(
        renamed
            .iter()
            .any(|r| r["exposed"] == dotted.as_str() && r["tool"] == "dotted.name"),
        "{renamed:?}"
    );

    // Filters: denied tools are neither listed nor callable, and health counts them.
    assert!(
        !names.iter().any(|n| n == "odd__crash" || n == "odd__sleep"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "odd__echo"));
    let err = gw.call("odd__crash", json!({})).await.unwrap_err();
    assert_eq!(err["code"], -32602, "{err}");
    let odd = gw.server_health("odd").await;
    assert_eq!(odd["tools_hidden_by_filter"], 2, "{odd}");

    // The same names, the same way, on every start: shortening is deterministic.
    let gw2 = Gateway::start(&config()).await;
    let names2 = gw2.tool_names().await;
    assert!(names2.contains(&long) && names2.contains(&dotted));

    for gw in [gw, gw2] {
        gw.assert_clean_stdout();
        let marker = gw.marker.clone();
        let (status, _gw) = gw.close(Duration::from_secs(10)).await;
        assert!(status.success());
        procs::assert_none_left(&marker, Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn the_tools_command_prints_the_catalog_and_the_mapping() {
    let dir = TempDir::new("toolscmd");
    let path = dir.join("orchestra.yaml");
    std::fs::write(&path, orchestra_tests::with_marker_inherited(&config())).unwrap();
    let marker = orchestra_tests::new_marker();
    let out = Command::new(orchestra_tests::gateway_bin())
        .arg("tools")
        .arg("-c")
        .arg(&path)
        .env(orchestra_tests::MARKER_VAR, &marker)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("odd__echo"), "{stdout}");
    assert!(stdout.contains("orchestrator_health"), "{stdout}");
    assert!(stdout.contains(&format!("= odd's \"{LONG}\"")), "{stdout}");
    assert!(stdout.contains("1/1 servers ready"), "{stdout}");
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}

/// A child that pages its `tools/list` is listed in full: the gateway follows `nextCursor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_child_catalogs_are_listed_in_full() {
    let config = format!(
        "servers:\n{}",
        orchestra_tests::fault_server("paged", "page_size:2,extra_tools:5", &[])
    );
    let gw = Gateway::start(&config).await;
    let paged: Vec<String> = gw
        .tool_names()
        .await
        .into_iter()
        .filter(|n| n.starts_with("paged__"))
        .collect();
    // echo, sleep, fail, pid, crash, progress + tool_0..tool_4, two per page.
    assert_eq!(paged.len(), 11, "{paged:?}");
    assert!(paged.contains(&"paged__tool_4".to_owned()), "{paged:?}");
    gw.assert_clean_stdout();
    let marker = gw.marker.clone();
    let (status, _gw) = gw.close(Duration::from_secs(10)).await;
    assert!(status.success());
    procs::assert_none_left(&marker, Duration::from_secs(5)).await;
}
