//! Property tests of the message entry codec: any text round-trips, any
//! representable instant round-trips, the date arithmetic agrees with a naive
//! day-counting reference, and no input makes a decoder panic.

use clicktochat_core::calendar::{
    days_in_month, format_rfc3339_micros, is_leap_year, parse_rfc3339_micros, MAX_UNIX_US,
    MIN_UNIX_US,
};
use clicktochat_core::conversation::Entry;
use proptest::prelude::*;

mod common;
use common::{entry, instant, text};

/// Days from 1970-01-01 to the date, counted year by year and month by
/// month: slow, but obviously right. (The month lengths are the calendar's
/// own, which its unit tests check; the counting is what is independent of
/// the era arithmetic under test.)
fn naive_days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year_days = |y: i64| if is_leap_year(y) { 366 } else { 365 };
    let whole_years: i64 = if year >= 1970 {
        (1970..year).map(year_days).sum()
    } else {
        -(year..1970).map(year_days).sum::<i64>()
    };
    let whole_months: i64 = (1..month).map(|m| days_in_month(year, m)).sum();
    whole_years + whole_months + day - 1
}

/// A valid calendar date and time of day, as fields.
fn civil_fields() -> impl Strategy<Value = (i64, i64, i64, i64, i64, i64, i64)> {
    (0i64..=9999, 1i64..=12)
        .prop_flat_map(|(year, month)| {
            (
                Just(year),
                Just(month),
                1..=days_in_month(year, month),
                0i64..24,
                0i64..60,
                0i64..60,
                0i64..1_000_000,
            )
        })
        .boxed()
}

/// The date part of a formatted instant.
fn date_of(text: &str) -> (i64, i64, i64) {
    let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    (field(0..4), field(5..7), field(8..10))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn entries_round_trip(e in entry()) {
        let encoded = e.encode();
        prop_assert_eq!(Entry::decode(&encoded), Ok(e));
    }

    #[test]
    fn escaped_values_hold_no_separators(e in entry()) {
        // Exactly the framing separators remain: 5 `|` and one `^` per field.
        let encoded = e.encode();
        prop_assert_eq!(encoded.matches('|').count(), 5);
        prop_assert_eq!(encoded.matches('^').count(), 4);
    }

    #[test]
    fn instants_round_trip(unix_us in instant()) {
        let text = format_rfc3339_micros(unix_us);
        prop_assert_eq!(text.len(), 27);
        prop_assert_eq!(parse_rfc3339_micros(&text), Ok(unix_us));
    }

    #[test]
    fn text_order_is_time_order(a in instant(), b in instant()) {
        prop_assert_eq!(
            format_rfc3339_micros(a).cmp(&format_rfc3339_micros(b)),
            a.cmp(&b)
        );
    }

    #[test]
    fn agrees_with_naive_day_counting(
        (year, month, day, hour, minute, second, micros) in civil_fields()
    ) {
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"
        );
        let expected = ((naive_days_since_epoch(year, month, day) * 24 + hour) * 60 + minute)
            * 60_000_000
            + second * 1_000_000
            + micros;
        prop_assert_eq!(parse_rfc3339_micros(&text), Ok(expected));
        prop_assert_eq!(format_rfc3339_micros(expected), text);
    }

    #[test]
    fn consecutive_days_are_consecutive_dates(
        day in (MIN_UNIX_US / 86_400_000_000)..(MAX_UNIX_US / 86_400_000_000)
    ) {
        let today = date_of(&format_rfc3339_micros(day * 86_400_000_000));
        let tomorrow = date_of(&format_rfc3339_micros((day + 1) * 86_400_000_000));
        let (year, month, d) = today;
        let expected = if d < days_in_month(year, month) {
            (year, month, d + 1)
        } else if month < 12 {
            (year, month + 1, 1)
        } else {
            (year + 1, 1, 1)
        };
        prop_assert_eq!(tomorrow, expected);
    }

    #[test]
    fn decoding_never_panics(s in text()) {
        let _ = Entry::decode(&s);
        let _ = parse_rfc3339_micros(&s);
    }

    #[test]
    fn decoding_a_damaged_entry_never_panics(
        e in entry(),
        cut in any::<prop::sample::Index>(),
        insert in "[|^%0-9A-Za-z]{0,3}",
    ) {
        // Splice junk at a char boundary of a valid entry: near-misses reach
        // deeper into the decoder than random text does.
        let encoded = e.encode();
        let boundaries: Vec<usize> = encoded
            .char_indices()
            .map(|(i, _)| i)
            .chain([encoded.len()])
            .collect();
        let at = boundaries[cut.index(boundaries.len())];
        let damaged = format!("{}{}{}", &encoded[..at], insert, &encoded[at..]);
        if let Ok(decoded) = Entry::decode(&damaged) {
            // Whatever still decodes re-encodes to the same text, up to the
            // case of escapes (`%7c` is accepted, `%7C` written).
            let reencoded = decoded.encode();
            prop_assert!(reencoded.eq_ignore_ascii_case(&damaged), "{:?}", reencoded);
            prop_assert_eq!(Entry::decode(&reencoded), Ok(decoded));
        }
    }
}

#[test]
fn naive_reference_knows_the_anchors() {
    assert_eq!(naive_days_since_epoch(1970, 1, 1), 0);
    assert_eq!(naive_days_since_epoch(2000, 2, 29), 11_016);
    assert_eq!(naive_days_since_epoch(0, 1, 1), -719_528);
}
