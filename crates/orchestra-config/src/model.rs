//! The validated configuration: what the runtime consumes. Constructed only by validation.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::glob::Glob;

/// Names no server may take: the gateway's own namespace.
pub const RESERVED_SERVER_NAMES: &[&str] = &["orchestrator"];

/// A checked server name: `[A-Za-z0-9_-]`, 1..=32 characters, without the separator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerName(Arc<str>);

impl ServerName {
    pub const MAX_LEN: usize = 32;

    /// Checks a name against the rules, given the configured separator.
    pub fn parse(name: &str, separator: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("server name is empty".into());
        }
        if name.len() > Self::MAX_LEN {
            return Err(format!(
                "server name is {} characters long; the limit is {} so that \
                 `<server>{separator}<tool>` fits the 64-character tool-name limit",
                name.len(),
                Self::MAX_LEN
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(format!(
                "server name contains {bad:?}; use letters, digits, '_' and '-'"
            ));
        }
        if name.contains(separator) {
            return Err(format!(
                "server name contains the namespace separator \"{separator}\"; rename it (e.g. \"{}\")",
                name.replace(separator, "-")
            ));
        }
        if RESERVED_SERVER_NAMES.contains(&name) {
            return Err(format!(
                "\"{name}\" is reserved for the gateway's own tools"
            ));
        }
        Ok(Self(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole, valid configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages; relative paths were resolved against its folder).
    pub source: PathBuf,
    pub gateway: Gateway,
    /// Servers in a stable order (sorted by name); the index is the server's id at run time.
    pub servers: Vec<Server>,
    pub domains: Vec<Domain>,
    pub alternatives: Vec<Alternative>,
    pub orchestrator: Orchestrator,
    /// `http:` — the Streamable HTTP front (off unless `listen` is set).
    pub http: Http,
}

/// `orchestrator:` — the Task Orchestrator.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    /// Whether its tools are offered (default: yes).
    pub enabled: bool,
    /// Its database; `None`: the default in the user's data directory (never the client's
    /// working directory). A relative path is relative to the config file.
    pub store: Option<PathBuf>,
    /// Guidance of the user's own, extending or overriding the built-in specialists.
    pub specialists: Vec<Specialist>,
}

impl Default for Orchestrator {
    fn default() -> Self {
        Self {
            enabled: true,
            store: None,
            specialists: Vec::new(),
        }
    }
}

/// One `orchestrator.specialists` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specialist {
    pub name: String,
    pub role: Option<String>,
    /// Areas of expertise (one string or a list in the file).
    pub expertise: Option<Vec<String>>,
    /// The approach, as steps (one string or a list in the file).
    pub approach: Option<Vec<String>>,
    pub guidance: Option<String>,
}

impl Config {
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name.as_str() == name)
    }

    pub fn alternative_for(&self, name: &ServerName) -> Option<&Alternative> {
        self.alternatives.iter().find(|a| &a.server == name)
    }
}

/// Gateway-wide settings.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Between a server's name and its tool's name in exposed names.
    pub separator: String,
    /// Default deadline of one forwarded call.
    pub call_timeout: Duration,
    /// Default deadline for a child to finish its handshake and first listings.
    pub startup_timeout: Duration,
    /// At shutdown, how long a child may take after stdin EOF / SIGTERM before SIGKILL.
    pub shutdown_grace: Duration,
    /// Defaults for every server's `restart:` block.
    pub restart: RestartPolicy,
    /// Defaults for every server's `probe:` block.
    pub probe: ProbePolicy,
    /// Default for every server's `max_message_size`.
    pub max_message_size: usize,
    /// Default for every server's `inherit_env`.
    pub inherit_env: InheritEnv,
}

impl Gateway {
    pub const DEFAULT_SEPARATOR: &'static str = "__";
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
    /// Largest JSON-RPC message accepted from a child, unless configured otherwise.
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
}

impl Default for Gateway {
    fn default() -> Self {
        Self {
            separator: Self::DEFAULT_SEPARATOR.into(),
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            restart: RestartPolicy::default(),
            probe: ProbePolicy::default(),
            max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE,
            inherit_env: InheritEnv::default(),
        }
    }
}

