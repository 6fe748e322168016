//! The gateway as a child subreaper: descendants orphaned by a dying parent are reparented to
//! us (not to init), so we can still find them by parent links, kill them, and must reap them.
//!
//! Reaping must not steal the exit status of a process someone else waits for (tokio's
//! `Child` of each server, the watchdog's `std` `Child`): those are *managed*, registered here
//! when spawned (under the same lock the reaper takes, so a fresh child can never be seen as
//! unmanaged), and only the other children — adopted orphans — are reaped, by pid.

use std::collections::BTreeSet;
use std::sync::Mutex;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::procfs;

/// Pids of our direct children whose exit status belongs to their spawner.
static MANAGED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn managed() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    MANAGED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// A managed child's registration; dropping it hands the pid back to the reaper (after its
/// owner has reaped it, or given up on it).
#[derive(Debug)]
pub struct Managed(u32);

impl Managed {
    pub fn pid(&self) -> u32 {
        self.0
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        managed().remove(&self.0);
    }
}

/// Runs `spawn` (which returns the new child and its pid) with the reaper held off, and
/// registers the pid as managed.
pub fn spawn_managed<T>(
    spawn: impl FnOnce() -> std::io::Result<(T, u32)>,
) -> std::io::Result<(T, Managed)> {
    let mut set = managed();
    let (child, pid) = spawn()?;
    set.insert(pid);
    Ok((child, Managed(pid)))
}

/// Our direct children that nobody else waits for: orphans we adopted.
pub fn adopted() -> Vec<u32> {
    let set = managed();
    procfs::children(std::process::id())
        .into_iter()
        .filter(|p| !set.contains(p))
        .collect()
}

/// Reaps every adopted orphan that has exited. Returns how many were reaped.
pub fn reap_adopted() -> usize {
    let set = managed();
    let mut reaped = 0;
    for pid in procfs::children(std::process::id()) {
        if set.contains(&pid) || !procfs::stat(pid).is_some_and(|s| s.is_dead()) {
            continue;
        }
        let Ok(p) = i32::try_from(pid) else { continue };
        match waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => {}
            Ok(status) => {
                tracing::debug!(pid, ?status, "reaped an adopted orphan");
                reaped += 1;
            }
        }
    }
    reaped
}
