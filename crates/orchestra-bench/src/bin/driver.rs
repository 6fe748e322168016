//! `bench-driver [OPTIONS] -- COMMAND [ARGS...]`: a JSON-RPC load driver over a child's stdio.
//!
//! Spawns COMMAND (stdin/stdout piped, stderr to /dev/null), sends `initialize`,
//! `notifications/initialized` and `tools/list`, waits for the tools/list answer, then:
//!
//! * `--startup-only`: prints the handshake time (spawn → initialize answered → tools/list
//!   answered) and exits;
//! * `--pipeline 1` (sequential): WARMUP + CALLS `tools/call`s one at a time, each round trip
//!   timed with `Instant`; prints p50/p90/p99 in µs;
//! * `--pipeline K` (K > 1): keeps K calls in flight and prints calls/s over CALLS calls
//!   (after WARMUP answered calls). One thread: after each answer the next request is queued,
//!   and queued requests are written (one `write`) whenever the next read would block, so
//!   exactly K calls are outstanding whenever the driver waits.
//!
//! With `--read URI` the calls are `resources/read {"uri": URI}` instead of `tools/call`s.
//!
//! With `--http`, COMMAND is a gateway serving Streamable HTTP (`... --listen 127.0.0.1:0`);
//! its address is read from its log, and the calls are POSTs on keep-alive connections
//! (`orchestra_bench::http`), each connection its own MCP session: `--pipeline 1` is one
//! session's sequential latency, `--pipeline K` is K sessions on K connections, one thread
//! each, every one with a call outstanding (HTTP/1.1 answers a connection's requests in order,
//! so concurrency over HTTP is connections). `--idle-sessions N` opens N sessions (each
//! initialized, with one tools/list, one call and its GET stream open), leaves them idle on
//! their open connections and prints the gateway's peak RSS. The gateway's stdin stays open and unused (it also
//! serves stdio), and closing it ends the gateway.
//!
//! Requests are pre-built (only the id changes); responses are parsed only as far as their
//! envelope. Every answer must carry a known, not yet answered id and a `result`; anything
//! else counts as an error. The result is one JSON object on stdout.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use orchestra_bench::http::{address_in_log, HttpPeer};
use orchestra_bench::{
    cpu_per_call_us, peak_rss_kib, percentile, tool_page, tree_cpu_ns, CallTemplate, Envelope, Peer,
};
use serde_json::json;

