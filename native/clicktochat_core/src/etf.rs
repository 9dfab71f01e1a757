//! A minimal Erlang External Term Format codec: what `term_to_binary/1`
//! writes and `binary_to_term/1` reads, for the terms the conversation
//! archive is made of (atoms, binaries, integers, proper lists, tuples).
//!
//! The archive is stored in Riak as `term_to_binary` output so that an Erlang
//! `riakc` user reads and writes exactly the same objects; this module lets
//! the Rust core do that without the VM.
//!
//! Decoding reads anything Erlang/OTP 25 writes for such terms (Latin-1 and
//! UTF-8 atoms, strings as `STRING_EXT`, integers of any encoding that fit
//! an `i64`) and nothing else: other tags, improper lists, nesting deeper
//! than [`MAX_DEPTH`] and trailing bytes are typed [`EtfError`]s. Every length
//! is checked against the input that is left before anything is allocated,
//! and lists and tuples grow with the elements actually read, so a forged
//! length fails fast and memory stays proportional to the input.
//! `binary_to_term/1` ignores trailing bytes; we refuse them, as a stored
//! object is exactly one term.

use std::fmt;

/// The first byte of every encoded term.
pub const VERSION: u8 = 131;
/// Deepest nesting of lists and tuples [`decode`] accepts. The archive needs
/// 7; the bound keeps the recursive decoder's stack use small and fixed.
pub const MAX_DEPTH: usize = 64;
/// Longest atom, in characters: Erlang's limit.
pub const MAX_ATOM_CHARS: usize = 255;

/// Most elements of a list or tuple reserved before they are decoded.
const PREALLOCATED_ELEMENTS: usize = 1024;

const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const ATOM_EXT: u8 = 100;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const SMALL_ATOM_EXT: u8 = 115;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

/// An Erlang term of the kinds the archive uses. An Erlang string is a list
/// of integers (`"ab"` is `List([Integer(97), Integer(98)])`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Atom(String),
    Binary(Vec<u8>),
    Integer(i64),
    List(Vec<Term>),
    Tuple(Vec<Term>),
}

/// Why bytes are not a term [`decode`] accepts. `offset` is where in the
/// input the problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtfError {
    /// No input at all.
    Empty,
    /// The first byte is not [`VERSION`].
    BadVersion(u8),
    /// The input ends before the term does, or a length claims more than is
    /// left.
    Truncated { offset: usize },
    /// A kind of term this codec does not handle: compressed terms, floats,
    /// pids, references, maps, funs, bit strings...
    UnsupportedTag { tag: u8, offset: usize },
    /// A list whose tail is not `[]`.
    ImproperList { offset: usize },
    /// Lists and tuples nested deeper than [`MAX_DEPTH`].
    TooDeep { offset: usize },
    /// Bytes left after the term.
    TrailingBytes { offset: usize },
    /// A UTF-8 atom that is not valid UTF-8.
    InvalidAtom { offset: usize },
    /// An atom longer than [`MAX_ATOM_CHARS`] characters.
    AtomTooLong { offset: usize },
    /// An integer that does not fit an `i64`.
    IntegerOutOfRange { offset: usize },
}

impl fmt::Display for EtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtfError::Empty => f.write_str("empty input"),
            EtfError::BadVersion(version) => {
                write!(f, "version byte is {version}, expected {VERSION}")
            }
            EtfError::Truncated { offset } => write!(f, "input ends inside a term at {offset}"),
            EtfError::UnsupportedTag { tag, offset } => {
                write!(f, "unsupported term tag {tag} at {offset}")
            }
            EtfError::ImproperList { offset } => {
                write!(f, "improper list (tail is not []) at {offset}")
            }
            EtfError::TooDeep { offset } => {
                write!(f, "terms nested deeper than {MAX_DEPTH} at {offset}")
            }
            EtfError::TrailingBytes { offset } => {
                write!(f, "trailing bytes after the term at {offset}")
            }
            EtfError::InvalidAtom { offset } => write!(f, "atom is not UTF-8 at {offset}"),
            EtfError::AtomTooLong { offset } => {
                write!(
                    f,
                    "atom longer than {MAX_ATOM_CHARS} characters at {offset}"
                )
            }
            EtfError::IntegerOutOfRange { offset } => {
                write!(f, "integer does not fit 64 bits at {offset}")
            }
        }
    }
}

impl std::error::Error for EtfError {}

