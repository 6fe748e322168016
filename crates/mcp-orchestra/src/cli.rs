//! Subcommands and exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use orchestra_config::{Config, Format, LoadError};
use orchestra_gateway::catalog_cache::CatalogCache;
use orchestra_gateway::child::State;
use orchestra_gateway::containment::{reaper, shim};
use orchestra_gateway::front::http::{HttpFront, HttpOptions};
use orchestra_gateway::front::{stdio, FrontSink};
use orchestra_gateway::hub::local::LocalResources;
use orchestra_gateway::{health, watchdog, Gateway, StartOptions};
use tokio::signal::unix::{signal, SignalKind};

/// Exit code for an invalid configuration (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "mcp-orchestra",
    version,
    about = "One MCP entry for many MCP servers: namespaced tools, routing, health."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (what a client such as Claude Desktop launches), and over
    /// Streamable HTTP with --listen (or the config's http.listen).
    Serve(ServeArgs),
    /// Validate a configuration and print a summary.
    Check(ConfigArg),
    /// Start the children, print the merged tool catalog, and exit.
    Tools(ConfigArg),
    /// Start the children, print the health report (what orchestrator_health returns), exit.
    Health {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the full structured report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Convert a Claude Desktop / Claude Code `mcpServers` JSON file into our YAML (stdout).
    Import {
        /// The JSON file (e.g. claude_desktop_config.json or .mcp.json).
        file: PathBuf,
    },
    #[command(name = "__watchdog", hide = true)]
    Watchdog,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also serve Streamable HTTP at http://ADDR/mcp (overrides http.listen). Loopback
    /// addresses only, unless --allow-remote-unauthenticated.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Serve HTTP only: ignore stdin and run until SIGTERM/SIGINT. Without it, the process
    /// also serves its stdin/stdout and stops when its stdio client closes stdin.
    #[arg(long)]
    no_stdio: bool,
    /// Serve a non-loopback --listen address without authentication (anyone who reaches it
    /// can use every configured server).
    #[arg(long)]
    allow_remote_unauthenticated: bool,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration file (YAML, or Claude-style JSON). Default: $ORCHESTRA_CONFIG,
    /// ./orchestra.yaml, ./config/orchestra.yaml.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(orchestra_config::default_config_path)
    }
}