#[derive(Parser)]
#[command(about = "JSON-RPC load driver over a child's stdio")]
struct Args {
    /// Measured calls.
    #[arg(long, default_value_t = 10_000)]
    calls: u64,
    /// Calls in flight: 1 = sequential latency, more = pipelined throughput.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pipeline: u64,
    /// Calls made (and answered) before measuring.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Tool to call.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// Read this resource (`resources/read`) instead of calling a tool.
    #[arg(long, value_name = "URI")]
    read: Option<String>,
    /// Only time the handshake (spawn → initialize → tools/list answered).
    #[arg(long)]
    startup_only: bool,
    /// COMMAND serves Streamable HTTP (with `--listen 127.0.0.1:0`): call it over HTTP.
    #[arg(long)]
    http: bool,
    /// With --http: open this many idle sessions and report the gateway's peak RSS.
    #[arg(long, value_name = "N", requires = "http")]
    idle_sessions: Option<usize>,
    /// The command under test, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Default)]
struct Tally {
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// Checks one response line; returns its numeric id when it is a response.
    fn check(&mut self, line: &[u8]) -> Option<u64> {
        let env = match Envelope::parse(line) {
            Ok(env) => env,
            Err(_) => {
                self.error(|| format!("unparsable line: {}", String::from_utf8_lossy(line)));
                return None;
            }
        };
        if !env.is_response() {
            return None; // a notification (or a request we do not answer)
        }
        let Some(id) = env.id_u64() else {
            self.error(|| format!("unexpected id: {}", String::from_utf8_lossy(line)));
            return None;
        };
        if env.result.is_none() {
            self.error(|| format!("error answer: {}", String::from_utf8_lossy(line)));
        }
        Some(id)
    }
}

/// The request the driver repeats.
fn template(args: &Args) -> CallTemplate {
    match &args.read {
        Some(uri) => CallTemplate::read(uri),
        None => CallTemplate::new(&args.tool),
    }
}

fn sequential(peer: &mut Peer, args: &Args) -> Result<serde_json::Value> {
    let mut template = template(args);
    let mut tally = Tally::default();
    let mut samples: Vec<u64> = Vec::with_capacity(args.calls as usize);
    let total = args.warmup + args.calls;
    let me = std::process::id();
    let mut cpu_before = tree_cpu_ns(me);
    for id in 0..total {
        if id == args.warmup {
            cpu_before = tree_cpu_ns(me);
        }
        let start = Instant::now();
        template.write(&mut peer.writer, id)?;
        peer.flush()?;
        loop {
            let line = peer.read_line()?;
            match tally.check(line) {
                Some(got) if got == id => break,
                Some(got) => tally.error(|| format!("answer for id {got} while waiting for {id}")),
                None => {}
            }
        }
        let elapsed = start.elapsed();
        if id >= args.warmup {
            samples.push(elapsed.as_nanos() as u64);
        }
    }
    let cpu = cpu_per_call_us(&cpu_before, &tree_cpu_ns(me), args.calls);
    samples.sort_unstable();
    let us = |p: f64| percentile(&samples, p) as f64 / 1000.0;
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1000.0;
    Ok(json!({
        "mode": "sequential",
        "calls": args.calls,
        "warmup": args.warmup,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p99_us": us(0.99),
        "min_us": us(0.0),
        "max_us": us(1.0),
        "mean_us": mean,
        "cpu_us_per_call": cpu,
    }))
}

fn pipelined(peer: &mut Peer, args: &Args) -> Result<serde_json::Value> {
    let mut template = template(args);
    let mut tally = Tally::default();
    let total = args.warmup + args.calls;
    let mut answered = vec![false; total as usize];
    let mut next = 0u64;
    let mut received = 0u64;
    let me = std::process::id();
    let mut cpu_before = tree_cpu_ns(me);
    let mut measure_from = Instant::now();
    while next < total.min(args.pipeline) {
        template.write(&mut peer.writer, next)?;
        next += 1;
    }
    peer.flush()?;
    while received < total {
        let line = peer.read_line()?;
        let Some(id) = tally.check(line) else {
            continue;
        };
        match answered.get_mut(id as usize) {
            Some(seen) if !*seen => *seen = true,
            _ => {
                tally.error(|| format!("unknown or repeated id {id}"));
                continue;
            }
        }
        received += 1;
        if received == args.warmup {
            cpu_before = tree_cpu_ns(me);
            measure_from = Instant::now();
        }
        if next < total {
            template.write(&mut peer.writer, next)?;
            next += 1;
        }
        if peer.nothing_buffered() {
            peer.flush()?;
        }
    }
    let elapsed = measure_from.elapsed();
    let cpu = cpu_per_call_us(&cpu_before, &tree_cpu_ns(me), args.calls);
    Ok(json!({
        "mode": "pipelined",
        "calls": args.calls,
        "warmup": args.warmup,
        "in_flight": args.pipeline,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "elapsed_s": elapsed.as_secs_f64(),
        "calls_per_s": args.calls as f64 / elapsed.as_secs_f64(),
        "cpu_us_per_call": cpu,
    }))
}

/// Sequential calls over one HTTP session, each POST → answer timed.
fn http_sequential(peer: &mut HttpPeer, args: &Args) -> Result<serde_json::Value> {
    let mut template = template(args);
    let mut tally = Tally::default();
    let mut samples: Vec<u64> = Vec::with_capacity(args.calls as usize);
    let me = std::process::id();
    let mut cpu_before = tree_cpu_ns(me);
    for id in 0..args.warmup + args.calls {
        if id == args.warmup {
            cpu_before = tree_cpu_ns(me);
        }
        let start = Instant::now();
        let answer = peer.call(&mut template, id)?;
        let elapsed = start.elapsed();
        match tally.check(answer) {
            Some(got) if got == id => {}
            _ => tally.error(|| format!("no answer for id {id}")),
        }
        if id >= args.warmup {
            samples.push(elapsed.as_nanos() as u64);
        }
    }
    let cpu = cpu_per_call_us(&cpu_before, &tree_cpu_ns(me), args.calls);
    samples.sort_unstable();
    let us = |p: f64| percentile(&samples, p) as f64 / 1000.0;
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1000.0;
    Ok(json!({
        "mode": "sequential",
        "transport": "http",
        "calls": args.calls,
        "warmup": args.warmup,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "p50_us": us(0.50),
        "p90_us": us(0.90),
        "p99_us": us(0.99),
        "min_us": us(0.0),
        "max_us": us(1.0),
        "mean_us": mean,
        "cpu_us_per_call": cpu,
    }))
}

/// `args.pipeline` sessions on as many connections, one thread each, calling back to back:
/// calls/s over all of them. Every thread warms up, then all start measuring together.
fn http_pipelined(addr: SocketAddr, args: &Args) -> Result<serde_json::Value> {
    let k = args.pipeline;
    let per_warmup = args.warmup.div_ceil(k);
    let per_calls = args.calls.div_ceil(k);
    // warmed → (main: clock and CPU start) → go → calls → done → (main: clock and CPU end,
    // while the threads still exist: an ended thread's CPU leaves /proc/<pid>/task) → read.
    let barrier = || Arc::new(Barrier::new(k as usize + 1));
    let (warmed, go, done, read) = (barrier(), barrier(), barrier(), barrier());
    let workers: Vec<_> = (0..k)
        .map(|_| {
            let (warmed, go, done, read) = (warmed.clone(), go.clone(), done.clone(), read.clone());
            let mut template = template(args);
            std::thread::spawn(move || -> Result<Tally> {
                let mut tally = Tally::default();
                let mut ready = || -> Result<HttpPeer> {
                    let mut peer = HttpPeer::connect(addr)?;
                    peer.open_session(addr)?;
                    for id in 0..per_warmup {
                        peer.call(&mut template, id)?;
                    }
                    Ok(peer)
                };
                let peer = ready();
                // Every barrier is always reached, so one failed worker cannot hang the others.
                warmed.wait();
                go.wait();
                let measured = || -> Result<()> {
                    let mut peer = peer?;
                    for id in per_warmup..per_warmup + per_calls {
                        match tally.check(peer.call(&mut template, id)?) {
                            Some(got) if got == id => {}
                            _ => tally.error(|| format!("no answer for id {id}")),
                        }
                    }
                    Ok(())
                };
                let outcome = measured();
                done.wait();
                read.wait();
                outcome.map(|()| tally)
            })
        })
        .collect();
    warmed.wait();
    let me = std::process::id();
    let cpu_before = tree_cpu_ns(me);
    let start = Instant::now();
    go.wait();
    done.wait();
    let elapsed = start.elapsed();
    let cpu_after = tree_cpu_ns(me);
    read.wait();
    let mut tally = Tally::default();
    for w in workers {
        let t = w.join().map_err(|_| anyhow!("a worker panicked"))??;
        tally.errors += t.errors;
        if tally.first_error.is_none() {
            tally.first_error = t.first_error;
        }
    }
    let calls = per_calls * k;
    let cpu = cpu_per_call_us(&cpu_before, &cpu_after, calls);
    Ok(json!({
        "mode": "pipelined",
        "transport": "http",
        "calls": calls,
        "warmup": per_warmup * k,
        "in_flight": k,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "elapsed_s": elapsed.as_secs_f64(),
        "calls_per_s": calls as f64 / elapsed.as_secs_f64(),
        "cpu_us_per_call": cpu,
    }))
}

/// `n` sessions (the driver's first one included), each initialized, with one tools/list,
/// one call and its GET stream open (as an SDK client keeps it), then left idle on their open
/// connections; the gateway's peak RSS before and after.
fn http_idle_sessions(
    addr: SocketAddr,
    first: HttpPeer,
    n: usize,
    gateway: u32,
    args: &Args,
) -> Result<serde_json::Value> {
    let before = peak_rss_kib(gateway)?;
    let mut template = template(args);
    let mut streams = vec![first.open_stream(addr)?];
    let mut open = vec![first];
    while open.len() < n {
        let mut peer = HttpPeer::connect(addr)?;
        peer.open_session(addr)?;
        list_tools_http(&mut peer)?;
        peer.call(&mut template, 1)?;
        streams.push(peer.open_stream(addr)?);
        open.push(peer);
    }
    // Let anything the sessions set off settle before reading the peak.
    std::thread::sleep(Duration::from_millis(300));
    let after = peak_rss_kib(gateway)?;
    drop((open, streams));
    Ok(json!({
        "mode": "idle_sessions",
        "transport": "http",
        "sessions": n,
        "vmhwm_before_kib": before,
        "vmhwm_kib": after,
    }))
}

/// Every tool name, following `nextCursor`.
fn list_tools_http(peer: &mut HttpPeer) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let body = json!({"jsonrpc": "2.0", "id": format!("list-{page}"), "method": "tools/list", "params": params});
        let (more, next) = tool_page(peer.request(body.to_string().as_bytes())?)?;
        names.extend(more);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(names)
}

