//! mcp-orchestra configuration.
//!
//! What the user wrote is parsed strictly ([`raw`]) and then validated into a model whose types
//! make bad states unrepresentable ([`model`]). Every problem found is reported at once, each at
//! its key path ([`ConfigErrors`]). No async, no runtime: `check`, `serve` and the docs share it.
//!
//! Reading order: [`load`] (files + environment) → [`raw`] (serde types) → [`validate`] →
//! [`model`].

mod duplicates;
pub mod duration;
mod error;
mod expand;
pub mod glob;
mod http;
pub mod import;
mod load;
pub mod model;
mod raw;
mod remote;
pub mod size;
pub mod suggest;
mod validate;

pub use error::{ConfigError, ConfigErrors, LoadError};
pub use load::{default_config_path, load, load_from_str, Format, ENV_PREFIX};
pub use model::{
    Alternative, BearerToken, Config, Domain, Gateway, Http, HttpAuth, InheritEnv, JwksSource, Jwt,
    Orchestrator, ProbePolicy, Remote, RemoteTransport, RestartPolicy, Secret, Server, ServerName,
    Specialist, TokenSource, ToolFilter, RESERVED_SERVER_NAMES,
};
