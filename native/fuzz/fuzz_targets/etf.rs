//! The Erlang external term format codec: `etf::decode` of any bytes
//! (stored objects come from Riak, which other programs write), with memory
//! in proportion to the input; `decode(encode(t)) == t`.
#![no_main]

use arbitrary::Unstructured;
use clicktochat_core::etf::{decode, encode, EtfError, MAX_DEPTH};
use clicktochat_fuzz::{capped, container_depth, heap_bounded, term};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 1. Any bytes. A term is at most 32 bytes per input byte, vectors may
    //    double when they grow, and each of the 64 levels may reserve 1024
    //    elements ahead.
    let decoded = heap_bounded(data.len(), 128, MAX_DEPTH * 1024 * 32 + (64 << 10), || {
        decode(data)
    });
    if let Ok(term) = decoded {
        assert!(container_depth(&term).is_none_or(|d| d < MAX_DEPTH));
        let again = encode(&term);
        assert_eq!(decode(&again), Ok(term));
    }

    // 2. Arbitrary terms, sometimes nested deeper than the decoder allows.
    let mut u = Unstructured::new(data);
    let Ok(max_depth) = u.int_in_range(0..=MAX_DEPTH + 2) else {
        return;
    };
    let Ok(term) = term(&mut u, 0, max_depth) else {
        return;
    };
    let result = decode(&encode(&term));
    if container_depth(&term).is_none_or(|d| d < MAX_DEPTH) {
        assert_eq!(result, Ok(capped(&term)));
    } else {
        assert!(
            matches!(result, Err(EtfError::TooDeep { .. })),
            "{result:?}"
        );
    }
});
