//! A span of time a job list keeps to: jobs created, or finished, in it.

use crate::clock::Timestamp;

/// From `from` (included) to `to` (excluded); an open end reaches as far as time goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeRange {
    /// A range without ends: every instant, and an instant that is not there too.
    pub fn is_unbounded(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether `at` lies in the range. A missing instant (a job not finished) lies only in an
    /// unbounded range.
    pub fn contains(&self, at: Option<Timestamp>) -> bool {
        if self.is_unbounded() {
            return true;
        }
        at.is_some_and(|at| {
            self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
        })
    }

    /// The ends in microseconds, as stores keep instants.
    pub fn micros(&self) -> (Option<i64>, Option<i64>) {
        (
            self.from.map(|at| at.timestamp_micros()),
            self.to.map(|at| at.timestamp_micros()),
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    #[test]
    fn the_start_is_in_the_range_and_the_end_is_not() {
        let start = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let range = TimeRange {
            from: Some(start),
            to: Some(start + Duration::hours(1)),
        };
        assert!(range.contains(Some(start)));
        assert!(range.contains(Some(start + Duration::minutes(59))));
        assert!(!range.contains(Some(start + Duration::hours(1))));
        assert!(!range.contains(Some(start - Duration::microseconds(1))));
    }

    #[test]
    fn a_missing_instant_is_only_in_an_unbounded_range() {
        let start = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert!(TimeRange::default().contains(None));
        let open_ended = TimeRange {
            from: Some(start),
            to: None,
        };
        assert!(!open_ended.contains(None));
    }
}
