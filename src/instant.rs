//! Reading instants, dates and calendar spans as users and host databases write them.
//!
//! Owns three small grammars: the timestamps a host database may return as text
//! (`2026-06-15 12:00:00`, with or without `T`, fraction and offset; no offset means UTC),
//! the ISO 8601 date literals of configs and formulas (`YYYY` … `YYYY-MM-DDThh:mm:ss.sTZD`;
//! no zone means the evaluation timezone, a partial date means its first instant), and
//! calendar spans (`3 months`). Everything is in microseconds since the Unix epoch, UTC,
//! which is how the evaluator stores instants in its frames.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::fmt;

/// Microseconds in one second.
pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// A parsed ISO 8601 stamp: the wall-clock reading and, if it was written, its UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoStamp {
    pub wall: NaiveDateTime,
    pub offset_seconds: Option<i32>,
}

impl IsoStamp {
    /// The instant, reading a stamp without offset in `tz`.
    pub fn resolve(&self, tz: &Tz) -> DateTime<Utc> {
        match self.offset_seconds {
            Some(offset) => (self.wall - Duration::seconds(i64::from(offset))).and_utc(),
            None => local_to_utc(self.wall, tz),
        }
    }
}

/// The instant a local wall-clock reading names. An ambiguous reading (the repeated hour when
/// clocks go back) is its earlier instant; a reading inside a gap (clocks go forward) is the
/// instant the gap ends, so "midnight" on a day that skips midnight still means that day.
pub fn local_to_utc(wall: NaiveDateTime, tz: &Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps start on a whole minute and last at most a few hours: the first valid
            // whole minute after the reading is where the gap ends.
            let mut probe = wall
                - Duration::seconds(i64::from(wall.second()))
                - Duration::nanoseconds(i64::from(wall.nanosecond()));
            for _ in 0..(48 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            wall.and_utc()
        }
    }
}

/// Microseconds since the epoch for an instant.
pub fn to_micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

/// The instant for microseconds since the epoch, if representable.
pub fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// Formats an instant the way the evaluator writes it everywhere: RFC 3339 in UTC, seconds
/// precision unless there is a fraction.
pub fn format_utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Parses a timestamp as a host database returns it in text, UTC unless it carries an offset.
/// A date alone (`2026-10-01`) is a calendar date, with no zone: local midnight in `tz`.
/// Returns microseconds since the epoch.
pub fn parse_source_timestamp(text: &str, tz: &Tz) -> Option<i64> {
    let text = text.trim();
    let stamp = parse_iso(text, true).ok()?;
    if !text.contains([':', 'T', 't']) {
        return Some(local_midnight(stamp.wall.date(), tz));
    }
    let offset = i64::from(stamp.offset_seconds.unwrap_or(0));
    Some(stamp.wall.and_utc().timestamp_micros() - offset * MICROS_PER_SECOND)
}

/// Microseconds since the epoch of a calendar date's first instant in `tz` (its midnight, or
/// the end of a gap that skips midnight).
pub fn local_midnight(date: NaiveDate, tz: &Tz) -> i64 {
    local_to_utc(date.and_time(NaiveTime::MIN), tz).timestamp_micros()
}

/// Parses an ISO 8601 date literal of a config or formula, reading it in `tz` when it has no
/// zone designator.
pub fn parse_date_literal(text: &str, tz: &Tz) -> Result<DateTime<Utc>, String> {
    parse_iso(text.trim(), false).map(|stamp| stamp.resolve(tz))
}

/// Parses the `--as-of` option: RFC 3339, integer epoch seconds (more than four digits, so
/// that `2026` stays a year), or any date literal (read in `tz`).
pub fn parse_as_of(text: &str, tz: &Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.len() > 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or_else(|| format!("'{text}' is out of range for epoch seconds"));
    }
    parse_date_literal(text, tz).map_err(|e| format!("{e}; or give epoch seconds such as 1767225600"))
}

