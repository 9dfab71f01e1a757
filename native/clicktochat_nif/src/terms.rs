//! Terms several NIFs share: the optional integers, which Erlang writes as
//! an integer or an atom standing for "none" (an estimate in seconds is
//! `undefined` when unknown, a chat's duration in ms is `none`).

use crate::atoms;
use rustler::{Atom, Binary, Decoder, Encoder, Env, NifResult, Term};

/// A non-negative integer, or `absent`; anything else is `badarg`. (An atom
/// is an immediate term: the same atom is the same word, compared without
/// a call into the VM.)
fn optional_u64(term: Term, absent: Atom) -> NifResult<Option<u64>> {
    if term.as_c_arg() == absent.as_c_arg() {
        return Ok(None);
    }
    term.decode::<u64>()
        .map(Some)
        .map_err(|_| rustler::Error::BadArg)
}

/// A wait estimate in seconds: `non_neg_integer() | undefined`.
pub struct Estimate(pub Option<u64>);

impl Encoder for Estimate {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self.0 {
            Some(seconds) => seconds.encode(env),
            None => atoms::undefined().encode(env),
        }
    }
}

impl<'a> Decoder<'a> for Estimate {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        optional_u64(term, atoms::undefined()).map(Estimate)
    }
}

/// How long a chat lasted, in ms: `non_neg_integer() | none`.
pub struct DurationMs(pub Option<u64>);

impl<'a> Decoder<'a> for DurationMs {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        optional_u64(term, atoms::none()).map(DurationMs)
    }
}

/// A UTF-8 binary as `&str` (`badarg` otherwise), as rustler decodes a
/// `&str`, faster for ASCII, which the names of the hot path are in
/// practice (agents' bare JIDs, visitors' nodeprepped user parts):
/// `is_ascii` reads a word at a time where `str::from_utf8` goes a byte at a
/// time on strings this short (7% of an enter + release). Anything else goes
/// through `from_utf8`.
pub struct Text<'a>(pub &'a str);

impl<'a> Decoder<'a> for Text<'a> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        let bytes = Binary::from_term(term)?.as_slice();
        if bytes.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            return Ok(Text(unsafe { std::str::from_utf8_unchecked(bytes) }));
        }
        std::str::from_utf8(bytes)
            .map(Text)
            .map_err(|_| rustler::Error::BadArg)
    }
}