/// `term` in the external term format, as `term_to_binary/1` would write it
/// except that atoms are always UTF-8 and lists of small integers are lists,
/// not strings (both read back as the same term by `binary_to_term/1`).
///
/// What the format cannot express is capped rather than written malformed:
/// an atom keeps its first [`MAX_ATOM_CHARS`] characters (Erlang refuses
/// longer atoms), a binary, list or tuple its first `u32::MAX` elements.
/// The archive only holds atoms it names itself and objects far below 4 GiB,
/// so neither cap is reached in practice. The encoder recurses once per
/// nesting level of `term`, which the caller builds.
pub fn encode(term: &Term) -> Vec<u8> {
    let mut out = vec![VERSION];
    encode_into(term, &mut out);
    out
}

/// Reads one term written by `term_to_binary/1` (or [`encode`]).
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    let (&version, _) = bytes.split_first().ok_or(EtfError::Empty)?;
    if version != VERSION {
        return Err(EtfError::BadVersion(version));
    }
    let mut decoder = Decoder {
        input: bytes,
        position: 1,
    };
    let term = decoder.term(0)?;
    if decoder.position != bytes.len() {
        return Err(EtfError::TrailingBytes {
            offset: decoder.position,
        });
    }
    Ok(term)
}

fn encode_into(term: &Term, out: &mut Vec<u8>) {
    match term {
        Term::Atom(name) => encode_atom(name, out),
        Term::Binary(bytes) => {
            let bytes = capped(bytes);
            out.push(BINARY_EXT);
            push_length_u32(bytes.len(), out);
            out.extend_from_slice(bytes);
        }
        Term::Integer(value) => encode_integer(*value, out),
        Term::List(elements) if elements.is_empty() => out.push(NIL_EXT),
        Term::List(elements) => {
            let elements = capped(elements);
            out.push(LIST_EXT);
            push_length_u32(elements.len(), out);
            for element in elements {
                encode_into(element, out);
            }
            out.push(NIL_EXT);
        }
        Term::Tuple(elements) => {
            let elements = capped(elements);
            match u8::try_from(elements.len()) {
                Ok(arity) => out.extend_from_slice(&[SMALL_TUPLE_EXT, arity]),
                Err(_) => {
                    out.push(LARGE_TUPLE_EXT);
                    push_length_u32(elements.len(), out);
                }
            }
            for element in elements {
                encode_into(element, out);
            }
        }
    }
}

/// The part of `items` a `u32` length can describe.
fn capped<T>(items: &[T]) -> &[T] {
    let most = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
    &items[..items.len().min(most)]
}

/// Writes a length already limited by [`capped`].
fn push_length_u32(length: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
}

fn encode_atom(name: &str, out: &mut Vec<u8>) {
    let end = name
        .char_indices()
        .nth(MAX_ATOM_CHARS)
        .map_or(name.len(), |(index, _)| index);
    let name = &name.as_bytes()[..end];
    // At most 255 characters of at most 4 bytes: the length fits a u16.
    match u8::try_from(name.len()) {
        Ok(length) => out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, length]),
        Err(_) => {
            out.push(ATOM_UTF8_EXT);
            let length = u16::try_from(name.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&length.to_be_bytes());
        }
    }
    out.extend_from_slice(name);
}

