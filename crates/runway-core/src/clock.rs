//! The one source of "now", so tests can control time and nothing calls `Utc::now()` directly.

use chrono::{DateTime, Utc};

/// Instants are UTC with millisecond precision, the precision the stores keep.
pub type Timestamp = DateTime<Utc>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock, truncated to milliseconds so a value read back from a store compares equal.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        millis_to_timestamp(Utc::now().timestamp_millis())
    }
}

/// Converts stored milliseconds since the epoch back to an instant.
pub fn millis_to_timestamp(millis: i64) -> Timestamp {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
