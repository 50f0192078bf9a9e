//! Rate limits (spec `analytics-api.md` §5.6, §8): GCRA buckets from `governor`, answering
//! whether a request may pass and the `X-RateLimit-*` / `Retry-After` values to send.
//! Keyed limiters forget idle keys ([`KeyedLimits::retain_recent`]), so a flood of distinct JWT
//! names costs memory only while they are active.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, QuantaClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, QuantaClock, StateInformationMiddleware>;
type Direct = RateLimiter<NotKeyed, InMemoryState, QuantaClock, StateInformationMiddleware>;

/// What a limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The configured limit per second.
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again (rounded up).
    pub reset_secs: u64,
    /// When refused: seconds until a request would pass (rounded up, ≥ 1).
    pub retry_after_secs: u64,
}

fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn decide(
    outcome: Result<governor::middleware::StateSnapshot, governor::NotUntil<governor::clock::QuantaInstant>>,
    clock: &QuantaClock,
    per_second: u32,
    burst: u32,
) -> Decision {
    let per_second = per_second.max(1);
    let full_after = |used: u32| u64::from(used).div_ceil(u64::from(per_second));
    match outcome {
        Ok(state) => {
            let remaining = state.remaining_burst_capacity();
            Decision {
                allowed: true,
                limit: per_second,
                remaining,
                reset_secs: full_after(burst.saturating_sub(remaining)),
                retry_after_secs: 0,
            }
        }
        Err(not_until) => Decision {
            allowed: false,
            limit: per_second,
            remaining: 0,
            reset_secs: full_after(burst),
            retry_after_secs: ceil_secs(not_until.wait_time_from(clock.now())).max(1),
        },
    }
}

/// One bucket for everything (the Events API's workspace limit).
#[derive(Debug)]
pub struct Limit {
    limiter: Direct,
    clock: QuantaClock,
    per_second: u32,
    burst: u32,
}

impl Limit {
    /// `per_second` requests per second on average, up to `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Limit {
        let clock = QuantaClock::default();
        let limiter = RateLimiter::direct_with_clock(quota(per_second, burst), clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        Limit { limiter, clock, per_second, burst }
    }

    /// Counts one request if it fits.
    pub fn check(&self) -> Decision {
        decide(self.limiter.check(), &self.clock, self.per_second, self.burst)
    }
}

/// Buckets by key, each with the rate it is checked with (burst = rate, as Tinybird's JWT
/// limits): one governor limiter per distinct rate.
#[derive(Debug, Default)]
pub struct KeyedLimits {
    by_rate: Mutex<HashMap<u32, Arc<Keyed>>>,
    clock: QuantaClock,
}

impl KeyedLimits {
    /// Empty limits.
    pub fn new() -> KeyedLimits {
        KeyedLimits::default()
    }

    fn limiter(&self, per_second: u32) -> Arc<Keyed> {
        let mut map = self.by_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(per_second)
            .or_insert_with(|| {
                Arc::new(
                    RateLimiter::dashmap_with_clock(quota(per_second, per_second), self.clock.clone())
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }

    /// Counts one request of `key` against `per_second` requests per second.
    pub fn check(&self, key: &str, per_second: u32) -> Decision {
        let limiter = self.limiter(per_second);
        decide(limiter.check_key(&key.to_string()), &self.clock, per_second, per_second)
    }

    /// Forgets keys whose buckets are full again (idle keys) and limiters left empty.
    pub fn retain_recent(&self) {
        let mut map = self.by_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for limiter in map.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        map.retain(|_, l| !l.is_empty());
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        let map = self.by_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.values().map(|l| l.len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_then_recovery() {
        let limits = KeyedLimits::new();
        for i in 0..3 {
            let d = limits.check("ws/pipe/tenant_a", 3);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 2 - i);
            assert_eq!(d.limit, 3);
        }
        let refused = limits.check("ws/pipe/tenant_a", 3);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert!(refused.retry_after_secs >= 1);
        // Another key has its own bucket.
        assert!(limits.check("ws/pipe/tenant_b", 3).allowed);
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(limits.check("ws/pipe/tenant_a", 3).allowed, "one request per third of a second comes back");
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limits = KeyedLimits::new();
        for i in 0..1_000_000 {
            limits.check(&format!("ws/pipe/jwt_{i}"), 1_000);
        }
        assert_eq!(limits.len(), 1_000_000);
        // A bucket of 1,000/s is full again one millisecond per request after its last one.
        std::thread::sleep(std::time::Duration::from_millis(50));
        limits.retain_recent();
        assert_eq!(limits.len(), 0);
        assert!(limits.by_rate.lock().unwrap().is_empty());
    }

    #[test]
    fn a_direct_limit_counts_everything() {
        let l = Limit::new(2, 2);
        assert!(l.check().allowed);
        assert!(l.check().allowed);
        let d = l.check();
        assert!(!d.allowed && d.retry_after_secs >= 1);
    }
}
