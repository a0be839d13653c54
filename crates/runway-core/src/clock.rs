//! The one source of "now", so tests can control time and nothing calls `Utc::now()` directly.

use chrono::{DateTime, Utc};

/// Instants are UTC with microsecond precision, the precision the stores keep.
pub type Timestamp = DateTime<Utc>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock, truncated to microseconds so a value read back from a store compares equal.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        micros_to_timestamp(Utc::now().timestamp_micros())
    }
}

/// Converts stored microseconds since the epoch back to an instant.
pub fn micros_to_timestamp(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The instant `duration` before `now`, or the earliest there is when that would overflow:
/// the start of what a retention or a window keeps.
pub fn ago(now: Timestamp, duration: std::time::Duration) -> Timestamp {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_sub_signed(duration))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
