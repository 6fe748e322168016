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
}

impl RawGateway {
    pub const FIELDS: &'static [&'static str] = &[
        "separator",
        "call_timeout",
        "startup_timeout",
        "shutdown_grace",
    ];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub call_timeout: Option<RawDuration>,
    pub startup_timeout: Option<RawDuration>,
    pub tools: Option<RawToolFilter>,
    /// Claude-config compatibility: `"type": "stdio"` is the only kind served today.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Claude Code writes `url` for remote servers; reported as not supported yet.
    pub url: Option<String>,
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
        "type",
        "url",
    ];
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
];

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
