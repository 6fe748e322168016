//! `mcp-orchestra`: the command line. Parsing, logging and exit codes, and the wiring of the
//! Task Orchestrator into the gateway; the work is in `orchestra-config`, `orchestra-gateway`
//! and `orchestra-tasks`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