pub fn main() -> ExitCode {
    // The spawn shim runs first in every child: before clap (its arguments are the child's
    // command line, not ours) and before tracing (its stderr is the child's).
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == shim::SPAWN_ARG) {
        return ExitCode::from(shim::run(args.collect()) as u8);
    }
    let cli = Cli::parse();
    if let Command::Watchdog = cli.command {
        return ExitCode::from(watchdog::run_watchdog() as u8);
    }
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => {
            with_config(&args.config.path(), |config| run(serve(config, &args)))
        }
        Command::Check(c) => with_config(&c.path(), |config| {
            printed(print_check(&config, &mut std::io::stdout().lock()))
        }),
        Command::Tools(c) => with_config(&c.path(), |config| run(tools(config))),
        Command::Health { config: c, json } => {
            with_config(&c.path(), |config| run(health_cmd(config, json)))
        }
        Command::Import { file } => import(&file),
        Command::Watchdog => unreachable!("handled above"),
    };
    result.unwrap_or_else(|e| {
        tracing::error!("{e:#}");
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // stderr only: in stdio mode stdout carries the MCP stream.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

/// Runs `main` on a fresh runtime. The runtime is then shut down without waiting for its
/// blocking threads: one of them may sit in a read of stdin that never returns (the client
/// has not closed it when we stop on a signal), and must not keep the process alive.
fn run(
    main: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(main);
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

fn with_config(
    path: &Path,
    run: impl FnOnce(Config) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    match orchestra_config::load(path) {
        Ok(config) => {
            withhold_token_variables(&config);
            run(config)
        }
        Err(e @ LoadError::Invalid { .. }) => {
            eprint!("error: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Removes the variables that held the HTTP front's bearer tokens from the gateway's own
/// environment once the configuration has read them: children inherit from it (all of it
/// with `inherit_env: all`), and a client's credential must never reach a child. A server
/// that needs such a value names it in its own `env:`, which was expanded at load. Runs
/// before the runtime and any thread exist, so nothing reads the environment meanwhile.
fn withhold_token_variables(config: &Config) {
    for token in &config.http.auth.bearer_tokens {
        if let orchestra_config::TokenSource::Env(name) = &token.source {
            std::env::remove_var(name);
        }
    }
}

fn start(config: Config, front: FrontSink) -> anyhow::Result<Gateway> {
    let exe =
        std::env::current_exe().context("locating the gateway executable for the watchdog")?;
    // Descendants orphaned by a dying child become ours rather than init's, so that they can
    // still be found and killed (the watchdog's keeper reaps them).
    if let Err(e) = reaper::become_subreaper() {
        tracing::warn!(error = %e, "cannot become a child subreaper; orphaned descendants are tracked only until they are orphaned");
    }
    // The Task Orchestrator: its tools after health, its plans as resources.
    let plans = mcp_orchestra::orchestrator::Lazy::new(&config.orchestrator);
    let (local_tools, local_resources) = if config.orchestrator.enabled {
        let resources: Arc<dyn LocalResources> =
            Arc::new(mcp_orchestra::orchestrator::Plans(plans.clone()));
        (mcp_orchestra::orchestrator::tools(&plans), Some(resources))
    } else {
        (Default::default(), None)
    };
    Gateway::start(
        config,
        front,
        StartOptions {
            watchdog_exe: Some(exe),
            catalog_cache: CatalogCache::from_env(),
            local_tools,
            local_resources,
        },
    )
    .context("starting the watchdog")
}

async fn serve(config: Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // The HTTP front's options, checked before anything starts: an unsafe listen address is
    // refused with a clear message instead of served.
    let http = match args.listen.or(config.http.listen) {
        Some(listen) => {
            let mut opts = HttpOptions::from_config(&config.http, listen);
            opts.allow_remote_unauthenticated |= args.allow_remote_unauthenticated;
            if let Err(e) = opts.check() {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            Some(opts)
        }
        None if args.no_stdio => {
            eprintln!("error: --no-stdio needs an HTTP front: --listen ADDR, or http.listen in the configuration");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
        None => None,
    };
    let stdio_on = !args.no_stdio;
    tracing::info!(config = %config.source.display(), servers = config.servers.len(), stdio = stdio_on, http = ?http.as_ref().map(|h| h.listen), "mcp-orchestra serving");
    let front = if stdio_on {
        FrontSink::stdout().context("setting up stdout")?
    } else {
        FrontSink::discard()
    };
    let gw = start(config, front)?;
    let http = match http {
        Some(opts) => {
            let bound = match HttpFront::bind(&gw, opts.clone()).await {
                Ok(bound) => bound,
                Err(e) => {
                    gw.shutdown().await;
                    return Err(e).with_context(|| format!("listening on {}", opts.listen));
                }
            };
            tracing::info!(url = %format!("http://{}/mcp", bound.local_addr()), "serving Streamable HTTP");
            Some(tokio::spawn(bound.run()))
        }
        None => None,
    };
    let token = gw.shutdown_token();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        token.cancel();
    });
    if stdio_on {
        let ended = stdio::serve(&gw).await;
        tracing::info!(?ended, "front closed; stopping children");
    } else {
        gw.shutdown_token().cancelled().await;
    }
    // Stops the HTTP front too (it watches the same token).
    gw.shutdown_token().cancel();
    gw.shutdown().await;
    if let Some(http) = http {
        if tokio::time::timeout(std::time::Duration::from_secs(2), http)
            .await
            .is_err()
        {
            tracing::warn!("HTTP requests still open at exit");
        }
    }
    if stdio_on {
        stdio::finish(&gw).await;
    }
    tracing::info!("mcp-orchestra stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the children, waits for them to settle, prints with `print`, and always shuts them
/// down again. Exit code: success only if every server is ready.
async fn one_shot(
    config: Config,
    print: impl FnOnce(&Gateway, &mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let gw = start(config, FrontSink::discard())?;
    gw.wait_settled().await;
    let printed = print(&gw, &mut std::io::stdout().lock());
    let all_ready = gw.children().iter().all(|c| c.state() == State::Ready);
    gw.shutdown().await;
    printed?;
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn tools(config: Config) -> anyhow::Result<ExitCode> {
    one_shot(config, |gw, out| {
        let catalog = gw.catalog();
        let width = catalog.keys().map(str::len).max().unwrap_or(4).max(4);
        writeln!(out, "{:width$}  {:12}  DESCRIPTION", "TOOL", "SERVER")?;
        let mut tools = Vec::new();
        for page in catalog.pages() {
            let mut page: serde_json::Value = serde_json::from_str(page)?;
            if let Some(serde_json::Value::Array(more)) =
                page.get_mut("tools").map(serde_json::Value::take)
            {
                tools.extend(more);
            }
        }
        for tool in &tools {
            let name = tool["name"].as_str().unwrap_or("?");
            let server = catalog
                .route(name)
                .map_or("(gateway)", |r| gw.children()[r.server].name());
            let description: String = tool["description"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(70)
                .collect();
            writeln!(out, "{name:width$}  {server:12}  {description}")?;
        }
        for r in catalog.renamed() {
            writeln!(
                out,
                "\nshortened: {} = {}'s \"{}\"",
                r.exposed, r.server, r.tool
            )?;
        }
        writeln!(out)?;
        write!(out, "{}", health::summary(&health::report(gw)))?;
        Ok(())
    })
    .await
}

async fn health_cmd(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    one_shot(config, |gw, out| {
        let report = health::report(gw);
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            write!(out, "{}", health::summary(&report))?;
        }
        Ok(())
    })
    .await
}

/// The `check` summary. Written through `out` so that a closed pipe (`check | head`) is an
/// error to handle, not a panic in `println!`.
fn print_check(config: &Config, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let d = orchestra_config::duration::format;
    writeln!(out, "{}: valid", config.source.display())?;
    writeln!(
        out,
        "gateway: separator \"{}\", call_timeout {}, startup_timeout {}, shutdown_grace {}",
        config.gateway.separator,
        d(config.gateway.call_timeout),
        d(config.gateway.startup_timeout),
        d(config.gateway.shutdown_grace)
    )?;
    writeln!(out, "servers ({}):", config.servers.len())?;
    for s in &config.servers {
        let mut line = format!("  {}: {}", s.name, s.target());
        if s.call_timeout != config.gateway.call_timeout {
            line.push_str(&format!(" [call_timeout {}]", d(s.call_timeout)));
        }
        if !s.tools.is_empty() {
            line.push_str(" [tool filters]");
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    if !config.domains.is_empty() {
        writeln!(out, "domain_boundaries ({}):", config.domains.len())?;
        for dom in &config.domains {
            let secondary: Vec<&str> = dom.secondary.iter().map(|s| s.as_str()).collect();
            if secondary.is_empty() {
                writeln!(out, "  {}: {}", dom.name, dom.primary)?;
            } else {
                writeln!(
                    out,
                    "  {}: {} (secondary: {})",
                    dom.name,
                    dom.primary,
                    secondary.join(", ")
                )?;
            }
        }
    }
    if !config.alternatives.is_empty() {
        writeln!(out, "server_alternatives ({}):", config.alternatives.len())?;
        for a in &config.alternatives {
            writeln!(
                out,
                "  {} -> {} (degraded: [{}], lost: [{}])",
                a.server,
                a.fallback,
                a.degraded_capabilities.join(", "),
                a.lost_capabilities.join(", ")
            )?;
        }
    }
    Ok(())
}

/// A reader that stopped reading our output (`| head`) is not a failure of ours.
fn printed(result: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn import(file: &Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // Keep `${VAR}` references as references: the imported file expands them when it is loaded.
    let keep = |name: &str| Some(format!("${{{name}}}"));
    match orchestra_config::load_from_str(&text, Format::Json, file, &keep) {
        Ok(config) => {
            let yaml = orchestra_config::import::to_yaml(&config);
            printed(std::io::Write::write_all(
                &mut std::io::stdout().lock(),
                yaml.as_bytes(),
            ))
        }
        Err(e) => {
            eprint!("error: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
    }
}
