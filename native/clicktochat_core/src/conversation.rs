//! One message entry of the conversation archive, in the seed's text format:
//!
//! ```text
//! |current_time^2026-11-25T13:12:00.123456Z|from^v@clients.localhost|to^agent1@helpdesk.localhost|msg^hello|
//! ```
//!
//! Fields are separated by `|`, a field's name and value by `^`. The time is
//! RFC 3339 UTC with exactly six fractional digits. Values are escaped so that
//! any text round-trips exactly: `%` -> `%25`, `|` -> `%7C`, `^` -> `%5E`, and
//! nothing else, so a reader of the archive sees messages as they were typed.
//!
//! Entries come back from storage that other programs may have written, so
//! decoding is strict: exactly the four fields in order, well-formed escapes,
//! and only the time format we write. Every failure is a [`CodecError`].

use std::fmt::{self, Write as _};

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// When it was recorded: microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    /// Sender's JID.
    pub from: String,
    /// Recipient's JID.
    pub to: String,
    /// The message body.
    pub msg: String,
}

/// Why an entry or a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The timestamp is not `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    MalformedTime,
    /// The timestamp has the right shape but names no instant: month 13,
    /// February 30, hour 24, second 60...
    NoSuchTime,
    /// The entry does not begin and end with `|`.
    NotFramed,
    /// The entry does not have exactly four fields.
    FieldCount { found: usize },
    /// A field has no `^` between its name and its value.
    MissingCaret { position: usize },
    /// The field at this position is not the one the format puts there.
    UnexpectedField { expected: &'static str },
    /// A value contains a `^` that is not escaped.
    StrayCaret { field: &'static str },
    /// A `%` in a value is not followed by `25`, `7C` or `5E`.
    BadEscape { field: &'static str },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::MalformedTime => {
                f.write_str("timestamp is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
            }
            CodecError::NoSuchTime => f.write_str("timestamp names no valid date and time"),
            CodecError::NotFramed => f.write_str("entry does not begin and end with '|'"),
            CodecError::FieldCount { found } => {
                write!(f, "entry has {found} fields, expected 4")
            }
            CodecError::MissingCaret { position } => {
                write!(f, "field {position} has no '^' between name and value")
            }
            CodecError::UnexpectedField { expected } => {
                write!(f, "expected field {expected:?} at its position")
            }
            CodecError::StrayCaret { field } => {
                write!(f, "value of {field:?} contains an unescaped '^'")
            }
            CodecError::BadEscape { field } => write!(
                f,
                "value of {field:?} has a '%' not followed by 25, 7C or 5E"
            ),
        }
    }
}

impl std::error::Error for CodecError {}

/// The field names, in the order the format requires.
const FIELD_NAMES: [&str; 4] = ["current_time", "from", "to", "msg"];

impl Entry {
    /// The entry in the seed's format. Times outside years 0000..=9999 are
    /// clamped (see [`format_rfc3339_micros`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + self.from.len() + self.to.len() + self.msg.len());
        out.push_str("|current_time^");
        out.push_str(&format_rfc3339_micros(self.time_us));
        out.push_str("|from^");
        push_escaped(&mut out, &self.from);
        out.push_str("|to^");
        push_escaped(&mut out, &self.to);
        out.push_str("|msg^");
        push_escaped(&mut out, &self.msg);
        out.push('|');
        out
    }

    /// Reads one entry written by [`Entry::encode`] (or the seed).
    pub fn decode(s: &str) -> Result<Entry, CodecError> {
        let inner = s
            .strip_prefix('|')
            .and_then(|rest| rest.strip_suffix('|'))
            .ok_or(CodecError::NotFramed)?;
        // Values never contain a raw `|` (it is escaped), so splitting on it
        // cannot cut a value in two.
        let mut fields = inner.split('|');
        let (Some(time), Some(from), Some(to), Some(msg), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(CodecError::FieldCount {
                found: inner.split('|').count(),
            });
        };
        let time = field_value(time, 0)?;
        let time_us = parse_rfc3339_micros(time)?;
        let from = unescape(field_value(from, 1)?, FIELD_NAMES[1])?;
        let to = unescape(field_value(to, 2)?, FIELD_NAMES[2])?;
        let msg = unescape(field_value(msg, 3)?, FIELD_NAMES[3])?;
        Ok(Entry {
            time_us,
            from,
            to,
            msg,
        })
    }
}

