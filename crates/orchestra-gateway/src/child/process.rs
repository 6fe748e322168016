//! Starting a child: its environment, its own process group, its containment (a cgroup
//! entered through the spawn shim, when available); signalling the group; describing exits.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use nix::sys::signal::Signal;
use orchestra_config::Server;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use crate::containment::watchdog::Watchdog;
use crate::containment::{reaper, shim, Contained};

/// A started child and its pipes.
pub struct Spawned {
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Everything this life of the child may start, and how to kill it.
    pub contained: Arc<Contained>,
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
/// (npx → node, uvx → python) can be signalled as one; with `guard`, also in its own cgroup
/// when the gateway has a cgroup subtree, and registered with the watchdog.
///
/// The environment is only what the config admits: the gateway's variables that
/// `inherit_env` names (by default the base set: PATH, HOME, locale, …), then `env`.
pub fn spawn(server: &Server, guard: Option<&Watchdog>) -> Result<Spawned, SpawnError> {
    let shared = guard.map(|w| w.shared().clone());
    let env = child_env(server);
    let cgroup = shared
        .as_ref()
        .and_then(|s| s.new_cgroup(server.name.as_str()));
    let mut cmd = match (&cgroup, &shared) {
        (Some(dir), Some(s)) => {
            // The shim's exec cannot tell us "not found" the way spawn does: check first, so
            // that a missing command is still `misconfigured`, not a crash loop.
            if let Err(e) = check_runnable(server, &env) {
                let _ = std::fs::remove_dir(dir);
                return Err(e);
            }
            let mut cmd = Command::new(s.exe());
            cmd.arg(shim::SPAWN_ARG).arg(dir).arg(&server.command);
            cmd
        }
        _ => Command::new(&server.command),
    };
    cmd.args(&server.args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Last line of defence if a handle is dropped without shutdown; shutdown kills the group.
        .kill_on_drop(true);
    if let Some(cwd) = &server.cwd {
        cmd.current_dir(cwd);
    }
    let spawned = reaper::spawn_managed(|| {
        let child = cmd.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("exited before its pid was read"))?;
        Ok((child, pid))
    });
    let (mut child, managed) = match spawned {
        Ok(s) => s,
        Err(e) => {
            if let Some(dir) = &cgroup {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound => SpawnError::NotFound(server.command.clone()),
                std::io::ErrorKind::PermissionDenied => {
                    SpawnError::NotExecutable(server.command.clone())
                }
                _ => SpawnError::Other(server.command.clone(), e),
            });
        }
    };
    let pid = managed.pid();
    let name: Arc<str> = Arc::from(server.name.as_str());
    let contained = Contained::new(name, managed, cgroup, shared);
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
        contained,
    })
}

/// The child's whole environment: the gateway's variables its `inherit_env` admits, then its
/// configured `env` (which wins).
fn child_env(server: &Server) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(|k| server.inherit_env.admits(k)))
        .collect();
    for (k, v) in &server.env {
        env.retain(|(old, _)| old.as_os_str() != k.as_str());
        env.push((k.into(), v.into()));
    }
    env
}

/// Whether `server.command` resolves to an executable file the way `execvp` would find it
/// (with the child's PATH, relative paths from its working directory).
fn check_runnable(server: &Server, env: &[(OsString, OsString)]) -> Result<(), SpawnError> {
    let cmd = &server.command;
    let cwd = server.cwd.clone().unwrap_or_default();
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![cwd.join(cmd)]
    } else {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "/usr/local/bin:/bin:/usr/bin".into());
        std::env::split_paths(&path)
            .map(|dir| cwd.join(dir).join(cmd))
            .collect()
    };
    let mut not_executable = false;
    for c in candidates {
        match std::fs::metadata(&c) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(()),
            Ok(_) => not_executable = true,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => not_executable = true,
            Err(_) => {}
        }
    }
    Err(if not_executable {
        SpawnError::NotExecutable(cmd.clone())
    } else {
        SpawnError::NotFound(cmd.clone())
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_config::{load_from_str, Format};

    fn server(entry: &str) -> Server {
        let yaml = format!("servers:\n  s: {entry}\n");
        let config = load_from_str(&yaml, Format::Yaml, std::path::Path::new("t.yaml"), &|_| {
            None
        })
        .unwrap();
        config.servers.into_iter().next().unwrap()
    }

    fn names(env: &[(OsString, OsString)]) -> Vec<&str> {
        env.iter().filter_map(|(k, _)| k.to_str()).collect()
    }

    /// PATH is always in the gateway's environment (the test harness runs under one).
    #[test]
    fn children_get_the_admitted_variables_then_their_own() {
        let base = child_env(&server("{command: x, env: {PATH: /only/here, OWN: v}}"));
        assert!(
            base.contains(&("PATH".into(), "/only/here".into())),
            "env wins"
        );
        assert_eq!(names(&base).iter().filter(|k| **k == "PATH").count(), 1);
        assert!(names(&base).contains(&"OWN"));
        assert!(!names(&base).contains(&"CARGO"), "not admitted: {base:?}");

        let named = child_env(&server("{command: x, inherit_env: [CARGO]}"));
        assert!(names(&named).contains(&"CARGO") && names(&named).contains(&"PATH"));
        let all = child_env(&server("{command: x, inherit_env: all}"));
        assert_eq!(all.len(), std::env::vars_os().count());
    }

    #[test]
    fn runnable_commands_are_found_like_execvp_finds_them() {
        let env = |path: &str| vec![(OsString::from("PATH"), OsString::from(path))];
        let sh = server("{command: sh}");
        assert!(check_runnable(&sh, &env("/nowhere:/bin:/usr/bin")).is_ok());
        assert!(matches!(
            check_runnable(&sh, &env("/nowhere")),
            Err(SpawnError::NotFound(_))
        ));
        assert!(check_runnable(&server("{command: /bin/sh}"), &[]).is_ok());
        let plain = std::env::temp_dir().join(format!("orchestra-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let entry = format!("{{command: \"{}\"}}", plain.display());
        let not_executable = check_runnable(&server(&entry), &[]);
        let _ = std::fs::remove_file(&plain);
        assert!(matches!(not_executable, Err(SpawnError::NotExecutable(_))));
        assert!(matches!(
            check_runnable(&server("{command: /nonexistent/x}"), &[]),
            Err(SpawnError::NotFound(_))
        ));
    }
}
