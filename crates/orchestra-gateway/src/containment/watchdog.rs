//! The watchdog: a tiny helper process that kills everything the children started if the
//! gateway dies without stopping them (SIGKILL, OOM kill, panic=abort); and, in the gateway,
//! the keeper that feeds it and replaces it if it dies.
//!
//! The gateway streams its [`Ledger`] (process groups, the cgroup subtree, tracked
//! descendants) over a pipe. When that pipe reaches EOF — the kernel closes it however the
//! gateway ends — the watchdog kills every entry still listed and exits. Unlike
//! `PR_SET_PDEATHSIG`, this needs no `unsafe` pre-exec hook, reaches grandchildren, and cannot
//! be fooled by the spawning thread exiting before the gateway does (decision 0002).
//!
//! The keeper thread, every [`TICK`]: reaps adopted orphans, runs one tracking pass
//! ([`containment::track`]), and checks the watchdog is alive; a dead watchdog (its process
//! exited, or a write to it failed) is replaced at once by a new one told the whole ledger.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ledger::{Entry, Ledger, Op};
use super::procfs::{self, ProcId};
use super::reaper::{self, Managed};
use super::{cgroup, Contained};

/// The argument that turns the gateway binary into a watchdog.
pub const WATCHDOG_ARG: &str = "__watchdog";

/// How often the keeper reaps, tracks and checks the watchdog.
pub const TICK: Duration = Duration::from_millis(250);

/// `ORCHESTRA_CGROUPS=off` makes the gateway contain children without cgroups (process
/// groups and tracking only), e.g. where another manager owns the cgroup tree.
pub const CGROUPS_ENV: &str = "ORCHESTRA_CGROUPS";

/// The gateway's side of the watchdog.
pub struct Watchdog {
    shared: Arc<Shared>,
    keeper: Mutex<Option<JoinHandle<()>>>,
}

/// What the gateway, its children's [`Contained`] and the keeper thread share.
#[derive(Debug)]
pub struct Shared {
    exe: PathBuf,
    base: Option<cgroup::Base>,
    helper: Mutex<Helper>,
    children: Mutex<Vec<Weak<Contained>>>,
    /// Adopted orphans no child claims: killed when the gateway stops.
    strays: Mutex<BTreeSet<ProcId>>,
    stopping: AtomicBool,
}

#[derive(Debug)]
struct Helper {
    ledger: Ledger,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    process: Child,
    pipe: Option<ChildStdin>,
    _managed: Managed,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watchdog {
    /// Sets up containment (a cgroup subtree if possible) and starts `exe __watchdog` in its
    /// own process group (so a Ctrl-C aimed at the gateway's group does not take it down
    /// first), and the keeper thread.
    pub fn spawn(exe: &Path) -> std::io::Result<Self> {
        let base = if std::env::var(CGROUPS_ENV).is_ok_and(|v| v == "off") {
            tracing::info!("{CGROUPS_ENV}=off: containing children by process group and tracking");
            None
        } else {
            match cgroup::Base::create() {
                Ok(base) => {
                    tracing::info!(cgroup = %base.path().display(), "containing each child in its own cgroup");
                    Some(base)
                }
                Err(why) => {
                    tracing::info!(%why, "cgroups unavailable: containing children by process group and tracking");
                    None
                }
            }
        };
        let mut ledger = Ledger::default();
        if let Some(b) = &base {
            ledger.apply(&Op::Add(Entry::Cgroup(b.path().to_path_buf())));
        }
        let running = start_helper(exe, &ledger).inspect_err(|_| {
            if let Some(b) = &base {
                let _ = cgroup::remove(b.path());
            }
        })?;
        let shared = Arc::new(Shared {
            exe: exe.to_path_buf(),
            base,
            helper: Mutex::new(Helper {
                ledger,
                running: Some(running),
            }),
            children: Mutex::default(),
            strays: Mutex::default(),
            stopping: AtomicBool::new(false),
        });
        let keeper = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("orchestra-keeper".into())
                .spawn(move || {
                    while !shared.stopping.load(Ordering::Acquire) {
                        std::thread::park_timeout(TICK);
                        if shared.stopping.load(Ordering::Acquire) {
                            break;
                        }
                        shared.tick();
                    }
                })?
        };
        Ok(Self {
            shared,
            keeper: Mutex::new(Some(keeper)),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The current watchdog process's pid.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.helper)
            .running
            .as_ref()
            .map(|r| r.process.id())
    }

    /// Clean exit, after every child was stopped: kill what is left (orphans no child
    /// claimed), remove the cgroup subtree, close the pipe and reap the watchdog.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(keeper) = lock(&self.keeper).take() {
            keeper.thread().unpark();
            let _ = keeper.join();
        }
        let mut roots: Vec<ProcId> = lock(&self.shared.strays).iter().copied().collect();
        roots.extend(reaper::adopted().into_iter().filter_map(ProcId::of));
        if procfs::kill_trees(&roots, &[]) > 0 {
            tracing::info!("killed processes orphaned by children");
        }
        if let Some(base) = &self.shared.base {
            cgroup::kill_and_remove(base.path(), Duration::from_secs(1));
        }
        reaper::reap_adopted();
        let running = lock(&self.shared.helper).running.take();
        if let Some(mut r) = running {
            r.pipe.take();
            let _ = r.process.wait();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(keeper) = lock(&self.keeper).take() {
            keeper.thread().unpark();
        }
    }
}

impl Shared {
    /// The gateway binary, to re-run as spawn shim or watchdog: `/proc/self/exe`, which
    /// still reaches our own binary after a rebuild replaced the file at `exe`.
    pub(crate) fn exe(&self) -> &Path {
        let own = Path::new("/proc/self/exe");
        if own.exists() {
            own
        } else {
            &self.exe
        }
    }

