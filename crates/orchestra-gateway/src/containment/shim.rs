//! `mcp-orchestra __spawn <cgroup dir> <program> [args…]`: the first instructions a child
//! runs. It moves itself into its cgroup and only then `exec`s the server, keeping its pid,
//! process group, environment, working directory and stdio. Moving the child from the
//! gateway after spawning instead would leave a window in which it could fork a process
//! that stays outside; a pre-exec hook would close it too but needs `unsafe`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::cgroup;

/// The argument that turns the gateway binary into the spawn shim.
pub const SPAWN_ARG: &str = "__spawn";

/// Exit code when the program cannot be executed (as a shell reports it).
const EXIT_CANNOT_EXEC: i32 = 127;

/// `args` are what follows `__spawn`. Returns only if the program could not be executed.
pub fn run(args: Vec<OsString>) -> i32 {
    let mut args = args.into_iter();
    let (Some(dir), Some(program)) = (args.next(), args.next()) else {
        eprintln!("mcp-orchestra {SPAWN_ARG}: usage: {SPAWN_ARG} <cgroup dir> <program> [args…]");
        return 2;
    };
    if let Err(e) = cgroup::enter(Path::new(&dir), std::process::id()) {
        // Run uncontained rather than not at all; the gateway's process tracking still
        // covers this child.
        eprintln!(
            "mcp-orchestra: cannot enter cgroup {}: {e}; running uncontained",
            Path::new(&dir).display()
        );
    }
    let e = Command::new(&program).args(args).exec();
    eprintln!(
        "mcp-orchestra: cannot run {}: {e}",
        Path::new(&program).display()
    );
    EXIT_CANNOT_EXEC
}
