//! Jittered exponential backoff between restarts of one child.

use std::time::Duration;

use orchestra_config::RestartPolicy;

/// The delays before successive restarts: `initial × multiplier^n`, capped at `max`, each
/// stretched or shrunk by up to `jitter` so children that died together restart apart.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RestartPolicy,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(policy: RestartPolicy, seed: u64) -> Self {
        // xorshift must not start at zero.
        Self {
            policy,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The delay before the next restart; each call moves one step up.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let factor = 1.0 + self.policy.jitter * (2.0 * unit - 1.0);
        base.mul_f64(factor.max(0.0))
    }

    /// Back to the first step (after the child stayed up long enough).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The un-jittered delay of step `n`.
    fn base(&self, n: u32) -> Duration {
        let p = &self.policy;
        let grown = p.initial_backoff.as_secs_f64() * p.multiplier.powi(n.min(64) as i32);
        Duration::from_secs_f64(grown.min(p.max_backoff.as_secs_f64()))
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// A seed that differs between children and runs (not security-relevant).
pub fn seed(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    crate::fnv::extend(nanos ^ u64::from(std::process::id()), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn without_jitter_delays_double_up_to_the_cap() {
        let mut b = Backoff::new(policy(0.0), 7);
        let secs: Vec<f64> = (0..9).map(|_| b.next_delay().as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    /// Property: for any seed, every delay lies within ±jitter of its step's base, and the
    /// jitter actually spreads delays (children that died together restart apart).
    #[test]
    fn jittered_delays_stay_within_bounds_for_any_seed() {
        let jitter = 0.2;
        let mut first_delays = Vec::new();
        for seed in (0..2000u64).map(|s| s.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let mut b = Backoff::new(policy(jitter), seed);
            let reference = Backoff::new(policy(0.0), 1);
            for step in 0..12 {
                let base = reference.base(step).as_secs_f64();
                let d = b.next_delay().as_secs_f64();
                assert!(
                    d >= base * (1.0 - jitter) - 1e-9 && d <= base * (1.0 + jitter) + 1e-9,
                    "seed {seed} step {step}: {d} outside {base} ± {jitter}"
                );
                if step == 0 {
                    first_delays.push(d);
                }
            }
        }
        let min = first_delays.iter().cloned().fold(f64::MAX, f64::min);
        let max = first_delays.iter().cloned().fold(f64::MIN, f64::max);
        assert!(
            max - min > 0.15,
            "jitter should spread first delays: {min}..{max}"
        );
    }
}
