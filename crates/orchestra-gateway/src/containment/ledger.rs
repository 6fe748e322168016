//! What must die if the gateway dies: the ledger the gateway keeps and streams to its
//! watchdog, one line per change (`+g 123`, `-p 456 789012`, `+c /sys/fs/cgroup/…`). The
//! gateway keeps its own copy so that a replacement watchdog can be told everything at once.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::{cgroup, procfs, procfs::ProcId};

/// One thing to kill.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// A child's process group.
    Group(u32),
    /// A descendant that may have left its group (found by the gateway's scans).
    Proc(ProcId),
    /// A cgroup subtree (the gateway's base: everything its children started).
    Cgroup(PathBuf),
}

/// A change to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add(Entry),
    Remove(Entry),
}

impl Op {
    /// The protocol line, newline included.
    pub fn line(&self) -> String {
        let (sign, entry) = match self {
            Op::Add(e) => ('+', e),
            Op::Remove(e) => ('-', e),
        };
        match entry {
            Entry::Group(g) => format!("{sign}g {g}\n"),
            Entry::Proc(p) => format!("{sign}p {} {}\n", p.pid, p.start),
            Entry::Cgroup(c) => format!("{sign}c {}\n", c.display()),
        }
    }

    pub fn parse(line: &str) -> Option<Op> {
        let mut chars = line.chars();
        let sign = chars.next()?;
        let kind = chars.next()?;
        let rest = chars.as_str().strip_prefix(' ')?;
        let entry = match kind {
            'g' => Entry::Group(rest.parse().ok()?),
            'p' => {
                let (pid, start) = rest.split_once(' ')?;
                Entry::Proc(ProcId {
                    pid: pid.parse().ok()?,
                    start: start.parse().ok()?,
                })
            }
            'c' if rest.starts_with('/') => Entry::Cgroup(PathBuf::from(rest)),
            _ => return None,
        };
        match sign {
            '+' => Some(Op::Add(entry)),
            '-' => Some(Op::Remove(entry)),
            _ => None,
        }
    }
}

/// The current set of things to kill.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    entries: BTreeSet<Entry>,
}

impl Ledger {
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Add(e) => self.entries.insert(e.clone()),
            Op::Remove(e) => self.entries.remove(e),
        };
    }

    /// Every entry as `+` lines, to bring a new watchdog up to date.
    pub fn replay(&self) -> String {
        self.entries
            .iter()
            .map(|e| Op::Add(e.clone()).line())
            .collect()
    }

    /// Kills everything listed: each cgroup subtree, then every process and group and
    /// their descendants (see [`procfs::kill_trees`]); then removes the cgroups.
    pub fn kill_everything(&self) {
        let mut groups = Vec::new();
        let mut procs = Vec::new();
        let mut cgroups = Vec::new();
        for e in &self.entries {
            match e {
                Entry::Group(g) => groups.push(*g),
                Entry::Proc(p) => procs.push(*p),
                Entry::Cgroup(c) => cgroups.push(c),
            }
        }
        for c in &cgroups {
            cgroup::kill(c);
        }
        procfs::kill_trees(&procs, &groups);
        for c in cgroups {
            cgroup::kill_and_remove(c, Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_garbage_is_ignored() {
        let ops = [
            Op::Add(Entry::Group(42)),
            Op::Remove(Entry::Proc(ProcId {
                pid: 7,
                start: 123456,
            })),
            Op::Add(Entry::Cgroup("/sys/fs/cgroup/x/mcp-orchestra.1".into())),
        ];
        for op in ops {
            let line = op.line();
            assert_eq!(Op::parse(line.trim_end()), Some(op), "{line}");
        }
        for bad in ["", "+", "+g", "+g x", "*g 1", "+p 1", "+c relative", "+x 1"] {
            assert_eq!(Op::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn replay_lists_what_is_left() {
        let mut l = Ledger::default();
        l.apply(&Op::Add(Entry::Group(1)));
        l.apply(&Op::Add(Entry::Group(2)));
        l.apply(&Op::Remove(Entry::Group(1)));
        assert_eq!(l.replay(), "+g 2\n");
    }
}
