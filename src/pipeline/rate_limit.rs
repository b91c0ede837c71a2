//! Per-hook rate limits keyed by client IP (`rate-limit: {requests: N, per: 1m}`).
//!
//! Each (hook, client) pair is a token bucket of `N` requests refilled at `N` per `per`, kept
//! as one instant (GCRA's "theoretical arrival time"): a burst of `N` is allowed, then one
//! request every `per / N`. IPv6 clients are keyed by their /64, since anyone holding one
//! address usually holds the whole /64.
//!
//! Memory is bounded: at most [`MAX_KEYS`] pairs are tracked. When full, pairs whose bucket has
//! refilled completely are dropped first (forgetting them changes nothing), then the pairs
//! closest to full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::security::RateLimit;

/// Most (hook, client) pairs remembered at once: about 100 bytes each.
pub const MAX_KEYS: usize = 100_000;

/// The buckets of every rate-limited hook.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, IpAddr), Instant>>,
    max_keys: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::with_capacity(MAX_KEYS)
    }
}

impl RateLimiter {
    /// A limiter that tracks at most `max_keys` pairs.
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(1),
        }
    }

    /// Counts one request of `client` to `hook`. `Err` holds how long the client should wait
    /// (for `Retry-After`).
    pub fn check(&self, hook: &str, client: IpAddr, limit: RateLimit) -> Result<(), Duration> {
        self.check_at(hook, client, limit, Instant::now())
    }

    fn check_at(
        &self,
        hook: &str,
        client: IpAddr,
        limit: RateLimit,
        now: Instant,
    ) -> Result<(), Duration> {
        let interval = limit.per / limit.requests.max(1);
        // A bucket may run this far ahead of now before it is empty.
        let burst = limit.per.saturating_sub(interval);
        let key = (hook.to_owned(), bucket_key(client));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let arrival = buckets.get(&key).copied().unwrap_or(now).max(now);
        let ahead = arrival - now;
        if ahead > burst {
            return Err(ahead - burst);
        }
        if !buckets.contains_key(&key) && buckets.len() >= self.max_keys {
            evict(&mut buckets, now, self.max_keys);
        }
        buckets.insert(key, arrival + interval);
        Ok(())
    }

    /// How many pairs are tracked.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// IPv4 addresses as they are; IPv6 by /64 (mapped IPv4 as IPv4).
pub(crate) fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Makes room for at least one more pair: drops every full bucket, and if that is not enough,
/// the tenth of the pairs closest to full (so eviction is rare, not once per request).
fn evict(buckets: &mut HashMap<(String, IpAddr), Instant>, now: Instant, max_keys: usize) {
    buckets.retain(|_, arrival| *arrival > now);
    if buckets.len() < max_keys {
        return;
    }
    let mut oldest: Vec<(Instant, (String, IpAddr))> = buckets
        .iter()
        .map(|(key, arrival)| (*arrival, key.clone()))
        .collect();
    let drop = (max_keys / 10).clamp(1, oldest.len());
    oldest.select_nth_unstable_by_key(drop - 1, |(arrival, _)| *arrival);
    for (_, key) in oldest.into_iter().take(drop) {
        buckets.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u32, per_secs: u64) -> RateLimit {
        RateLimit {
            requests,
            per: Duration::from_secs(per_secs),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_burst_then_one_per_interval() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let l = limit(3, 60);
        for _ in 0..3 {
            assert_eq!(limiter.check_at("h", A, l, start), Ok(()));
        }
        let wait = limiter.check_at("h", A, l, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        // Other clients and other hooks have their own buckets.
        assert_eq!(limiter.check_at("h", B, l, start), Ok(()));
        assert_eq!(limiter.check_at("other", A, l, start), Ok(()));
        // After the interval, one more.
        let later = start + Duration::from_secs(20);
        assert_eq!(limiter.check_at("h", A, l, later), Ok(()));
        assert!(limiter.check_at("h", A, l, later).is_err());
        // After the whole period, a full burst again.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check_at("h", A, l, much_later), Ok(()));
        }
    }

    #[test]
    fn refused_requests_do_not_count() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let l = limit(1, 10);
        assert!(limiter.check_at("h", A, l, start).is_ok());
        for _ in 0..100 {
            assert!(limiter.check_at("h", A, l, start).is_err());
        }
        assert!(
            limiter
                .check_at("h", A, l, start + Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let l = limit(1, 10);
        assert!(
            limiter
                .check_at("h", "2001:db8::1".parse().unwrap(), l, start)
                .is_ok()
        );
        assert!(
            limiter
                .check_at("h", "2001:db8::2".parse().unwrap(), l, start)
                .is_err()
        );
        assert!(
            limiter
                .check_at("h", "2001:db8:0:1::1".parse().unwrap(), l, start)
                .is_ok()
        );
        // Mapped IPv4 is IPv4.
        assert!(
            limiter
                .check_at("h", "::ffff:192.0.2.1".parse().unwrap(), l, start)
                .is_ok()
        );
        assert!(limiter.check_at("h", A, l, start).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RateLimiter::with_capacity(100);
        let start = Instant::now();
        let l = limit(1, 3600);
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(i.into());
            assert!(limiter.check_at("h", ip, l, start).is_ok());
            assert!(limiter.len() <= 100);
        }
        // The newest clients are still limited.
        let newest = IpAddr::V4(9_999u32.into());
        assert!(limiter.check_at("h", newest, l, start).is_err());
        // Full buckets are dropped first.
        let later = start + Duration::from_secs(3600);
        let limiter = RateLimiter::with_capacity(100);
        for i in 0..100u32 {
            assert!(
                limiter
                    .check_at("h", IpAddr::V4(i.into()), l, start)
                    .is_ok()
            );
        }
        assert!(limiter.check_at("h", A, l, later).is_ok());
        assert_eq!(limiter.len(), 1);
    }
}
