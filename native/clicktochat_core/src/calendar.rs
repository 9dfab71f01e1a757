//! The archive's calendar: instants as RFC 3339 UTC text with exactly six
//! fractional digits (`2026-11-25T13:12:00.123456Z`), the format of the
//! seed's `current_time` values, both ways, with no time zone database and
//! no dependency.

use std::fmt;

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// The timestamp is not `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    Malformed,
    /// The timestamp has the right shape but names no instant: month 13,
    /// February 30, hour 24, second 60...
    NoSuchTime,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Malformed => f.write_str("timestamp is not YYYY-MM-DDTHH:MM:SS.ffffffZ"),
            TimeError::NoSuchTime => f.write_str("timestamp names no valid date and time"),
        }
    }
}

impl std::error::Error for TimeError {}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_DAY: i64 = MICROS_PER_SECOND * SECONDS_PER_DAY;

/// 0000-01-01T00:00:00.000000Z, the earliest time the format can express.
pub const MIN_UNIX_US: i64 = -62_167_219_200 * MICROS_PER_SECOND;
/// 9999-12-31T23:59:59.999999Z, the latest time the format can express.
pub const MAX_UNIX_US: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

/// `unix_us` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (proleptic Gregorian, UTC).
///
/// The format has four year digits, so times outside
/// [`MIN_UNIX_US`]..=[`MAX_UNIX_US`] are clamped to that range: a wrong
/// clock must not produce an entry that makes a whole archive unreadable.
pub fn format_rfc3339_micros(unix_us: i64) -> String {
    let mut out = String::with_capacity(27);
    push_rfc3339_micros(&mut out, unix_us);
    out
}

/// [`format_rfc3339_micros`] appended to `out`, digit by digit: the
/// archive writes one per message, and `write!` costs several times this.
pub fn push_rfc3339_micros(out: &mut String, unix_us: i64) {
    let unix_us = unix_us.clamp(MIN_UNIX_US, MAX_UNIX_US);
    let days = unix_us.div_euclid(MICROS_PER_DAY);
    let micros_of_day = unix_us.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds_of_day = micros_of_day / MICROS_PER_SECOND;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, value: i64| {
        let mut value = value;
        for slot in text[at..at + width].iter_mut().rev() {
            // Clamped above: every field is non-negative and fits its width.
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, seconds_of_day / 3600);
    put(14, 2, seconds_of_day / 60 % 60);
    put(17, 2, seconds_of_day % 60);
    put(20, 6, micros_of_day % MICROS_PER_SECOND);
    // Only ASCII digits and separators were written.
    out.extend(text.iter().map(|&b| char::from(b)));
}

/// Reads exactly the format [`format_rfc3339_micros`] writes: four-digit
/// year, `T` and `Z` in upper case, six fractional digits, no offset other
/// than `Z`, no leap second.
pub fn parse_rfc3339_micros(s: &str) -> Result<i64, TimeError> {
    let bytes: &[u8; 27] = s.as_bytes().try_into().map_err(|_| TimeError::Malformed)?;
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if separators.iter().any(|&(at, sep)| bytes[at] != sep) {
        return Err(TimeError::Malformed);
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, TimeError> {
        bytes[range].iter().try_fold(0i64, |acc, &b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(TimeError::Malformed)
            }
        })
    };
    let year = number(0..4)?;
    let month = number(5..7)?;
    let day = number(8..10)?;
    let hour = number(11..13)?;
    let minute = number(14..16)?;
    let second = number(17..19)?;
    let micros = number(20..26)?;
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(TimeError::NoSuchTime);
    }
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Ok(seconds * MICROS_PER_SECOND + micros)
}

/// Whether `year` (proleptic Gregorian) has a February 29.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// How many days `month` (1-12) of `year` has.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Civil (proleptic Gregorian) date <-> days since 1970-01-01, after Howard
// Hinnant's "chrono-Compatible Low-Level Date Algorithms". The year is
// shifted to start in March so that the leap day is the last day of the
// year, and counted in 400-year eras of 146097 days.

/// Days from 0000-03-01 to 1970-01-01.
const DAYS_FROM_MARCH_0000_TO_EPOCH: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - DAYS_FROM_MARCH_0000_TO_EPOCH
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + DAYS_FROM_MARCH_0000_TO_EPOCH;
    let era = days.div_euclid(DAYS_PER_ERA);
    let day_of_era = days.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = (month_from_march + 2) % 12 + 1;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1, "1970-01-01T00:00:00.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
            (951_868_800_000_000, "2000-03-01T00:00:00.000000Z"),
            (1_795_612_320_123_456, "2026-11-25T13:12:00.123456Z"),
            (-2_208_988_800_000_000, "1900-01-01T00:00:00.000000Z"),
            (-5_364_662_400_000_000, "1800-01-01T00:00:00.000000Z"),
            (-14_182_940_000_000, "1969-07-20T20:17:40.000000Z"),
            (MIN_UNIX_US, "0000-01-01T00:00:00.000000Z"),
            (MAX_UNIX_US, "9999-12-31T23:59:59.999999Z"),
        ];
        for (unix_us, text) in cases {
            assert_eq!(format_rfc3339_micros(unix_us), text, "{unix_us}");
            assert_eq!(parse_rfc3339_micros(text), Ok(unix_us), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_time_reads_back_as_written(unix_us in proptest::num::i64::ANY) {
            let text = format_rfc3339_micros(unix_us);
            proptest::prop_assert_eq!(
                parse_rfc3339_micros(&text),
                Ok(unix_us.clamp(MIN_UNIX_US, MAX_UNIX_US))
            );
        }
    }

    #[test]
    fn clamps_times_the_format_cannot_express() {
        assert_eq!(
            format_rfc3339_micros(i64::MIN),
            "0000-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            format_rfc3339_micros(i64::MAX),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            format_rfc3339_micros(MAX_UNIX_US + 1),
            "9999-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn rejects_other_time_formats() {
        for text in [
            "",
            "2026-11-25T13:12:00Z",
            "2026-11-25T13:12:00.123Z",
            "2026-11-25T13:12:00.1234567Z",
            "2026-11-25t13:12:00.123456Z",
            "2026-11-25T13:12:00.123456z",
            "2026-11-25 13:12:00.123456Z",
            "2026-11-25T13:12:00.123456+00:00",
            "+2026-11-25T13:12:00.12345Z",
            "-001-11-25T13:12:00.123456Z",
            "2026-1-125T13:12:00.123456Z",
            "2026-11-25T13:12:00,123456Z",
            "2026-11-25T13:12:0x.123456Z",
            "2026-11-25T13:12:00.12345 Z",
            "2026-11-25T13:12:00.12345éZ",
        ] {
            assert_eq!(
                parse_rfc3339_micros(text),
                Err(TimeError::Malformed),
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_times_that_do_not_exist() {
        for text in [
            "2026-00-01T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-01-00T00:00:00.000000Z",
            "2026-01-32T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
            "2023-02-29T00:00:00.000000Z",
            "1900-02-29T00:00:00.000000Z",
            "2026-01-01T24:00:00.000000Z",
            "2026-01-01T00:60:00.000000Z",
            "2016-12-31T23:59:60.000000Z",
        ] {
            assert_eq!(
                parse_rfc3339_micros(text),
                Err(TimeError::NoSuchTime),
                "{text:?}"
            );
        }
        assert!(parse_rfc3339_micros("2024-02-29T00:00:00.000000Z").is_ok());
        assert!(parse_rfc3339_micros("2000-02-29T00:00:00.000000Z").is_ok());
    }
}
