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

use crate::calendar::{parse_rfc3339_micros, push_rfc3339_micros, TimeError};
use std::fmt;

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

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The `current_time` value is not a time this format writes.
    Time(TimeError),
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
            CodecError::Time(error) => error.fmt(f),
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

// `Time` displays its `TimeError` as its own message, so it names no source.
impl std::error::Error for CodecError {}

impl From<TimeError> for CodecError {
    fn from(error: TimeError) -> Self {
        CodecError::Time(error)
    }
}

/// The field names, in the order the format requires.
const FIELD_NAMES: [&str; 4] = ["current_time", "from", "to", "msg"];

impl Entry {
    /// The entry in the seed's format. Times outside years 0000..=9999 are
    /// clamped (see [`crate::calendar::format_rfc3339_micros`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + self.from.len() + self.to.len() + self.msg.len());
        encode_entry_into(&mut out, self.time_us, &self.from, &self.to, &self.msg);
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

/// An entry of these fields in the seed's format ([`Entry::encode`]),
/// appended to `out`, for a writer that holds them elsewhere than in an
/// [`Entry`].
pub fn encode_entry_into(out: &mut String, time_us: i64, from: &str, to: &str, msg: &str) {
    out.push_str("|current_time^");
    push_rfc3339_micros(out, time_us);
    out.push_str("|from^");
    push_escaped(out, from);
    out.push_str("|to^");
    push_escaped(out, to);
    out.push_str("|msg^");
    push_escaped(out, msg);
    out.push('|');
}

/// The entries of a run of encoded entries written one after the other
/// (`|current_time^...|msg^...||current_time^...|`), each for
/// [`Entry::decode`]. Every entry has exactly five raw `|` (values escape
/// theirs), so the run splits after every fifth; a malformed run yields a
/// piece that does not decode.
pub fn split_entries(run: &str) -> impl Iterator<Item = &str> {
    let mut rest = run;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .match_indices('|')
            .nth(4)
            .map_or(rest.len(), |(at, _)| at + 1);
        let (entry, after) = rest.split_at(end);
        rest = after;
        Some(entry)
    })
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

/// Copies `value` in runs between the three special characters (all ASCII,
/// so never inside a multi-byte character), not character by character.
fn push_escaped(out: &mut String, value: &str) {
    // Bytes rather than `str::find` with a set of chars, which decodes
    // every char (the archive writer's largest cost, in perf).
    let special = |b: &u8| matches!(b, b'%' | b'|' | b'^');
    let mut rest = value;
    while let Some(at) = rest.as_bytes().iter().position(special) {
        let (plain, from_special) = rest.split_at(at);
        out.push_str(plain);
        out.push_str(match from_special.as_bytes().first() {
            Some(b'%') => "%25",
            Some(b'|') => "%7C",
            _ => "%5E",
        });
        rest = from_special.get(1..).unwrap_or_default();
    }
    out.push_str(rest);
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
                CodecError::Time(TimeError::Malformed),
            ),
            (
                "|current_time^1970-02-30T00:00:00.000000Z|from^a|to^b|msg^c|".into(),
                CodecError::Time(TimeError::NoSuchTime),
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

    #[test]
    fn a_run_of_entries_splits_into_its_entries() {
        let entries = [
            entry(1, "a@h", "v@c", "plain"),
            entry(2, "v@c", "a@h", "| ^ % and a\nnew line"),
            entry(3, "a@h", "v@c", ""),
        ];
        let run: String = entries.iter().map(Entry::encode).collect();
        let back: Vec<Entry> = split_entries(&run)
            .map(|piece| Entry::decode(piece).expect("decodes"))
            .collect();
        assert_eq!(back, entries);
        assert_eq!(split_entries("").count(), 0);
        let cut = &run[..run.len() - 3];
        assert!(split_entries(cut).any(|piece| Entry::decode(piece).is_err()));
    }
}
