//! Per-token rate limits: a token bucket for each token, kept in this process's memory.
//!
//! Each token may make `burst` requests at once and `per_second` on average; a request
//! beyond that is refused with the time until the bucket holds a request again. With several
//! processes serving one database, each enforces the limit on its own.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many requests a token may make.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per second, on average.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

struct Bucket {
    level: f64,
    at: Instant,
}

/// The buckets of every token seen so far.
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// No bucket yet; each token gets a full one on its first request.
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket at `now`; when it is empty, how long until
    /// it holds one again.
    pub fn take(&self, token: &str, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let bucket = buckets.entry(token.to_string()).or_insert(Bucket {
            level: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.level = (bucket.level + refill).min(burst);
        bucket.at = now;
        if bucket.level >= 1.0 {
            bucket.level -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.level) / per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_burst_then_waits_for_the_refill() {
        let limiter = Limiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", start), Ok(()));
        }
        let wait = limiter.take("a", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another token has a bucket of its own.
        assert_eq!(limiter.take("b", start), Ok(()));
        assert_eq!(
            limiter.take("a", start + Duration::from_millis(500)),
            Ok(())
        );
        assert!(
            limiter
                .take("a", start + Duration::from_millis(500))
                .is_err()
        );
    }
}
