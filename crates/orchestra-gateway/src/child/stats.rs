//! Per-server call counters and a lock-free latency histogram (updated on the hot path).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::redact::Redactor;

/// Log-linear buckets over microseconds: 4 sub-buckets per power of two (≤ 19 % error).
const SUB_BITS: u32 = 2;
const BUCKETS: usize = 4 * 40;
/// `last_error` is cut to this many bytes.
const LAST_ERROR_CAP: usize = 300;

/// Counters of one server. All updates are relaxed atomics: they are statistics, not locks.
#[derive(Debug)]
pub struct Stats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    /// Lines on the child's stdout that were not JSON-RPC (banners, garbage, oversized).
    pub stdout_noise: AtomicU64,
    /// Responses that matched no pending request (late after cancel/timeout, duplicates).
    pub unmatched_responses: AtomicU64,
    /// Messages over the server's `max_message_size` (skipped unread; also in stdout_noise).
    pub oversized_messages: AtomicU64,
    /// Responses with both `result` and `error`, or neither.
    pub invalid_responses: AtomicU64,
    /// Progress notifications whose token belongs to none of this server's calls in flight.
    pub progress_dropped: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
    latency: [AtomicU64; BUCKETS],
    /// `last_error` quotes the child's error replies and is shown in the health report.
    redactor: Arc<Redactor>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            stdout_noise: AtomicU64::new(0),
            unmatched_responses: AtomicU64::new(0),
            oversized_messages: AtomicU64::new(0),
            invalid_responses: AtomicU64::new(0),
            progress_dropped: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            redactor: Arc::default(),
        }
    }
}

impl Stats {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self {
            redactor,
            ..Self::default()
        }
    }

    /// Remembers the most recent failure of a call (for the health report), secrets redacted
    /// and cut to length ([`Redactor::redact_capped`]: only what can be shown is redacted, so
    /// a child's 16 MiB error payload costs no more than a short one).
    pub fn note_error(&self, what: impl AsRef<str>) {
        let what = self.redactor.redact_capped(what.as_ref(), LAST_ERROR_CAP);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn record_latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency[bucket(us)].fetch_add(1, Relaxed);
    }

    /// The latency below which `q` (0..=1) of recorded calls fell, or None without data.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(midpoint(i)));
            }
        }
        None
    }
}

fn bucket(us: u64) -> usize {
    if us < (1 << SUB_BITS) {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let sub = (us >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    let idx = ((exp - SUB_BITS + 1) << SUB_BITS) as u64 + sub;
    (idx as usize).min(BUCKETS - 1)
}

/// A representative value of bucket `i` (its lower bound plus half its width).
fn midpoint(i: usize) -> u64 {
    let i = i as u64;
    if i < (1 << SUB_BITS) {
        return i;
    }
    let exp = (i >> SUB_BITS) + u64::from(SUB_BITS) - 1;
    let sub = i & ((1 << SUB_BITS) - 1);
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    (1u64 << exp) + sub * width + width / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for us in [
            0u64, 1, 3, 4, 5, 7, 8, 100, 1000, 12_345, 1_000_000, 60_000_000,
        ] {
            let b = bucket(us);
            assert!(b >= last, "bucket order at {us}");
            last = b;
            let m = midpoint(b) as f64;
            let err = if us == 0 {
                0.0
            } else {
                (m - us as f64).abs() / us as f64
            };
            assert!(err <= 0.2, "{us}µs -> bucket {b} midpoint {m}");
        }
    }

    #[test]
    fn last_error_is_redacted() {
        let s = Stats::new(Arc::new(Redactor::builder().secret("c0nf1gured").build()));
        s.note_error(r#"search: error response {"code":-1,"message":"bad key c0nf1gured for postgres://u:pw123@db"}"#);
        assert_eq!(
            s.last_error().as_deref(),
            Some(
                r#"search: error response {"code":-1,"message":"bad key [REDACTED] for postgres://u:[REDACTED]@db"}"#
            )
        );
    }

    #[test]
    fn quantiles_follow_the_data() {
        let s = Stats::default();
        assert_eq!(s.latency_quantile(0.5), None);
        for _ in 0..90 {
            s.record_latency(Duration::from_micros(100));
        }
        for _ in 0..10 {
            s.record_latency(Duration::from_millis(50));
        }
        let p50 = s.latency_quantile(0.5).unwrap().as_micros() as f64;
        assert!((p50 - 100.0).abs() / 100.0 < 0.2, "{p50}");
        let p99 = s.latency_quantile(0.99).unwrap().as_micros() as f64;
        assert!((p99 - 50_000.0).abs() / 50_000.0 < 0.2, "{p99}");
    }
}
