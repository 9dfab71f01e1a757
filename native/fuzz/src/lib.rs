//! Helpers shared by the fuzz targets in `fuzz_targets/`: a heap meter (the
//! decoders must use memory in proportion to their input), an XML reader
//! that checks a rendered document and gives back its texts, and
//! generators of archive values from fuzz input.

use arbitrary::{Arbitrary, Result, Unstructured};
use clicktochat_core::calendar::{MAX_UNIX_US, MIN_UNIX_US};
use clicktochat_core::conversation::Entry;
use clicktochat_core::etf::{Term, MAX_ATOM_CHARS};
use clicktochat_core::records::Record;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

// --- heap meter ---------------------------------------------------------------

struct Metered;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Any single allocation larger than this is a bug for inputs of a few KB
/// (a length taken from the input and trusted): abort at once, with a
/// message, rather than let the fuzzer run into its RSS limit later.
const LARGEST_ALLOCATION: usize = 64 << 20;

fn note_alloc(size: usize) {
    if size > LARGEST_ALLOCATION {
        // No allocation in here: this runs inside the allocator.
        let message = b"fuzz: single allocation over 64 MiB\n";
        // SAFETY: writing a static buffer to stderr, then aborting.
        unsafe {
            libc_write(2, message.as_ptr(), message.len());
        }
        std::process::abort();
    }
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

unsafe impl GlobalAlloc for Metered {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Metered = Metered;

/// Runs `f` and asserts that the heap never grew by more than
/// `per_input_byte * input_len + fixed` bytes while it ran (the targets run
/// on one thread, so nothing else is counted).
pub fn heap_bounded<T>(
    input_len: usize,
    per_input_byte: usize,
    fixed: usize,
    f: impl FnOnce() -> T,
) -> T {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let out = f();
    let grown = PEAK.load(Ordering::Relaxed).saturating_sub(start);
    let bound = per_input_byte
        .saturating_mul(input_len)
        .saturating_add(fixed);
    assert!(
        grown <= bound,
        "heap grew by {grown} bytes for {input_len} bytes of input (bound {bound})"
    );
    out
}

// --- rendered XML -------------------------------------------------------------

/// One element of a rendered document, in document order: its name, its
/// attributes (name, value as quick-xml reports it: references resolved,
/// whitespace normalised, see [`without_xml_space`]) and the text
/// directly inside it (references resolved, nothing normalised).
#[derive(Debug, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
}

/// Parses `doc` with quick-xml, asserting that it is well formed (one root,
/// matching end tags, only predefined entities) and starts with the
/// `<?xml version='1.0'?>` prolog; returns its elements in document order.
pub fn elements(doc: &str) -> Vec<Element> {
    use quick_xml::events::Event;
    assert!(
        doc.starts_with("<?xml version='1.0'?>"),
        "no prolog: {doc:?}"
    );
    let mut reader = quick_xml::Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    let mut out: Vec<Element> = Vec::new();
    // Indices into `out` of the open elements.
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => panic!("rendered XML does not parse: {e}: {doc:?}"),
        };
        match event {
            Event::Eof => break,
            Event::Decl(_) => assert!(out.is_empty(), "declaration after the root"),
            Event::Start(ref start) | Event::Empty(ref start) => {
                if open.is_empty() {
                    roots += 1;
                }
                let attributes = start
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap_or_else(|e| panic!("bad attribute: {e}: {doc:?}"));
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                            .unwrap_or_else(|e| panic!("bad attribute value: {e}: {doc:?}"));
                        (a.key.as_ref().to_owned(), value.into_owned())
                    })
                    .collect();
                out.push(Element {
                    name: start.name().as_ref().to_owned(),
                    attributes,
                    text: String::new(),
                });
                if matches!(event, Event::Start(_)) {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop().expect("end tag without a start");
            }
            Event::Text(text) => {
                let inner = text.into_inner();
                match open.last() {
                    Some(&i) => out[i].text.push_str(&inner),
                    None => panic!("text outside the root: {inner:?} in {doc:?}"),
                }
            }
            Event::GeneralRef(reference) => {
                let resolved: String = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                        .unwrap_or_else(|| panic!("undeclared entity in {doc:?}"))
                        .to_owned(),
                    Err(e) => panic!("bad character reference: {e}: {doc:?}"),
                };
                let i = *open.last().expect("reference outside the root");
                out[i].text.push_str(&resolved);
            }
            other => panic!("unexpected {other:?} in {doc:?}"),
        }
    }
    assert!(open.is_empty(), "unclosed elements in {doc:?}");
    assert_eq!(roots, 1, "not exactly one root: {doc:?}");
    out
}

