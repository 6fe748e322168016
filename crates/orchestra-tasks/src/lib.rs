//! The Task Orchestrator: plans of subtasks for specialists, executed on live server health.
//!
//! A model plans a task (`orchestrator_plan_task`: subtasks with dependencies, or the design
//! document's `workflow_stages` and `parallel_streams` + `sync_points`, compiled into one
//! graph), executes subtasks whose dependencies are completed (guidance: the specialist's
//! role, the dependencies' results, the servers and tool names usable right now), completes
//! them (`next_action` honoured; the tool calls made meanwhile recorded), and synthesizes what
//! really happened. Plans persist in a [`Store`] (SQLite by default).
//!
//! No gateway runtime here: the gateway implements [`Environment`] (live view, call journal)
//! and registers [`Orchestrator::tool_definitions`] as its own tools.
//!
//! Reading order: [`orchestrator`] (entry points) → [`tools`] (one module per tool) →
//! [`compile`] (request → graph) → [`model`] and [`graph`] (plans, derived states, pure graph
//! algorithms) → [`live`] (what can be used now) → [`specialists`] → [`store`] → [`error`].

pub mod compile;
pub mod env;
pub mod error;
pub mod graph;
pub mod live;
pub mod model;
pub mod orchestrator;
pub mod specialists;
pub mod store;
mod suggest;
mod text;
pub mod time;
pub mod tools;

pub use env::{DomainView, Environment, ServerView, Snapshot, ToolCall};
pub use error::Error;
pub use orchestrator::Orchestrator;
pub use specialists::{Specialist, SpecialistOverride, Specialists};
pub use store::{SqliteStore, Store, StoreError};
