//! Instant start: the last known catalog answers the client's first `tools/list` at once while
//! children are still starting; calls to a starting child wait for it; the client hears
//! `tools/list_changed` only if the real catalog differs.

use std::time::{Duration, Instant};

use orchestra_tests::{fault_child, finish, text_of, Gateway, TempDir, STEP};
use serde_json::json;

/// The config is identical across runs (so the cache applies); each run changes the child's
/// behaviour through `FAULT_MODE`, which the server inherits from the gateway by name.
fn config() -> String {
    format!(
        "servers:\n  f: {{command: \"{}\", inherit_env: [FAULT_MODE]}}\n",
        fault_child().display()
    )
}

async fn run(cache: &TempDir, fault_mode: &str) -> Gateway {
    let cache_dir = cache.path().display().to_string();
    Gateway::start_with(
        &config(),
        &[
            ("ORCHESTRA_CACHE_DIR", &cache_dir),
            ("FAULT_MODE", fault_mode),
        ],
    )
    .await
}

/// A second start answers `tools/list` from the cache in well under the child's start time; a
/// call waits for the child; an unchanged catalog is not announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_catalog_answers_at_once_and_calls_wait_for_the_child() {
    let cache = TempDir::new("cache");
    // First run: cold, fills the cache.
    let gw = run(&cache, "").await;
    let first = gw.tool_names().await;
    assert!(first.contains(&"f__echo".to_owned()));
    finish(gw).await;

    // Second run: the child takes 2 s to answer initialize.
    let mut gw = run(&cache, "slow_start:2000").await;
    let asked = Instant::now();
    let listed = gw.tool_names().await;
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(300),
        "first tools/list took {took:?} with a cached catalog"
    );
    assert_eq!(
        listed, first,
        "the cached catalog is what the child listed last time"
    );
    assert_eq!(gw.server_health("f").await["state"], "starting");

    // A call to the starting child waits for it and is answered.
    let echo = gw.call("f__echo", json!({"text": "waited"})).await.unwrap();
    assert_eq!(text_of(&echo), "waited");
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "answered before the child was up?"
    );
    // Same catalog: nothing to announce.
    assert!(
        gw.next_notification(
            "notifications/tools/list_changed",
            Duration::from_millis(1500)
        )
        .await
        .is_none(),
        "list_changed although the catalog did not change"
    );
    finish(gw).await;
}

/// When the child's real catalog differs from the cached one, the client is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_catalog_is_announced_once_the_child_is_ready() {
    let cache = TempDir::new("cache");
    let gw = run(&cache, "").await;
    gw.tool_names().await;
    finish(gw).await;

    let mut gw = run(&cache, "slow_start:1000,tool_name:brand_new").await;
    let cached = gw.tool_names().await;
    assert!(!cached.contains(&"f__brand_new".to_owned()), "{cached:?}");
    assert!(
        gw.next_notification("notifications/tools/list_changed", STEP)
            .await
            .is_some(),
        "the real catalog differs: the client must be told"
    );
    let real = gw.tool_names().await;
    assert!(real.contains(&"f__brand_new".to_owned()), "{real:?}");
    finish(gw).await;
}

/// Cached tools of a server that then fails to start leave the list, and the client is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_server_that_fails_to_start_is_withdrawn() {
    let cache = TempDir::new("cache");
    let gw = run(&cache, "").await;
    gw.tool_names().await;
    finish(gw).await;

    let mut gw = run(&cache, "slow_start:500,hang_on:initialize").await;
    let cached = gw.tool_names().await;
    assert!(cached.contains(&"f__echo".to_owned()));
    // The child never answers initialize: it is listed from the cache while "starting".
    // Kill it rather than wait out the 30 s startup timeout; either way it fails to start.
    let pid = gw.server_health("f").await["pid"].as_u64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        gw.next_notification("notifications/tools/list_changed", STEP)
            .await
            .is_some(),
        "the cached tools of a server that died during start-up must be withdrawn"
    );
    let now = gw.tool_names().await;
    assert!(!now.iter().any(|n| n.starts_with("f__")), "{now:?}");
    finish(gw).await;
}