/// The ISO 8601 grammar shared by source text and literals. `lenient` (source text) also
/// allows a space for `T`, seconds-less and zone-less times, and `+hhmm`/`+hh` offsets;
/// literals allow the documented forms and, as a convenience, a space for `T`.
pub fn parse_iso(text: &str, lenient: bool) -> Result<IsoStamp, String> {
    let mut cur = Cursor { bytes: text.as_bytes(), pos: 0 };
    let expected = "expected an ISO 8601 date such as 2026-11-01, 2026-11 or 2026-11-01T09:30:00Z";
    let year = cur.digits(4).ok_or(expected)? as i32;
    let (month, day) = if cur.eat(b'-') {
        let month = cur.digits(2).ok_or(expected)?;
        let day = if cur.eat(b'-') { cur.digits(2).ok_or(expected)? } else { 1 };
        (month, day)
    } else {
        (1, 1)
    };
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| format!("'{text}' is not a calendar date"))?;
    let mut time = NaiveTime::MIN;
    let mut offset_seconds = None;
    if cur.eat(b'T') || cur.eat(b't') || (cur.peek() == Some(b' ') && cur.eat(b' ')) {
        time =
            parse_time(&mut cur).ok_or_else(|| format!("'{text}': expected a time hh:mm[:ss[.s]] after the date"))?;
        offset_seconds = parse_zone(&mut cur, lenient).map_err(|e| format!("'{text}': {e}"))?;
    }
    if !cur.at_end() {
        return Err(format!("'{text}': {expected}"));
    }
    Ok(IsoStamp { wall: date.and_time(time), offset_seconds })
}

fn parse_time(cur: &mut Cursor) -> Option<NaiveTime> {
    let hour = cur.digits(2)?;
    if !cur.eat(b':') {
        return None;
    }
    let minute = cur.digits(2)?;
    let (second, micros) = if cur.eat(b':') {
        let second = cur.digits(2)?;
        let micros = if cur.eat(b'.') || cur.eat(b',') { cur.fraction_micros()? } else { 0 };
        (second, micros)
    } else {
        (0, 0)
    };
    NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
}

fn parse_zone(cur: &mut Cursor, lenient: bool) -> Result<Option<i32>, String> {
    if lenient {
        cur.skip_spaces();
    }
    match cur.peek() {
        None => Ok(None),
        Some(b'Z' | b'z') => {
            cur.pos += 1;
            Ok(Some(0))
        }
        Some(sign @ (b'+' | b'-')) => {
            cur.pos += 1;
            let bad = "expected a zone designator Z, +hh:mm or -hh:mm";
            let hours = cur.digits(2).ok_or(bad)? as i32;
            let minutes = if cur.eat(b':') {
                cur.digits(2).ok_or(bad)? as i32
            } else if lenient {
                cur.digits(2).unwrap_or(0) as i32
            } else {
                return Err(bad.to_string());
            };
            if hours > 23 || minutes > 59 {
                return Err(bad.to_string());
            }
            let total = hours * 3600 + minutes * 60;
            Ok(Some(if sign == b'-' { -total } else { total }))
        }
        Some(_) if lenient && cur.rest().eq_ignore_ascii_case(b"UTC") => {
            cur.pos = cur.bytes.len();
            Ok(Some(0))
        }
        Some(_) => Err("expected a zone designator Z, +hh:mm or -hh:mm".to_string()),
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    fn rest(&self) -> &[u8] {
        &self.bytes[self.pos.min(self.bytes.len())..]
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }
    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }
    /// One or more digits of a decimal fraction, truncated to microseconds.
    fn fraction_micros(&mut self) -> Option<u32> {
        let start = self.pos;
        let mut micros = 0u32;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos - start < 6 {
                micros = micros * 10 + u32::from(b - b'0');
            }
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 {
            return None;
        }
        for _ in len..6 {
            micros *= 10;
        }
        Some(micros)
    }
}

/// `N seconds|minutes|hours|days` (singular or plural, any case) as a fixed duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: expected 'N seconds', 'N minutes', 'N hours' or 'N days'");
    let mut parts = text.split_whitespace();
    let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let count: i64 = count.parse().ok().filter(|n| (0..=366 * 24 * 3600).contains(n)).ok_or_else(bad)?;
    let seconds = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return Err(bad()),
    };
    Duration::try_seconds(count * seconds).filter(|d| *d <= Duration::days(366)).ok_or_else(bad)
}

/// A calendar unit of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CalendarUnit {
    Days,
    Weeks,
    Months,
    Years,
}

/// `N days|weeks|months|years`, added on the calendar (a month after January 31 is the last
/// day of February).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CalendarSpan {
    pub count: u32,
    pub unit: CalendarUnit,
}

