//! Containment: nothing a child starts may outlive the child's life or the gateway, even a
//! descendant that leaves the child's process group with `setsid()` and ignores SIGTERM.
//! See `docs/decisions/0003-containment.md`. Three mechanisms, strongest first:
//!
//! - **cgroup v2** ([`cgroup`]): each child life runs in its own cgroup under the gateway's
//!   (entered by the [`shim`] before the server's first instruction); killing the cgroup
//!   kills every descendant, whatever it did with sessions, groups or parents.
//! - **process group**: each child leads its own group (npx → sh → node signalled as one).
//! - **tracking** ([`track`]): the gateway is a child subreaper ([`reaper`]), so orphans stay
//!   in its process tree; every [`TICK`](watchdog) it records each child's descendants
//!   (pid + start time, [`procfs::ProcId`]) by parent links, keeps them after they are
//!   orphaned, and kills them with the child. This is the fallback where cgroups are not
//!   available, and a second net where they are.
//!
//! Everything recorded is also streamed to the watchdog process ([`ledger`]), which kills it
//! all if the gateway dies without stopping its children.

pub mod cgroup;
pub mod group;
pub mod ledger;
pub mod procfs;
pub mod reaper;
pub mod shim;
pub mod watchdog;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use group::{group_exists, signal_group};
use ledger::{Entry, Op};
use procfs::ProcId;
use reaper::Managed;
use watchdog::Shared;

/// Everything one life of one child may have started, and how to kill it.
#[derive(Debug)]
pub struct Contained {
    server: Arc<str>,
    /// The child's pid, which is also its process group id.
    pgid: u32,
    leader: Option<ProcId>,
    /// The child's own cgroup, if it runs in one.
    cgroup: Option<PathBuf>,
    /// Descendants seen by the tracker (kept after they leave the tree by being orphaned).
    tracked: Mutex<BTreeSet<ProcId>>,
    /// Where ledger changes go (None: no watchdog, e.g. library use).
    guard: Option<Arc<Shared>>,
    /// The child's registration with the reaper, held until it has been reaped.
    managed: Mutex<Option<Managed>>,
    released: AtomicBool,
}

impl Contained {
    pub(crate) fn new(
        server: Arc<str>,
        managed: Managed,
        cgroup: Option<PathBuf>,
        guard: Option<Arc<Shared>>,
    ) -> Arc<Self> {
        let pgid = managed.pid();
        let me = Arc::new(Self {
            server,
            pgid,
            leader: ProcId::of(pgid),
            cgroup,
            tracked: Mutex::default(),
            guard,
            managed: Mutex::new(Some(managed)),
            released: AtomicBool::new(false),
        });
        if let Some(g) = &me.guard {
            g.record(&[Op::Add(Entry::Group(pgid))]);
            g.register(&me);
        }
        me
    }

    pub fn pgid(&self) -> u32 {
        self.pgid
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The child's own cgroup, if it runs in one.
    pub fn cgroup(&self) -> Option<&std::path::Path> {
        self.cgroup.as_deref()
    }

    /// Sends `signal` to the group and to every other process known to be the child's.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.pgid, signal);
        for p in self.tracked_now() {
            p.signal(signal);
        }
        if let Some(dir) = &self.cgroup {
            for pid in cgroup::members(dir) {
                if let Some(p) = ProcId::of(pid) {
                    p.signal(signal);
                }
            }
        }
    }

    /// SIGKILLs everything the child started: its cgroup, its group, the descendants
    /// tracked or reachable by parent links from it or from them (see
    /// [`procfs::kill_trees`]), then reaps what was orphaned to us. Blocks for the few
    /// milliseconds a /proc scan takes.
    pub fn kill_all(&self) {
        if let Some(dir) = &self.cgroup {
            cgroup::kill(dir);
        }
        let mut roots = self.tracked_now();
        roots.extend(self.leader);
        let killed = procfs::kill_trees(&roots, &[self.pgid]);
        if killed > 0 {
            tracing::debug!(server = %self.server, pgid = self.pgid, killed, "killed the child's processes");
        }
        reaper::reap_adopted();
    }

