//! SCRAM's stored keys of a visitor's password (clicktochat_core::scram),
//! on a dirty CPU scheduler: 4 096 rounds of HMAC take a millisecond or
//! more, past what a regular scheduler tolerates.

use crate::error::BadArg;
use clicktochat_core::scram::{self, ScramHash};
use rustler::{Binary, Env, NifResult, OwnedBinary};

/// ejabberd's names of the hashes (`auth_scram_hash`).
#[derive(rustler::NifUnitEnum)]
enum Hash {
    Sha,
    Sha256,
    Sha512,
}

/// `{StoredKey, ServerKey}`, raw; `badarg` for an unknown hash or an
/// iteration count of 0 or past clicktochat_core's bound.
#[rustler::nif(schedule = "DirtyCpu")]
fn scram_keys<'a>(
    env: Env<'a>,
    BadArg(hash): BadArg<Hash>,
    password: Binary,
    salt: Binary,
    iterations: u32,
) -> NifResult<(Binary<'a>, Binary<'a>)> {
    let hash = match hash {
        Hash::Sha => ScramHash::Sha1,
        Hash::Sha256 => ScramHash::Sha256,
        Hash::Sha512 => ScramHash::Sha512,
    };
    let keys = scram::keys(hash, &password, &salt, iterations).ok_or(rustler::Error::BadArg)?;
    Ok((
        OwnedBinary::from_slice(&keys.stored_key).release(env),
        OwnedBinary::from_slice(&keys.server_key).release(env),
    ))
}
