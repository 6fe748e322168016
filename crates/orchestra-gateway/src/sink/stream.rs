//! A bounded in-memory line queue with one reader: the output of one HTTP response (a POST's
//! answer, or a session's GET stream). Producers never wait on it — the queue is closed
//! instead when its reader falls too far behind (drop-and-close), so one slow or vanished
//! HTTP client costs at most `limit` bytes and never delays a child's reader.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Bytes a stream may hold for its reader before it is closed (per stream).
pub const STREAM_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct State {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    closed: bool,
}

/// The shared queue (held by the sink side and the reader).
pub(crate) struct StreamQueue {
    state: Mutex<State>,
    wake: Notify,
    limit: usize,
    /// Over the limit, drop the new line and stay open (a session's own stream, whose
    /// client may not be listening yet) instead of closing (a POST's answer stream).
    lossy: bool,
    /// Every line reaches the client (an SSE response), so requests may be sent here.
    requests: std::sync::atomic::AtomicBool,
}

impl StreamQueue {
    pub(crate) fn new(limit: usize, lossy: bool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            wake: Notify::new(),
            limit,
            lossy,
            requests: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a line; over the limit the stream is closed and its backlog dropped.
    pub(crate) fn push(&self, line: Vec<u8>) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        if st.bytes + line.len() > self.limit && self.lossy {
            tracing::debug!(
                queued = st.bytes,
                "an HTTP session's stream is full: dropped a notification"
            );
            return;
        }
        if st.bytes + line.len() > self.limit {
            tracing::warn!(
                queued = st.bytes,
                limit = self.limit,
                "an HTTP client fell too far behind its stream: closing it"
            );
            st.closed = true;
            st.lines.clear();
            st.bytes = 0;
            drop(st);
            self.wake.notify_one();
            return;
        }
        st.bytes += line.len();
        st.lines.push_back(line);
    }

    pub(crate) fn set_carries_requests(&self) {
        self.requests
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn carries_requests(&self) -> bool {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells the reader there is something to read (after a burst of pushes).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// The reading end: the HTTP response body. Dropping it (the client went away) closes the
/// stream, so nothing more is queued for it.
pub struct StreamReader(Arc<StreamQueue>);

impl StreamReader {
    pub(crate) fn new(queue: Arc<StreamQueue>) -> Self {
        Self(queue)
    }

    /// The next line, or None once the stream is closed and drained.
    pub async fn next(&self) -> Option<Vec<u8>> {
        loop {
            // Registered before looking, so a wake between the look and the wait is not lost.
            let woken = self.0.wake.notified();
            {
                let mut st = self.0.lock();
                if let Some(line) = st.lines.pop_front() {
                    st.bytes -= line.len();
                    return Some(line);
                }
                if st.closed {
                    return None;
                }
            }
            woken.await;
        }
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_in_order_then_none_after_close() {
        let q = StreamQueue::new(100, false);
        let r = StreamReader::new(q.clone());
        q.push(b"a\n".to_vec());
        q.push(b"b\n".to_vec());
        q.wake();
        assert_eq!(r.next().await.as_deref(), Some(&b"a\n"[..]));
        assert_eq!(r.next().await.as_deref(), Some(&b"b\n"[..]));
        q.close();
        assert_eq!(r.next().await, None);
    }

    #[tokio::test]
    async fn over_the_limit_closes_without_waiting() {
        let q = StreamQueue::new(10, false);
        let r = StreamReader::new(q.clone());
        q.push(vec![b'x'; 8]);
        q.push(vec![b'y'; 8]);
        assert!(q.is_closed());
        assert_eq!(r.next().await, None);
    }

    #[tokio::test]
    async fn lossy_drops_the_new_line_and_stays_open() {
        let q = StreamQueue::new(10, true);
        let r = StreamReader::new(q.clone());
        q.push(vec![b'x'; 8]);
        q.push(vec![b'y'; 8]);
        q.push(b"z".to_vec());
        assert!(!q.is_closed());
        assert_eq!(r.next().await, Some(vec![b'x'; 8]));
        assert_eq!(r.next().await, Some(b"z".to_vec()));
    }

    /// A line sent (not pushed and flushed) while the reader already waits must wake it: the
    /// answer to a deferred `tools/list` arrives this way.
    #[tokio::test]
    async fn a_send_wakes_a_waiting_reader() {
        let (sink, reader) = crate::sink::FrontSink::stream(100);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            sink.send(b"x\n".to_vec()).await;
            sink
        });
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), reader.next()).await;
        assert_eq!(got.ok().flatten(), Some(b"x\n".to_vec()));
        drop(sender.await);
    }

    #[test]
    fn a_dropped_reader_closes_the_stream() {
        let q = StreamQueue::new(10, false);
        drop(StreamReader::new(q.clone()));
        q.push(b"z\n".to_vec());
        assert!(q.is_closed());
        assert_eq!(q.lock().bytes, 0);
    }
}
