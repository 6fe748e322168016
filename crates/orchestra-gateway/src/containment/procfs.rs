//! Processes as `/proc` shows them: identity that survives pid reuse, parent links, and
//! killing whole trees without letting them fork away.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A process, identified so that a recycled pid is never mistaken for it: the pid and its
/// start time (clock ticks after boot, `/proc/<pid>/stat` field 22), which no later process
/// with the same pid can share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcId {
    pub pid: u32,
    pub start: u64,
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub start: u64,
}

impl Stat {
    /// Exited (a zombie, or being torn down): it can no longer run or fork.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses a `stat` line. The command name is in parentheses and may itself contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let mut rest = line.rsplit_once(')')?.1.split_whitespace();
    // Fields 3.. : state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    let start = rest.nth(16)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        start,
    })
}

pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

impl ProcId {
    /// The process that currently has `pid`, if any (zombies included).
    pub fn of(pid: u32) -> Option<Self> {
        stat(pid).map(|s| ProcId {
            pid,
            start: s.start,
        })
    }

    /// Still this very process, and not yet exited.
    pub fn is_alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && !s.is_dead())
    }

    /// Signals it if it is still this process. (A pid could in theory be recycled between the
    /// check and the signal; pidfds would close that window but need `unsafe` here.)
    pub fn signal(&self, signal: Signal) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start) && send(self.pid, signal)
    }
}

fn send(pid: u32, signal: Signal) -> bool {
    // Never ourselves: every caller deals with other processes only.
    if pid == std::process::id() {
        return false;
    }
    i32::try_from(pid).is_ok_and(|p| p > 0 && kill(Pid::from_raw(p), signal).is_ok())
}

fn send_group(pgid: u32, signal: Signal) -> bool {
    i32::try_from(pgid).is_ok_and(|p| p > 1 && killpg(Pid::from_raw(p), signal).is_ok())
}

/// Whether the kernel offers `/proc/<pid>/task/<tid>/children` (CONFIG_PROC_CHILDREN).
fn has_children_files() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

/// The direct children of `pid` (of any of its threads), zombies included.
pub fn children(pid: u32) -> Vec<u32> {
    if !has_children_files() {
        return scan()
            .into_iter()
            .filter(|(_, s)| s.ppid == pid)
            .map(|(p, _)| p.pid)
            .collect();
    }
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Every live descendant of `pid` (not `pid` itself), found through parent links.
pub fn descendants(pid: u32) -> Vec<ProcId> {
    let mut found = Vec::new();
    let mut queue = children(pid);
    let mut seen = BTreeSet::new();
    while let Some(p) = queue.pop() {
        if !seen.insert(p) {
            continue;
        }
        let Some(s) = stat(p) else { continue };
        if s.is_dead() {
            continue;
        }
        found.push(ProcId {
            pid: p,
            start: s.start,
        });
        queue.extend(children(p));
    }
    found
}

/// Every process on the system with its `stat`.
pub fn scan() -> Vec<(ProcId, Stat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let s = stat(pid)?;
            Some((
                ProcId {
                    pid,
                    start: s.start,
                },
                s,
            ))
        })
        .collect()
}

/// SIGKILLs the processes `roots`, every member of the process groups `groups`, and every
/// descendant of any of them — including those that left the group with `setsid`/`setpgid`,
/// found through parent links. Each process found is SIGSTOPped first and the system is
/// scanned again, until a scan finds nothing new: a stopped process cannot fork, so a tree
/// cannot grow away from us while we kill it. Returns how many processes were killed.
pub fn kill_trees(roots: &[ProcId], groups: &[u32]) -> usize {
    let me = std::process::id();
    let mut doomed: HashMap<u32, ProcId> = HashMap::new();
    // Bounded: a tree that keeps forking is stopped piecewise, each round stopping more.
    for _ in 0..16 {
        let table = scan();
        let by_pid: HashMap<u32, (ProcId, Stat)> =
            table.iter().map(|(p, s)| (p.pid, (*p, *s))).collect();
        let before = doomed.len();
        for root in roots {
            if by_pid.get(&root.pid).is_some_and(|(p, _)| p == root) {
                doomed.insert(root.pid, *root);
            }
        }
        for (p, s) in &table {
            if groups.contains(&s.pgrp) && p.pid != me {
                doomed.insert(p.pid, *p);
            }
        }
        // Close over parent links until nothing is added.
        loop {
            let added: Vec<ProcId> = table
                .iter()
                .filter(|(p, s)| {
                    p.pid != me
                        && !doomed.contains_key(&p.pid)
                        && doomed.get(&s.ppid).is_some_and(|parent| {
                            by_pid.get(&parent.pid).is_some_and(|(q, _)| q == parent)
                        })
                })
                .map(|(p, _)| *p)
                .collect();
            if added.is_empty() {
                break;
            }
            for p in added {
                doomed.insert(p.pid, p);
            }
        }
        if doomed.len() == before {
            break;
        }
        for g in groups {
            send_group(*g, Signal::SIGSTOP);
        }
        for p in doomed.values() {
            p.signal(Signal::SIGSTOP);
        }
    }
    for g in groups {
        send_group(*g, Signal::SIGKILL);
    }
    doomed
        .values()
        .filter(|p| p.signal(Signal::SIGKILL))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line =
            "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).expect("parsed");
        assert_eq!((s.state, s.ppid, s.pgrp, s.start), ('S', 17, 4242, 987654));
        assert!(!s.is_dead());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn our_own_identity_is_alive_and_a_forged_one_is_not() {
        let me = ProcId::of(std::process::id()).expect("our own stat");
        assert!(me.is_alive());
        let forged = ProcId {
            start: me.start + 1,
            ..me
        };
        assert!(!forged.is_alive());
        // A forged identity is never signalled (and we never signal ourselves).
        assert!(!forged.signal(Signal::SIGCONT));
    }

    #[test]
    fn kill_trees_reaches_a_grandchild_in_another_session() {
        // sh → setsid sleep: the sleep is in its own session and group.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 & wait"])
            .spawn()
            .expect("sh");
        let root = ProcId::of(sh.id()).expect("sh is running");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let grandchild = loop {
            if let Some(g) = descendants(sh.id()).into_iter().next() {
                if stat(g.pid).is_some_and(|s| s.pgrp == g.pid) {
                    break g;
                }
            }
            assert!(std::time::Instant::now() < until, "no setsid grandchild");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(kill_trees(&[root], &[]) >= 2);
        let _ = sh.wait();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while grandchild.is_alive() {
            assert!(std::time::Instant::now() < until, "grandchild survived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