/// The still-escaped value of the field at `position`, after checking its name.
fn field_value(field: &str, position: usize) -> Result<&str, CodecError> {
    let (name, value) = field
        .split_once('^')
        .ok_or(CodecError::MissingCaret { position })?;
    let expected = FIELD_NAMES[position];
    if name != expected {
        return Err(CodecError::UnexpectedField { expected });
    }
    Ok(value)
}

fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            '^' => out.push_str("%5E"),
            other => out.push(other),
        }
    }
}

fn unescape(value: &str, field: &'static str) -> Result<String, CodecError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(['%', '^']) {
        let (plain, special) = rest.split_at(at);
        out.push_str(plain);
        let Some(after_percent) = special.strip_prefix('%') else {
            return Err(CodecError::StrayCaret { field });
        };
        // `get` rather than slicing: the two bytes after `%` may be missing
        // or cut a multi-byte character.
        let decoded = match after_percent.get(..2) {
            Some("25") => '%',
            Some("7C" | "7c") => '|',
            Some("5E" | "5e") => '^',
            _ => return Err(CodecError::BadEscape { field }),
        };
        out.push(decoded);
        rest = after_percent.get(2..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

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
    let unix_us = unix_us.clamp(MIN_UNIX_US, MAX_UNIX_US);
    let days = unix_us.div_euclid(MICROS_PER_DAY);
    let micros_of_day = unix_us.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds_of_day = micros_of_day / MICROS_PER_SECOND;
    let mut out = String::with_capacity(27);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
        micros_of_day % MICROS_PER_SECOND,
    );
    out
}

