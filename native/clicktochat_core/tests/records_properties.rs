//! Property tests of the archive: any archive round-trips through
//! encode/decode, `merge` agrees with a naive reference model, and obeys the
//! laws sibling resolution relies on (commutative on the resulting set,
//! associative and idempotent exactly).

use clicktochat_core::conversation::Entry;
use clicktochat_core::records::{decode_archive, encode_archive, merge, split_bounded, Record};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

mod common;
use common::{entry, instant, text};

/// Archives of any content, for the codec.
fn any_archive() -> impl Strategy<Value = Vec<Record>> {
    let record = (instant(), text(), prop::collection::vec(entry(), 0..5)).prop_map(
        |(start_us, user, entries)| Record {
            start_us,
            user,
            entries,
        },
    );
    prop::collection::vec(record, 0..5)
}

/// Archives drawn from small pools of keys, times and texts, so that merges
/// meet shared records, identical entries and equal times all the time.
fn colliding_archive() -> impl Strategy<Value = Vec<Record>> {
    let entry = (
        0i64..4,
        prop::sample::select(&["v1@c", "v2@c"][..]),
        prop::sample::select(&["hi", "bye", "a|b^c%"][..]),
    )
        .prop_map(|(time_us, from, msg)| Entry {
            time_us,
            from: from.to_owned(),
            to: "agent@h".to_owned(),
            msg: msg.to_owned(),
        });
    let record = (
        0i64..3,
        prop::sample::select(&["v1@c", "v2@c"][..]),
        prop::collection::vec(entry, 0..6),
    )
        .prop_map(|(start_us, user, entries)| Record {
            start_us,
            user: user.to_owned(),
            entries,
        });
    prop::collection::vec(record, 0..5)
}

fn merged(mut into: Vec<Record>, other: Vec<Record>) -> Vec<Record> {
    merge(&mut into, other);
    into
}

/// The merge spelled out the slow, obvious way: walk the records in order,
/// add each entry not seen yet to its conversation, then sort conversations
/// by key and entries stably by time.
fn reference_merge(a: &[Record], b: &[Record]) -> Vec<Record> {
    let mut result: Vec<Record> = Vec::new();
    for record in a.iter().chain(b) {
        let position = match result
            .iter()
            .position(|r| r.start_us == record.start_us && r.user == record.user)
        {
            Some(position) => position,
            None => {
                result.push(Record {
                    start_us: record.start_us,
                    user: record.user.clone(),
                    entries: Vec::new(),
                });
                result.len() - 1
            }
        };
        for entry in &record.entries {
            if !result[position].entries.contains(entry) {
                result[position].entries.push(entry.clone());
            }
        }
    }
    result.sort_by(|x, y| (x.start_us, &x.user).cmp(&(y.start_us, &y.user)));
    for record in &mut result {
        record.entries.sort_by_key(|entry| entry.time_us);
    }
    result
}

type EntryKey = (i64, String, String, String);

/// What an archive holds, regardless of order and repetition.
fn as_set(records: &[Record]) -> BTreeMap<(i64, String), BTreeSet<EntryKey>> {
    let mut set: BTreeMap<(i64, String), BTreeSet<EntryKey>> = BTreeMap::new();
    for record in records {
        set.entry((record.start_us, record.user.clone()))
            .or_default()
            .extend(
                record
                    .entries
                    .iter()
                    .map(|e| (e.time_us, e.from.clone(), e.to.clone(), e.msg.clone())),
            );
    }
    set
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn archives_round_trip(records in any_archive()) {
        prop_assert_eq!(decode_archive(&encode_archive(&records)), Ok(records));
    }

    #[test]
    fn merge_agrees_with_reference(a in colliding_archive(), b in colliding_archive()) {
        prop_assert_eq!(merged(a.clone(), b.clone()), reference_merge(&a, &b));
    }

    #[test]
    fn merge_is_the_union(a in colliding_archive(), b in colliding_archive()) {
        let mut union = as_set(&a);
        for (key, entries) in as_set(&b) {
            union.entry(key).or_default().extend(entries);
        }
        prop_assert_eq!(as_set(&merged(a, b)), union);
    }

    #[test]
    fn merge_is_commutative_on_the_set(a in colliding_archive(), b in colliding_archive()) {
        prop_assert_eq!(
            as_set(&merged(a.clone(), b.clone())),
            as_set(&merged(b, a))
        );
    }

    #[test]
    fn merge_is_associative(
        a in colliding_archive(),
        b in colliding_archive(),
        c in colliding_archive(),
    ) {
        prop_assert_eq!(
            merged(merged(a.clone(), b.clone()), c.clone()),
            merged(a, merged(b, c))
        );
    }

    #[test]
    fn merge_is_idempotent(a in colliding_archive(), b in colliding_archive()) {
        let m = merged(a.clone(), b.clone());
        prop_assert_eq!(&merged(m.clone(), m.clone()), &m);
        prop_assert_eq!(&merged(m.clone(), a), &m);
        prop_assert_eq!(&merged(m.clone(), b), &m);
        prop_assert_eq!(&merged(m.clone(), Vec::new()), &m);
    }

    #[test]
    fn merge_result_is_normalised(a in colliding_archive(), b in colliding_archive()) {
        let m = merged(a, b);
        for pair in m.windows(2) {
            prop_assert!((pair[0].start_us, &pair[0].user) < (pair[1].start_us, &pair[1].user));
        }
        for record in &m {
            prop_assert!(record.entries.windows(2).all(|p| p[0].time_us <= p[1].time_us));
            let distinct: BTreeSet<_> = record.entries.iter().map(Entry::encode).collect();
            prop_assert_eq!(distinct.len(), record.entries.len());
        }
    }

    #[test]
    fn split_pieces_stay_within_the_bound_and_keep_everything_in_order(
        records in any_archive(),
        max_bytes in 64usize..2048,
    ) {
        let pieces = split_bounded(records.clone(), max_bytes);
        for piece in &pieces {
            prop_assert!(!piece.is_empty());
            let alone = piece.len() == 1 && piece[0].entries.len() <= 1;
            prop_assert!(alone || encode_archive(piece).len() <= max_bytes,
                "{} bytes > {max_bytes}", encode_archive(piece).len());
        }
        // Walking the pieces in order gives back the records, entries in
        // order, a record cut in two continuing in the next piece.
        let mut walked: Vec<Record> = Vec::new();
        for record in pieces.into_iter().flatten() {
            match walked.last_mut() {
                Some(last) if (last.start_us, &last.user) == (record.start_us, &record.user)
                    && !record.entries.is_empty() => last.entries.extend(record.entries),
                _ => walked.push(record),
            }
        }
        let mut expected: Vec<Record> = Vec::new();
        for record in records {
            match expected.last_mut() {
                Some(last) if (last.start_us, &last.user) == (record.start_us, &record.user)
                    && !record.entries.is_empty() => last.entries.extend(record.entries),
                _ => expected.push(record),
            }
        }
        prop_assert_eq!(walked, expected);
    }

    #[test]
    fn decoding_damaged_archives_never_panics(
        records in any_archive(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = encode_archive(&records);
        let at = at.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode_archive(&bytes) {
            prop_assert_eq!(decode_archive(&encode_archive(&decoded)), Ok(decoded));
        }
    }
}
