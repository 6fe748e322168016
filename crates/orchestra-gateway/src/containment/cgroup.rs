//! cgroup v2 subtrees: one per gateway (`<our cgroup>/mcp-orchestra.<pid>`), one per child
//! life under it. A cgroup holds every descendant whatever it does with sessions, groups or
//! parents, and `cgroup.kill` (Linux ≥ 5.14) kills a whole subtree atomically.
//!
//! Found at run time: the cgroup2 mount from `/proc/self/mountinfo` (pure v2 at
//! /sys/fs/cgroup, or the hybrid layout's /sys/fs/cgroup/unified), our own cgroup from the
//! `0::` line of `/proc/self/cgroup`. Used only if we may create a directory there and move
//! processes (write our own cgroup's `cgroup.procs`, which a move out of it needs).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// The gateway's own subtree.
#[derive(Debug)]
pub struct Base {
    dir: PathBuf,
    next: AtomicU64,
}

impl Base {
    /// Creates `<our cgroup>/mcp-orchestra.<pid>`, or says why cgroups cannot be used.
    pub fn create() -> Result<Self, String> {
        let ours = own_cgroup_dir()?;
        // Moving a process from our cgroup into the new one needs write access to the
        // common ancestor's cgroup.procs: ours. Opening it for writing checks exactly that.
        std::fs::OpenOptions::new()
            .write(true)
            .open(ours.join("cgroup.procs"))
            .map_err(|e| format!("cannot move processes out of {}: {e}", ours.display()))?;
        let dir = ours.join(format!("mcp-orchestra.{}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        Ok(Self {
            dir,
            next: AtomicU64::new(1),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A fresh cgroup for one life of server `name`.
    pub fn child(&self, name: &str) -> io::Result<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{name}.{n}"));
        std::fs::create_dir(&dir)?;
        Ok(dir)
    }
}

/// Our cgroup's directory in the cgroup2 hierarchy.
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 membership (no `0::` line in /proc/self/cgroup)")?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let (root, mount) = cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system mounted")?;
    // The mount may show only a subtree (a container): our path is relative to its root.
    let rel = Path::new(own)
        .strip_prefix(&root)
        .map_err(|_| format!("our cgroup {own} is outside the cgroup2 mount's root {root}"))?;
    let dir = Path::new(&mount).join(rel);
    if !dir.join("cgroup.procs").is_file() {
        return Err(format!("{} is not a cgroup2 directory", dir.display()));
    }
    Ok(dir)
}

/// `(root, mount point)` of the first cgroup2 mount in a mountinfo text.
fn cgroup2_mount(mountinfo: &str) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = before.split_whitespace();
        let root = fields.nth(3)?;
        let mount = fields.next()?;
        Some((unescape(root), unescape(mount)))
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Moves process `pid` (0: the caller) into the cgroup `dir`.
pub fn enter(dir: &Path, pid: u32) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// Whether any live process is in `dir` or below (exited ones do not count).
pub fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|e| e.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

/// Whether process `pid` is in exactly the cgroup `dir` (per its `0::` line).
pub fn contains(dir: &Path, pid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let Some(own) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    dir.ends_with(own.trim_start_matches('/')) && own != "/"
}

/// Kills every process in `dir` and below: `cgroup.kill` where the kernel has it, else
/// freeze the subtree (so nothing forks), SIGKILL every member, thaw.
pub fn kill(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    freeze_and_kill(dir);
}

/// The pre-5.14 way: a frozen cgroup cannot fork, and SIGKILL still reaches frozen tasks.
pub(crate) fn freeze_and_kill(dir: &Path) {
    let frozen = std::fs::write(dir.join("cgroup.freeze"), "1").is_ok();
    if frozen {
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until
            && !std::fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for pid in members(dir) {
        if let Ok(p) = i32::try_from(pid) {
            if pid != std::process::id() {
                let _ = signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
    if frozen {
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
}

/// Every pid in `dir` and its sub-cgroups.
pub fn members(dir: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for sub in subdirs(dir) {
        out.extend(members(&sub));
    }
    out
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes `dir` and its sub-cgroups (each must be empty of live processes).
pub fn remove(dir: &Path) -> io::Result<()> {
    for sub in subdirs(dir) {
        remove(&sub)?;
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Kills everything in `dir`, waits (≤ `limit`) for it to empty, and removes it.
pub fn kill_and_remove(dir: &Path, limit: Duration) {
    kill(dir);
    let until = Instant::now() + limit;
    while populated(dir) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = remove(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_in_pure_and_hybrid_layouts() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(("/".into(), "/sys/fs/cgroup/unified".into()))
        );
        let pure =
            "30 23 0:26 /user.slice /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mount(pure),
            Some(("/user.slice".into(), "/sys/fs/cgroup".into()))
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

    /// With a writable cgroup2 (as root here; skipped where there is none), the freeze
    /// fallback (kernels without `cgroup.kill`) kills a process and its setsid'ed child.
    #[test]
    fn freeze_fallback_kills_every_member() {
        let Ok(base) = Base::create() else {
            eprintln!("no writable cgroup2: skipped");
            return;
        };
        let dir = base.child("unit").expect("child cgroup");
        // sh waits for a line before forking, so the sleep starts inside the cgroup.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "read go; setsid sleep 30 & wait"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        enter(&dir, sh.id()).expect("moved into the cgroup");
        use std::io::Write as _;
        sh.stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("go");
        let until = Instant::now() + Duration::from_secs(5);
        while members(&dir).len() < 2 {
            assert!(Instant::now() < until, "sleep never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        freeze_and_kill(&dir);
        let _ = sh.wait();
        let until = Instant::now() + Duration::from_secs(5);
        while populated(&dir) {
            assert!(Instant::now() < until, "cgroup still populated");
            std::thread::sleep(Duration::from_millis(10));
        }
        remove(base.path()).expect("removed");
    }
}
