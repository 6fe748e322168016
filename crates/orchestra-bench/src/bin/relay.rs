//! `bench-relay -- COMMAND [ARGS...]`: the null relay.
//!
//! Spawns COMMAND with piped stdin/stdout (stderr inherited) and copies bytes both ways with
//! plain `read`/`write_all` through a 64 KiB buffer: no parsing, no line splitting. This is
//! the floor any stdio gateway is compared with: one extra process and two extra pipe hops.
//!
//! Our stdin EOF closes the child's stdin; the relay exits (with the child's exit code) once
//! the child's stdout ends.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::Parser;
use orchestra_bench::IO_BUF;

#[derive(Parser)]
#[command(about = "Null relay: copies bytes between our stdio and a child's, parses nothing")]
struct Args {
    /// The command to relay to, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Copies until EOF (or a write error); returns when either side ends.
fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; IO_BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
            return;
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning {program}"))?;
    let child_in = child.stdin.take().expect("piped");
    let child_out = child.stdout.take().expect("piped");

    // stdin → child: on our EOF, dropping `child_in` closes the child's stdin.
    std::thread::spawn(move || pump(std::io::stdin().lock(), child_in));
    // child → stdout, on this thread. `Stdout` is line-buffered: the flush after each chunk
    // makes sure no partial line is held back.
    pump(child_out, std::io::stdout().lock());

    let status = child.wait().context("waiting for the child")?;
    std::process::exit(status.code().unwrap_or(1));
}
