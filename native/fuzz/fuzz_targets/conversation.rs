//! The conversation entry codec: `Entry::decode` of any text (entries come
//! back from storage other programs may write), and `decode(encode(e)) == e`
//! for arbitrary entries.
#![no_main]

use arbitrary::Unstructured;
use clicktochat_core::calendar::{
    format_rfc3339_micros, parse_rfc3339_micros, MAX_UNIX_US, MIN_UNIX_US,
};
use clicktochat_core::conversation::Entry;
use clicktochat_fuzz::{entry, heap_bounded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 1. Any text (invalid UTF-8 replaced) as an entry and as a timestamp.
    let text = String::from_utf8_lossy(data);
    let decoded = heap_bounded(text.len(), 4, 1 << 10, || Entry::decode(&text));
    if let Ok(entry) = decoded {
        assert!((MIN_UNIX_US..=MAX_UNIX_US).contains(&entry.time_us));
        // Decoding is strict: the only freedom is the case of `%7c`/`%5e`
        // (every `%` in an accepted entry starts an escape).
        let canonical = text.replace("%7c", "%7C").replace("%5e", "%5E");
        assert_eq!(entry.encode(), canonical);
        assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
    }
    if let Ok(time_us) = parse_rfc3339_micros(&text) {
        assert_eq!(format_rfc3339_micros(time_us), text);
    }

    // 2. Arbitrary entries and times round-trip.
    let mut u = Unstructured::new(data);
    if let Ok(time_us) = u.arbitrary::<i64>() {
        let clamped = time_us.clamp(MIN_UNIX_US, MAX_UNIX_US);
        assert_eq!(
            parse_rfc3339_micros(&format_rfc3339_micros(time_us)),
            Ok(clamped)
        );
    }
    if let Ok(entry) = entry(&mut u) {
        assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
    }
});
