//! An ordered byte queue toward one pipe (a child's stdin, or the client's stdout), written
//! directly by whoever produced the bytes when the pipe has room.
//!
//! This is what keeps the forwarding path near the cost of a byte-copying relay: no task
//! hand-off per message, and one `write` per burst. Producers `push` frames (whole lines, so
//! frames never interleave) and `flush` when they have no more input buffered; a drain task
//! only steps in when the pipe is full, waiting for it to become writable.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::unix::pipe;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why bytes were not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is over its limit: the reader on the other side is not keeping up.
    Full,
    /// The pipe is closed.
    Closed,
}

/// What happens when a producer pushes past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the frame (`PushError::Full`): the caller answers "overloaded" instead. For a
    /// child's stdin, so a child that stops reading cannot hold calls forever.
    Refuse,
    /// Accept it: nothing may be lost (answers to the client); producers bound the queue by
    /// waiting in `ready` between bursts.
    Accept,
}

/// A queue of whole frames toward one pipe.
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the drain task when bytes are left over after a direct write.
    pending: Notify,
    /// Wakes producers waiting for room (`ready`).
    drained: Notify,
    /// Highest request id whose frame has been written completely (see `push_with`).
    written_id: AtomicU64,
    /// Queue size above which `ready` waits, and — with `Overflow::Refuse` — `push` refuses.
    limit: usize,
    overflow: Overflow,
    closed: CancellationToken,
    /// How long the queue has been over its limit in all (see [`Outbox::stalled`]).
    stall: StallClock,
}

/// A running total of the time a queue spent over its limit: while it is, producers that
/// wait in `ready` (a child's reader, toward the client) are held up by the reader on the
/// other side, and the time is theirs to discount (call timeouts).
///
/// Started and stopped under the outbox's lock; read lock-free.
struct StallClock {
    epoch: Instant,
    /// Nanoseconds since `epoch` at which the current stall began, plus one; 0 when the queue
    /// is under its limit.
    since: AtomicU64,
    /// Nanoseconds of stalls that have ended.
    total: AtomicU64,
}

struct State {
    pipe: Option<Arc<pipe::Sender>>,
    buf: Vec<u8>,
    /// Bytes of `buf` already written (a partial write leaves a tail).
    sent: usize,
    /// Total bytes ever written, and the end offsets of queued requests: (id, end).
    total_written: u64,
    total_pushed: u64,
    requests: VecDeque<(u64, u64)>,
}

impl Outbox {
    /// An outbox over `pipe`; spawns its drain task on the current runtime.
    pub fn new(pipe: pipe::Sender, limit: usize, overflow: Overflow) -> Arc<Self> {
        let outbox = Arc::new(Self {
            state: Mutex::new(State {
                pipe: Some(Arc::new(pipe)),
                buf: Vec::with_capacity(64 * 1024),
                sent: 0,
                total_written: 0,
                total_pushed: 0,
                requests: VecDeque::new(),
            }),
            pending: Notify::new(),
            drained: Notify::new(),
            written_id: AtomicU64::new(0),
            limit,
            overflow,
            closed: CancellationToken::new(),
            stall: StallClock::new(),
        });
        tokio::spawn(drain(Arc::downgrade(&outbox), outbox.closed.clone()));
        outbox
    }

    /// Queues one frame without writing it yet.
    pub fn push(&self, frame: &[u8]) -> Result<(), PushError> {
        self.push_with(None, frame.len(), |buf| buf.extend_from_slice(frame))
    }

    /// Queues one frame written in place by `write` (no intermediate buffer). `request` marks
    /// it as the frame of that request id (see [`Outbox::written_id`]); `len` is its size if
    /// known, for the limit check (0 checks only what is already queued).
    pub fn push_with(
        &self,
        request: Option<u64>,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), PushError> {
        let mut st = self.lock();
        self.admit(&st, len)?;
        let before = st.buf.len();
        write(&mut st.buf);
        st.total_pushed += (st.buf.len() - before) as u64;
        if st.buf.len() - st.sent >= self.limit {
            self.stall.start();
        }
        if let Some(id) = request {
            let end = st.total_pushed;
            st.requests.push_back((id, end));
        }
        Ok(())
    }

    /// Writes what is queued, as far as the pipe takes it now; the drain task finishes the rest.
    pub fn flush(&self) {
        let mut st = self.lock();
        if st.sent == st.buf.len() {
            return;
        }
        match self.write_now(&mut st) {
            Ok(true) => {}
            Ok(false) => self.pending.notify_one(),
            Err(_) => self.fail(&mut st),
        }
    }

