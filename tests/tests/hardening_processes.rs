//! Nothing a child starts outlives it or the gateway — even a grandchild that moved to its
//! own session with `setsid()` and ignores SIGTERM (process-group kills cannot reach it) —
//! however the gateway ends (stdin EOF, SIGTERM, SIGKILL), when the child itself dies and is
//! restarted, and when the watchdog was killed before the gateway. Each case runs with
//! cgroups (where the machine offers them) and with `ORCHESTRA_CGROUPS=off` (process groups,
//! the subreaper and /proc tracking only).
//!
//! And children get only the environment their config admits: a variable of the gateway's
//! reaches the real server-everything's `get-env` only through `inherit_env`.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orchestra_tests::{
    everything_entry, fault_with, procs, text_of, wait_ready, within, Gateway, TempDir,
};
use serde_json::json;

/// How each test contains children.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The default: a cgroup per child where the machine allows it.
    Cgroups,
    /// Process groups, the subreaper and /proc tracking only.
    Tracking,
}

impl Mode {
    fn env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Mode::Cgroups => vec![],
            Mode::Tracking => vec![("ORCHESTRA_CGROUPS", "off")],
        }
    }
}

const READY: Duration = Duration::from_secs(15);

/// A gateway whose one child (`fault`) starts a setsid'ed, SIGTERM-ignoring grandchild.
struct Setup {
    gw: Gateway,
    log: std::path::PathBuf,
    _scratch: TempDir,
    grandchild: u32,
}

async fn start(mode: Mode, extra: &str) -> Setup {
    let scratch = TempDir::new("setsid");
    let log = scratch.join("fault.log");
    let config = format!(
        "gateway: {{startup_timeout: 10s, shutdown_grace: 1s}}\nservers:\n{}",
        fault_with(
            "fault",
            "spawn_setsid_grandchild",
            &[("FAULT_LOG", &log.display().to_string())],
            extra
        )
    );
    let gw = Gateway::start_with(&config, &mode.env()).await;
    wait_ready(&gw, &["fault"], READY).await;
    let grandchild = *wait_grandchildren(&log, 1).await.last().expect("one");
    assert_escaped(&gw, grandchild);
    assert_contained(&gw, mode, grandchild).await;
    Setup {
        gw,
        log,
        _scratch: scratch,
        grandchild,
    }
}

