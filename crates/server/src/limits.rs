//! Rate-limit answers (spec `analytics-api.md` §8.2, §8.3): the `X-RateLimit-*` headers of a
//! limiter's decision, and `Retry-After` with the 429.

use axum::http::{HeaderMap, HeaderValue};

pub use access::limits::Decision;

/// Adds the §8.2 headers (and `Retry-After` when refused).
pub fn apply(decision: &Decision, headers: &mut HeaderMap) {
    headers.insert("X-RateLimit-Limit", HeaderValue::from(decision.limit));
    headers.insert("X-RateLimit-Remaining", HeaderValue::from(decision.remaining));
    headers.insert("X-RateLimit-Reset", HeaderValue::from(decision.reset_secs));
    if !decision.allowed {
        headers.insert("Retry-After", HeaderValue::from(decision.retry_after_secs));
    }
}

/// Of several decisions, the one to report: a refusal first, else the most restrictive.
pub fn strictest(decisions: impl IntoIterator<Item = Decision>) -> Option<Decision> {
    decisions.into_iter().min_by_key(|d| (d.allowed, d.remaining))
}
