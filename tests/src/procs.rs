//! Finding a test's processes through /proc: every descendant of the gateway under test
//! inherits its marker variable (the kit admits it in the config's `inherit_env`: see
//! `with_marker_inherited`), whatever process group or parent it ends up with.

use std::time::{Duration, Instant};

use crate::MARKER_VAR;

/// A live process carrying the marker.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub state: char,
    pub cmdline: String,
}

/// Every process (zombies included) whose environment carries `marker`.
pub fn with_marker(marker: &str) -> Vec<Proc> {
    let needle = format!("{MARKER_VAR}={marker}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.trim_start().chars().next())
            })
            .unwrap_or('?');
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        found.push(Proc {
            pid,
            state,
            cmdline,
        });
    }
    found
}

/// Waits until no process carries `marker`; returns the survivors if some remain at `limit`.
pub async fn wait_gone(marker: &str, limit: Duration) -> Result<(), Vec<Proc>> {
    let until = Instant::now() + limit;
    loop {
        let left = with_marker(marker);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Panics, listing them, if processes carrying `marker` outlive `limit`.
pub async fn assert_none_left(marker: &str, limit: Duration) {
    if let Err(left) = wait_gone(marker, limit).await {
        panic!("processes left behind after {limit:?}: {left:#?}");
    }
}

/// Children of `parent` that have exited but were not reaped (zombies). A zombie's environment
/// is gone, so [`with_marker`] cannot see it; its parent pid can.
pub fn zombie_children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // Fields after the parenthesised command: state, ppid, ...
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let (state, ppid) = (rest.next()?, rest.next()?.parse::<u32>().ok()?);
            (state == "Z" && ppid == parent).then_some(pid)
        })
        .collect()
}
