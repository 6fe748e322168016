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
//! Requests are pre-built (only the id changes); responses are parsed only as far as their
//! envelope. Every answer must carry a known, not yet answered id and a `result`; anything
//! else counts as an error. The result is one JSON object on stdout.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use orchestra_bench::{cpu_per_call_us, percentile, tree_cpu_ns, CallTemplate, Envelope, Peer};
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

fn main() -> Result<()> {
    let args = Args::parse();
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