impl CalendarSpan {
    /// Parses `N unit`, the unit singular or plural, any case: `1 year`, `30 days`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not a span: expected 'N days', 'N weeks', 'N months' or 'N years'");
        let mut parts = text.split_whitespace();
        let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let count: u32 = count.parse().map_err(|_| bad())?;
        let unit = match unit.to_ascii_lowercase().as_str() {
            "day" | "days" => CalendarUnit::Days,
            "week" | "weeks" => CalendarUnit::Weeks,
            "month" | "months" => CalendarUnit::Months,
            "year" | "years" => CalendarUnit::Years,
            _ => return Err(bad()),
        };
        Ok(CalendarSpan { count, unit })
    }

    /// The span in Polars' duration language, for `dt().offset_by`.
    pub fn polars_offset(&self) -> String {
        let suffix = match self.unit {
            CalendarUnit::Days => "d",
            CalendarUnit::Weeks => "w",
            CalendarUnit::Months => "mo",
            CalendarUnit::Years => "y",
        };
        format!("{}{suffix}", self.count)
    }

    /// Adds the span to a wall-clock reading; `None` past the representable range.
    pub fn add_to(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let months = |n: u32| wall.checked_add_months(chrono::Months::new(n));
        match self.unit {
            CalendarUnit::Days => wall.checked_add_signed(Duration::days(i64::from(self.count))),
            CalendarUnit::Weeks => wall.checked_add_signed(Duration::weeks(i64::from(self.count))),
            CalendarUnit::Months => months(self.count),
            CalendarUnit::Years => months(self.count.checked_mul(12)?),
        }
    }

    /// Subtracts the span from a wall-clock reading, as [`CalendarSpan::add_to`] adds it (a
    /// month before March 31 is the last day of February); `None` past the representable range.
    pub fn subtract_from(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let months = |n: u32| wall.checked_sub_months(chrono::Months::new(n));
        match self.unit {
            CalendarUnit::Days => wall.checked_sub_signed(Duration::days(i64::from(self.count))),
            CalendarUnit::Weeks => wall.checked_sub_signed(Duration::weeks(i64::from(self.count))),
            CalendarUnit::Months => months(self.count),
            CalendarUnit::Years => months(self.count.checked_mul(12)?),
        }
    }
}

impl fmt::Display for CalendarSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            CalendarUnit::Days => "day",
            CalendarUnit::Weeks => "week",
            CalendarUnit::Months => "month",
            CalendarUnit::Years => "year",
        };
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {unit}{plural}", self.count)
    }
}

impl<'de> serde::Deserialize<'de> for CalendarSpan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CalendarSpan::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for CalendarSpan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// The UTC offsets of `tz` over `[from, to]` (µs since the epoch): the offset at `from`, then
/// each change as `(instant it takes effect, new offset)`, all in µs. Lets a whole column be
/// shifted to local time with a few comparisons instead of a zone lookup per value.
pub fn offset_changes(tz: &Tz, from: i64, to: i64) -> (i64, Vec<(i64, i64)>) {
    // Zones change offset at most a few times a year, never twice within a day: scan in steps
    // of a day and find each change to the second by bisection.
    const STEP: i64 = 86_400 * MICROS_PER_SECOND;
    let offset_at = |micros: i64| -> i64 {
        from_micros(micros)
            .map_or(0, |t| i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()))
            * MICROS_PER_SECOND
    };
    let first = offset_at(from);
    let mut changes = Vec::new();
    let (mut at, mut offset) = (from, first);
    while at < to {
        let next = (at + STEP).min(to);
        let next_offset = offset_at(next);
        if next_offset != offset {
            // The change happens in (at, next]: bisect to the first second with the new offset.
            let (mut lo, mut hi) = (at, next);
            while hi - lo > MICROS_PER_SECOND {
                let mid = lo + (hi - lo) / 2;
                if offset_at(mid) == offset { lo = mid } else { hi = mid }
            }
            changes.push((hi - hi.rem_euclid(MICROS_PER_SECOND), next_offset));
            offset = next_offset;
        }
        at = next;
    }
    (first, changes)
}

/// The calendar date `days` after 1970-01-01.
pub fn date_from_days(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(Duration::days(days))
}