    /// `push` + `flush`, waiting for room first (backpressure for producers that can wait).
    pub async fn send(&self, frame: &[u8]) -> Result<(), PushError> {
        self.ready().await;
        self.push(frame)?;
        self.flush();
        Ok(())
    }

    /// Waits until the queue is below its limit (or closed).
    pub async fn ready(&self) {
        loop {
            let notified = self.drained.notified();
            {
                let st = self.lock();
                if st.pipe.is_none() || st.buf.len() - st.sent < self.limit {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Whether bytes are queued and not yet written.
    #[cfg(test)]
    fn has_pending(&self) -> bool {
        let st = self.lock();
        st.sent < st.buf.len()
    }

    /// Total time the queue has spent over its limit so far: the time its reader kept
    /// everyone waiting in [`Outbox::ready`]. Cheap (two atomic loads).
    pub fn stalled(&self) -> Duration {
        self.stall.total()
    }

    /// Highest request id written completely to the pipe.
    pub fn written_id(&self) -> u64 {
        self.written_id.load(Ordering::Acquire)
    }

    /// Removes and returns the queued bytes not yet written (whole frames: the pipe's reader
    /// is gone, so nothing more will be written anyway).
    pub fn take_unsent(&self) -> Vec<u8> {
        let mut st = self.lock();
        let unsent = st.buf[st.sent..].to_vec();
        st.buf.clear();
        st.sent = 0;
        st.requests.clear();
        self.stall.stop();
        unsent
    }

    /// Waits (bounded by the caller) until everything queued is written, then closes the pipe
    /// (for a child: its stdin reaches EOF).
    pub async fn close_after_drain(&self) {
        loop {
            let notified = self.drained.notified();
            {
                let st = self.lock();
                if st.pipe.is_none() || st.sent == st.buf.len() {
                    break;
                }
            }
            notified.await;
        }
        self.close();
    }

    /// Closes the pipe now; queued bytes are dropped.
    pub fn close(&self) {
        let mut st = self.lock();
        st.pipe = None;
        st.buf.clear();
        st.sent = 0;
        self.stall.stop();
        drop(st);
        self.closed.cancel();
        self.drained.notify_waiters();
    }

    fn admit(&self, st: &State, len: usize) -> Result<(), PushError> {
        if st.pipe.is_none() {
            return Err(PushError::Closed);
        }
        if self.overflow == Overflow::Refuse
            && st.buf.len() - st.sent + len > self.limit
            && st.buf.len() > st.sent
        {
            return Err(PushError::Full);
        }
        Ok(())
    }

    /// Writes from the queue until it is empty (true) or the pipe is full (false).
    fn write_now(&self, st: &mut State) -> io::Result<bool> {
        let Some(pipe) = st.pipe.clone() else {
            return Ok(true);
        };
        while st.sent < st.buf.len() {
            match pipe.try_write(&st.buf[st.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    st.sent += n;
                    st.total_written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut last = None;
        while st
            .requests
            .front()
            .is_some_and(|(_, end)| *end <= st.total_written)
        {
            last = st.requests.pop_front().map(|(id, _)| id);
        }
        if let Some(id) = last {
            self.written_id.fetch_max(id, Ordering::Release);
        }
        let done = st.sent == st.buf.len();
        if done {
            st.buf.clear();
            st.sent = 0;
        } else if st.sent > 1024 * 1024 {
            // Keep a long-lived partial queue from growing without bound at the front.
            let sent = st.sent;
            st.buf.drain(..sent);
            st.sent = 0;
        }
        if st.buf.len() - st.sent < self.limit {
            self.stall.stop();
        }
        self.drained.notify_waiters();
        Ok(done)
    }

    /// The reader went away (EPIPE): stop writing. What was not written stays queued, so
    /// that the owner can still take it back (`take_unsent`) and send it elsewhere.
    fn fail(&self, st: &mut State) {
        st.pipe = None;
        self.stall.stop();
        self.closed.cancel();
        self.drained.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StallClock {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            since: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// The queue went over its limit (no-op if it already was).
    fn start(&self) {
        if self.since.load(Ordering::Relaxed) == 0 {
            self.since.store(self.now() + 1, Ordering::Release);
        }
    }

    /// The queue is under its limit again (no-op if it was).
    fn stop(&self) {
        let since = self.since.load(Ordering::Relaxed);
        if since != 0 {
            let length = self.now().saturating_sub(since - 1);
            self.total.fetch_add(length, Ordering::AcqRel);
            self.since.store(0, Ordering::Release);
        }
    }

    fn total(&self) -> Duration {
        let since = self.since.load(Ordering::Acquire);
        let running = match since {
            0 => 0,
            since => self.now().saturating_sub(since - 1),
        };
        Duration::from_nanos(self.total.load(Ordering::Acquire) + running)
    }
}

/// Finishes writes the pipe could not take at once: waits for writability, writes, repeats.
async fn drain(outbox: std::sync::Weak<Outbox>, closed: CancellationToken) {
    loop {
        let Some(ob) = outbox.upgrade() else { return };
        let pipe = {
            let st = ob.lock();
            match (&st.pipe, st.sent < st.buf.len()) {
                (None, _) => return,
                (Some(p), true) => Some(p.clone()),
                (Some(_), false) => None,
            }
        };
        let Some(pipe) = pipe else {
            // Holding `ob` while idle is fine: every outbox is closed when its side ends.
            tokio::select! {
                _ = ob.pending.notified() => continue,
                _ = closed.cancelled() => return,
            }
        };
        drop(ob);
        tokio::select! {
            ready = pipe.writable() => {
                drop(pipe);
                let Some(ob) = outbox.upgrade() else { return };
                let mut st = ob.lock();
                if ready.is_err() || ob.write_now(&mut st).is_err() {
                    ob.fail(&mut st);
                    return;
                }
            }
            _ = closed.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pair() -> (Arc<Outbox>, std::io::PipeReader) {
        let (reader, writer) = std::io::pipe().unwrap();
        let sender = pipe::Sender::from_owned_fd(std::os::fd::OwnedFd::from(writer)).unwrap();
        (Outbox::new(sender, 1 << 20, Overflow::Refuse), reader)
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_requests_are_tracked() {
        let (ob, mut reader) = pair();
        ob.push_with(Some(1), 4, |b| b.extend_from_slice(b"one\n"))
            .unwrap();
        ob.push(b"note\n").unwrap();
        ob.push_with(Some(2), 4, |b| b.extend_from_slice(b"two\n"))
            .unwrap();
        assert_eq!(ob.written_id(), 0, "nothing written before flush");
        ob.flush();
        // A fresh pipe may not report writable yet; then the drain task writes it.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while ob.written_id() != 2 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("both requests written");
        let mut buf = [0u8; 13];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"one\nnote\ntwo\n");
    }

    #[tokio::test]
    async fn a_full_pipe_is_finished_by_the_drain_task() {
        let (ob, reader) = pair();
        // Far more than a pipe buffer (64 KiB): the direct write stops early.
        let frame = vec![b'x'; 200 * 1024];
        ob.push(&frame).unwrap();
        ob.push(b"\n").unwrap();
        ob.flush();
        assert!(ob.has_pending());
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            let mut reader = reader;
            let mut chunk = [0u8; 65536];
            while all.len() < 200 * 1024 + 1 {
                let n = reader.read(&mut chunk).unwrap();
                all.extend_from_slice(&chunk[..n]);
            }
            all
        });
        let all = tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(all.len(), 200 * 1024 + 1);
        assert!(!ob.has_pending());
    }

    #[tokio::test]
    async fn the_limit_refuses_new_frames_while_the_reader_lags() {
        let (reader, writer) = std::io::pipe().unwrap();
        let sender = pipe::Sender::from_owned_fd(std::os::fd::OwnedFd::from(writer)).unwrap();
        let ob = Outbox::new(sender, 1000, Overflow::Refuse);
        // Fill the OS pipe first, so that queued bytes stay queued.
        ob.push(&vec![b'y'; 256 * 1024]).unwrap();
        ob.flush();
        assert_eq!(ob.push(&[b'z'; 2000]), Err(PushError::Full));

        // Toward the client nothing may be lost: past the limit, frames are still accepted.
        let (_reader2, writer2) = std::io::pipe().unwrap();
        let sender2 = pipe::Sender::from_owned_fd(std::os::fd::OwnedFd::from(writer2)).unwrap();
        let front = Outbox::new(sender2, 1000, Overflow::Accept);
        front.push(&vec![b'y'; 256 * 1024]).unwrap();
        front.flush();
        assert_eq!(front.push(&[b'z'; 2000]), Ok(()));
        ob.close();
        assert_eq!(ob.push(b"late\n"), Err(PushError::Closed));
        drop(reader);
    }
}
