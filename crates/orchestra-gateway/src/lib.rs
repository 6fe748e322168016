//! mcp-orchestra's runtime: one MCP server in front, many child MCP servers behind.
//!
//! Reading order: [`app`] (start, catalog, shutdown) → [`child`] (one task per child, its
//! session and state) → [`front`] (the client's session) → [`catalog`] and [`names`] (what the
//! client sees; [`tool_def`]: child tool definitions checked against MCP) → [`health`] and [`redact`] (secrets hidden from what children print) →
//! [`error`] (the one conversion to wire errors) → [`jsonrpc`] (envelopes and framing) →
//! [`watchdog`].

pub mod app;
pub mod catalog;
pub mod catalog_cache;
pub mod child;
pub mod containment;
pub mod domains;
pub mod error;
pub mod events;
pub mod fnv;
pub mod front;
pub mod guidance;
pub mod health;
pub mod hub;
pub mod journal;
pub mod jsonrpc;
pub mod listing;
pub mod logging;
pub mod names;
pub mod outbox;
pub mod prompts;
pub mod redact;
pub mod reply;
pub mod resource_uri;
pub mod resources;
pub(crate) mod route;
pub mod sessions;
pub mod sink;
pub mod time;
pub mod tool_def;
pub mod upstream;

pub use app::StartOptions;
/// The watchdog process (part of containment), re-exported for the binary.
pub use containment::watchdog;
pub use hub::local;
pub use hub::Gateway;
