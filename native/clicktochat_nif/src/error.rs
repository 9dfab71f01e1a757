//! How failures reach Erlang: a bad term raises `badarg` (never a panic),
//! a failure of the archive or of the kept rows is answered as `{error, <<"message">>}`.

use clicktochat_core::archive::ArchiveError;
use clicktochat_core::kept::KeptError;
use clicktochat_core::records::RecordsError;
use rustler::{Decoder, Encoder, Env, NifResult, Term};

/// Decodes a `T`, raising `badarg` on a bad term like every other argument
/// (rustler's derived decoders raise descriptive terms of their own).
pub struct BadArg<T>(pub T);

impl<'a, T: Decoder<'a>> Decoder<'a> for BadArg<T> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        T::decode(term)
            .map(BadArg)
            .map_err(|_| rustler::Error::BadArg)
    }
}

/// A failure the Erlang side gets as `{error, <<"message">>}`: through
/// rustler's `Result` encoding (a NIF answering `Result<T, NifError>`
/// answers `{ok, T} | {error, Message}`), or through `rustler::Error` (with
/// `?`) for a NIF whose success is not `{ok, T}`.
///
/// It holds the message, not the error: the message is all Erlang gets, and
/// what a NIF returns must be unwind-safe (rustler encodes it under
/// `catch_unwind`), which the I/O and redb errors an `ArchiveError` carries
/// are not. This is the one place where core errors become text.
#[derive(Debug)]
pub struct NifError(String);

impl From<ArchiveError> for NifError {
    fn from(e: ArchiveError) -> Self {
        NifError(e.to_string())
    }
}

impl From<KeptError> for NifError {
    fn from(e: KeptError) -> Self {
        NifError(e.to_string())
    }
}

impl From<RecordsError> for NifError {
    fn from(e: RecordsError) -> Self {
        ArchiveError::from(e).into()
    }
}

/// The message, as a UTF-8 binary.
impl Encoder for NifError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.0.encode(env)
    }
}

impl From<NifError> for rustler::Error {
    fn from(e: NifError) -> Self {
        // Returned as `{error, Term}`, not raised.
        rustler::Error::Term(Box::new(e))
    }
}