/// Reads exactly the format [`format_rfc3339_micros`] writes: four-digit
/// year, `T` and `Z` in upper case, six fractional digits, no offset other
/// than `Z`, no leap second.
pub fn parse_rfc3339_micros(s: &str) -> Result<i64, CodecError> {
    let bytes: &[u8; 27] = s
        .as_bytes()
        .try_into()
        .map_err(|_| CodecError::MalformedTime)?;
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
        return Err(CodecError::MalformedTime);
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, CodecError> {
        bytes[range].iter().try_fold(0i64, |acc, &b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(CodecError::MalformedTime)
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
        return Err(CodecError::NoSuchTime);
    }
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Ok(seconds * MICROS_PER_SECOND + micros)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
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

    fn entry(time_us: i64, from: &str, to: &str, msg: &str) -> Entry {
        Entry {
            time_us,
            from: from.to_owned(),
            to: to.to_owned(),
            msg: msg.to_owned(),
        }
    }

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
                Err(CodecError::MalformedTime),
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
                Err(CodecError::NoSuchTime),
                "{text:?}"
            );
        }
        assert!(parse_rfc3339_micros("2024-02-29T00:00:00.000000Z").is_ok());
        assert!(parse_rfc3339_micros("2000-02-29T00:00:00.000000Z").is_ok());
    }

    #[test]
    fn encodes_the_seed_format() {
        let e = entry(
            1_795_612_320_123_456,
            "v@clients.localhost",
            "agent1@helpdesk.localhost",
            "hello",
        );
        let text = "|current_time^2026-11-25T13:12:00.123456Z|from^v@clients.localhost|to^agent1@helpdesk.localhost|msg^hello|";
        assert_eq!(e.encode(), text);
        assert_eq!(Entry::decode(text), Ok(e));
    }

    #[test]
    fn escapes_only_the_three_specials() {
        let e = entry(0, "a|b", "c^d", "100% <b>&amp;</b>\nnext line é€ 🙂 %7C");
        let text = e.encode();
        assert_eq!(
            text,
            "|current_time^1970-01-01T00:00:00.000000Z|from^a%7Cb|to^c%5Ed|msg^100%25 <b>&amp;</b>\nnext line é€ 🙂 %257C|"
        );
        assert_eq!(Entry::decode(&text), Ok(e));
    }

    #[test]
    fn accepts_lowercase_escapes() {
        let text = "|current_time^1970-01-01T00:00:00.000000Z|from^a%7cb|to^c%5ed|msg^%25|";
        assert_eq!(Entry::decode(text), Ok(entry(0, "a|b", "c^d", "%")));
    }

    #[test]
    fn empty_values_round_trip() {
        let e = entry(0, "", "", "");
        assert_eq!(
            e.encode(),
            "|current_time^1970-01-01T00:00:00.000000Z|from^|to^|msg^|"
        );
        assert_eq!(Entry::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn rejects_malformed_entries() {
        const T: &str = "current_time^1970-01-01T00:00:00.000000Z";
        let cases: Vec<(String, CodecError)> = vec![
            (String::new(), CodecError::NotFramed),
            ("|".into(), CodecError::NotFramed),
            (format!("{T}|from^a|to^b|msg^c|"), CodecError::NotFramed),
            (format!("|{T}|from^a|to^b|msg^c"), CodecError::NotFramed),
            (
                format!("|{T}|from^a|to^b|"),
                CodecError::FieldCount { found: 3 },
            ),
            (
                format!("|{T}|from^a|to^b|msg^c|extra^d|"),
                CodecError::FieldCount { found: 5 },
            ),
            (
                format!("|{T}|from^a|to^b|msg^c||"),
                CodecError::FieldCount { found: 5 },
            ),
            (
                format!("|{T}|from^a|to^b|msgc|"),
                CodecError::MissingCaret { position: 3 },
            ),
            (
                format!("|{T}|to^a|from^b|msg^c|"),
                CodecError::UnexpectedField { expected: "from" },
            ),
            (
                format!("|{T}|From^a|to^b|msg^c|"),
                CodecError::UnexpectedField { expected: "from" },
            ),
            (
                "|time^1970-01-01T00:00:00.000000Z|from^a|to^b|msg^c|".into(),
                CodecError::UnexpectedField {
                    expected: "current_time",
                },
            ),
            (
                format!("|{T}|from^a|to^b|msg^c^d|"),
                CodecError::StrayCaret { field: "msg" },
            ),
            (
                format!("|{T}|from^a|to^b|msg^100%|"),
                CodecError::BadEscape { field: "msg" },
            ),
            (
                format!("|{T}|from^a|to^b|msg^%2|"),
                CodecError::BadEscape { field: "msg" },
            ),
            (
                format!("|{T}|from^a|to^b|msg^%20|"),
                CodecError::BadEscape { field: "msg" },
            ),
            (
                format!("|{T}|from^a%é|to^b|msg^c|"),
                CodecError::BadEscape { field: "from" },
            ),
            (
                format!("|{T}|from^a|to^%7|msg^c|"),
                CodecError::BadEscape { field: "to" },
            ),
            (
                "|current_time^1970-01-01T00:00:00Z|from^a|to^b|msg^c|".into(),
                CodecError::MalformedTime,
            ),
            (
                "|current_time^1970-02-30T00:00:00.000000Z|from^a|to^b|msg^c|".into(),
                CodecError::NoSuchTime,
            ),
        ];
        for (text, error) in cases {
            assert_eq!(Entry::decode(&text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn errors_display_what_is_wrong() {
        assert_eq!(
            CodecError::BadEscape { field: "msg" }.to_string(),
            "value of \"msg\" has a '%' not followed by 25, 7C or 5E"
        );
        assert_eq!(
            CodecError::FieldCount { found: 3 }.to_string(),
            "entry has 3 fields, expected 4"
        );
    }
}
