//! Process groups: each child runs in its own, signalled as one.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `signal` to every process in group `pgid`. False when the group is gone.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    i32::try_from(pgid).is_ok_and(|p| killpg(Pid::from_raw(p), signal).is_ok())
}

/// Whether any process of group `pgid` is still alive (zombies included).
pub fn group_exists(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| killpg(Pid::from_raw(p), None).is_ok())
}
