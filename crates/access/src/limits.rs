//! Rate limits (spec `analytics-api.md` §5.6, §8): GCRA buckets from `governor`, answering
//! whether a request may pass and the `X-RateLimit-*` / `Retry-After` values to send.
//! Keyed limiters forget idle keys ([`KeyedLimits::retain_recent`]), so a flood of distinct JWT
//! names costs memory only while they are active.
//!
//! [`Limits`] is what a server checks: with Redis, every node's requests count against one
//! bucket per key (GCRA in one atomic script, [`RedisLimits`]); without it, each node keeps its
//! own buckets and allows its share of the limit (the limit divided by the number of nodes).

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

/// Buckets by key, each with the rate (and burst) it is checked with: one governor limiter per
/// distinct rate.
#[derive(Debug, Default)]
pub struct KeyedLimits {
    by_rate: Mutex<HashMap<(u32, u32), Arc<Keyed>>>,
    clock: QuantaClock,
}

impl KeyedLimits {
    /// Empty limits.
    pub fn new() -> KeyedLimits {
        KeyedLimits::default()
    }

    fn limiter(&self, per_second: u32, burst: u32) -> Arc<Keyed> {
        let mut map = self.by_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry((per_second, burst))
            .or_insert_with(|| {
                Arc::new(
                    RateLimiter::dashmap_with_clock(quota(per_second, burst), self.clock.clone())
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }

    /// Counts one request of `key` against `per_second` requests per second (burst = rate, as
    /// Tinybird's JWT limits).
    pub fn check(&self, key: &str, per_second: u32) -> Decision {
        self.check_burst(key, per_second, per_second)
    }

    /// Counts one request of `key` against `per_second` requests per second, up to `burst` at once.
    pub fn check_burst(&self, key: &str, per_second: u32, burst: u32) -> Decision {
        let limiter = self.limiter(per_second, burst);
        decide(limiter.check_key(&key.to_string()), &self.clock, per_second, burst)
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

/// GCRA over Redis: the bucket of a key is its theoretical arrival time (µs, Redis's clock),
/// read, checked and moved in one script, so concurrent nodes never both take the last token.
/// Returns `{allowed, wait_us, tat_minus_now_us}`.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - tolerance > now then
  return {0, new_tat - tolerance - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(tolerance / 1000) + 1000)
return {1, 0, new_tat - now}
"#;

/// Rate-limit buckets shared by every node through Redis.
#[derive(Clone)]
pub struct RedisLimits {
    connection: redis::aio::ConnectionManager,
    script: Arc<redis::Script>,
    prefix: String,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisLimits {
    /// Connects to `url` (`redis://host:6379/0`); keys start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisLimits, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisLimits { connection, script: Arc::new(redis::Script::new(GCRA)), prefix: prefix.to_string() })
    }

    /// Counts one request of `key` against `per_second` requests per second, up to `burst`.
    pub async fn check(&self, key: &str, per_second: u32, burst: u32) -> Result<Decision, redis::RedisError> {
        let per_second = per_second.max(1);
        let burst = burst.max(1);
        let interval = 1_000_000 / u64::from(per_second);
        let mut connection = self.connection.clone();
        let answer: Vec<i64> = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(interval)
            .arg(burst)
            .invoke_async(&mut connection)
            .await?;
        let (allowed, wait_us, ahead_us) = match answer.as_slice() {
            [a, w, t] => (*a == 1, (*w).max(0) as u64, (*t).max(0) as u64),
            _ => return Err(redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "GCRA answer"))),
        };
        let interval = interval.max(1);
        let full_after = |us: u64| us.div_ceil(1_000_000);
        Ok(Decision {
            allowed,
            limit: per_second,
            remaining: if allowed { (u64::from(burst).saturating_sub(ahead_us.div_ceil(interval))) as u32 } else { 0 },
            reset_secs: full_after(ahead_us),
            retry_after_secs: if allowed { 0 } else { full_after(wait_us).max(1) },
        })
    }
}

/// The limits a server checks: in Redis when it has one (shared by every node), else in this
/// process with the limit divided among `nodes`.
#[derive(Debug)]
pub struct Limits {
    local: KeyedLimits,
    redis: Option<RedisLimits>,
    nodes: u32,
}

impl Limits {
    /// Limits kept in this process, `nodes` processes sharing each limit.
    pub fn local(nodes: u32) -> Limits {
        Limits { local: KeyedLimits::new(), redis: None, nodes: nodes.max(1) }
    }

    /// Limits kept in Redis.
    pub fn shared(redis: RedisLimits) -> Limits {
        Limits { local: KeyedLimits::new(), redis: Some(redis), nodes: 1 }
    }

    /// Whether the buckets are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one request of `key` against `per_second` requests per second, up to `burst` at
    /// once. If Redis does not answer, this node's share is enforced locally meanwhile.
    pub async fn check(&self, key: &str, per_second: u32, burst: u32) -> Decision {
        if let Some(redis) = &self.redis {
            match redis.check(key, per_second, burst).await {
                Ok(d) => return d,
                Err(e) => tracing::warn!(error = %e, "Redis rate limit unavailable; limiting on this node"),
            }
        }
        let share = |n: u32| n.div_ceil(self.nodes).max(1);
        let mut d = self.local.check_burst(key, share(per_second), share(burst));
        d.limit = per_second;
        d
    }

    /// Forgets idle local buckets.
    pub fn retain_recent(&self) {
        self.local.retain_recent();
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