/// An attribute value without its XML whitespace (tab, newline, carriage
/// return, space), which a parser normalises: `escape` writes them as they
/// are, and quick-xml's normalisation of `\r\n` in attributes differs from
/// the specification's (it keeps the `\r`). Compare attributes through this.
pub fn without_xml_space(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r' | ' '))
        .collect()
}

/// Whether `c` may appear in an XML 1.0 document at all (the `Char`
/// production), even as a character reference.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

// --- generated values -----------------------------------------------------------

/// A term of the kinds the codec handles, nested at most `max_depth` deep
/// (a tuple or a non-empty list at depth `max_depth` is one too deep), with
/// atoms of any length (the encoder caps them at 255 characters).
pub fn term(u: &mut Unstructured<'_>, depth: usize, max_depth: usize) -> Result<Term> {
    let choice = if depth >= max_depth {
        u.int_in_range(0..=2)?
    } else {
        u.int_in_range(0..=4)?
    };
    Ok(match choice {
        0 => Term::Atom(String::arbitrary(u)?),
        1 => Term::Binary(Vec::<u8>::arbitrary(u)?),
        2 => Term::Integer(i64::arbitrary(u)?),
        kind => {
            let count = u.int_in_range(0..=6)?;
            let elements = (0..count)
                .map(|_| term(u, depth + 1, max_depth))
                .collect::<Result<Vec<_>>>()?;
            if kind == 3 {
                Term::List(elements)
            } else {
                Term::Tuple(elements)
            }
        }
    })
}

/// The term `decode(encode(term))` gives back: atoms cut to 255 characters.
pub fn capped(term: &Term) -> Term {
    match term {
        Term::Atom(name) => Term::Atom(name.chars().take(MAX_ATOM_CHARS).collect()),
        Term::List(elements) => Term::List(elements.iter().map(capped).collect()),
        Term::Tuple(elements) => Term::Tuple(elements.iter().map(capped).collect()),
        other => other.clone(),
    }
}

/// How deep `term` nests, as the decoder counts: the depth of its deepest
/// tuple or non-empty list, the top level being 0; `None` if it has neither.
pub fn container_depth(term: &Term) -> Option<usize> {
    match term {
        Term::Tuple(elements) => Some(
            elements
                .iter()
                .filter_map(container_depth)
                .max()
                .map_or(0, |d| d + 1),
        ),
        Term::List(elements) if !elements.is_empty() => Some(
            elements
                .iter()
                .filter_map(container_depth)
                .max()
                .map_or(0, |d| d + 1),
        ),
        _ => None,
    }
}

/// A time the entry format can express.
pub fn time_us(u: &mut Unstructured<'_>) -> Result<i64> {
    u.int_in_range(MIN_UNIX_US..=MAX_UNIX_US)
}

pub fn entry(u: &mut Unstructured<'_>) -> Result<Entry> {
    Ok(Entry {
        time_us: time_us(u)?,
        from: String::arbitrary(u)?,
        to: String::arbitrary(u)?,
        msg: String::arbitrary(u)?,
    })
}

pub fn record(u: &mut Unstructured<'_>) -> Result<Record> {
    let count = u.int_in_range(0..=4)?;
    Ok(Record {
        start_us: time_us(u)?,
        user: String::arbitrary(u)?,
        entries: (0..count).map(|_| entry(u)).collect::<Result<_>>()?,
    })
}