/// The pids of the setsid'ed grandchildren logged so far, once there are at least `n`.
async fn wait_grandchildren(log: &std::path::Path, n: usize) -> Vec<u32> {
    within(Duration::from_secs(10), "the setsid'ed grandchild", async {
        loop {
            let pids: Vec<u32> = std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.strip_prefix("setsid_grandchild "))
                .filter_map(|p| p.trim().parse().ok())
                .collect();
            if pids.len() >= n {
                return pids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `(pgrp, session)` of a process.
fn group_and_session(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(2);
    Some((rest.next()?.parse().ok()?, rest.next()?.parse().ok()?))
}

/// The grandchild is alive, one of this test's processes, and in a session and process
/// group of its own: out of reach of any signal sent to the child's group.
fn assert_escaped(gw: &Gateway, pid: u32) {
    assert!(
        running(&gw.marker, pid),
        "the grandchild {pid} should run with the test's marker: {:#?}",
        procs::with_marker(&gw.marker)
    );
    assert_eq!(
        group_and_session(pid),
        Some((pid, pid)),
        "the grandchild leads its own group and session"
    );
}

/// The gateway has taken hold of the grandchild: with cgroups, it is in the child's cgroup
/// (under the gateway's `mcp-orchestra.<pid>`); in every mode, the tracker records it (the
/// gateway logs that at debug level), which the test waits for so as not to race the
/// tracker's tick. The wait is bounded but not fatal: a gateway that never tracks anything
/// fails on the processes it leaves, which is what these tests are about.
async fn assert_contained(gw: &Gateway, mode: Mode, pid: u32) {
    let needle = format!("tracking descendant {pid}");
    let until = Instant::now() + Duration::from_secs(3);
    while !gw.logs().contains(&needle) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !gw.logs().contains(&needle) {
        eprintln!("the gateway did not log tracking the grandchild {pid}");
    }
    let cgroups = gw
        .logs()
        .contains("containing each child in its own cgroup");
    match mode {
        Mode::Cgroups if cgroups => {
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let own = format!("mcp-orchestra.{}/fault.", gw.pid());
            assert!(
                cgroup
                    .lines()
                    .any(|l| l.starts_with("0::") && l.contains(&own)),
                "the grandchild is in the child's cgroup ({own}…): {cgroup}"
            );
        }
        Mode::Cgroups => eprintln!("no usable cgroup v2 here: only tracking is exercised"),
        Mode::Tracking => assert!(!cgroups, "ORCHESTRA_CGROUPS=off is honoured"),
    }
}

/// Whether `pid` is a live process of this test.
fn running(marker: &str, pid: u32) -> bool {
    procs::with_marker(marker).iter().any(|p| p.pid == pid)
}

async fn gone_within(marker: &str, pid: u32, limit: Duration) {
    within(limit, &format!("process {pid} to be killed"), async {
        while running(marker, pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn stdin_eof_kills_the_setsid_grandchild(mode: Mode) {
    let s = start(mode, "").await;
    let marker = s.gw.marker.clone();
    let started = Instant::now();
    let (status, gw) = s.gw.close(Duration::from_secs(8)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gw.logs());
    procs::assert_none_left(&marker, Duration::from_secs(3)).await;
    eprintln!("{mode:?}: all gone {:?} after stdin EOF", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_eof_kills_the_setsid_grandchild_with_cgroups() {
    stdin_eof_kills_the_setsid_grandchild(Mode::Cgroups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_eof_kills_the_setsid_grandchild_by_tracking() {
    stdin_eof_kills_the_setsid_grandchild(Mode::Tracking).await;
}

async fn sigterm_kills_the_setsid_grandchild(mode: Mode) {
    let mut s = start(mode, "").await;
    s.gw.signal(Signal::SIGTERM);
    let status = s.gw.wait_exit(Duration::from_secs(8)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", s.gw.logs());
    procs::assert_none_left(&s.gw.marker, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_the_setsid_grandchild_with_cgroups() {
    sigterm_kills_the_setsid_grandchild(Mode::Cgroups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_the_setsid_grandchild_by_tracking() {
    sigterm_kills_the_setsid_grandchild(Mode::Tracking).await;
}

/// SIGKILL of the gateway: its watchdog kills the grandchild (the cgroup, or the tracked
/// pid it was told about) and exits.
async fn sigkill_leaves_the_watchdog_to_kill_the_setsid_grandchild(mode: Mode) {
    let mut s = start(mode, "").await;
    let gateway = s.gw.pid();
    s.gw.signal(Signal::SIGKILL);
    s.gw.wait_exit(Duration::from_secs(3)).await;
    procs::assert_none_left(&s.gw.marker, Duration::from_secs(3)).await;
    if let Mode::Cgroups = mode {
        let base = format!("mcp-orchestra.{gateway}");
        assert!(
            !cgroup_dir_exists(&base),
            "the watchdog removes the gateway's cgroup {base}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_the_watchdog_to_kill_the_setsid_grandchild_with_cgroups() {
    sigkill_leaves_the_watchdog_to_kill_the_setsid_grandchild(Mode::Cgroups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leaves_the_watchdog_to_kill_the_setsid_grandchild_by_tracking() {
    sigkill_leaves_the_watchdog_to_kill_the_setsid_grandchild(Mode::Tracking).await;
}

/// The child dies (crash, exit code 3) and is restarted: its setsid'ed grandchild dies with
/// it — the restarted child's grandchild is the only one running — the orphan is reaped (no
/// zombie under the gateway, a subreaper), and the child's own exit status is still reported.
async fn restart_kills_the_dead_childs_setsid_grandchild(mode: Mode) {
    let s = start(mode, "restart: {initial_backoff: 100ms}").await;
    let first = s.grandchild;
    let _ = s.gw.call("fault__crash", json!({})).await;
    let back =
        s.gw.wait_server("fault", READY, |h| {
            h["state"] == "ready" && h["restarts"].as_u64() == Some(1)
        })
        .await;
    assert_eq!(back["last_exit"], "exit code 3", "{back}");
    gone_within(&s.gw.marker, first, Duration::from_secs(3)).await;

    let second = *wait_grandchildren(&s.log, 2).await.last().expect("two");
    assert_ne!(second, first);
    assert_escaped(&s.gw, second);
    let sleepers: Vec<procs::Proc> = procs::with_marker(&s.gw.marker)
        .into_iter()
        .filter(|p| p.pid != s.gw.pid() && group_and_session(p.pid) == Some((p.pid, p.pid)))
        .filter(|p| p.cmdline.contains("orchestra-fault-child"))
        .collect();
    assert_eq!(
        sleepers.iter().map(|p| p.pid).collect::<Vec<_>>(),
        vec![second],
        "only the new child's grandchild runs: {sleepers:#?}"
    );
    within(
        Duration::from_secs(3),
        "the killed orphan to be reaped",
        async {
            while !procs::zombie_children(s.gw.pid()).is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    orchestra_tests::finish(s.gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_kills_the_dead_childs_setsid_grandchild_with_cgroups() {
    restart_kills_the_dead_childs_setsid_grandchild(Mode::Cgroups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_kills_the_dead_childs_setsid_grandchild_by_tracking() {
    restart_kills_the_dead_childs_setsid_grandchild(Mode::Tracking).await;
}

/// The watchdog is SIGKILLed: the gateway notices and starts a new one, told everything;
/// then the gateway is SIGKILLed, and the new watchdog kills the grandchild.
async fn a_killed_watchdog_is_replaced(mode: Mode) {
    let mut s = start(mode, "").await;
    let watchdogs = |marker: &str| -> Vec<u32> {
        procs::with_marker(marker)
            .into_iter()
            .filter(|p| p.cmdline.contains("__watchdog") && p.state != 'Z')
            .map(|p| p.pid)
            .collect()
    };
    let old = watchdogs(&s.gw.marker);
    assert_eq!(old.len(), 1, "one watchdog: {old:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old[0] as i32), Signal::SIGKILL)
        .expect("kill the watchdog");
    // Logged once the new watchdog has been told the whole ledger.
    within(
        Duration::from_secs(3),
        "the gateway to replace its watchdog",
        async {
            while !s.gw.logs().contains("the watchdog died; started a new one") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    let new = watchdogs(&s.gw.marker);
    assert!(
        new.len() == 1 && new[0] != old[0],
        "a new watchdog: {new:?} (old {old:?})"
    );

    s.gw.signal(Signal::SIGKILL);
    s.gw.wait_exit(Duration::from_secs(3)).await;
    procs::assert_none_left(&s.gw.marker, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_watchdog_is_replaced_with_cgroups() {
    a_killed_watchdog_is_replaced(Mode::Cgroups).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_watchdog_is_replaced_by_tracking() {
    a_killed_watchdog_is_replaced(Mode::Tracking).await;
}

/// Whether a cgroup directory named `name` exists directly under a cgroup2 mount's root
/// or our own cgroup (where the gateway creates its subtree).
fn cgroup_dir_exists(name: &str) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = mounts.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        (after.split_whitespace().next()? == "cgroup2").then(|| before.split_whitespace().nth(4))?
    }) else {
        return false;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    std::path::Path::new(mount)
        .join(own.trim_start_matches('/'))
        .join(name)
        .exists()
}

// --- environment -------------------------------------------------------------------------

/// The environment server-everything sees, from its `get-env` tool.
async fn everything_env(gw: &Gateway) -> serde_json::Value {
    let r = gw
        .call("everything__get-env", json!({}))
        .await
        .unwrap_or_else(|e| panic!("everything__get-env failed: {e}"));
    let text = text_of(&r);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("get-env is not JSON ({e}): {text}"))
}

const SECRET_VAR: &str = "ORCHESTRA_TEST_GATEWAY_ONLY";

/// A variable set only in the gateway's environment does not reach a child by default; the
/// base set (PATH, HOME) does, and so does the variable once the server's `inherit_env`
/// names it; configured `env:` values (literal and `${file:…}`) always do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_see_only_the_environment_their_config_admits() {
    let scratch = TempDir::new("env");
    let secret_file = scratch.join("token");
    std::fs::write(&secret_file, "from-a-file\n").unwrap();
    let entry = everything_entry();
    let body = entry.strip_suffix("}\n").expect("an entry in braces");
    let with = |extra: &str| format!("{body}, {extra}}}\n");
    let configured = format!(
        "env: {{LITERAL_VALUE: plain, FILE_VALUE: \"${{file:{}}}\"}}",
        secret_file.display()
    );
    let gateway_env = [
        (SECRET_VAR, "must-not-leak"),
        ("HOME", "/home/for-children"),
    ];

    // Default: the base set only.
    let gw = Gateway::start_with(&format!("servers:\n{}", with(&configured)), &gateway_env).await;
    wait_ready(&gw, &["everything"], READY).await;
    let env = everything_env(&gw).await;
    assert!(env.get(SECRET_VAR).is_none(), "leaked: {env}");
    assert_eq!(env["HOME"], "/home/for-children", "{env}");
    assert!(env["PATH"].is_string(), "PATH is inherited: {env}");
    assert_eq!(env["LITERAL_VALUE"], "plain", "{env}");
    assert_eq!(env["FILE_VALUE"], "from-a-file", "{env}");
    assert!(
        env.get("RUST_LOG").is_none() && env.get("ORCHESTRA_CACHE_DIR").is_none(),
        "the gateway's own settings stay with it: {env}"
    );
    orchestra_tests::finish(gw).await;

    // Admitted by name on the server.
    let gw = Gateway::start_with(
        &format!(
            "servers:\n{}",
            with(&format!("inherit_env: [{SECRET_VAR}], {configured}"))
        ),
        &gateway_env,
    )
    .await;
    wait_ready(&gw, &["everything"], READY).await;
    let env = everything_env(&gw).await;
    assert_eq!(env[SECRET_VAR], "must-not-leak", "{env}");
    assert_eq!(env["FILE_VALUE"], "from-a-file", "{env}");
    assert!(env.get("RUST_LOG").is_none(), "only what is named: {env}");
    orchestra_tests::finish(gw).await;
}
