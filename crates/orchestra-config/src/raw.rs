//! What the user wrote: strict serde types, one per config section entry.
//!
//! Durations and names stay strings here; [`crate::validate`] turns them into model types so
//! that every problem can be reported at its key path in one run.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub separator: Option<String>,
    pub call_timeout: Option<RawDuration>,
    pub startup_timeout: Option<RawDuration>,
    pub shutdown_grace: Option<RawDuration>,
    /// Kept raw so that [`RawRestart`] / [`RawProbe`] are checked key by key, every unknown
    /// key reported (serde alone would stop the whole server at the first one).
    pub restart: Option<figment::value::Value>,
    pub probe: Option<figment::value::Value>,
    pub max_message_size: Option<RawSize>,
    pub inherit_env: Option<RawInheritEnv>,
}

impl RawGateway {
    pub const FIELDS: &'static [&'static str] = &[
        "separator",
        "call_timeout",
        "startup_timeout",
        "shutdown_grace",
        "restart",
        "probe",
        "max_message_size",
        "inherit_env",
    ];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(default)]
    pub command: Option<String>,
    /// `args`, `env`, `cwd`, `inherit_env` stay optional (not defaulted) so that writing one of
    /// them on a `url` server can be reported: they describe a process the gateway starts.
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub call_timeout: Option<RawDuration>,
    pub startup_timeout: Option<RawDuration>,
    pub tools: Option<RawToolFilter>,
    /// Kept raw so that [`RawRestart`] / [`RawProbe`] are checked key by key, every unknown
    /// key reported (serde alone would stop the whole server at the first one).
    pub restart: Option<figment::value::Value>,
    pub probe: Option<figment::value::Value>,
    /// Claude-config compatibility: `"type": "stdio" | "http" | "sse"`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A remote server's address (instead of `command`).
    pub url: Option<String>,
    pub max_message_size: Option<RawSize>,
    pub inherit_env: Option<RawInheritEnv>,
    /// A remote server's extra request headers (values expand like `env` values).
    pub headers: Option<BTreeMap<String, String>>,
    /// The variable holding a remote server's bearer token (never the token itself).
    pub bearer_token_env: Option<String>,
    /// `streamable_http` (default) or `sse` (the legacy HTTP+SSE transport).
    pub transport: Option<String>,
    /// `false`: expose this server's tools, prompts and resources under the child's own
    /// names and URIs instead of `<server><separator>…` / `orchestra://<server>/…`.
    pub namespace: Option<bool>,
}

impl RawServer {
    pub const FIELDS: &'static [&'static str] = &[
        "command",
        "args",
        "env",
        "cwd",
        "call_timeout",
        "startup_timeout",
        "tools",
        "restart",
        "probe",
        "type",
        "url",
        "max_message_size",
        "inherit_env",
        "headers",
        "bearer_token_env",
        "transport",
        "namespace",
    ];
}

/// `http:`: the Streamable HTTP front. `auth` is kept raw so that each part is checked at its
/// own path (and an inline token is never echoed back in a serde message).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub listen: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub max_sessions: Option<u32>,
    pub idle_timeout: Option<RawDuration>,
    pub max_body: Option<RawSize>,
    pub header_timeout: Option<RawDuration>,
    pub body_timeout: Option<RawDuration>,
    pub allow_remote_unauthenticated: Option<bool>,
    pub auth: Option<figment::value::Value>,
}

impl RawHttp {
    pub const FIELDS: &'static [&'static str] = &[
        "listen",
        "allowed_origins",
        "allowed_hosts",
        "max_sessions",
        "idle_timeout",
        "max_body",
        "header_timeout",
        "body_timeout",
        "allow_remote_unauthenticated",
        "auth",
    ];
}

/// `http.auth:`. Both parts kept raw: `bearer_tokens` entries are checked one by one (an inline
/// string is refused without being quoted), `jwt` key by key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpAuth {
    pub bearer_tokens: Option<figment::value::Value>,
    pub jwt: Option<figment::value::Value>,
}

impl RawHttpAuth {
    pub const FIELDS: &'static [&'static str] = &["bearer_tokens", "jwt"];
}

/// One `http.auth.bearer_tokens` entry: where a token is kept, `{env: NAME}` or `{file: PATH}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokenSource {
    pub env: Option<String>,
    pub file: Option<String>,
}

impl RawTokenSource {
    pub const FIELDS: &'static [&'static str] = &["env", "file"];
}

