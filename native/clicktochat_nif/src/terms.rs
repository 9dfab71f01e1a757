//! Terms several NIFs share: the optional integers, which Erlang writes as
//! an integer or an atom standing for "none" (an estimate in seconds is
//! `undefined` when unknown, a chat's duration in ms is `none`).

use crate::atoms;
use rustler::{Atom, Decoder, Encoder, Env, NifResult, Term};

/// A non-negative integer, or `absent`; anything else is `badarg`.
fn optional_u64(term: Term, absent: Atom) -> NifResult<Option<u64>> {
    match term.decode::<u64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) if absent == term => Ok(None),
        Err(_) => Err(rustler::Error::BadArg),
    }
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