/// The month key `year * 12 + month - 1` as `YYYY-MM`.
pub fn month_label(key: i64) -> String {
    format!("{:04}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_micros()).unwrap_or(i64::MIN)
    }

    #[test]
    fn source_text_without_offset_is_utc() {
        assert_eq!(parse_source_timestamp("2026-06-15 12:00:00", &Tz::UTC), Some(micros("2026-06-15T12:00:00Z")));
        assert_eq!(parse_source_timestamp("2026-06-15T12:00:00", &Tz::UTC), Some(micros("2026-06-15T12:00:00Z")));
    }

    #[test]
    fn source_text_keeps_fraction_and_offset() {
        assert_eq!(
            parse_source_timestamp("2026-06-15 12:00:00.250+02:00", &Tz::UTC),
            Some(micros("2026-06-15T10:00:00.25Z"))
        );
        assert_eq!(parse_source_timestamp("2026-06-15T12:00:00Z", &Tz::UTC), Some(micros("2026-06-15T12:00:00Z")));
        assert_eq!(parse_source_timestamp("2026-06-15 12:00:00+0530", &Tz::UTC), Some(micros("2026-06-15T06:30:00Z")));
        assert_eq!(parse_source_timestamp("2026-06-15 12:00:00 UTC", &Tz::UTC), Some(micros("2026-06-15T12:00:00Z")));
        assert_eq!(parse_source_timestamp("2026-06-15", &Tz::UTC), Some(micros("2026-06-15T00:00:00Z")));
    }

    #[test]
    fn source_text_that_is_not_a_timestamp_is_rejected() {
        for bad in ["yesterday", "2026-13-01", "2026-06-15 25:00", "15/06/2026", ""] {
            assert_eq!(parse_source_timestamp(bad, &Tz::UTC), None, "{bad}");
        }
    }

    #[test]
    fn every_documented_literal_form_parses() {
        let tz: Tz = "UTC".parse().unwrap_or(Tz::UTC);
        let cases = [
            ("1997", "1997-01-01T00:00:00Z"),
            ("1997-07", "1997-07-01T00:00:00Z"),
            ("1997-07-16", "1997-07-16T00:00:00Z"),
            ("1997-07-16T19:20+01:00", "1997-07-16T18:20:00Z"),
            ("1997-07-16T19:20:30+01:00", "1997-07-16T18:20:30Z"),
            ("1997-07-16T19:20:30.45+01:00", "1997-07-16T18:20:30.45Z"),
            ("1997-07-16T19:20:30Z", "1997-07-16T19:20:30Z"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_date_literal(text, &tz).map(to_micros), Ok(micros(want)), "{text}");
        }
    }

    #[test]
    fn literal_without_zone_is_read_in_the_evaluation_timezone() {
        let tz: Tz = chrono_tz::America::New_York;
        assert_eq!(parse_date_literal("2026-11-01", &tz).map(to_micros), Ok(micros("2026-11-01T04:00:00Z")));
    }

    #[test]
    fn local_midnight_inside_a_dst_gap_is_the_end_of_the_gap() {
        // Santiago skips 00:00-01:00 local on 2026-09-06.
        let tz: Tz = chrono_tz::America::Santiago;
        let wall = NaiveDate::from_ymd_opt(2026, 9, 6).and_then(|d| d.and_hms_opt(0, 0, 0));
        let got = wall.map(|w| local_to_utc(w, &tz).with_timezone(&tz).naive_local());
        assert_eq!(got, NaiveDate::from_ymd_opt(2026, 9, 6).and_then(|d| d.and_hms_opt(1, 0, 0)));
    }

    #[test]
    fn spans_parse_in_singular_and_plural_and_add_on_the_calendar() {
        assert_eq!(CalendarSpan::parse("1 years"), Ok(CalendarSpan { count: 1, unit: CalendarUnit::Years }));
        assert_eq!(CalendarSpan::parse("3 Month"), Ok(CalendarSpan { count: 3, unit: CalendarUnit::Months }));
        assert!(CalendarSpan::parse("3").is_err());
        assert!(CalendarSpan::parse("three days").is_err());
        let jan31 = NaiveDate::from_ymd_opt(2026, 1, 31).and_then(|d| d.and_hms_opt(10, 0, 0));
        let span = CalendarSpan { count: 1, unit: CalendarUnit::Months };
        assert_eq!(
            jan31.and_then(|w| span.add_to(w)),
            NaiveDate::from_ymd_opt(2026, 2, 28).and_then(|d| d.and_hms_opt(10, 0, 0))
        );
    }

    #[test]
    fn offset_changes_find_both_2026_transitions_of_new_york_to_the_second() {
        let tz = chrono_tz::America::New_York;
        let (first, changes) = offset_changes(&tz, micros("2026-01-01T00:00:00Z"), micros("2027-01-01T00:00:00Z"));
        let hour = 3_600 * MICROS_PER_SECOND;
        assert_eq!(first, -5 * hour);
        assert_eq!(
            changes,
            vec![(micros("2026-03-08T07:00:00Z"), -4 * hour), (micros("2026-11-01T06:00:00Z"), -5 * hour)]
        );
        assert_eq!(offset_changes(&Tz::UTC, 0, micros("2027-01-01T00:00:00Z")), (0, vec![]));
    }
}
