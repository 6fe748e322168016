//! The MCP server the client sees: its output ([`FrontSink`]), the stdio session ([`stdio`])
//! and the method dispatch ([`session`]).

mod completion;
pub mod http;
mod instructions;
mod lists;
mod prompts;
pub(crate) mod resources;
pub mod session;
pub mod stdio;

pub use crate::sink::FrontSink;
