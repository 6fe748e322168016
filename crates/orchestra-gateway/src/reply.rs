//! Who a call is for: the session that sent it (its ids and progress tokens are scoped to it)
//! and where its answer, progress and server→client requests go (its reply target). Every
//! layer that handles a call carries a [`Caller`], so that nothing is routed by a bare client
//! id or sent to a process-wide front.

use std::sync::Arc;

use crate::journal::CallJournal;
use crate::sink::FrontSink;

/// A client session's id: unique for the gateway's life, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The session a call came from and where its answer goes.
#[derive(Clone)]
pub struct Caller {
    pub session: SessionId,
    pub reply: FrontSink,
    /// The session's journal of tool calls (recorded only while someone watches it).
    pub journal: Arc<CallJournal>,
}
