//! The watchdog: a tiny helper process that kills every child process group if the gateway
//! dies without shutting down (SIGKILL, OOM kill, panic=abort).
//!
//! The gateway tells it which process groups are live over a pipe (`+pgid` / `-pgid` lines).
//! When that pipe reaches EOF — the kernel closes it however the gateway ends — the watchdog
//! SIGKILLs the groups still listed and exits. Unlike `PR_SET_PDEATHSIG`, this needs no
//! `unsafe` pre-exec hook, reaches grandchildren (npx → node) through the group, and cannot
//! be fooled by the spawning thread exiting before the gateway does.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::Signal;

use crate::child::process::signal_group;

/// The argument that turns the gateway binary into a watchdog.
pub const WATCHDOG_ARG: &str = "__watchdog";

/// The gateway's end of the watchdog.
pub struct Watchdog {
    pipe: Mutex<Option<ChildStdin>>,
    process: Mutex<Child>,
}

impl Watchdog {
    /// Starts `exe __watchdog` in its own process group (so a Ctrl-C aimed at the gateway's
    /// group does not take it down first).
    pub fn spawn(exe: &Path) -> std::io::Result<Self> {
        let mut process = Command::new(exe)
            .arg(WATCHDOG_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let pipe = process.stdin.take();
        Ok(Self {
            pipe: Mutex::new(pipe),
            process: Mutex::new(process),
        })
    }

    /// Puts process group `pgid` under the watchdog's protection.
    pub fn guard(&self, pgid: u32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// The group is gone (reaped by us): forget it so a recycled id is never killed.
    pub fn release(&self, pgid: u32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// Clean exit: close the pipe and reap the watchdog.
    pub fn stop(&self) {
        self.pipe.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _ = self
            .process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wait();
    }

    fn send(&self, line: &str) {
        if let Some(pipe) = self.pipe.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            if let Err(e) = pipe.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "watchdog pipe write failed; children may outlive a crash");
            }
        }
    }
}

/// The watchdog process itself: track groups until stdin closes, then kill what is left.
pub fn run_watchdog() -> i32 {
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (op, pgid) = line.split_at(line.len().min(1));
        let Ok(pgid) = pgid.parse::<u32>() else {
            continue;
        };
        match op {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    for pgid in groups {
        signal_group(pgid, Signal::SIGKILL);
    }
    0
}
