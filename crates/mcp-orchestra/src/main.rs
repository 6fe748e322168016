//! `mcp-orchestra`: the command line. Parsing, logging and exit codes only; the work is in
//! `orchestra-config` and `orchestra-gateway`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
