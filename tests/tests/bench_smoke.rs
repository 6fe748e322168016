//! The benchmark suite keeps working: a quick run (debug build, no timing judged — speed is
//! measured by `scripts/bench`, not by tests) must drive every set-up to the end with every
//! call answered correctly, and print every section of its table.

use std::time::Duration;

use orchestra_tests::{within, workspace_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_suite_runs_end_to_end() {
    let suite = workspace_bin("bench-suite");
    let out = within(
        Duration::from_secs(120),
        "bench-suite --quick",
        tokio::process::Command::new(suite)
            .args(["--quick", "--no-real-children"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running bench-suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 1 means a call got an error or a wrong id somewhere (not a missed target).
    assert!(
        out.status.success(),
        "bench-suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "Sequential tools/call latency",
        "Pipelined throughput",
        "Ratios against the null relay",
        "orchestra HTTP",
        "The HTTP front against the stdio front",
        "idle sessions + GET streams",
        "Large catalog",
        "Resources",
        "Sequential resources/read round trip",
        "Targets",
    ] {
        assert!(
            stdout.contains(section),
            "missing section {section:?}:\n{stdout}"
        );
    }
    // 10,000 children's tools plus the gateway's own (health and the orchestrator's).
    let listed: usize = stdout
        .split(" tools listed")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(listed > 10_000, "{listed} tools listed:\n{stdout}");
    assert!(stdout.contains("10000 listed in 10 pages"), "{stdout}");
}
