//! Loading: the file (our YAML, or a Claude-style `{"mcpServers": …}` JSON), then environment
//! overrides, merged with figment and handed to validation.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format as _, Json, Yaml};
use figment::value::Value;
use figment::Figment;

use crate::error::{ConfigError, ConfigErrors, LoadError};
use crate::model::Config;
use crate::validate::{validate, Context};

/// Prefix of environment overrides: `ORCHESTRA_GATEWAY__CALL_TIMEOUT=5s`.
pub const ENV_PREFIX: &str = "ORCHESTRA_";

/// The keys environment variables may override. An explicit list, so that a stray
/// `ORCHESTRA_SOMETHING` injected by a platform can never break start-up.
const ENV_KEYS: &[&str] = &[
    "gateway.separator",
    "gateway.call_timeout",
    "gateway.startup_timeout",
    "gateway.shutdown_grace",
];

/// How a configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    /// JSON: either our own keys, or a Claude Desktop / Claude Code `{"mcpServers": …}` file.
    Json,
}

impl Format {
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// `$ORCHESTRA_CONFIG`, else `./orchestra.yaml`, else `./config/orchestra.yaml`.
pub fn default_config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORCHESTRA_CONFIG") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("orchestra.yaml");
    if local.is_file() {
        return local;
    }
    PathBuf::from("config").join("orchestra.yaml")
}

/// Loads, merges environment overrides and validates one configuration file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let env = Env::prefixed(ENV_PREFIX).split("__").only(ENV_KEYS);
    build(&text, Format::of(path), path, Some(env), &|name| {
        std::env::var(name).ok()
    })
}

/// Validates configuration text without environment overrides (`${VAR}` expansion uses `env`).
pub fn load_from_str(
    text: &str,
    format: Format,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    build(text, format, source, None, env)
}

fn build(
    text: &str,
    format: Format,
    source: &Path,
    overrides: Option<Env>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    let invalid = |errors: Vec<ConfigError>| LoadError::Invalid {
        path: source.to_path_buf(),
        errors: ConfigErrors(errors),
    };
    let mut figment = match format {
        Format::Yaml => Figment::from(Yaml::string(text)),
        Format::Json => {
            let doc = claude_to_native(text).map_err(|e| invalid(vec![ConfigError::new("", e)]))?;
            Figment::from(Json::string(&doc))
        }
    };
    if let Some(env) = overrides {
        figment = figment.merge(env);
    }
    let duplicates = crate::duplicates::find(text, format);
    let doc: Value = match figment.extract() {
        Ok(v) => v,
        Err(e) => {
            let errors = e
                .into_iter()
                .map(|e| ConfigError::new("", syntax_message(&e)))
                .collect();
            return Err(invalid(errors));
        }
    };
    let doc = if matches!(doc, Value::Empty(..)) {
        Value::from(figment::value::Dict::new())
    } else {
        doc
    };
    match validate(&doc, &Context { source, env }) {
        Ok(_) if !duplicates.is_empty() => Err(invalid(duplicates)),
        Ok(config) => Ok(config),
        Err(ConfigErrors(mut errors)) => {
            errors.extend(duplicates);
            errors.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
            Err(invalid(errors))
        }
    }
}

/// A Claude config keeps its servers under `mcpServers` next to the client's own settings;
/// take the servers (and any of our own keys) and leave the client's settings alone.
fn claude_to_native(text: &str) -> Result<String, String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("JSON syntax error: {e}"))?;
    let serde_json::Value::Object(mut top) = doc else {
        return Err("the document must be a JSON object".into());
    };
    let Some(servers) = top.remove("mcpServers") else {
        return Ok(serde_json::Value::Object(top).to_string());
    };
    let mut native = serde_json::Map::new();
    native.insert("servers".into(), servers);
    for key in crate::raw::TOP_LEVEL.iter().filter(|k| **k != "servers") {
        if let Some(v) = top.remove(*key) {
            native.insert((*key).into(), v);
        }
    }
    Ok(serde_json::Value::Object(native).to_string())
}

fn syntax_message(e: &figment::Error) -> String {
    use figment::error::Kind;
    match &e.kind {
        Kind::Message(m) => format!("syntax error: {m}"),
        other => other.to_string(),
    }
}
