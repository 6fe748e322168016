//! `bench-suite`: runs the whole benchmark in one go, prints a table and (with `--json PATH`)
//! writes every figure as JSON. See docs/benchmarks.md for what each row measures.
//!
//! It finds its sibling binaries (`bench-echo`, `bench-http-echo`, `bench-relay`,
//! `bench-driver`, `mcp-orchestra`) next to its own executable, and the real reference servers
//! for the cold-start rows through `ORCHESTRA_TEST_SERVER_*` (from the environment, else
//! `.test-deps/env.sh`, written by `scripts/test-deps.sh`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use orchestra_bench::{median, peak_rss_kib, Envelope, Peer, ScratchDir};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Runs the mcp-orchestra benchmark suite and prints a table")]
struct Args {
    /// A short run (fewer calls, one repetition): a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Also write every figure to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Repetitions of each latency/throughput measurement (interleaved; the median is shown).
    #[arg(long)]
    reps: Option<usize>,
    /// Sequential calls measured per run.
    #[arg(long)]
    seq_calls: Option<u64>,
    /// Pipelined calls measured per run.
    #[arg(long)]
    pipe_calls: Option<u64>,
    /// Calls in flight in the pipelined runs.
    #[arg(long, default_value_t = 16)]
    in_flight: u64,
    /// Skip the rows that need the real reference servers (cold start, RSS with 5 children).
    #[arg(long)]
    no_real_children: bool,
    /// Skip the pinned (`taskset -c CPU`) runs.
    #[arg(long)]
    no_pin: bool,
    /// The CPU the pinned runs use.
    #[arg(long, default_value_t = 0)]
    pin_cpu: u32,
    /// Where the binaries are (default: the directory of this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Workspace root: where `.test-deps/env.sh` is, and the git repository handed to the git
    /// server (default: found upwards from the binaries, else the current directory).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Exit with status 2 when a target is missed.
    #[arg(long)]
    strict: bool,
}

struct Plan {
    reps: usize,
    seq_calls: u64,
    seq_warmup: u64,
    pipe_calls: u64,
    pipe_warmup: u64,
    in_flight: u64,
    cold_reps: usize,
    catalog_servers: usize,
    catalog_tools: usize,
    catalog_requests: usize,
    resource_servers: usize,
    resources_per_server: usize,
    /// Each echo child's own resources/list page size (the gateway follows their cursors).
    resource_child_page: usize,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let (reps, seq, pipe, cold, lists) = if args.quick {
            (1, 2_000, 20_000, 1, 5)
        } else {
            (3, 20_000, 200_000, 3, 20)
        };
        let seq_calls = args.seq_calls.unwrap_or(seq);
        let pipe_calls = args.pipe_calls.unwrap_or(pipe);
        Plan {
            reps: args.reps.unwrap_or(reps).max(1),
            seq_calls,
            seq_warmup: (seq_calls / 10).max(100),
            pipe_calls,
            pipe_warmup: (pipe_calls / 20).max(1_000),
            in_flight: args.in_flight.max(2),
            cold_reps: cold,
            catalog_servers: 50,
            catalog_tools: 200,
            catalog_requests: lists,
            resource_servers: 50,
            resources_per_server: 200,
            resource_child_page: 100,
        }
    }
}

struct Bins {
    echo: PathBuf,
    http_echo: PathBuf,
    relay: PathBuf,
    driver: PathBuf,
    gateway: PathBuf,
}