/// `http.auth.jwt:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwt {
    pub jwks_url: Option<String>,
    pub jwks_file: Option<String>,
    pub issuer: String,
    pub audience: RawOneOrMany,
    pub leeway: Option<RawDuration>,
}

impl RawJwt {
    pub const FIELDS: &'static [&'static str] =
        &["jwks_url", "jwks_file", "issuer", "audience", "leeway"];
}

/// `restart:`: how a dead child is brought back (every key optional; unset keys inherit).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRestart {
    pub initial_backoff: Option<RawDuration>,
    pub max_backoff: Option<RawDuration>,
    pub multiplier: Option<f64>,
    pub jitter: Option<f64>,
    pub stable_after: Option<RawDuration>,
    pub max_restarts: Option<u32>,
    pub within: Option<RawDuration>,
    pub reprobe_after: Option<RawDuration>,
}

impl RawRestart {
    pub const FIELDS: &'static [&'static str] = &[
        "initial_backoff",
        "max_backoff",
        "multiplier",
        "jitter",
        "stable_after",
        "max_restarts",
        "within",
        "reprobe_after",
    ];
}

/// `probe:`: how a live child is checked (MCP ping).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    pub interval: Option<RawDuration>,
    pub timeout: Option<RawDuration>,
    pub unhealthy_after: Option<u32>,
    pub restart_after: Option<u32>,
}

impl RawProbe {
    pub const FIELDS: &'static [&'static str] =
        &["interval", "timeout", "unhealthy_after", "restart_after"];
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToolFilter {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDomainDetail {
    pub primary: String,
    #[serde(default)]
    pub secondary: Vec<String>,
}

impl RawDomainDetail {
    pub const FIELDS: &'static [&'static str] = &["primary", "secondary"];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlternative {
    pub fallback: String,
    #[serde(default)]
    pub degraded_capabilities: Vec<String>,
    #[serde(default)]
    pub lost_capabilities: Vec<String>,
}

impl RawAlternative {
    pub const FIELDS: &'static [&'static str] =
        &["fallback", "degraded_capabilities", "lost_capabilities"];
}

/// Top-level keys of our own format.
pub(crate) const TOP_LEVEL: &[&str] = &[
    "gateway",
    "servers",
    "domain_boundaries",
    "server_alternatives",
    "orchestrator",
    "http",
];

/// `orchestrator:` — the Task Orchestrator's settings. `specialists` is kept raw so that each
/// entry is checked key by key at its own path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrchestrator {
    pub enabled: Option<bool>,
    pub store: Option<String>,
    pub specialists: Option<figment::value::Value>,
}

impl RawOrchestrator {
    pub const FIELDS: &'static [&'static str] = &["enabled", "store", "specialists"];
}

/// One entry of `orchestrator.specialists`: guidance of the user's own for a role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpecialist {
    pub role: Option<String>,
    pub expertise: Option<RawOneOrMany>,
    pub approach: Option<RawOneOrMany>,
    pub guidance: Option<String>,
}

/// One string or a list of them (a specialist's expertise, its approach's steps).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawOneOrMany {
    One(String),
    Many(Vec<String>),
}

impl RawOneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            RawOneOrMany::One(s) => vec![s],
            RawOneOrMany::Many(v) => v,
        }
    }
}

impl RawSpecialist {
    pub const FIELDS: &'static [&'static str] = &["role", "expertise", "approach", "guidance"];
}

/// A duration as written: a string (`"30s"`) or a bare number, which validation rejects with a
/// suggestion instead of guessing its unit.
#[derive(Debug, Clone)]
pub(crate) struct RawDuration(pub String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"30s\" or \"500ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A byte size as written: `"16MiB"` or a bare number of bytes.
#[derive(Debug, Clone)]
pub(crate) struct RawSize(pub String);

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size such as \"16MiB\" or a number of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawSize, E> {
                Ok(RawSize(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `inherit_env: all` or `inherit_env: [NAME, ...]`.
#[derive(Debug, Clone)]
pub(crate) enum RawInheritEnv {
    Word(String),
    Names(Vec<String>),
}

impl<'de> Deserialize<'de> for RawInheritEnv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawInheritEnv;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"all\" or a list of environment variable names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawInheritEnv, E> {
                Ok(RawInheritEnv::Word(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawInheritEnv, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RawInheritEnv::Names(names))
            }
        }
        d.deserialize_any(Visitor)
    }
}
