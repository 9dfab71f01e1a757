//! Property tests of the external term format codec: terms round-trip, the
//! encoding is self-delimiting (every proper prefix is refused as truncated,
//! every extension as trailing bytes), and no input makes the decoder panic.

use clicktochat_core::etf::{decode, encode, EtfError, VERSION};
use proptest::prelude::*;

mod common;
use common::term;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn terms_round_trip(t in term()) {
        prop_assert_eq!(decode(&encode(&t)), Ok(t));
    }

    #[test]
    fn every_proper_prefix_is_truncated(t in term(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&t);
        let prefix = &bytes[..cut.index(bytes.len())];
        let expected_is_truncated = matches!(decode(prefix), Err(EtfError::Truncated { .. }))
            || prefix.is_empty();
        prop_assert!(expected_is_truncated, "{:?}", decode(prefix));
    }

    #[test]
    fn extra_bytes_are_refused(t in term(), extra in prop::collection::vec(any::<u8>(), 1..4)) {
        let mut bytes = encode(&t);
        let end = bytes.len();
        bytes.extend(extra);
        prop_assert_eq!(decode(&bytes), Err(EtfError::TrailingBytes { offset: end }));
    }

    #[test]
    fn decoding_random_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![VERSION];
        bytes.extend(body);
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_damaged_terms_never_panics(
        t in term(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        // One byte changed in a valid encoding reaches deep into the decoder:
        // tags, lengths and atom text that are almost right.
        let mut bytes = encode(&t);
        let at = at.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode(&bytes) {
            prop_assert_eq!(decode(&encode(&decoded)), Ok(decoded));
        }
    }
}
