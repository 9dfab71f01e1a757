//! The stored archive: `records::decode_archive` of any bytes (a Riak value
//! or an embedded store value), the round trip with `encode_archive`, and
//! `merge` normalising (idempotent, order-independent as a set).
#![no_main]

use arbitrary::Unstructured;
use clicktochat_core::etf::MAX_DEPTH;
use clicktochat_core::records::{decode_archive, encode_archive, merge, Record};
use clicktochat_fuzz::{heap_bounded, record};
use libfuzzer_sys::fuzz_target;

fn merged(a: &[Record], b: &[Record]) -> Vec<Record> {
    let mut into = a.to_vec();
    merge(&mut into, b.to_vec());
    into
}

/// The records as a set of (start, user, entry) facts.
fn facts(records: &[Record]) -> Vec<String> {
    let mut facts: Vec<String> = records
        .iter()
        .flat_map(|r| {
            let head = format!("{}\0{}", r.start_us, r.user);
            std::iter::once(head.clone()).chain(
                r.entries
                    .iter()
                    .map(move |e| format!("{head}\0{}", e.encode())),
            )
        })
        .collect();
    facts.sort();
    facts.dedup();
    facts
}

fuzz_target!(|data: &[u8]| {
    // 1. Any bytes: the term decoder's bound, plus the decoded strings.
    let decoded = heap_bounded(data.len(), 160, MAX_DEPTH * 1024 * 32 + (64 << 10), || {
        decode_archive(data)
    });
    if let Ok(records) = decoded {
        assert_eq!(
            decode_archive(&encode_archive(&records)),
            Ok(records.clone())
        );
        let once = merged(&records, &[]);
        assert_eq!(merged(&once, &[]), once, "merge does not normalise");
        assert_eq!(merged(&once, &records), once, "merge is not idempotent");
    }

    // 2. Arbitrary archives round-trip; merging two is their union.
    let mut u = Unstructured::new(data);
    let Ok(a) = (0..u.int_in_range(0..=3).unwrap_or(0))
        .map(|_| record(&mut u))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    assert_eq!(decode_archive(&encode_archive(&a)), Ok(a.clone()));
    let Ok(b) = (0..u.int_in_range(0..=3).unwrap_or(0))
        .map(|_| record(&mut u))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let ab = merged(&a, &b);
    let ba = merged(&b, &a);
    assert_eq!(facts(&ab), facts(&ba));
    assert_eq!(facts(&ab), facts(&[a, b].concat()));
});