fn encode_integer(value: i64, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(value) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, small]);
    } else if let Ok(medium) = i32::try_from(value) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        // Sign and magnitude, the magnitude little-endian in as few bytes as
        // it needs (Erlang writes the minimal form).
        let magnitude = value.unsigned_abs();
        let byte_count = (u64::BITS - magnitude.leading_zeros()).div_ceil(8) as usize;
        out.extend_from_slice(&[SMALL_BIG_EXT, byte_count as u8, u8::from(value < 0)]);
        out.extend_from_slice(&magnitude.to_le_bytes()[..byte_count]);
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], EtfError> {
        let truncated = EtfError::Truncated {
            offset: self.position,
        };
        let end = self.position.checked_add(count).ok_or(truncated)?;
        let bytes = self.input.get(self.position..end).ok_or(truncated)?;
        self.position = end;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], EtfError> {
        let offset = self.position;
        let bytes = self.take(N)?;
        bytes.try_into().map_err(|_| EtfError::Truncated { offset })
    }

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        Ok(usize::from(u16::from_be_bytes(self.take_array()?)))
    }

    fn u32(&mut self) -> Result<usize, EtfError> {
        let length = u32::from_be_bytes(self.take_array()?);
        // Only fails where usize is 16 bits; such a length could not be in
        // the input anyway.
        usize::try_from(length).map_err(|_| EtfError::Truncated {
            offset: self.position,
        })
    }

    /// Fails unless at least `needed` bytes are left: called with the least
    /// number of bytes `count` elements can take, before allocating for them.
    fn ensure_remaining(&self, needed: usize) -> Result<(), EtfError> {
        if needed > self.remaining() {
            return Err(EtfError::Truncated {
                offset: self.position,
            });
        }
        Ok(())
    }

    /// The term at the current position; `depth` lists and tuples enclose it.
    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        let offset = self.position;
        let tag = self.u8()?;
        match tag {
            SMALL_INTEGER_EXT => Ok(Term::Integer(i64::from(self.u8()?))),
            INTEGER_EXT => Ok(Term::Integer(i64::from(i32::from_be_bytes(
                self.take_array()?,
            )))),
            SMALL_BIG_EXT => {
                let byte_count = usize::from(self.u8()?);
                self.big_integer(byte_count, offset)
            }
            LARGE_BIG_EXT => {
                let byte_count = self.u32()?;
                self.big_integer(byte_count, offset)
            }
            ATOM_EXT => {
                let length = self.u16()?;
                self.latin1_atom(length, offset)
            }
            SMALL_ATOM_EXT => {
                let length = usize::from(self.u8()?);
                self.latin1_atom(length, offset)
            }
            ATOM_UTF8_EXT => {
                let length = self.u16()?;
                self.utf8_atom(length, offset)
            }
            SMALL_ATOM_UTF8_EXT => {
                let length = usize::from(self.u8()?);
                self.utf8_atom(length, offset)
            }
            BINARY_EXT => {
                let length = self.u32()?;
                Ok(Term::Binary(self.take(length)?.to_vec()))
            }
            NIL_EXT => Ok(Term::List(Vec::new())),
            STRING_EXT => {
                let length = self.u16()?;
                let bytes = self.take(length)?;
                Ok(Term::List(
                    bytes.iter().map(|&b| Term::Integer(i64::from(b))).collect(),
                ))
            }
            LIST_EXT => {
                let count = self.u32()?;
                // Each element takes at least one byte, and the tail one more.
                self.ensure_remaining(count.saturating_add(1))?;
                let elements = self.elements(count, depth, offset)?;
                let tail_offset = self.position;
                if self.u8()? != NIL_EXT {
                    return Err(EtfError::ImproperList {
                        offset: tail_offset,
                    });
                }
                Ok(Term::List(elements))
            }
            SMALL_TUPLE_EXT => {
                let arity = usize::from(self.u8()?);
                Ok(Term::Tuple(self.elements(arity, depth, offset)?))
            }
            LARGE_TUPLE_EXT => {
                let arity = self.u32()?;
                Ok(Term::Tuple(self.elements(arity, depth, offset)?))
            }
            _ => Err(EtfError::UnsupportedTag { tag, offset }),
        }
    }

    /// `count` terms nested inside a list or tuple that starts at `offset`.
    fn elements(
        &mut self,
        count: usize,
        depth: usize,
        offset: usize,
    ) -> Result<Vec<Term>, EtfError> {
        if depth >= MAX_DEPTH {
            return Err(EtfError::TooDeep { offset });
        }
        self.ensure_remaining(count)?;
        // The count is plausible for the input left, but not yet proven:
        // nested lists can each claim nearly all of it, and preallocating
        // every claim would multiply the input by the depth. Beyond a small
        // start, the vector grows only with elements actually decoded.
        let mut elements = Vec::with_capacity(count.min(PREALLOCATED_ELEMENTS));
        for _ in 0..count {
            elements.push(self.term(depth + 1)?);
        }
        Ok(elements)
    }

    /// Sign byte then `byte_count` bytes of magnitude, least significant
    /// first. Erlang writes the fewest bytes; more, with zeros at the top,
    /// are accepted as `binary_to_term` does, and so is any non-zero sign
    /// byte meaning negative.
    fn big_integer(&mut self, byte_count: usize, offset: usize) -> Result<Term, EtfError> {
        let negative = self.u8()? != 0;
        let digits = self.take(byte_count)?;
        let out_of_range = EtfError::IntegerOutOfRange { offset };
        let magnitude = digits.iter().rev().try_fold(0u64, |acc, &digit| {
            acc.checked_mul(256)
                .and_then(|shifted| shifted.checked_add(u64::from(digit)))
                .ok_or(out_of_range)
        })?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value.map(Term::Integer).ok_or(out_of_range)
    }

    /// `ATOM_EXT` and `SMALL_ATOM_EXT`: one Latin-1 byte per character.
    fn latin1_atom(&mut self, length: usize, offset: usize) -> Result<Term, EtfError> {
        if length > MAX_ATOM_CHARS {
            return Err(EtfError::AtomTooLong { offset });
        }
        let bytes = self.take(length)?;
        Ok(Term::Atom(bytes.iter().map(|&b| char::from(b)).collect()))
    }

    fn utf8_atom(&mut self, length: usize, offset: usize) -> Result<Term, EtfError> {
        let bytes = self.take(length)?;
        let name = std::str::from_utf8(bytes).map_err(|_| EtfError::InvalidAtom { offset })?;
        if name.chars().count() > MAX_ATOM_CHARS {
            return Err(EtfError::AtomTooLong { offset });
        }
        Ok(Term::Atom(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(name: &str) -> Term {
        Term::Atom(name.to_owned())
    }

    fn binary(bytes: &[u8]) -> Term {
        Term::Binary(bytes.to_vec())
    }

    /// Byte vectors as `term_to_binary` writes them (checked with erl), and
    /// what they decode to.
    #[test]
    fn decodes_what_erlang_writes() {
        let cases: Vec<(&[u8], Term)> = vec![
            (&[131, 100, 0, 3, 97, 98, 99], atom("abc")),
            (&[131, 100, 0, 1, 233], atom("é")),
            (&[131, 115, 1, 233], atom("é")),
            (&[131, 119, 2, 211, 146], atom("Ӓ")),
            (&[131, 118, 0, 2, 211, 146], atom("Ӓ")),
            (&[131, 119, 0], atom("")),
            (
                &[131, 107, 0, 2, 97, 98],
                Term::List(vec![Term::Integer(97), Term::Integer(98)]),
            ),
            (
                &[131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106],
                Term::List(vec![Term::Integer(1), Term::Integer(300)]),
            ),
            (&[131, 106], Term::List(vec![])),
            (&[131, 109, 0, 0, 0, 0], binary(b"")),
            (&[131, 109, 0, 0, 0, 3, 97, 97, 97], binary(b"aaa")),
            (&[131, 97, 255], Term::Integer(255)),
            (&[131, 98, 0, 0, 1, 0], Term::Integer(256)),
            (&[131, 98, 255, 255, 255, 255], Term::Integer(-1)),
            (&[131, 110, 6, 0, 0, 0, 0, 0, 0, 1], Term::Integer(1 << 40)),
            (
                &[131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128],
                Term::Integer(i64::MIN),
            ),
            (
                &[131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 127],
                Term::Integer(i64::MAX),
            ),
            // Not minimal, but binary_to_term reads it as 1.
            (
                &[131, 110, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                Term::Integer(1),
            ),
            (&[131, 111, 0, 0, 0, 1, 1, 7], Term::Integer(-7)),
            (
                &[131, 104, 2, 100, 0, 1, 97, 106],
                Term::Tuple(vec![atom("a"), Term::List(vec![])]),
            ),
            (&[131, 104, 0], Term::Tuple(vec![])),
        ];
        for (bytes, term) in cases {
            assert_eq!(decode(bytes), Ok(term), "{bytes:?}");
        }
    }

    #[test]
    fn encodes_like_term_to_binary_with_utf8_atoms() {
        let cases: Vec<(Term, &[u8])> = vec![
            (atom("abc"), &[131, 119, 3, 97, 98, 99]),
            (atom("é"), &[131, 119, 2, 195, 169]),
            (binary(b"aaa"), &[131, 109, 0, 0, 0, 3, 97, 97, 97]),
            (Term::List(vec![]), &[131, 106]),
            (
                Term::List(vec![Term::Integer(1), Term::Integer(300)]),
                &[131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 44, 106],
            ),
            (Term::Integer(0), &[131, 97, 0]),
            (Term::Integer(255), &[131, 97, 255]),
            (Term::Integer(256), &[131, 98, 0, 0, 1, 0]),
            (Term::Integer(-1), &[131, 98, 255, 255, 255, 255]),
            (Term::Integer(i64::from(i32::MIN)), &[131, 98, 128, 0, 0, 0]),
            (Term::Integer(1 << 31), &[131, 110, 4, 0, 0, 0, 0, 128]),
            (Term::Integer(1 << 40), &[131, 110, 6, 0, 0, 0, 0, 0, 0, 1]),
            (
                Term::Integer(i64::MIN),
                &[131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128],
            ),
            (
                Term::Tuple(vec![atom("a"), Term::List(vec![])]),
                &[131, 104, 2, 119, 1, 97, 106],
            ),
        ];
        for (term, bytes) in cases {
            assert_eq!(encode(&term), bytes, "{term:?}");
        }
    }

    #[test]
    fn large_tuples_and_long_atoms_switch_encoding() {
        let tuple = Term::Tuple((0..256).map(Term::Integer).collect());
        let bytes = encode(&tuple);
        assert_eq!(bytes[..6], [131, 105, 0, 0, 1, 0]);
        assert_eq!(decode(&bytes), Ok(tuple));

        // 255 characters, 510 bytes: too long for the one-byte length.
        let long = atom(&"é".repeat(255));
        let bytes = encode(&long);
        assert_eq!(bytes[..4], [131, 118, 1, 254]);
        assert_eq!(decode(&bytes), Ok(long));
    }

    #[test]
    fn caps_atoms_at_255_characters() {
        let bytes = encode(&atom(&"€".repeat(300)));
        assert_eq!(decode(&bytes), Ok(atom(&"€".repeat(255))));
    }

    #[test]
    fn refuses_what_it_does_not_handle() {
        use EtfError::*;
        let long_latin1_atom = [&[131, 100, 1, 0][..], &[97; 256]].concat();
        let long_utf8_atom = [&[131, 118, 1, 0][..], &[97; 256]].concat();
        let cases: Vec<(&[u8], EtfError)> = vec![
            (&[], Empty),
            (&[130, 106], BadVersion(130)),
            (&[131], Truncated { offset: 1 }),
            (&[131, 109, 0, 0, 0, 5, 1, 2], Truncated { offset: 6 }),
            (&[131, 98, 0, 0], Truncated { offset: 2 }),
            (
                &[131, 80, 0, 0, 0, 1, 120, 156],
                UnsupportedTag { tag: 80, offset: 1 },
            ),
            (
                &[131, 70, 0, 0, 0, 0, 0, 0, 0, 0],
                UnsupportedTag { tag: 70, offset: 1 },
            ),
            (
                &[131, 116, 0, 0, 0, 0],
                UnsupportedTag {
                    tag: 116,
                    offset: 1,
                },
            ),
            (
                &[131, 77, 0, 0, 0, 1, 8, 1],
                UnsupportedTag { tag: 77, offset: 1 },
            ),
            (&[131, 104, 1, 88, 0], UnsupportedTag { tag: 88, offset: 3 }),
            (
                &[131, 108, 0, 0, 0, 1, 97, 1, 97, 2],
                ImproperList { offset: 8 },
            ),
            (
                &[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 0],
                ImproperList { offset: 8 },
            ),
            (&[131, 106, 106], TrailingBytes { offset: 2 }),
            (&[131, 119, 2, 0xC3, 0x28], InvalidAtom { offset: 1 }),
            (&long_latin1_atom, AtomTooLong { offset: 1 }),
            (&long_utf8_atom, AtomTooLong { offset: 1 }),
            (
                &[131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 128],
                IntegerOutOfRange { offset: 1 },
            ),
            (
                &[131, 110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 128],
                IntegerOutOfRange { offset: 1 },
            ),
            (
                &[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                IntegerOutOfRange { offset: 1 },
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode(bytes), Err(error), "{bytes:?}");
        }
    }

    #[test]
    fn forged_lengths_fail_before_allocating() {
        // Each claims about 4 billion elements or bytes in a handful of bytes;
        // a decoder that trusted the length would try to allocate gigabytes.
        for bytes in [
            &[131, 108, 255, 255, 255, 255, 97, 1, 106][..],
            &[131, 105, 255, 255, 255, 255, 97, 1],
            &[131, 109, 255, 255, 255, 255, 1, 2, 3],
            &[131, 111, 255, 255, 255, 255, 0, 1],
            &[131, 107, 255, 255, 1],
        ] {
            assert!(
                matches!(decode(bytes), Err(EtfError::Truncated { .. })),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        fn nested(depth: usize) -> Vec<u8> {
            let mut bytes = vec![VERSION];
            bytes.extend(std::iter::repeat_n([SMALL_TUPLE_EXT, 1], depth).flatten());
            bytes.push(NIL_EXT);
            bytes
        }
        assert!(decode(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            decode(&nested(MAX_DEPTH + 1)),
            Err(EtfError::TooDeep {
                offset: 1 + 2 * MAX_DEPTH
            })
        );
        // Far deeper than any stack would allow if the bound were missing.
        assert!(matches!(
            decode(&nested(1_000_000)),
            Err(EtfError::TooDeep { .. })
        ));
    }
}
