//! The durable copy of one client host's visitor assignments (see
//! clicktochat_core::kept): rows of opaque binaries, which Erlang encodes.
//! `kept_put` and `kept_delete` only hand the change to the writer thread;
//! the rest does I/O, or copies every row, on dirty schedulers.

use crate::atoms;
use crate::error::NifError;
use clicktochat_core::kept::{KeptRows, KeptStatus};
use rustler::{Atom, Binary, Env, NifResult, OwnedBinary, ResourceArc};
use std::time::Duration;

resource!(KeptResource(KeptRows));

type Handle = ResourceArc<KeptResource>;

#[derive(rustler::NifMap)]
struct StatusMap {
    changes: u64,
    committed_changes: u64,
    commits: u64,
    last_error: Option<String>,
}

impl From<KeptStatus> for StatusMap {
    fn from(s: KeptStatus) -> Self {
        StatusMap {
            changes: s.changes,
            committed_changes: s.committed_changes,
            commits: s.commits,
            last_error: s.last_error,
        }
    }
}

/// `{ok, Kept}` or `{error, Message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn kept_open(path: String) -> Result<Handle, NifError> {
    let kept = KeptRows::open(path.as_ref())?;
    Ok(ResourceArc::new(KeptResource(kept)))
}

/// `ok`, or `{error, Message}` once closed. Never blocks.
#[rustler::nif]
fn kept_put(kept: Handle, key: Binary, value: Binary) -> NifResult<Atom> {
    kept.0
        .put(key.as_slice(), value.as_slice())
        .map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// `ok`, or `{error, Message}` once closed. Never blocks.
#[rustler::nif]
fn kept_delete(kept: Handle, key: Binary) -> NifResult<Atom> {
    kept.0.delete(key.as_slice()).map_err(NifError::from)?;
    Ok(atoms::ok())
}

#[rustler::nif]
fn kept_status(kept: Handle) -> StatusMap {
    kept.0.status().into()
}

/// Every row replaced by `[{Key, Value}]` (in its turn among the changes).
#[rustler::nif(schedule = "DirtyCpu")]
fn kept_replace_all(kept: Handle, rows: Vec<(Binary, Binary)>) -> NifResult<Atom> {
    let rows = rows
        .into_iter()
        .map(|(key, value)| (key.as_slice().to_vec(), value.as_slice().to_vec()))
        .collect();
    kept.0.replace_all(rows).map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// `ok` once every change handed over before is committed, or `{error,
/// Message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn kept_sync(kept: Handle, timeout_ms: u64) -> NifResult<Atom> {
    kept.0
        .sync(Duration::from_millis(timeout_ms))
        .map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// `{ok, [{Key, Value}]}` (committed rows, in key order) or `{error,
/// Message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn kept_all<'a>(env: Env<'a>, kept: Handle) -> NifResult<(Atom, Vec<(Binary<'a>, Binary<'a>)>)> {
    let rows = kept.0.all().map_err(NifError::from)?;
    let binary = |bytes: &[u8]| OwnedBinary::from_slice(bytes).release(env);
    Ok((
        atoms::ok(),
        rows.iter()
            .map(|(key, value)| (binary(key), binary(value)))
            .collect(),
    ))
}

#[rustler::nif(schedule = "DirtyIo")]
fn kept_close(kept: Handle) -> Atom {
    kept.0.close();
    atoms::ok()
}
