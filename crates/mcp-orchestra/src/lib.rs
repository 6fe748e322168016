//! What the binary wires together, as a library so that in-process tests can wire a gateway
//! the same way: the Task Orchestrator inside the gateway ([`orchestrator`]).

pub mod orchestrator;