/// One child MCP server (stdio), with per-server settings already resolved against defaults.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: ServerName,
    pub command: String,
    pub args: Vec<String>,
    /// The child's own environment variables, set on top of what it inherits
    /// ([`Server::inherit_env`]). Values may be secrets (`${file:...}`, `${VAR}`).
    pub env: Vec<(String, String)>,
    /// Which of the gateway's environment variables the child receives.
    pub inherit_env: InheritEnv,
    pub cwd: Option<PathBuf>,
    pub call_timeout: Duration,
    pub startup_timeout: Duration,
    pub tools: ToolFilter,
    pub restart: RestartPolicy,
    pub probe: ProbePolicy,
    /// Largest JSON-RPC message (one line) accepted from the child, in bytes.
    pub max_message_size: usize,
    /// Set for a server reached by URL instead of started: then `command` is empty and `args`,
    /// `env`, `cwd` are empty/unset (validation refuses them on a url server), and nothing may
    /// spawn it. Kept beside the process fields rather than in a transport enum so that the
    /// process code reads a `Server` as before.
    pub remote: Option<Remote>,
    /// Whether the client sees this server's entries under its name (`<server><sep><tool>`,
    /// `orchestra://<server>/<uri>`; the default) or under the child's own names and URIs
    /// (`namespace: false`, for a client that must find a server's names as the server
    /// itself gives them). At most one server may opt out, so that two servers can never
    /// offer the same unprefixed name.
    pub namespace: bool,
}

impl Server {
    /// The command line, or the URL of a remote server: what to show a person.
    pub fn target(&self) -> String {
        match &self.remote {
            Some(r) => r.url.clone(),
            None if self.args.is_empty() => self.command.clone(),
            None => format!("{} {}", self.command, self.args.join(" ")),
        }
    }
}

/// A value that must not show up in logs or `Debug` output (tokens, header secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A server reached over HTTP (`url:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `http(s)://host[:port]/path` as written (after `${VAR}` expansion).
    pub url: String,
    /// Extra request headers, in name order. Values may hold secrets (`${file:...}`), hence
    /// [`Secret`].
    pub headers: Vec<(String, Secret)>,
    /// Sent as `Authorization: Bearer …`, read from `bearer_token_env` at load.
    pub bearer_token: Option<Secret>,
    pub transport: RemoteTransport,
}

/// How a remote server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteTransport {
    /// Streamable HTTP (the current spec), falling back to the legacy transport as the spec's
    /// backwards-compatibility section describes.
    #[default]
    StreamableHttp,
    /// The legacy HTTP+SSE transport only (`transport: sse`, or Claude's `"type": "sse"`).
    Sse,
}

/// `http:` — the Streamable HTTP front.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    /// Where to listen; `None`: no HTTP front (the CLI's `--listen` may still set one).
    pub listen: Option<SocketAddr>,
    /// Origins accepted besides the listen address's own, normalised `scheme://host[:port]`
    /// (lowercase, default port dropped).
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted besides the listen address's own, lowercase `host[:port]`.
    pub allowed_hosts: Vec<String>,
    pub max_sessions: u32,
    /// A session unused this long is ended.
    pub idle_timeout: Duration,
    /// Largest request body, in bytes (default: the gateway's `max_message_size`).
    pub max_body: usize,
    /// A request's headers must arrive within this (slowloris: a client trickling header
    /// bytes holds a connection, so it is cut).
    pub header_timeout: Duration,
    /// A request's body must arrive within this, counted from the handler's first read.
    pub body_timeout: Duration,
    /// Serve a non-loopback address without authentication (explicit opt-in).
    pub allow_remote_unauthenticated: bool,
    pub auth: HttpAuth,
}

impl Http {
    pub const DEFAULT_MAX_SESSIONS: u32 = 100;
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_body: Gateway::DEFAULT_MAX_MESSAGE_SIZE,
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            allow_remote_unauthenticated: false,
            auth: HttpAuth::default(),
        }
    }
}

/// `http.auth:` — how HTTP clients prove who they are. Empty: no authentication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpAuth {
    pub bearer_tokens: Vec<BearerToken>,
    pub jwt: Option<Jwt>,
}

impl HttpAuth {
    pub fn is_empty(&self) -> bool {
        self.bearer_tokens.is_empty() && self.jwt.is_none()
    }
}

/// One accepted bearer token: where it came from (for messages) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken {
    pub source: TokenSource,
    pub token: Secret,
}

/// Where a secret is kept: never in the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable's name.
    Env(String),
    /// A file (resolved: relative to the config file, `~/` expanded).
    File(PathBuf),
}