    /// Whether nothing of the child is left alive (zombies aside).
    pub fn is_empty(&self) -> bool {
        reaper::reap_adopted();
        !group_exists(self.pgid)
            && self.cgroup.as_deref().is_none_or(|d| !cgroup::populated(d))
            && self.tracked_now().is_empty()
    }

    /// The child is gone and reaped: forget it (a recycled id is never killed later) and
    /// remove its cgroup.
    pub async fn release(&self) {
        if let Some(dir) = &self.cgroup {
            let until = Instant::now() + Duration::from_millis(500);
            while cgroup::populated(dir) && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Err(e) = cgroup::remove(dir) {
                tracing::warn!(server = %self.server, cgroup = %dir.display(), error = %e, "cannot remove the child's cgroup");
            }
        }
        self.forget();
    }

    fn forget(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut ops = vec![Op::Remove(Entry::Group(self.pgid))];
        let tracked = std::mem::take(&mut *self.tracked.lock().unwrap_or_else(|p| p.into_inner()));
        ops.extend(tracked.into_iter().map(|p| Op::Remove(Entry::Proc(p))));
        if let Some(g) = &self.guard {
            g.record(&ops);
        }
        self.managed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Tracked descendants still alive.
    fn tracked_now(&self) -> Vec<ProcId> {
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|p| p.is_alive())
            .copied()
            .collect()
    }
}

impl Drop for Contained {
    /// A life dropped without [`Contained::release`] (an early error, a panic): kill what
    /// it left rather than let it run on.
    fn drop(&mut self) {
        if !self.released.load(Ordering::Acquire) {
            self.kill_all();
            if let Some(dir) = &self.cgroup {
                cgroup::kill_and_remove(dir, Duration::from_millis(200));
            }
            self.forget();
        }
    }
}

/// One tracking pass over the live children: each child's set gains the descendants now
/// reachable from it (by parent links from the child, from what it already tracks, and from
/// orphans adopted by the gateway that it tracked before or that are still in its process
/// group) and loses the dead. Adopted orphans no child can claim are `strays`, killed when
/// the gateway stops. Returns the ledger changes.
pub(crate) fn track(children: &[Arc<Contained>], strays: &mut BTreeSet<ProcId>) -> Vec<Op> {
    let mut ops = Vec::new();
    let adopted: Vec<(ProcId, procfs::Stat)> = reaper::adopted()
        .into_iter()
        .filter_map(|pid| {
            let s = procfs::stat(pid)?;
            (!s.is_dead()).then_some((
                ProcId {
                    pid,
                    start: s.start,
                },
                s,
            ))
        })
        .collect();
    let mut claimed = BTreeSet::new();
    for child in children {
        if child.released.load(Ordering::Acquire) {
            continue;
        }
        let mut set = child.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let mut now = BTreeSet::new();
        if let Some(leader) = child.leader.filter(ProcId::is_alive) {
            now.extend(procfs::descendants(leader.pid));
        }
        for (orphan, stat) in &adopted {
            if set.contains(orphan) || stat.pgrp == child.pgid {
                claimed.insert(*orphan);
                now.insert(*orphan);
                now.extend(procfs::descendants(orphan.pid));
            }
        }
        let old: Vec<ProcId> = set.iter().copied().collect();
        for p in old {
            if !p.is_alive() {
                set.remove(&p);
                ops.push(Op::Remove(Entry::Proc(p)));
            } else if !now.contains(&p) {
                now.extend(procfs::descendants(p.pid));
            }
        }
        for p in now {
            if set.insert(p) {
                tracing::debug!(server = %child.server, pid = p.pid, "tracking descendant {}", p.pid);
                ops.push(Op::Add(Entry::Proc(p)));
            }
        }
    }
    let old: Vec<ProcId> = strays.iter().copied().collect();
    for p in old {
        if !p.is_alive() {
            strays.remove(&p);
            ops.push(Op::Remove(Entry::Proc(p)));
        }
    }
    for (orphan, _) in adopted.iter().filter(|(o, _)| !claimed.contains(o)) {
        for p in std::iter::once(*orphan).chain(procfs::descendants(orphan.pid)) {
            if strays.insert(p) {
                tracing::debug!(pid = p.pid, "tracking an orphan no child claims");
                ops.push(Op::Add(Entry::Proc(p)));
            }
        }
    }
    ops
}
