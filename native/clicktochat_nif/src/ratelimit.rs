//! Registrations per client address per minute, one limiter per client
//! host (clicktochat_core::ratelimit).

use clicktochat_core::ratelimit::RateLimiter;
use parking_lot::Mutex;
use rustler::ResourceArc;
use std::sync::OnceLock;
use std::time::Instant;

resource!(RateLimitResource(Mutex<RateLimiter>));

#[rustler::nif]
fn ratelimit_new(per_minute: u32) -> ResourceArc<RateLimitResource> {
    ResourceArc::new(RateLimitResource(Mutex::new(RateLimiter::new(per_minute))))
}

/// true if `address` may register now; false when over its limit.
#[rustler::nif]
fn ratelimit_allow(limiter: ResourceArc<RateLimitResource>, address: &str) -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let now_ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    limiter
        .0
        .lock()
        .allow(address, u64::try_from(now_ms).unwrap_or(u64::MAX))
}