    /// A fresh cgroup for one life of `server`, when children are contained in cgroups.
    pub(crate) fn new_cgroup(&self, server: &str) -> Option<PathBuf> {
        let base = self.base.as_ref()?;
        match base.child(server) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::warn!(server, error = %e, "cannot create the child's cgroup; tracking it instead");
                None
            }
        }
    }

    pub(crate) fn register(&self, child: &Arc<Contained>) {
        let mut children = lock(&self.children);
        children.retain(|c| c.strong_count() > 0);
        children.push(Arc::downgrade(child));
    }

    /// Applies `ops` to the ledger and tells the watchdog; a watchdog that cannot be told is
    /// replaced (and told everything).
    pub(crate) fn record(&self, ops: &[Op]) {
        if ops.is_empty() {
            return;
        }
        let mut helper = lock(&self.helper);
        let mut text = String::new();
        for op in ops {
            helper.ledger.apply(op);
            text.push_str(&op.line());
        }
        let Some(running) = helper.running.as_mut() else {
            return;
        };
        let written = running
            .pipe
            .as_mut()
            .is_some_and(|p| p.write_all(text.as_bytes()).is_ok());
        if !written {
            self.replace(&mut helper, "its pipe is broken");
        }
    }

    fn tick(&self) {
        reaper::reap_adopted();
        {
            let mut helper = lock(&self.helper);
            let exited = helper
                .running
                .as_mut()
                .map(|r| r.process.try_wait().ok().flatten());
            match exited {
                Some(Some(status)) => self.replace(&mut helper, &format!("it exited ({status})")),
                None => self.replace(&mut helper, "none is running"),
                Some(None) => {}
            }
        }
        let children: Vec<Arc<Contained>> = lock(&self.children)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let ops = super::track(&children, &mut lock(&self.strays));
        self.record(&ops);
    }

    fn replace(&self, helper: &mut Helper, why: &str) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if let Some(mut old) = helper.running.take() {
            let _ = old.process.kill();
            let _ = old.process.wait();
        }
        match start_helper(self.exe(), &helper.ledger) {
            Ok(new) => {
                tracing::warn!(
                    why,
                    pid = new.process.id(),
                    "the watchdog died; started a new one"
                );
                helper.running = Some(new);
            }
            Err(e) => {
                tracing::error!(why, error = %e, "the watchdog died and cannot be restarted; will retry");
            }
        }
    }
}

/// Starts a watchdog process and tells it the whole `ledger`.
fn start_helper(exe: &Path, ledger: &Ledger) -> std::io::Result<Running> {
    let (mut process, managed) = reaper::spawn_managed(|| {
        let child = Command::new(exe)
            .arg(WATCHDOG_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let pid = child.id();
        Ok((child, pid))
    })?;
    let mut pipe = process.stdin.take();
    if let Some(p) = pipe.as_mut() {
        p.write_all(ledger.replay().as_bytes())?;
    }
    Ok(Running {
        process,
        pipe,
        _managed: managed,
    })
}

/// The watchdog process itself: keep the ledger until stdin closes, then kill everything
/// still in it.
pub fn run_watchdog() -> i32 {
    let mut ledger = Ledger::default();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(op) = Op::parse(&line) {
            ledger.apply(&op);
        }
    }
    ledger.kill_everything();
    0
}
