//! When a schedule fires, as pure functions of its cron expression, its time zone and the
//! time: the next fire after a moment, and the latest fire missed while the server was down.
//!
//! Daylight-saving changes follow croner's rules (the Open Cron Pattern Specification, as
//! Vixie cron): a fixed time that falls in a gap (02:30 on the night clocks jump from 02:00 to
//! 03:00) fires at the first moment after the gap; a fixed time that occurs twice (the night
//! clocks fall back) fires once, at its first occurrence; patterns with wildcards or steps in
//! their time fields fire at every matching moment of wall-clock time, so twice over a repeated
//! hour and not at all inside a gap.

use chrono::Utc;
use chrono_tz::Tz;
use croner::Cron;

use crate::clock::Timestamp;

/// The first fire strictly after `after`; `None` when the expression never fires again.
pub fn next_fire(cron: &Cron, zone: Tz, after: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&after.with_timezone(&zone), false)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// The latest fire in `covered < fire <= now`: the one run a schedule with `missed =
/// "run_once"` owes after being down from `covered` to `now`.
pub fn latest_missed(
    cron: &Cron,
    zone: Tz,
    covered: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    let latest = cron
        .find_previous_occurrence(&now.with_timezone(&zone), true)
        .ok()?
        .with_timezone(&Utc);
    (latest > covered).then_some(latest)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone};

    use super::*;
    use crate::config::parse_cron;

    fn utc(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn prague(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        chrono_tz::Europe::Prague
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_schedule_fires_at_its_local_time() {
        let cron = parse_cron("0 3 * * *").unwrap();
        let next = next_fire(
            &cron,
            chrono_tz::Europe::Prague,
            utc("2026-07-01T12:00:00Z"),
        );
        // 03:00 in Prague in summer is 01:00 UTC.
        assert_eq!(next, Some(utc("2026-07-02T01:00:00Z")));
        let utc_next = next_fire(&cron, chrono_tz::UTC, utc("2026-07-01T12:00:00Z"));
        assert_eq!(utc_next, Some(utc("2026-07-02T03:00:00Z")));
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_fires_right_after_the_gap() {
        // On 2026-03-29 Prague's clocks jump from 02:00 to 03:00: 02:30 does not exist.
        let cron = parse_cron("30 2 * * *").unwrap();
        let next = next_fire(&cron, chrono_tz::Europe::Prague, prague(2026, 3, 28, 12, 0));
        assert_eq!(next, Some(prague(2026, 3, 29, 3, 0)));
        // And the next day at 02:30 again.
        let after = next_fire(&cron, chrono_tz::Europe::Prague, next.unwrap());
        assert_eq!(after, Some(prague(2026, 3, 30, 2, 30)));
    }

    #[test]
    fn a_fixed_time_in_the_autumn_repeat_fires_once() {
        // On 2026-10-25 Prague's clocks fall back from 03:00 to 02:00: 02:30 happens twice.
        let cron = parse_cron("30 2 * * *").unwrap();
        let first = next_fire(
            &cron,
            chrono_tz::Europe::Prague,
            prague(2026, 10, 24, 12, 0),
        )
        .unwrap();
        assert_eq!(
            first,
            utc("2026-10-25T00:30:00Z"),
            "the first 02:30, in summer time"
        );
        let second = next_fire(&cron, chrono_tz::Europe::Prague, first).unwrap();
        assert_eq!(second, prague(2026, 10, 26, 2, 30));
    }

    #[test]
    fn an_hourly_wildcard_fires_in_both_passes_of_a_repeated_hour() {
        let cron = parse_cron("15 * * * *").unwrap();
        let mut at = utc("2026-10-24T23:30:00Z");
        let mut fires = Vec::new();
        for _ in 0..3 {
            at = next_fire(&cron, chrono_tz::Europe::Prague, at).unwrap();
            fires.push(at);
        }
        // 02:15 CEST, 02:15 CET, 03:15 CET: an hour apart in real time.
        assert_eq!(
            fires,
            [
                utc("2026-10-25T00:15:00Z"),
                utc("2026-10-25T01:15:00Z"),
                utc("2026-10-25T02:15:00Z")
            ]
        );
    }

    #[test]
    fn the_latest_missed_fire_is_owed_once() {
        let cron = parse_cron("0 3 * * *").unwrap();
        // Down from Monday noon to Thursday noon: three fires missed, the run owed is Thursday's.
        let owed = latest_missed(
            &cron,
            chrono_tz::UTC,
            utc("2026-11-02T12:00:00Z"),
            utc("2026-11-05T12:00:00Z"),
        );
        assert_eq!(owed, Some(utc("2026-11-05T03:00:00Z")));
        // Down between two fires: nothing owed.
        let none = latest_missed(
            &cron,
            chrono_tz::UTC,
            utc("2026-11-05T04:00:00Z"),
            utc("2026-11-05T12:00:00Z"),
        );
        assert_eq!(none, None);
        // A fire exactly at `now` is owed; one exactly at `covered` was already handled.
        let at_now = latest_missed(
            &cron,
            chrono_tz::UTC,
            utc("2026-11-05T02:00:00Z"),
            utc("2026-11-05T03:00:00Z"),
        );
        assert_eq!(at_now, Some(utc("2026-11-05T03:00:00Z")));
        let at_covered = latest_missed(
            &cron,
            chrono_tz::UTC,
            utc("2026-11-05T03:00:00Z"),
            utc("2026-11-05T03:30:00Z"),
        );
        assert_eq!(at_covered, None);
    }

    #[test]
    fn seconds_are_an_optional_sixth_field() {
        let cron = parse_cron("*/10 * * * * *").unwrap();
        let next = next_fire(&cron, chrono_tz::UTC, utc("2026-11-05T03:00:01Z"));
        assert_eq!(next, Some(utc("2026-11-05T03:00:10Z")));
    }
}
