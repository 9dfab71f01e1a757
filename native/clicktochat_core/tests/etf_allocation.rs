//! How much `etf::decode` allocates for hostile input, measured with a
//! counting allocator (its own test binary, so nothing else is counted).
//!
//! Each list or tuple length is checked against the input left, but a
//! decoder that preallocated the claimed length at every level would
//! allocate depth × 32 bytes per input byte for lists nested inside lists
//! that each claim nearly all of the remaining input.

use clicktochat_core::etf::{decode, EtfError, MAX_DEPTH};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `depth` lists nested in each other, each claiming `claim` elements, then
/// `filler` NILs: every claim passes the remaining-input check, and the
/// input runs out long before the claims are met.
fn nested_over_claiming_lists(depth: usize, claim: u32, filler: usize) -> Vec<u8> {
    let mut bytes = vec![131];
    for _ in 0..depth {
        bytes.push(108);
        bytes.extend_from_slice(&claim.to_be_bytes());
    }
    bytes.resize(bytes.len() + filler, 106);
    bytes
}

// One test in this binary: the counters are global.
#[test]
fn hostile_lengths_allocate_in_proportion_to_the_input() {
    let filler = 200_000;
    let input = nested_over_claiming_lists(MAX_DEPTH, filler as u32 - 1, filler);
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = decode(&input);
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert!(
        matches!(result, Err(EtfError::Truncated { .. })),
        "{result:?}"
    );
    // Every decoded term consumed at least one input byte; a term is 32
    // bytes, vectors grow by doubling and hold the old buffer while they do.
    let bound = 128 * input.len() + (4 << 20);
    assert!(
        peak <= bound,
        "decoding {} bytes allocated {peak} bytes at peak (bound {bound})",
        input.len()
    );
}
