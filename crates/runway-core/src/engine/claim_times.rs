//! The times an engine's claims are made at. A claim's time is the start time of every job it
//! takes, and a claim whose answer was lost is found again by that time alone
//! (`JobClaimParams::unanswered`), so one engine never makes two claims at the same instant,
//! even when two queues claim in the same microsecond or the clock steps back.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::{Timestamp, micros_to_timestamp};

pub(crate) struct ClaimTimes {
    /// The latest claim's time, in microseconds.
    last: AtomicI64,
}

impl Default for ClaimTimes {
    fn default() -> Self {
        ClaimTimes {
            last: AtomicI64::new(i64::MIN),
        }
    }
}

impl ClaimTimes {
    /// `now`, or a microsecond past the latest claim's time if that is not earlier.
    pub(crate) fn next(&self, now: Timestamp) -> Timestamp {
        let now = now.timestamp_micros();
        let later = |last: i64| now.max(last.saturating_add(1));
        let last = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(later(last)))
            .expect("the update always applies");
        micros_to_timestamp(later(last))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    #[test]
    fn claims_in_one_instant_get_successive_microseconds() {
        let times = ClaimTimes::default();
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let claims: Vec<Timestamp> = (0..3).map(|_| times.next(now)).collect();
        assert_eq!(
            claims,
            vec![
                now,
                now + Duration::microseconds(1),
                now + Duration::microseconds(2)
            ]
        );
    }

    #[test]
    fn a_clock_that_steps_back_never_repeats_a_claim_time() {
        let times = ClaimTimes::default();
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let first = times.next(now);
        let after_the_step = times.next(now - Duration::seconds(1));
        assert_eq!(after_the_step, first + Duration::microseconds(1));
        let later = now + Duration::seconds(5);
        assert_eq!(
            times.next(later),
            later,
            "the clock's time once it is ahead again"
        );
    }
}
