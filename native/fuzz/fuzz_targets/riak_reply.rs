//! Riak replies, as the archive's writer thread reads them off the wire: a
//! frame (message code, then body) through `decode_get_reply` and
//! `decode_put_reply`, the decoding steps of `RiakClient::get` and `put`.
#![no_main]

use clicktochat_core::riak::{decode_get_reply, decode_put_reply, RiakError, MAX_SIBLINGS};
use clicktochat_fuzz::heap_bounded;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each content is copied out of the frame at most once; the sibling
    // vector may double as it grows (512 siblings of 56 bytes).
    let fetched = heap_bounded(data.len(), 4, 64 << 10, || decode_get_reply(data));
    match fetched {
        Ok(fetched) => {
            assert!(fetched.siblings.len() <= MAX_SIBLINGS);
            let values: usize = fetched.siblings.iter().map(|s| s.value.len()).sum();
            assert!(values <= data.len());
            assert!(fetched.vclock.as_ref().is_none_or(|v| v.len() < data.len()));
        }
        Err(
            RiakError::Decode(_)
            | RiakError::EmptyFrame
            | RiakError::UnexpectedCode { .. }
            | RiakError::Server { .. },
        ) => {}
        Err(other) => panic!("decoding gave a non-decoding error: {other:?}"),
    }
    let vclock = heap_bounded(data.len(), 4, 64 << 10, || decode_put_reply(data));
    if let Ok(Some(vclock)) = vclock {
        assert!(vclock.len() < data.len());
    }
});
