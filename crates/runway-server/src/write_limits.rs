//! Per-token limits on writes (`server.writes_per_second`, `server.write_burst`): every
//! request that changes something counts against its token (or the token of its browser
//! session); past the limit it is answered 429 with `Retry-After`, and nothing changes. Reads
//! and a running job's own token are not limited.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Credential;
use crate::error::ApiError;

pub struct WriteLimits {
    limiter: DefaultKeyedRateLimiter<i64>,
    per_second: u32,
}

impl WriteLimits {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> WriteLimits {
        WriteLimits {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            per_second: per_second.get(),
        }
    }

    /// Counts a write; a 429 saying when to try again once the token is past its limit.
    pub fn check(&self, credential: &Credential) -> Result<(), ApiError> {
        let token = match credential {
            Credential::Bearer(holder) | Credential::Cookie(holder) => holder.token.id,
            Credential::Job(_) => return Ok(()),
        };
        self.limiter.check_key(&token).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up: a client that waits that long gets through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError {
                retry_after: Some(seconds.max(1)),
                ..ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    runway_api::codes::RATE_LIMITED,
                    format!(
                        "this token made more than {} changes per second \
                         (server.writes_per_second); nothing was changed: retry after {} s, \
                         or submit many jobs in one batch",
                        self.per_second,
                        seconds.max(1)
                    ),
                )
            }
        })
    }
}

impl std::fmt::Debug for WriteLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriteLimits({}/s)", self.per_second)
    }
}
