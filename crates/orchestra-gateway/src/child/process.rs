//! Starting a child in its own process group, signalling the group, describing exits.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use orchestra_config::Server;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// A started child and its pipes.
pub struct Spawned {
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Why a child could not be started at all.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command not found: \"{0}\" (is it installed and on PATH?)")]
    NotFound(String),
    #[error("command \"{0}\" is not executable (permission denied)")]
    NotExecutable(String),
    #[error("cannot start \"{0}\": {1}")]
    Other(String, std::io::Error),
}

/// Starts `server` with piped stdio in a new process group, so that the whole tree it spawns
/// (npx → node, uvx → python) can be signalled as one.
pub fn spawn(server: &Server) -> Result<Spawned, SpawnError> {
    let mut cmd = Command::new(&server.command);
    cmd.args(&server.args)
        .envs(server.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Last line of defence if a handle is dropped without shutdown; shutdown kills the group.
        .kill_on_drop(true);
    if let Some(cwd) = &server.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpawnError::NotFound(server.command.clone()),
        std::io::ErrorKind::PermissionDenied => SpawnError::NotExecutable(server.command.clone()),
        _ => SpawnError::Other(server.command.clone(), e),
    })?;
    let pid = child.id().ok_or_else(|| {
        SpawnError::Other(
            server.command.clone(),
            std::io::Error::other("exited before its pid was read"),
        )
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(SpawnError::Other(
            server.command.clone(),
            std::io::Error::other("missing stdio pipe"),
        ));
    };
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr,
    })
}

/// Sends `signal` to every process in group `pgid`. False when the group is gone.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    i32::try_from(pgid).is_ok_and(|p| killpg(Pid::from_raw(p), signal).is_ok())
}

/// Whether any process of group `pgid` is still alive (zombies included).
pub fn group_exists(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| killpg(Pid::from_raw(p), None).is_ok())
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(sig) = status.signal() {
        match Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({})", s.as_str()),
            Err(_) => format!("signal {sig}"),
        }
    } else {
        "unknown exit status".into()
    }
}