impl Bins {
    fn find(dir: &Path) -> Result<Self> {
        let bin = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!(
                    "{} not found: build with `cargo build --release -p orchestra-bench -p mcp-orchestra` \
                     (or run scripts/bench)",
                    p.display()
                )
            }
        };
        Ok(Bins {
            echo: bin("bench-echo")?,
            http_echo: bin("bench-http-echo")?,
            relay: bin("bench-relay")?,
            driver: bin("bench-driver")?,
            gateway: bin("mcp-orchestra")?,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pin {
    Pinned,
    Unpinned,
}

impl Pin {
    fn key(self) -> &'static str {
        match self {
            Pin::Pinned => "pinned",
            Pin::Unpinned => "unpinned",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Direct,
    Relay,
    Gateway,
    /// The gateway reached over its Streamable HTTP front (same config, same echo child).
    GatewayHttp,
    /// `bench-http-echo`: the echo answers served over HTTP by axum, nothing behind it (the
    /// floor of the HTTP rows).
    DirectHttp,
}

const MODES: [Mode; 3] = [Mode::Direct, Mode::Relay, Mode::Gateway];
/// The tools/call rows: the three stdio set-ups and the HTTP front, interleaved.
const CALL_MODES: [Mode; 5] = [
    Mode::Direct,
    Mode::Relay,
    Mode::Gateway,
    Mode::DirectHttp,
    Mode::GatewayHttp,
];

impl Mode {
    fn key(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Relay => "relay",
            Mode::Gateway => "gateway",
            Mode::GatewayHttp => "gateway_http",
            Mode::DirectHttp => "direct_http",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Relay => "null relay",
            Mode::Gateway => "mcp-orchestra",
            Mode::GatewayHttp => "orchestra HTTP",
            Mode::DirectHttp => "direct HTTP",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Sequential,
    Pipelined,
}

/// What the driver repeats.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    /// `tools/call` of the echo tool.
    Call,
    /// `resources/read` of the echo child's first resource.
    Read,
}

/// Idle HTTP sessions held open for the RSS row.
const IDLE_SESSIONS: usize = 50;

/// The echo child's first resource, as the child names it and as the gateway does (server
/// `e`, `orchestra://<server>/<the child's URI>`).
const READ_URI: &str = "bench://resource/0";
const READ_URI_GATEWAY: &str = "orchestra://e/bench://resource/0";

/// Median over the repetitions of one numeric field.
fn med(runs: &[Value], field: &str) -> f64 {
    median(
        &runs
            .iter()
            .map(|r| r[field].as_f64().unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    )
}

/// Median CPU µs per call of the driver, the middle process (relay or gateway) and the echo
/// child over the repetitions, formatted as table cells, plus the raw medians.
fn cpu_cells(runs: &[Value], mode: Mode) -> (String, Value) {
    let middle = match mode {
        Mode::Direct | Mode::DirectHttp => None,
        Mode::Relay => Some("bench-relay"),
        Mode::Gateway | Mode::GatewayHttp => Some("mcp-orchestra"),
    };
    let one = |name: &str| {
        median(
            &runs
                .iter()
                .map(|r| r["cpu_us_per_call"][name].as_f64().unwrap_or(f64::NAN))
                .collect::<Vec<_>>(),
        )
    };
    let driver = one("bench-driver");
    let echo = one(if mode == Mode::DirectHttp {
        "bench-http-echo"
    } else {
        "bench-echo"
    });
    let mid = middle.map(one);
    let cells = format!(
        "{:>8}{:>8}{:>8}",
        fmt_num(driver, 2),
        mid.map(|m| fmt_num(m, 2)).unwrap_or_else(|| "-".into()),
        fmt_num(echo, 2)
    );
    let json = json!({"driver": driver, "middle": mid, "echo": echo});
    (cells, json)
}

struct Suite {
    bins: Bins,
    plan: Plan,
    scratch: ScratchDir,
    echo_config: PathBuf,
    /// One echo child with resources, server `e` (the resources/read rows).
    read_config: PathBuf,
    pin_cpu: u32,
    call_errors: u64,
}

impl Suite {
    fn driver(&self, pin: Pin, mode: Mode, kind: Kind, work: Work) -> Result<Value> {
        let mut cmd = match pin {
            Pin::Pinned => {
                let mut c = Command::new("taskset");
                c.arg("-c")
                    .arg(self.pin_cpu.to_string())
                    .arg(&self.bins.driver);
                c
            }
            Pin::Unpinned => Command::new(&self.bins.driver),
        };
        let (calls, warmup, pipeline) = match kind {
            Kind::Sequential => (self.plan.seq_calls, self.plan.seq_warmup, 1),
            Kind::Pipelined => (
                self.plan.pipe_calls,
                self.plan.pipe_warmup,
                self.plan.in_flight,
            ),
        };
        cmd.arg(format!("--calls={calls}"))
            .arg(format!("--warmup={warmup}"))
            .arg(format!("--pipeline={pipeline}"));
        match (work, mode) {
            (Work::Call, Mode::Gateway) => cmd.args(["--tool", "e__echo"]),
            (Work::Call, Mode::GatewayHttp) => cmd.args(["--http", "--tool", "e__echo"]),
            (Work::Call, Mode::DirectHttp) => cmd.args(["--http", "--tool", "echo"]),
            (Work::Read, Mode::GatewayHttp | Mode::DirectHttp) => {
                bail!("no resources/read rows over HTTP")
            }
            (Work::Call, _) => cmd.args(["--tool", "echo"]),
            (Work::Read, Mode::Gateway) => cmd.args(["--read", READ_URI_GATEWAY]),
            (Work::Read, _) => cmd.args(["--read", READ_URI]),
        };
        cmd.arg("--");
        let (echo_args, config): (&[&str], _) = match work {
            Work::Call => (&[], &self.echo_config),
            Work::Read => (&["--resources", "1"], &self.read_config),
        };
        match mode {
            Mode::Direct => cmd.arg(&self.bins.echo).args(echo_args),
            Mode::Relay => cmd
                .arg(&self.bins.relay)
                .arg("--")
                .arg(&self.bins.echo)
                .args(echo_args),
            Mode::Gateway => cmd
                .arg(&self.bins.gateway)
                .args(["serve", "-c"])
                .arg(config),
            Mode::DirectHttp => cmd.arg(&self.bins.http_echo),
            Mode::GatewayHttp => cmd
                .arg(&self.bins.gateway)
                .args(["serve", "-c"])
                .arg(config)
                .args(["--listen", "127.0.0.1:0"]),
        };
        cmd.env_remove("RUST_LOG").env(
            "ORCHESTRA_CACHE_DIR",
            self.scratch.path().join("echo-cache"),
        );
        run_json(&mut cmd)
    }

    /// Latency and throughput: every (pinning, kind) block runs `reps` rounds of
    /// direct, relay, gateway (stdio), gateway (HTTP), interleaved.
    fn forwarding(&mut self, pins: &[Pin]) -> Result<BTreeMap<(Pin, Kind, Mode), Vec<Value>>> {
        let mut out: BTreeMap<(Pin, Kind, Mode), Vec<Value>> = BTreeMap::new();
        for &pin in pins {
            for kind in [Kind::Sequential, Kind::Pipelined] {
                for rep in 0..self.plan.reps {
                    for mode in CALL_MODES {
                        eprintln!(
                            "bench: {} {} {} (run {}/{})",
                            pin.key(),
                            if kind == Kind::Sequential {
                                "latency"
                            } else {
                                "throughput"
                            },
                            mode.label(),
                            rep + 1,
                            self.plan.reps
                        );
                        let r = self.driver(pin, mode, kind, Work::Call)?;
                        self.count_errors(&r);
                        out.entry((pin, kind, mode)).or_default().push(r);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sequential `resources/read` round trips, `reps` interleaved rounds of direct, relay,
    /// gateway (the headline pinning only).
    fn reads(&mut self, pin: Pin) -> Result<BTreeMap<Mode, Vec<Value>>> {
        let mut out: BTreeMap<Mode, Vec<Value>> = BTreeMap::new();
        for rep in 0..self.plan.reps {
            for mode in MODES {
                eprintln!(
                    "bench: {} resources/read {} (run {}/{})",
                    pin.key(),
                    mode.label(),
                    rep + 1,
                    self.plan.reps
                );
                let r = self.driver(pin, mode, Kind::Sequential, Work::Read)?;
                self.count_errors(&r);
                out.entry(mode).or_default().push(r);
            }
        }
        Ok(out)
    }

    /// The gateway's peak RSS with `sessions` idle HTTP sessions (bench-echo child), `reps`
    /// runs, unpinned.
    fn idle_http(&mut self, sessions: usize) -> Result<Vec<Value>> {
        let mut runs = Vec::new();
        for rep in 0..self.plan.reps {
            eprintln!(
                "bench: {sessions} idle HTTP sessions (run {}/{})",
                rep + 1,
                self.plan.reps
            );
            let mut cmd = Command::new(&self.bins.driver);
            cmd.args(["--http", "--tool", "e__echo"])
                .arg(format!("--idle-sessions={sessions}"))
                .arg("--")
                .arg(&self.bins.gateway)
                .args(["serve", "-c"])
                .arg(&self.echo_config)
                .args(["--listen", "127.0.0.1:0"])
                .env_remove("RUST_LOG")
                .env(
                    "ORCHESTRA_CACHE_DIR",
                    self.scratch.path().join("echo-cache"),
                );
            runs.push(run_json(&mut cmd)?);
        }
        Ok(runs)
    }

    fn count_errors(&mut self, run: &Value) {
        let errors = run["errors"].as_u64().unwrap_or(0);
        if errors > 0 {
            eprintln!(
                "bench: WARNING {errors} bad answers ({})",
                run["first_error"]
            );
            self.call_errors += errors;
        }
    }
}

/// Runs a command that prints one JSON object on stdout.
fn run_json(cmd: &mut Command) -> Result<Value> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{:?} failed ({})", cmd, out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{:?} printed no JSON: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

// ----- real children (cold start, RSS) -----

struct RealChild {
    name: &'static str,
    command: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn find_root(args: &Args, bin_dir: &Path) -> PathBuf {
    if let Some(r) = &args.root {
        return r.clone();
    }
    let mut dir = Some(bin_dir);
    while let Some(d) = dir {
        if d.join("scripts/test-deps.sh").is_file() && d.join("Cargo.toml").is_file() {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// `ORCHESTRA_TEST_SERVER_*` from the environment, else from `.test-deps/env.sh`.
fn test_dep(root: &Path, key: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(key) {
        return Some(PathBuf::from(v));
    }
    let text = std::fs::read_to_string(root.join(".test-deps/env.sh")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("export ")?.strip_prefix(key)?;
        let value = rest.strip_prefix('=')?.trim().trim_matches(['"', '\'']);
        Some(PathBuf::from(value))
    })
}

fn real_children(root: &Path, scratch: &Path) -> Result<Vec<RealChild>> {
    let dep = |key: &str| {
        test_dep(root, key)
            .filter(|p| p.exists())
            .ok_or_else(|| anyhow!("{key} not found (run scripts/test-deps.sh)"))
    };
    let files_dir = scratch.join("files");
    std::fs::create_dir_all(&files_dir)?;
    std::fs::write(files_dir.join("hello.txt"), "hello\n")?;
    let repo = if root.join(".git").exists() {
        root.to_path_buf()
    } else {
        let repo = scratch.join("repo");
        std::fs::create_dir_all(&repo)?;
        let ok = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("no git repository for the git server (and `git init` failed)");
        }
        repo
    };
    Ok(vec![
        RealChild {
            name: "everything",
            command: dep("ORCHESTRA_TEST_SERVER_EVERYTHING")?,
            args: vec!["stdio".into()],
            env: vec![],
        },
        RealChild {
            name: "files",
            command: dep("ORCHESTRA_TEST_SERVER_FILESYSTEM")?,
            args: vec![files_dir.display().to_string()],
            env: vec![],
        },
        RealChild {
            name: "memory",
            command: dep("ORCHESTRA_TEST_SERVER_MEMORY")?,
            args: vec![],
            env: vec![(
                "MEMORY_FILE_PATH".into(),
                scratch.join("memory.json").display().to_string(),
            )],
        },
        RealChild {
            name: "time",
            command: dep("ORCHESTRA_TEST_SERVER_TIME")?,
            args: vec!["--local-timezone".into(), "UTC".into()],
            env: vec![],
        },
        RealChild {
            name: "git",
            command: dep("ORCHESTRA_TEST_SERVER_GIT")?,
            args: vec!["--repository".into(), repo.display().to_string()],
            env: vec![],
        },
    ])
}

fn child_startup_cmd(bins: &Bins, c: &RealChild) -> Command {
    let mut cmd = Command::new(&bins.driver);
    cmd.arg("--startup-only")
        .arg("--")
        .arg(&c.command)
        .args(&c.args)
        .envs(c.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Each child alone, one after the other: spawn → initialize → tools/list answered, ms.
fn children_alone(bins: &Bins, children: &[RealChild]) -> Result<Vec<f64>> {
    children
        .iter()
        .map(|c| {
            let r = run_json(&mut child_startup_cmd(bins, c))
                .with_context(|| format!("starting {} alone", c.name))?;
            Ok(r["startup_ms"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

/// All children started at the same moment, directly (no gateway): each one's handshake, ms.
fn children_together(bins: &Bins, children: &[RealChild]) -> Result<Vec<f64>> {
    let running: Vec<_> = children
        .iter()
        .map(|c| {
            child_startup_cmd(bins, c)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", c.name))
        })
        .collect::<Result<_>>()?;
    running
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output()?;
            let v: Value = serde_json::from_slice(&out.stdout).context("driver output")?;
            Ok(v["startup_ms"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

fn write_config(path: &Path, servers: Value) -> Result<()> {
    let cfg = json!({ "servers": servers });
    std::fs::write(path, serde_json::to_vec_pretty(&cfg)?)
        .with_context(|| format!("writing {}", path.display()))
}

struct GatewayStart {
    peer: Peer,
    /// Spawn → the first tools/list answer that passed `complete`.
    ready: Duration,
    /// The first tools/list request → its answer (the client's first listing).
    first_list: Duration,
    /// How many tools/list requests that took.
    lists: usize,
    tools: Vec<String>,
}

/// Spawns `mcp-orchestra serve -c cfg`, initializes, and repeats tools/list until `complete`
/// accepts the answer (the gateway holds the first list while children start).
fn start_gateway(
    gateway: &Path,
    cfg: &Path,
    cache: &Path,
    complete: &dyn Fn(&[String]) -> bool,
    timeout: Duration,
) -> Result<GatewayStart> {
    let start = Instant::now();
    let mut peer = Peer::spawn(
        Command::new(gateway)
            .args(["serve", "-c"])
            .arg(cfg)
            .env_remove("RUST_LOG")
            .env("ORCHESTRA_CACHE_DIR", cache)
            .stderr(Stdio::null()),
    )?;
    peer.initialize().context("gateway initialize")?;
    let mut lists = 0;
    let mut first_list = None;
    loop {
        let asked = Instant::now();
        let tools = peer.list_tools(&format!("\"list-{lists}\""))?;
        first_list.get_or_insert(asked.elapsed());
        lists += 1;
        if complete(&tools) {
            return Ok(GatewayStart {
                ready: start.elapsed(),
                first_list: first_list.unwrap_or_default(),
                peer,
                lists,
                tools,
            });
        }
        if start.elapsed() > timeout {
            let _ = peer.close_within(Duration::from_secs(10));
            bail!(
                "the gateway's tool list was still incomplete after {timeout:?} ({} tools)",
                tools.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_all_prefixes(names: &[String], prefixes: &[String]) -> bool {
    prefixes
        .iter()
        .all(|p| names.iter().any(|n| n.starts_with(p.as_str())))
}

struct ColdStart {
    alone: BTreeMap<&'static str, Vec<f64>>,
    slowest_alone: Vec<f64>,
    slowest_together: Vec<f64>,
    cold: Vec<f64>,
    warm: Vec<f64>,
    /// Second start: the first tools/list request → answer (instant start), ms.
    warm_first_list: Vec<f64>,
    rss_kib: Vec<u64>,
    tools: usize,
    warm_lists: Vec<usize>,
}

fn cold_start(suite: &Suite, root: &Path) -> Result<ColdStart> {
    let work = suite.scratch.path().join("real");
    std::fs::create_dir_all(&work)?;
    let children = real_children(root, &work)?;
    let mut servers = serde_json::Map::new();
    for c in &children {
        servers.insert(
            c.name.into(),
            json!({
                "command": c.command,
                "args": c.args,
                "env": c.env.iter().cloned().collect::<BTreeMap<_, _>>(),
            }),
        );
    }
    let cfg = work.join("five.json");
    write_config(&cfg, Value::Object(servers))?;
    let prefixes: Vec<String> = children.iter().map(|c| format!("{}__", c.name)).collect();
    let complete = |names: &[String]| has_all_prefixes(names, &prefixes);
    let timeout = Duration::from_secs(60);

    eprintln!("bench: cold start: warming the OS caches (one untimed round)");
    children_alone(&suite.bins, &children)?;
    {
        let cache = ScratchDir::new("cache")?;
        let g = start_gateway(&suite.bins.gateway, &cfg, cache.path(), &complete, timeout)?;
        g.peer.close_within(Duration::from_secs(15))?;
    }

    let mut r = ColdStart {
        alone: BTreeMap::new(),
        slowest_alone: vec![],
        slowest_together: vec![],
        cold: vec![],
        warm: vec![],
        warm_first_list: vec![],
        rss_kib: vec![],
        tools: 0,
        warm_lists: vec![],
    };
    for rep in 0..suite.plan.cold_reps {
        eprintln!(
            "bench: cold start round {}/{}",
            rep + 1,
            suite.plan.cold_reps
        );
        let alone = children_alone(&suite.bins, &children)?;
        for (c, ms) in children.iter().zip(&alone) {
            r.alone.entry(c.name).or_default().push(*ms);
        }
        r.slowest_alone
            .push(alone.iter().copied().fold(f64::NAN, f64::max));
        let together = children_together(&suite.bins, &children)?;
        r.slowest_together
            .push(together.iter().copied().fold(f64::NAN, f64::max));

        let cache = ScratchDir::new("cache")?;
        let g = start_gateway(&suite.bins.gateway, &cfg, cache.path(), &complete, timeout)?;
        r.cold.push(g.ready.as_secs_f64() * 1e3);
        r.tools = g.tools.len();
        r.rss_kib.push(peak_rss_kib(g.peer.pid())?);
        g.peer.close_within(Duration::from_secs(15))?;

        let g = start_gateway(&suite.bins.gateway, &cfg, cache.path(), &complete, timeout)?;
        r.warm.push(g.ready.as_secs_f64() * 1e3);
        r.warm_first_list.push(g.first_list.as_secs_f64() * 1e3);
        r.warm_lists.push(g.lists);
        g.peer.close_within(Duration::from_secs(15))?;
    }
    Ok(r)
}

// ----- large catalog -----

struct Catalog {
    servers: usize,
    tools_per_server: usize,
    total_tools: usize,
    gateway_ms: Vec<f64>,
    direct_ms: Vec<f64>,
    rss_kib: u64,
    ready_ms: f64,
}

/// Times `n` complete `tools/list` walks (every page, see [`list_walk`]); each must list at
/// least `expect` tools.
fn timed_lists(peer: &mut Peer, n: usize, expect: usize, tag: &str) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (spent, listed, _) = list_walk(peer, LIST_TOOLS, &format!("{tag}-{i}"))?;
        if listed < expect {
            bail!("tools/list returned {listed} tools, expected {expect}");
        }
        out.push(spent.as_secs_f64() * 1e3);
    }
    Ok(out)
}

fn large_catalog(suite: &Suite) -> Result<Catalog> {
    let (n, per) = (suite.plan.catalog_servers, suite.plan.catalog_tools);
    let mut servers = serde_json::Map::new();
    for i in 0..n {
        servers.insert(
            format!("s{i:02}"),
            json!({"command": suite.bins.echo, "args": ["--tools", per.to_string()]}),
        );
    }
    let cfg = suite.scratch.path().join("catalog.json");
    write_config(&cfg, Value::Object(servers))?;
    let cache = ScratchDir::new("catalog-cache")?;
    let prefixes: Vec<String> = (0..n).map(|i| format!("s{i:02}__")).collect();
    let complete = |names: &[String]| {
        names
            .iter()
            .filter(|t| prefixes.iter().any(|p| t.starts_with(p.as_str())))
            .count()
            >= n * per
    };
    eprintln!("bench: large catalog: {n} children x {per} tools");
    let mut g = start_gateway(
        &suite.bins.gateway,
        &cfg,
        cache.path(),
        &complete,
        Duration::from_secs(60),
    )?;
    let total = g.tools.len();
    let gateway_ms = timed_lists(&mut g.peer, suite.plan.catalog_requests, n * per, "big")?;
    let rss_kib = peak_rss_kib(g.peer.pid())?;
    g.peer.close_within(Duration::from_secs(15))?;

    // Reference: the same number of tools from one bench-echo, directly.
    let mut echo = Peer::spawn(
        Command::new(&suite.bins.echo)
            .arg("--tools")
            .arg((n * per).to_string())
            .stderr(Stdio::inherit()),
    )?;
    echo.initialize()?;
    let direct_ms = timed_lists(&mut echo, suite.plan.catalog_requests, n * per, "direct")?;
    echo.close()?;
    Ok(Catalog {
        servers: n,
        tools_per_server: per,
        total_tools: total,
        gateway_ms,
        direct_ms,
        rss_kib,
        ready_ms: g.ready.as_secs_f64() * 1e3,
    })
}

// ----- resources -----

struct ResourceList {
    servers: usize,
    per_server: usize,
    /// Resources in one full listing through the gateway, and its pages.
    listed: usize,
    pages: usize,
    /// One full listing (every page) through the gateway, per walk.
    gateway_ms: Vec<f64>,
    /// The same number of resources from one bench-echo directly, in pages of
    /// [`DIRECT_PAGE`].
    direct_ms: Vec<f64>,
    direct_pages: usize,
    /// Gateway spawn → a full listing with every child's resources.
    ready_ms: f64,
}

/// The direct reference's page size: the size of the gateway's served pages.
const DIRECT_PAGE: usize = 1000;

/// A list method and the key of its array.
type ListMethod = (&'static str, &'static str);
const LIST_TOOLS: ListMethod = ("tools/list", "tools");
const LIST_RESOURCES: ListMethod = ("resources/list", "resources");

/// One page of a list: how many entries it held and its `nextCursor`.
fn list_page(line: &[u8], (method, key): ListMethod) -> Result<(usize, Option<String>)> {
    let env = Envelope::parse(line)?;
    let result = env.result.ok_or_else(|| {
        anyhow!(
            "{method} failed: {}",
            env.error.map(|e| e.get()).unwrap_or("(no result)")
        )
    })?;
    let page: serde_json::Map<String, Value> =
        serde_json::from_str(result.get()).with_context(|| format!("{method} result"))?;
    let entries = page.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    let next = page
        .get("nextCursor")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((entries, next))
}

/// One full listing, following `nextCursor` to the last page. Returns the time from each
/// page's request written to its whole response line read, summed over the pages (each page
/// is parsed for its cursor after its clock stopped: the client's own parsing is not counted),
/// the entries listed and the pages.
fn list_walk(peer: &mut Peer, list: ListMethod, tag: &str) -> Result<(Duration, usize, usize)> {
    let (method, _) = list;
    let mut spent = Duration::ZERO;
    let (mut listed, mut pages) = (0, 0);
    let mut cursor: Option<String> = None;
    loop {
        let id = format!("\"{tag}-{pages}\"");
        let params = match &cursor {
            Some(c) => format!(r#"{{"cursor":{}}}"#, serde_json::to_string(c)?),
            None => "{}".to_owned(),
        };
        let request = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\",\"params\":{params}}}\n"
        );
        let start = Instant::now();
        peer.send(request.as_bytes())?;
        peer.flush()?;
        let line = loop {
            let line = peer.read_line()?;
            let elapsed = start.elapsed();
            let line = line.to_vec();
            let env = Envelope::parse(&line)?;
            if env.is_response() && env.id.map(|r| r.get()) == Some(id.as_str()) {
                spent += elapsed;
                break line;
            }
        };
        let (n, next) = list_page(&line, list)?;
        listed += n;
        pages += 1;
        match next {
            Some(next) if pages < 100_000 => cursor = Some(next),
            Some(_) => bail!("{method}: still a nextCursor after {pages} pages"),
            None => return Ok((spent, listed, pages)),
        }
    }
}

/// `walks` timed full listings; each must list `expect` resources.
fn timed_walks(
    peer: &mut Peer,
    walks: usize,
    expect: usize,
    tag: &str,
) -> Result<(Vec<f64>, usize)> {
    let mut out = Vec::with_capacity(walks);
    let mut pages = 0;
    for i in 0..walks {
        let (spent, listed, p) = list_walk(peer, LIST_RESOURCES, &format!("{tag}-{i}"))?;
        if listed != expect {
            bail!("resources/list listed {listed} resources, expected {expect}");
        }
        out.push(spent.as_secs_f64() * 1e3);
        pages = p;
    }
    Ok((out, pages))
}

/// 50 echo children with 200 resources each, listed through the gateway page by page; Err
/// (the reason) inside when the gateway does not serve `resources/list`.
fn resource_list(suite: &Suite) -> Result<Result<ResourceList, String>> {
    let plan = &suite.plan;
    let (n, per) = (plan.resource_servers, plan.resources_per_server);
    let mut servers = serde_json::Map::new();
    for i in 0..n {
        servers.insert(
            format!("s{i:02}"),
            json!({"command": suite.bins.echo, "args": [
                "--resources", per.to_string(),
                "--resource-page", plan.resource_child_page.to_string(),
            ]}),
        );
    }
    let cfg = suite.scratch.path().join("resources.json");
    write_config(&cfg, Value::Object(servers))?;
    let cache = ScratchDir::new("resources-cache")?;
    let echoes: Vec<String> = (0..n).map(|i| format!("s{i:02}__echo")).collect();
    let complete = |names: &[String]| echoes.iter().all(|e| names.contains(e));
    eprintln!("bench: resources: {n} children x {per} resources");
    let timeout = Duration::from_secs(60);
    let spawned = Instant::now();
    let mut g = start_gateway(&suite.bins.gateway, &cfg, cache.path(), &complete, timeout)?;
    let probe = g.peer.request("\"probe\"", "resources/list", "{}")?;
    if let Err(e) = list_page(&probe, LIST_RESOURCES) {
        g.peer.close_within(Duration::from_secs(15))?;
        return Ok(Err(format!("{e:#}")));
    }
    // Every child is ready; the gateway may still be listing their resources.
    loop {
        let (_, listed, _) = list_walk(&mut g.peer, LIST_RESOURCES, "ready")?;
        if listed >= n * per {
            break;
        }
        if spawned.elapsed() > timeout {
            g.peer.close_within(Duration::from_secs(15))?;
            bail!(
                "the gateway listed {listed} resources after {timeout:?}, expected {}",
                n * per
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let (gateway_ms, pages) = timed_walks(&mut g.peer, plan.catalog_requests, n * per, "res")?;
    g.peer.close_within(Duration::from_secs(15))?;

    // Reference: the same number of resources from one bench-echo directly, in pages of the
    // size the gateway serves.
    let mut echo = Peer::spawn(
        Command::new(&suite.bins.echo)
            .args(["--resources", &(n * per).to_string()])
            .args(["--resource-page", &DIRECT_PAGE.to_string()])
            .stderr(Stdio::inherit()),
    )?;
    echo.initialize()?;
    let (direct_ms, direct_pages) =
        timed_walks(&mut echo, plan.catalog_requests, n * per, "direct")?;
    echo.close()?;
    Ok(Ok(ResourceList {
        servers: n,
        per_server: per,
        listed: n * per,
        pages,
        gateway_ms,
        direct_ms,
        direct_pages,
        ready_ms,
    }))
}

// ----- machine -----

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpus": cpus,
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "kernel": kernel,
    })
}

/// CPU accounting for "was anything else running?": the machine's busy and total time
/// (`/proc/stat`, steal counted as busy) and our own, children included (`/proc/self/stat`),
/// all in clock ticks.
#[derive(Clone, Copy)]
struct CpuUse {
    total: u64,
    busy: u64,
    ours: u64,
}

impl CpuUse {
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the `(comm)`: state is field 3, utime..cstime are fields 14..17.
        let after = &me[me.rfind(')')? + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ours = f
            .get(11..15)?
            .iter()
            .filter_map(|x| x.parse::<u64>().ok())
            .sum();
        Some(CpuUse {
            total,
            busy: total - idle.min(total),
            ours,
        })
    }

    /// Percent of the whole machine used by something other than this suite between two
    /// snapshots (never below 0: our children's time is counted when they are reaped).
    fn others_percent(a: Option<Self>, b: Option<Self>) -> f64 {
        let (Some(a), Some(b)) = (a, b) else {
            return f64::NAN;
        };
        let total = b.total.saturating_sub(a.total);
        if total == 0 {
            return f64::NAN;
        }
        let others = b
            .busy
            .saturating_sub(a.busy)
            .saturating_sub(b.ours.saturating_sub(a.ours));
        100.0 * others as f64 / total as f64
    }
}

fn git_describe(root: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

// ----- report -----

struct Target {
    name: String,
    value: String,
    limit: String,
    pass: Option<bool>,
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn ratio_or_nan(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

fn fmt_num(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "n/a".into()
    }
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::new(&args);
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("executable has no directory"))?
            .to_path_buf(),
    };
    let bins = Bins::find(&bin_dir)?;
    let root = find_root(&args, &bin_dir);
    let scratch = ScratchDir::new("suite")?;
    let echo_config = scratch.path().join("echo.json");
    write_config(&echo_config, json!({"e": {"command": bins.echo}}))?;
    let read_config = scratch.path().join("read.json");
    write_config(
        &read_config,
        json!({"e": {"command": bins.echo, "args": ["--resources", "1"]}}),
    )?;

    let taskset_ok = !args.no_pin
        && Command::new("taskset")
            .arg("-c")
            .arg(args.pin_cpu.to_string())
            .arg("true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !args.no_pin && !taskset_ok {
        eprintln!("bench: taskset not usable: pinned runs skipped");
    }
    let pins: Vec<Pin> = if taskset_ok {
        vec![Pin::Pinned, Pin::Unpinned]
    } else {
        vec![Pin::Unpinned]
    };

    let mut suite = Suite {
        bins,
        plan,
        scratch,
        echo_config,
        read_config,
        pin_cpu: args.pin_cpu,
        call_errors: 0,
    };
    let machine = machine();
    let started = Instant::now();
    let cpu_start = CpuUse::now();

    let fwd = suite.forwarding(&pins)?;
    let idle = suite.idle_http(IDLE_SESSIONS)?;
    let cold = if args.no_real_children {
        None
    } else {
        Some(cold_start(&suite, &root)?)
    };
    let catalog = large_catalog(&suite)?;
    let resources = resource_list(&suite)?;
    // Reads need the gateway's resources too: skipped with the listing.
    let reads = match &resources {
        Ok(_) => Some(suite.reads(pins[0])?),
        Err(_) => None,
    };

    // ---- assemble ----
    let plan = &suite.plan;
    let mut t = String::new();
    let mut js = json!({
        "machine": machine,
        "others_cpu_percent": CpuUse::others_percent(cpu_start, CpuUse::now()),
        "revision": git_describe(&root),
        "quick": args.quick,
        "settings": {
            "reps": plan.reps,
            "seq_calls": plan.seq_calls, "seq_warmup": plan.seq_warmup,
            "pipe_calls": plan.pipe_calls, "pipe_warmup": plan.pipe_warmup,
            "in_flight": plan.in_flight, "cold_reps": plan.cold_reps,
            "catalog_requests": plan.catalog_requests,
        },
    });
    let m = &js["machine"];
    writeln!(
        t,
        "mcp-orchestra benchmarks: {} CPUs ({}), {}, median of {} interleaved run(s)",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?"),
        js["revision"].as_str().unwrap_or("no git revision"),
        plan.reps
    )?;
    writeln!(
        t,
        "pinned = driver, relay/gateway and echo all on CPU {} (taskset); CPU used by other work during the run: {:.0} % of the machine{}",
        args.pin_cpu,
        js["others_cpu_percent"].as_f64().unwrap_or(f64::NAN),
        if js["others_cpu_percent"].as_f64().unwrap_or(0.0) > 5.0 {
            " (other work was running: expect noise)"
        } else {
            ""
        }
    )?;

    writeln!(
        t,
        "\nSequential tools/call latency, {} calls after {} warm-up (µs; right: CPU µs per call by process)",
        plan.seq_calls, plan.seq_warmup
    )?;
    writeln!(
        t,
        "  {:<9}{:<15}{:>9}{:>9}{:>9}{:>12}   {:>8}{:>8}{:>8}",
        "", "", "p50", "p90", "p99", "added p50", "driver", "middle", "echo"
    )?;
    let mut lat = serde_json::Map::new();
    let mut tput = serde_json::Map::new();
    let mut ratios = serde_json::Map::new();
    let mut added_by_pin = BTreeMap::new();
    let mut tput_by_pin = BTreeMap::new();
    for &pin in &pins {
        let direct_p50 = med(&fwd[&(pin, Kind::Sequential, Mode::Direct)], "p50_us");
        let mut per_mode = serde_json::Map::new();
        for mode in CALL_MODES {
            let runs = &fwd[&(pin, Kind::Sequential, mode)];
            let (p50, p90, p99) = (
                med(runs, "p50_us"),
                med(runs, "p90_us"),
                med(runs, "p99_us"),
            );
            let added = p50 - direct_p50;
            let (cpu, cpu_json) = cpu_cells(runs, mode);
            writeln!(
                t,
                "  {:<9}{:<15}{:>9.1}{:>9.1}{:>9.1}{:>12}   {cpu}",
                pin.key(),
                mode.label(),
                p50,
                p90,
                p99,
                if mode == Mode::Direct {
                    "-".to_owned()
                } else {
                    format!("{added:.1}")
                }
            )?;
            added_by_pin.insert((pin, mode), added);
            per_mode.insert(
                mode.key().into(),
                json!({"p50_us": p50, "p90_us": p90, "p99_us": p99, "added_p50_us": added, "cpu_us_per_call": cpu_json, "runs": runs}),
            );
        }
        lat.insert(pin.key().into(), Value::Object(per_mode));
    }

    writeln!(
        t,
        "\nPipelined throughput, {} in flight, {} calls after {} warm-up (right: CPU µs per call by process)",
        plan.in_flight, plan.pipe_calls, plan.pipe_warmup
    )?;
    writeln!(
        t,
        "  (over HTTP: {} sessions on {} keep-alive connections, one call outstanding on each)",
        plan.in_flight, plan.in_flight
    )?;
    writeln!(
        t,
        "  {:<9}{:<15}{:>12}{:>12}   {:>8}{:>8}{:>8}",
        "", "", "calls/s", "µs/call", "driver", "middle", "echo"
    )?;
    for &pin in &pins {
        let mut per_mode = serde_json::Map::new();
        for mode in CALL_MODES {
            let runs = &fwd[&(pin, Kind::Pipelined, mode)];
            let rate = med(runs, "calls_per_s");
            let (cpu, cpu_json) = cpu_cells(runs, mode);
            writeln!(
                t,
                "  {:<9}{:<15}{:>12}{:>12.2}   {cpu}",
                pin.key(),
                mode.label(),
                thousands(rate),
                1e6 / rate
            )?;
            tput_by_pin.insert((pin, mode), rate);
            per_mode.insert(
                mode.key().into(),
                json!({"calls_per_s": rate, "cpu_us_per_call": cpu_json, "runs": runs}),
            );
        }
        tput.insert(pin.key().into(), Value::Object(per_mode));
    }

    writeln!(t, "\nRatios against the null relay")?;
    writeln!(t, "  {:<46}{:>10}{:>10}", "", "pinned", "unpinned")?;
    let cell = |pin: Pin, f: &dyn Fn(Pin) -> String| {
        if pins.contains(&pin) {
            f(pin)
        } else {
            "-".into()
        }
    };
    let lat_ratio = |pin: Pin| {
        ratio_or_nan(
            added_by_pin[&(pin, Mode::Gateway)],
            added_by_pin[&(pin, Mode::Relay)],
        )
    };
    let tput_ratio =
        |pin: Pin| tput_by_pin[&(pin, Mode::Gateway)] / tput_by_pin[&(pin, Mode::Relay)];
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "gateway added p50 / relay added p50",
        cell(Pin::Pinned, &|p| format!("{}x", fmt_num(lat_ratio(p), 2))),
        cell(Pin::Unpinned, &|p| format!("{}x", fmt_num(lat_ratio(p), 2))),
    )?;
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "gateway throughput / relay throughput",
        cell(Pin::Pinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * tput_ratio(p), 0)
        )),
        cell(Pin::Unpinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * tput_ratio(p), 0)
        )),
    )?;
    for &pin in &pins {
        ratios.insert(
            pin.key().into(),
            json!({
                "gateway_added_over_relay_added": lat_ratio(pin),
                "gateway_throughput_over_relay": tput_ratio(pin),
            }),
        );
    }
    js["latency"] = Value::Object(lat);
    js["throughput"] = Value::Object(tput);
    js["ratios"] = Value::Object(ratios);

    // The HTTP front against the stdio front, same run, same echo child.
    let http_lat_ratio = |pin: Pin| {
        ratio_or_nan(
            added_by_pin[&(pin, Mode::GatewayHttp)],
            added_by_pin[&(pin, Mode::Gateway)],
        )
    };
    let http_tput_ratio =
        |pin: Pin| tput_by_pin[&(pin, Mode::GatewayHttp)] / tput_by_pin[&(pin, Mode::Gateway)];
    // What the gateway adds to a call made over HTTP anyway: against the HTTP floor.
    let over_floor_ratio = |pin: Pin| {
        ratio_or_nan(
            added_by_pin[&(pin, Mode::GatewayHttp)] - added_by_pin[&(pin, Mode::DirectHttp)],
            added_by_pin[&(pin, Mode::Gateway)],
        )
    };
    let floor_tput_ratio =
        |pin: Pin| tput_by_pin[&(pin, Mode::GatewayHttp)] / tput_by_pin[&(pin, Mode::DirectHttp)];
    writeln!(t, "\nThe HTTP front against the stdio front")?;
    writeln!(t, "  {:<46}{:>10}{:>10}", "", "pinned", "unpinned")?;
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "HTTP added p50 / stdio added p50",
        cell(Pin::Pinned, &|p| format!(
            "{}x",
            fmt_num(http_lat_ratio(p), 2)
        )),
        cell(Pin::Unpinned, &|p| format!(
            "{}x",
            fmt_num(http_lat_ratio(p), 2)
        )),
    )?;
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "HTTP throughput / stdio throughput",
        cell(Pin::Pinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * http_tput_ratio(p), 0)
        )),
        cell(Pin::Unpinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * http_tput_ratio(p), 0)
        )),
    )?;
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "(HTTP added - direct HTTP added) / stdio added",
        cell(Pin::Pinned, &|p| format!(
            "{}x",
            fmt_num(over_floor_ratio(p), 2)
        )),
        cell(Pin::Unpinned, &|p| format!(
            "{}x",
            fmt_num(over_floor_ratio(p), 2)
        )),
    )?;
    writeln!(
        t,
        "  {:<46}{:>10}{:>10}",
        "HTTP throughput / direct HTTP throughput",
        cell(Pin::Pinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * floor_tput_ratio(p), 0)
        )),
        cell(Pin::Unpinned, &|p| format!(
            "{} %",
            fmt_num(100.0 * floor_tput_ratio(p), 0)
        )),
    )?;
    let idle_kib = idle
        .iter()
        .filter_map(|r| r["vmhwm_kib"].as_u64())
        .max()
        .unwrap_or(0);
    let idle_before_kib = idle
        .iter()
        .filter_map(|r| r["vmhwm_before_kib"].as_u64())
        .max()
        .unwrap_or(0);
    writeln!(
        t,
        "  {:<46}{:>8.1} MB   (one session: {:.1} MB)",
        format!("peak RSS, {IDLE_SESSIONS} idle sessions + GET streams"),
        mb(idle_kib),
        mb(idle_before_kib)
    )?;
    js["http"] = json!({
        "added_over_stdio_added": pins.iter().map(|&p| (p.key(), http_lat_ratio(p))).collect::<BTreeMap<_, _>>(),
        "throughput_over_stdio": pins.iter().map(|&p| (p.key(), http_tput_ratio(p))).collect::<BTreeMap<_, _>>(),
        "added_over_floor_over_stdio_added": pins.iter().map(|&p| (p.key(), over_floor_ratio(p))).collect::<BTreeMap<_, _>>(),
        "throughput_over_direct_http": pins.iter().map(|&p| (p.key(), floor_tput_ratio(p))).collect::<BTreeMap<_, _>>(),
        "idle_sessions": IDLE_SESSIONS,
        "idle_vmhwm_kib": idle_kib,
        "one_session_vmhwm_kib": idle_before_kib,
        "idle_runs": idle,
    });

    let headline = pins[0];
    let mut targets = vec![
        Target {
            name: format!(
                "added latency p50 <= 2x the null relay's ({})",
                headline.key()
            ),
            value: format!("{}x", fmt_num(lat_ratio(headline), 2)),
            limit: "2x".into(),
            pass: Some(lat_ratio(headline) <= 2.0),
        },
        Target {
            name: format!(
                "pipelined throughput >= 50 % of the null relay's ({})",
                headline.key()
            ),
            value: format!("{} %", fmt_num(100.0 * tput_ratio(headline), 0)),
            limit: "50 %".into(),
            pass: Some(tput_ratio(headline) >= 0.5),
        },
        Target {
            name: format!(
                "HTTP front added p50 <= 2x the stdio front's ({})",
                headline.key()
            ),
            value: format!("{}x", fmt_num(http_lat_ratio(headline), 2)),
            limit: "2x".into(),
            pass: Some(http_lat_ratio(headline) <= 2.0),
        },
        Target {
            name: format!("gateway RSS <= 20 MB with {IDLE_SESSIONS} idle HTTP sessions"),
            value: format!("{:.1} MB", mb(idle_kib)),
            limit: "20 MB".into(),
            pass: Some(idle_kib > 0 && mb(idle_kib) <= 20.0),
        },
    ];

    if let Some(c) = &cold {
        let slowest = median(&c.slowest_alone);
        let together = median(&c.slowest_together);
        let cold_ms = median(&c.cold);
        let warm_ms = median(&c.warm);
        let rss = c.rss_kib.iter().copied().max().unwrap_or(0);
        writeln!(
            t,
            "\nCold start, 5 real children, spawn -> tools/list answered (ms, median of {})",
            c.cold.len()
        )?;
        let alone: Vec<String> = c
            .alone
            .iter()
            .map(|(k, v)| format!("{k} {:.0}", median(v)))
            .collect();
        writeln!(t, "  each child alone, directly: {}", alone.join(", "))?;
        writeln!(t, "  {:<58}{:>8.0}", "slowest child alone", slowest)?;
        writeln!(
            t,
            "  {:<58}{:>8.0}",
            "slowest child when all 5 start at once, directly", together
        )?;
        writeln!(
            t,
            "  {:<58}{:>8.0}   ({:+.0} vs slowest alone, {:+.0} vs all at once)",
            "mcp-orchestra, empty cache: full merged list",
            cold_ms,
            cold_ms - slowest,
            cold_ms - together
        )?;
        writeln!(
            t,
            "  {:<58}{:>8.0}",
            "mcp-orchestra, second start, same cache: full list", warm_ms
        )?;
        writeln!(
            t,
            "  {:<58}{:>8.1}",
            "  of which the first tools/list request -> answer",
            median(&c.warm_first_list)
        )?;
        writeln!(
            t,
            "\nGateway peak RSS (VmHWM, children excluded), 5 real children: {:.1} MB ({} tools)",
            mb(rss),
            c.tools
        )?;
        js["cold_start"] = json!({
            "children_alone_ms": c.alone,
            "slowest_alone_ms": slowest,
            "slowest_alone_runs": c.slowest_alone,
            "slowest_together_ms": together,
            "slowest_together_runs": c.slowest_together,
            "gateway_cold_ms": cold_ms,
            "gateway_cold_runs": c.cold,
            "gateway_warm_ms": warm_ms,
            "gateway_warm_first_list_ms": median(&c.warm_first_list),
            "gateway_warm_runs": c.warm,
            "warm_lists_needed": c.warm_lists,
            "tools": c.tools,
        });
        js["rss"] = json!({"five_children_vmhwm_kib": rss, "runs_kib": c.rss_kib});
        targets.push(Target {
            name: "cold start <= slowest child's own start + 50 ms".into(),
            value: format!("{:+.0} ms", cold_ms - slowest),
            limit: "+50 ms".into(),
            pass: Some(cold_ms <= slowest + 50.0),
        });
        targets.push(Target {
            name: "  same, against the 5 children started at once (same contention)".into(),
            value: format!("{:+.0} ms", cold_ms - together),
            limit: "+50 ms".into(),
            pass: Some(cold_ms <= together + 50.0),
        });
        let first_list = median(&c.warm_first_list);
        targets.push(Target {
            name: "instant start: first tools/list answered <= 20 ms (cached)".into(),
            value: format!("{first_list:.1} ms"),
            limit: "20 ms".into(),
            pass: Some(first_list <= 20.0),
        });
        targets.push(Target {
            name: "gateway RSS <= 15 MB with 5 children".into(),
            value: format!("{:.1} MB", mb(rss)),
            limit: "15 MB".into(),
            pass: Some(mb(rss) <= 15.0),
        });
    } else {
        for name in [
            "cold start <= slowest child's own start + 50 ms",
            "gateway RSS <= 15 MB with 5 children",
        ] {
            targets.push(Target {
                name: name.into(),
                value: "skipped".into(),
                limit: String::new(),
                pass: None,
            });
        }
    }

    let mut sorted = catalog.gateway_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let cat_median = median(&catalog.gateway_ms);
    let cat_max = sorted.last().copied().unwrap_or(f64::NAN);
    let direct_median = median(&catalog.direct_ms);
    writeln!(
        t,
        "\nLarge catalog: {} children x {} tools ({} tools listed), {} full tools/list walks following nextCursor",
        catalog.servers,
        catalog.tools_per_server,
        catalog.total_tools,
        catalog.gateway_ms.len()
    )?;
    writeln!(
        t,
        "  {:<58}{:>8.2} ms (max {:.2})",
        "mcp-orchestra: every page, request -> response read, summed", cat_median, cat_max
    )?;
    writeln!(
        t,
        "  {:<58}{:>8.2} ms",
        "same number of tools from one bench-echo, directly", direct_median
    )?;
    writeln!(
        t,
        "  {:<58}{:>8.0} ms",
        "gateway spawn -> full list (50 bench-echo children)", catalog.ready_ms
    )?;
    writeln!(
        t,
        "  {:<58}{:>8.1} MB",
        "gateway peak RSS with 50 children",
        mb(catalog.rss_kib)
    )?;
    js["catalog"] = json!({
        "servers": catalog.servers,
        "tools_per_server": catalog.tools_per_server,
        "tools_listed": catalog.total_tools,
        "gateway_list_ms_median": cat_median,
        "gateway_list_ms_max": cat_max,
        "gateway_list_ms_runs": catalog.gateway_ms,
        "direct_list_ms_median": direct_median,
        "direct_list_ms_runs": catalog.direct_ms,
        "gateway_ready_ms": catalog.ready_ms,
        "gateway_vmhwm_kib": catalog.rss_kib,
    });
    targets.push(Target {
        name: format!(
            "tools/list of {} tools <= 5 ms (median)",
            catalog.servers * catalog.tools_per_server
        ),
        value: format!("{cat_median:.2} ms"),
        limit: "5 ms".into(),
        pass: Some(cat_median <= 5.0),
    });

    let list_target = format!(
        "resources/list of {} resources <= 5 ms (median)",
        plan.resource_servers * plan.resources_per_server
    );
    match &resources {
        Ok(r) => {
            let mut sorted = r.gateway_ms.clone();
            sorted.sort_by(f64::total_cmp);
            let res_median = median(&r.gateway_ms);
            let res_max = sorted.last().copied().unwrap_or(f64::NAN);
            let direct = median(&r.direct_ms);
            writeln!(
                t,
                "\nResources: {} children x {} resources ({} listed in {} pages), {} full resources/list walks following nextCursor",
                r.servers,
                r.per_server,
                r.listed,
                r.pages,
                r.gateway_ms.len()
            )?;
            writeln!(
                t,
                "  {:<58}{:>8.2} ms (max {:.2})",
                "mcp-orchestra: every page, request -> response read, summed", res_median, res_max
            )?;
            writeln!(
                t,
                "  {:<58}{:>8.2} ms",
                format!(
                    "same number from one bench-echo directly ({} pages)",
                    r.direct_pages
                ),
                direct
            )?;
            writeln!(
                t,
                "  {:<58}{:>8.0} ms",
                "gateway spawn -> every resource listed (50 children)", r.ready_ms
            )?;
            js["resources"] = json!({
                "servers": r.servers,
                "resources_per_server": r.per_server,
                "child_page": plan.resource_child_page,
                "listed": r.listed,
                "pages": r.pages,
                "gateway_list_ms_median": res_median,
                "gateway_list_ms_max": res_max,
                "gateway_list_ms_runs": r.gateway_ms,
                "direct_list_ms_median": direct,
                "direct_pages": r.direct_pages,
                "direct_list_ms_runs": r.direct_ms,
                "gateway_ready_ms": r.ready_ms,
            });
            targets.push(Target {
                name: list_target,
                value: format!("{res_median:.2} ms"),
                limit: "5 ms".into(),
                pass: Some(res_median <= 5.0),
            });
        }
        Err(why) => {
            writeln!(
                t,
                "\nResources: skipped (the gateway does not serve resources/list: {why})"
            )?;
            targets.push(Target {
                name: list_target,
                value: "skipped".into(),
                limit: String::new(),
                pass: None,
            });
        }
    }
    if let Some(reads) = &reads {
        let pin = pins[0];
        writeln!(
            t,
            "\nSequential resources/read round trip, {} reads after {} warm-up, {} (µs; right: CPU µs per read by process)",
            plan.seq_calls,
            plan.seq_warmup,
            pin.key()
        )?;
        writeln!(
            t,
            "  {:<15}{:>9}{:>9}{:>9}{:>12}   {:>8}{:>8}{:>8}",
            "", "p50", "p90", "p99", "added p50", "driver", "middle", "echo"
        )?;
        let direct_p50 = med(&reads[&Mode::Direct], "p50_us");
        let mut per_mode = serde_json::Map::new();
        let mut added = BTreeMap::new();
        for mode in MODES {
            let runs = &reads[&mode];
            let (p50, p90, p99) = (
                med(runs, "p50_us"),
                med(runs, "p90_us"),
                med(runs, "p99_us"),
            );
            let (cpu, cpu_json) = cpu_cells(runs, mode);
            added.insert(mode, p50 - direct_p50);
            writeln!(
                t,
                "  {:<15}{:>9.1}{:>9.1}{:>9.1}{:>12}   {cpu}",
                mode.label(),
                p50,
                p90,
                p99,
                if mode == Mode::Direct {
                    "-".to_owned()
                } else {
                    format!("{:.1}", p50 - direct_p50)
                }
            )?;
            per_mode.insert(
                mode.key().into(),
                json!({"p50_us": p50, "p90_us": p90, "p99_us": p99, "added_p50_us": p50 - direct_p50, "cpu_us_per_call": cpu_json, "runs": runs}),
            );
        }
        let ratio = ratio_or_nan(added[&Mode::Gateway], added[&Mode::Relay]);
        writeln!(
            t,
            "  gateway added p50 / relay added p50: {}x",
            fmt_num(ratio, 2)
        )?;
        per_mode.insert("pin".into(), json!(pin.key()));
        per_mode.insert("gateway_added_over_relay_added".into(), json!(ratio));
        js["resources_read"] = Value::Object(per_mode);
    }

    writeln!(t, "\nTargets")?;
    for tg in &targets {
        let verdict = match tg.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        };
        writeln!(t, "  {verdict}  {:<58}{:>10}", tg.name, tg.value)?;
    }
    if suite.call_errors > 0 {
        writeln!(
            t,
            "\nWARNING: {} calls were answered with an error or a wrong id",
            suite.call_errors
        )?;
    }
    writeln!(t, "\n(total time {:.0} s)", started.elapsed().as_secs_f64())?;
    js["targets"] = Value::Array(
        targets
            .iter()
            .map(|tg| json!({"name": tg.name, "value": tg.value, "limit": tg.limit, "pass": tg.pass}))
            .collect(),
    );
    js["call_errors"] = json!(suite.call_errors);

    // The report is this benchmark program's own output (never the gateway's stdout).
    print!("{t}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&js)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    if suite.call_errors > 0 {
        std::process::exit(1);
    }
    if args.strict && targets.iter().any(|tg| tg.pass == Some(false)) {
        std::process::exit(2);
    }
    Ok(())
}
