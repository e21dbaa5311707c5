//! Fire times of `[evaluation] schedule`: cron expressions read on the local calendar of the
//! evaluation timezone.
//!
//! A daily 09:00 stays 09:00 local across daylight-saving changes; a time inside a skipped
//! hour fires once, when the gap ends; a time inside a repeated hour fires once, the first
//! time it occurs.

use anyhow::{Result, anyhow};
use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

/// Parses a 5-field cron expression, or 6 fields with seconds first.
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!("'{text}' has {fields} fields: expected 5 (minute first) or 6 (seconds first)"));
    }
    Cron::from_str(text).map_err(|e| format!("'{text}' is not a cron expression: {e}"))
}

/// The first fire time strictly after `after`, on the local calendar of `tz`: always a whole
/// second (croner would keep the fraction of `after`).
pub fn next_fire(cron: &Cron, tz: &Tz, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let local = after.trunc_subsecs(0).with_timezone(tz);
    let next = cron.find_next_occurrence(&local, false).map_err(|e| anyhow!("no next fire time: {e}"))?;
    Ok(next.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn fires(schedule: &str, after: &str, n: usize) -> Vec<String> {
        let cron = parse_schedule(schedule).unwrap_or_else(|e| panic!("{e}"));
        let tz = chrono_tz::America::New_York;
        let mut at = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            at = next_fire(&cron, &tz, at).unwrap_or_else(|e| panic!("{e}"));
            out.push(crate::instant::format_utc(at));
        }
        out
    }

    #[test]
    fn a_daily_local_time_keeps_its_wall_clock_across_the_spring_change() {
        // 09:00 in New York is 14:00Z before 2026-03-08 and 13:00Z after it.
        assert_eq!(
            fires("0 9 * * *", "2026-03-06T15:00:00Z", 3),
            ["2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"]
        );
    }

    #[test]
    fn a_daily_local_time_keeps_its_wall_clock_across_the_fall_change() {
        // 09:00 in New York is 13:00Z before 2026-11-01 and 14:00Z after it.
        assert_eq!(
            fires("0 9 * * *", "2026-10-30T15:00:00Z", 3),
            ["2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"]
        );
    }

    #[test]
    fn a_time_inside_the_skipped_hour_fires_once_when_the_gap_ends() {
        // 02:30 does not exist on 2026-03-08 in New York: it fires at 03:00 EDT (07:00Z).
        assert_eq!(fires("30 2 * * *", "2026-03-07T12:00:00Z", 2), ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]);
    }

    #[test]
    fn a_time_inside_the_repeated_hour_fires_once() {
        // 01:30 happens twice on 2026-11-01 (05:30Z EDT, 06:30Z EST): one pass, the first.
        assert_eq!(fires("30 1 * * *", "2026-10-31T12:00:00Z", 2), ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
    }

    #[test]
    fn a_fire_time_is_a_whole_second_strictly_after_even_from_a_fraction() {
        assert_eq!(
            fires("* * * * * *", "2026-06-01T00:00:00.357Z", 2),
            ["2026-06-01T00:00:01Z", "2026-06-01T00:00:02Z"]
        );
        assert_eq!(fires("* * * * * *", "2026-06-01T00:00:01Z", 1), ["2026-06-01T00:00:02Z"]);
    }

    #[test]
    fn six_fields_put_seconds_first_and_other_counts_are_refused() {
        assert_eq!(
            fires("*/20 * * * * *", "2026-06-01T00:00:00Z", 2),
            ["2026-06-01T00:00:20Z", "2026-06-01T00:00:40Z"]
        );
        assert!(parse_schedule("0 3 * *").is_err());
        assert!(parse_schedule("0 0 3 * * * 2026").is_err());
        assert!(parse_schedule("0 25 * * *").is_err());
    }
}
