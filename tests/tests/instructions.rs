//! Each server's own `instructions` reach the client inside the gateway's, under the server's
//! name — from the catalog cache, since a client initializes before children are ready.

use std::time::Duration;

use orchestra_tests::{everything_entry, finish, wait_ready, Gateway, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_instructions_are_merged_under_its_name() {
    let cache = TempDir::new("instructions");
    let cache_dir = cache.path().display().to_string();
    let config = format!("servers:\n{}", everything_entry());
    let env = [("ORCHESTRA_CACHE_DIR", cache_dir.as_str())];

    // First run: the client initializes before server-everything is ready; once ready, its
    // instructions are kept for the next start.
    let gw = Gateway::start_with(&config, &env).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    finish(gw).await;

    let gw = Gateway::start_with(&config, &env).await;
    let text = gw.initialize_result["instructions"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.starts_with("mcp-orchestra aggregates 1 MCP servers"),
        "{text}"
    );
    assert!(
        text.contains("## Server \"everything\" (its tools and prompts are everything__*)"),
        "{text}"
    );
    assert!(
        text.contains("Everything Server"),
        "server-everything's own instructions are included: {text}"
    );
    finish(gw).await;
}
