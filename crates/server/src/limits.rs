//! Rate limiters (spec `analytics-api.md` §8): GCRA buckets answering whether a request may
//! pass and the `X-RateLimit-*` / `Retry-After` values to send either way.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

/// One GCRA bucket: `per_second` requests per second on average, up to `burst` at once.
#[derive(Debug)]
pub struct Gcra {
    per_second: u32,
    interval: Duration,
    capacity: Duration,
    /// Theoretical arrival time of the next request; `None` until the first one.
    tat: Mutex<Option<Instant>>,
}

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

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Gcra {
    /// A bucket of `per_second` requests per second with bursts of `burst` (both ≥ 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let per_second = per_second.max(1);
        let interval = Duration::from_secs(1) / per_second;
        Gcra { per_second, interval, capacity: interval * burst.max(1), tat: Mutex::new(None) }
    }

    /// Counts one request arriving at `now` if it fits.
    pub fn check(&self, now: Instant) -> Decision {
        let mut tat = self.tat.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = tat.map_or(now, |t| t.max(now));
        let next = start + self.interval;
        let used = next - now;
        if used <= self.capacity {
            *tat = Some(next);
            let remaining = ((self.capacity - used).as_nanos() / self.interval.as_nanos()) as u32;
            Decision {
                allowed: true,
                limit: self.per_second,
                remaining,
                reset_secs: ceil_secs(used),
                retry_after_secs: 0,
            }
        } else {
            let wait = used - self.capacity;
            Decision {
                allowed: false,
                limit: self.per_second,
                remaining: 0,
                reset_secs: ceil_secs(start - now),
                retry_after_secs: ceil_secs(wait).max(1),
            }
        }
    }
}

impl Decision {
    /// Adds the §8.2 headers (and `Retry-After` when refused).
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("X-RateLimit-Limit", HeaderValue::from(self.limit));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from(self.remaining));
        headers.insert("X-RateLimit-Reset", HeaderValue::from(self.reset_secs));
        if !self.allowed {
            headers.insert("Retry-After", HeaderValue::from(self.retry_after_secs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_rate() {
        let g = Gcra::new(10, 3);
        let t0 = Instant::now();
        let first: Vec<Decision> = (0..3).map(|_| g.check(t0)).collect();
        assert!(first.iter().all(|d| d.allowed));
        assert_eq!(first.iter().map(|d| d.remaining).collect::<Vec<_>>(), [2, 1, 0]);
        let refused = g.check(t0);
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.retry_after_secs, refused.limit), (0, 1, 10));
        // One interval (100 ms) later exactly one more fits.
        let later = t0 + Duration::from_millis(100);
        assert!(g.check(later).allowed);
        assert!(!g.check(later).allowed);
        // After a quiet second the whole burst is back.
        let quiet = t0 + Duration::from_secs(2);
        assert!((0..3).all(|_| g.check(quiet).allowed));
    }
}