/// `http.auth.jwt:` — JWTs checked against a JWKS.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    pub jwks: JwksSource,
    pub issuer: String,
    /// Accepted `aud` values (one or more).
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` / `nbf`.
    pub leeway: Duration,
}

impl Jwt {
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
}

/// Where the JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    Url(String),
    /// A file (resolved), read at load to check it is a JWKS.
    File(PathBuf),
}

/// Which of the gateway's own environment variables reach a child. Children never get the
/// gateway's whole environment by default: a variable set for the gateway (a token, a cloud
/// credential) would otherwise reach every server, and tools like server-everything's
/// `get-env` would show it to the model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InheritEnv {
    /// Only [`InheritEnv::BASE`] (what the official MCP SDKs' stdio clients pass by default).
    #[default]
    Base,
    /// The base set plus these names.
    Names(Vec<String>),
    /// Everything the gateway has.
    All,
}

impl InheritEnv {
    /// Passed to every child: the official SDKs' default list (PATH, HOME, USER, LOGNAME,
    /// SHELL, TERM) plus locale and temp-dir variables, which programs need to behave.
    pub const BASE: &'static [&'static str] = &[
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "TMPDIR",
        "TMP", "TEMP",
    ];

    /// Whether the gateway's variable `name` is passed to the child.
    pub fn admits(&self, name: &str) -> bool {
        match self {
            InheritEnv::All => true,
            InheritEnv::Names(names) if names.iter().any(|n| n == name) => true,
            // LC_ALL, LC_CTYPE, …: the locale, like LANG.
            _ => Self::BASE.contains(&name) || name.starts_with("LC_"),
        }
    }
}

/// How a child that died is restarted: jittered exponential backoff, a crash-loop breaker,
/// and a slow re-probe once the breaker is open.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial_backoff: Duration,
    /// Ceiling of the delay.
    pub max_backoff: Duration,
    /// Growth of the delay per consecutive failure (≥ 1).
    pub multiplier: f64,
    /// Fraction (0..1) by which each delay is randomly stretched or shrunk, so that children
    /// that died together do not restart together.
    pub jitter: f64,
    /// A child that stayed ready this long starts over at `initial_backoff`.
    pub stable_after: Duration,
    /// More than this many restarts within `within` is a crash loop: the server is marked
    /// failed and calls fail fast.
    pub max_restarts: u32,
    pub within: Duration,
    /// A failed server is tried again after this long.
    pub reprobe_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            stable_after: Duration::from_secs(60),
            max_restarts: 5,
            within: Duration::from_secs(60),
            reprobe_after: Duration::from_secs(300),
        }
    }
}

/// How a live child is checked: an MCP `ping` every `interval`, answered within `timeout`.
/// Consecutive failures make it unhealthy (`unhealthy_after`), then restarted
/// (`restart_after`); one answered ping makes it healthy again.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePolicy {
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub restart_after: u32,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            unhealthy_after: 2,
            restart_after: 4,
        }
    }
}

/// Which of a child's tools are exposed: allowed (all when `allow` is empty) and not denied.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub allow: Vec<Glob>,
    pub deny: Vec<Glob>,
}

impl ToolFilter {
    pub fn admits(&self, tool: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|g| g.matches(tool)))
            && !self.deny.iter().any(|g| g.matches(tool))
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// A row of `domain_boundaries`: which server owns a domain, and who may stand in.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub primary: ServerName,
    pub secondary: Vec<ServerName>,
}

/// A row of `server_alternatives`: where a server's work goes when it is down.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub server: ServerName,
    pub fallback: ServerName,
    pub degraded_capabilities: Vec<String>,
    pub lost_capabilities: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_checked() {
        assert!(ServerName::parse("files", "__").is_ok());
        assert!(ServerName::parse("claude-code", "__").is_ok());
        assert!(ServerName::parse("a__b", "__")
            .unwrap_err()
            .contains("separator"));
        assert!(ServerName::parse("orchestrator", "__")
            .unwrap_err()
            .contains("reserved"));
        assert!(ServerName::parse("a.b", "__").is_err());
        assert!(ServerName::parse("", "__").is_err());
        assert!(ServerName::parse(&"x".repeat(33), "__").is_err());
    }

    #[test]
    fn tool_filter_allow_then_deny() {
        let f = ToolFilter {
            allow: vec![Glob::new("read_*").unwrap(), Glob::new("list_*").unwrap()],
            deny: vec![Glob::new("read_secret").unwrap()],
        };
        assert!(f.admits("read_file"));
        assert!(f.admits("list_directory"));
        assert!(!f.admits("read_secret"));
        assert!(!f.admits("write_file"));
        assert!(ToolFilter::default().admits("anything"));
    }
}