/// The `--http` run: spawn the gateway, find its address, measure over HTTP.
fn http_main(args: &Args) -> Result<serde_json::Value> {
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {program}"))?;
    let stdin = child.stdin.take();
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the log for the address, then keeps draining it so the gateway never blocks.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = address_in_log(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let run = || -> Result<serde_json::Value> {
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .context("the gateway's HTTP address in its log (is --listen given?)")?;
        let mut peer = HttpPeer::connect(addr)?;
        peer.open_session(addr)?;
        let initialized = start.elapsed();
        let tools = list_tools_http(&mut peer).context("tools/list over HTTP")?;
        let listed = start.elapsed();
        if args.read.is_none() && !args.startup_only && !tools.contains(&args.tool) {
            bail!(
                "the target has no tool {:?} (it has {})",
                args.tool,
                tools.len()
            );
        }
        let mut report = if let Some(n) = args.idle_sessions {
            http_idle_sessions(addr, peer, n.max(1), child.id(), args)?
        } else if args.startup_only {
            json!({ "mode": "startup", "transport": "http" })
        } else if args.pipeline == 1 {
            http_sequential(&mut peer, args)?
        } else {
            drop(peer);
            http_pipelined(addr, args)?
        };
        report["initialize_ms"] = json!(initialized.as_secs_f64() * 1e3);
        report["startup_ms"] = json!(listed.as_secs_f64() * 1e3);
        report["tools"] = json!(tools.len());
        Ok(report)
    };
    let report = run();
    // Closing its stdio client's stdin ends the gateway (HTTP sessions and all).
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut report = report?;
    report["exit"] = json!(status.and_then(|s| s.code()));
    Ok(report)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.http {
        let report = http_main(&args)?;
        // The measurement is this load driver's output, read by the suite.
        println!("{report}");
        return Ok(());
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let start = Instant::now();
    let mut peer = Peer::spawn(Command::new(program).args(rest).stderr(Stdio::null()))?;
    peer.initialize()?;
    let initialized = start.elapsed();
    let tools = peer.list_tools(r#""list""#).context("tools/list")?;
    let listed = start.elapsed();
    if !args.startup_only && args.read.is_none() && !tools.contains(&args.tool) {
        bail!(
            "the target has no tool {:?} (it has {})",
            args.tool,
            tools.len()
        );
    }

    let mut report = if args.startup_only {
        json!({ "mode": "startup" })
    } else if args.pipeline == 1 {
        sequential(&mut peer, &args)?
    } else {
        pipelined(&mut peer, &args)?
    };
    report["initialize_ms"] = json!(initialized.as_secs_f64() * 1e3);
    report["startup_ms"] = json!(listed.as_secs_f64() * 1e3);
    report["tools"] = json!(tools.len());
    let status = peer.close_within(Duration::from_secs(10))?;
    report["exit"] = json!(status.and_then(|s| s.code()));
    // The measurement is this load driver's output, read by the suite (never the gateway's stdout).
    println!("{report}");
    Ok(())
}
