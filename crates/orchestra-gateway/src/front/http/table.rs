//! The HTTP sessions: id → session, with the session limit and the idle sweep. Each is a
//! [`Session`] in the gateway's registry (transport "http"); removing it here drops it, which
//! ends its registry entry and subscriptions exactly as a closed stdio session's.
//!
//! A session belongs to the identity that opened it (`auth.rs`): a request naming it with
//! another identity is answered as if the id were unknown (404), so a leaked or guessed id
//! tells its holder nothing, not even that the session exists.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::auth::Identity;
use super::replay::Resumable;
use crate::front::session::Session;
use crate::hub::Gateway;
use crate::sink::{FrontSink, StreamReader, STREAM_LIMIT};

/// POST streams a session keeps for resumption (the oldest, finished ones first, make room).
const KEPT_POST_STREAMS: usize = 8;

/// A resumable SSE stream, held by the one connection reading it (another gets 409).
pub type SharedStream = Arc<tokio::sync::Mutex<Resumable>>;

/// One HTTP session.
pub struct HttpSession {
    pub session: Session,
    /// Its own output (the registry's sink): what is not tied to a request, read by GET.
    pub stream: FrontSink,
    /// The session's own stream (the reading end of `stream`) under its stream id.
    pub own: (String, SharedStream),
    /// Who opened it.
    owner: Identity,
    /// Random per session: the stream part of event ids is this and a counter.
    salt: String,
    next_stream: AtomicU64,
    /// The POSTs' SSE streams, newest last, kept so a cut one can be resumed.
    posts: Mutex<VecDeque<(String, SharedStream)>>,
    last_used: Mutex<Instant>,
    /// POSTs in flight and GET streams open: a busy session is never idle.
    busy: AtomicUsize,
}

/// Marks a session busy while it lives.
pub struct Busy(Arc<HttpSession>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HttpSession {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }

    pub fn owned_by(&self, who: &Identity) -> bool {
        self.owner == *who
    }

    fn new_stream_id(&self) -> String {
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.salt)
    }

    /// A new resumable stream for a POST's SSE answer, kept in the session, already held by
    /// the caller.
    pub async fn post_stream(
        &self,
        reader: StreamReader,
        answer_to: String,
    ) -> tokio::sync::OwnedMutexGuard<Resumable> {
        let id = self.new_stream_id();
        let shared = Arc::new(tokio::sync::Mutex::new(Resumable::new(
            id.clone(),
            reader,
            Some(answer_to),
        )));
        // Uncontended: no one else knows the stream yet.
        let held = shared.clone().lock_owned().await;
        let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        if posts.len() >= KEPT_POST_STREAMS {
            // A finished stream (its answer sent) is the cheapest to forget; a stream still
            // read is not dropped by this (its reader holds it).
            let finished = posts
                .iter()
                .position(|(_, s)| s.try_lock().is_ok_and(|r| r.is_finished()));
            posts.remove(finished.unwrap_or(0));
        }
        posts.push_back((id, shared));
        held
    }

    /// The stream with this id (its own or a kept POST stream).
    pub fn find_stream(&self, id: &str) -> Option<SharedStream> {
        if self.own.0 == id {
            return Some(self.own.1.clone());
        }
        let posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
        posts.iter().find(|(s, _)| s == id).map(|(_, s)| s.clone())
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(
            self.last_used
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed(),
        )
    }
}

impl Drop for HttpSession {
    fn drop(&mut self) {
        // An open GET stream ends with the session.
        self.stream.close_now();
    }
}

/// Why a session could not be opened.
pub enum OpenError {
    /// At the session limit.
    Full(usize),
    /// No randomness for its id (never a guessable one instead).
    NoRandom(std::io::Error),
}

pub struct Table {
    sessions: DashMap<String, Arc<HttpSession>>,
    max: usize,
}

impl Table {
    pub fn new(max: usize) -> Self {
        Self {
            sessions: DashMap::new(),
            max,
        }
    }

    /// A new session under a fresh unguessable id.
    pub fn open(
        &self,
        gw: &Gateway,
        owner: Identity,
    ) -> Result<(String, Arc<HttpSession>), OpenError> {
        if self.sessions.len() >= self.max {
            return Err(OpenError::Full(self.max));
        }
        let id = new_id().map_err(OpenError::NoRandom)?;
        let mut salt = new_id().map_err(OpenError::NoRandom)?;
        salt.truncate(12);
        // The session's own stream drops what its reader cannot take rather than closing:
        // a client that never opens GET must not lose the stream for later.
        let (stream, reader) = FrontSink::stream_lossy(STREAM_LIMIT);
        let session = Session::new(gw.clone(), stream.clone(), "http");
        let own_id = format!("{salt}0");
        let own = Resumable::new(own_id.clone(), reader, None);
        let entry = Arc::new(HttpSession {
            session,
            stream,
            own: (own_id, Arc::new(tokio::sync::Mutex::new(own))),
            owner,
            salt,
            next_stream: AtomicU64::new(1),
            posts: Mutex::new(VecDeque::new()),
            last_used: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
        });
        self.sessions.insert(id.clone(), entry.clone());
        Ok((id, entry))
    }

    pub fn get(&self, id: &str) -> Option<Arc<HttpSession>> {
        self.sessions.get(id).map(|e| e.value().clone())
    }

    /// Ends a session (DELETE, idle, shutdown).
    /// Its open GET stream is closed at once; the session itself is dropped when the last
    /// request still using it is done.
    pub fn remove(&self, id: &str) -> bool {
        match self.sessions.remove(id) {
            Some((_, s)) => {
                s.stream.close_now();
                true
            }
            None => false,
        }
    }

    pub fn clear(&self) {
        self.sessions.retain(|_, s| {
            s.stream.close_now();
            false
        });
    }

    /// Ends the sessions idle longer than `idle`; returns how many.
    pub fn sweep(&self, idle: Duration) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| {
            let keep = s.idle_for().is_none_or(|for_| for_ < idle);
            if !keep {
                s.stream.close_now();
            }
            keep
        });
        before - self.sessions.len()
    }
}

/// 128 random bits from the kernel, as hex.
fn new_id() -> std::io::Result<String> {
    use std::fmt::Write as _;
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut id = String::with_capacity(32);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_128_bit_hex_and_differ() {
        let (a, b) = (super::new_id().unwrap(), super::new_id().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
