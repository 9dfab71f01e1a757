//! The conversation archive of one client host: writer thread and store
//! (see clicktochat_core::archive). `archive_message` only hands an entry
//! to the writer thread; the rest does I/O and runs on dirty I/O
//! schedulers, except `archive_status`, which copies counters.

use crate::atoms;
use crate::error::{BadArg, NifError};
use clicktochat_core::archive::{
    Archive, ArchiveConfig, Captured, Conversation, Direction, RiakStoreConfig, Status, StoreConfig,
};
use clicktochat_core::records::{decode_archive, encode_archive, merge};
use clicktochat_core::render;
use clicktochat_core::riak::RiakConfig;
use rustler::{Atom, Binary, Env, NifResult, OwnedBinary, ResourceArc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

resource!(ArchiveResource(Archive));

type Handle = ResourceArc<ArchiveResource>;

/// `embedded` or `{riak, [<<"host:port">>, ...], Bucket, MaxValueBytes,
/// PushIntervalMs}`.
#[derive(rustler::NifTaggedEnum)]
enum StoreTerm<'a> {
    Embedded,
    Riak(Vec<String>, Binary<'a>, usize, u64),
}

impl From<StoreTerm<'_>> for StoreConfig {
    fn from(store: StoreTerm) -> Self {
        match store {
            StoreTerm::Embedded => StoreConfig::Embedded,
            StoreTerm::Riak(nodes, bucket, max_value_bytes, push_interval_ms) => {
                StoreConfig::Riak(RiakStoreConfig {
                    config: RiakConfig {
                        nodes,
                        ..RiakConfig::default()
                    },
                    bucket: bucket.as_slice().to_vec(),
                    max_value_bytes,
                    push_interval: Duration::from_millis(push_interval_ms),
                })
            }
        }
    }
}

/// `{Visitor, Agent, StartUs}`: bare JIDs, Unix microseconds.
#[derive(rustler::NifTuple)]
struct ConversationTerm<'a> {
    visitor: &'a str,
    agent: &'a str,
    start_us: i64,
}

impl<'a> From<ConversationTerm<'a>> for Conversation<'a> {
    fn from(c: ConversationTerm<'a>) -> Self {
        Conversation {
            visitor: c.visitor,
            agent: c.agent,
            start_us: c.start_us,
        }
    }
}

/// `from_visitor | from_agent`.
#[derive(rustler::NifUnitEnum)]
enum DirectionTerm {
    FromVisitor,
    FromAgent,
}

impl From<DirectionTerm> for Direction {
    fn from(d: DirectionTerm) -> Self {
        match d {
            DirectionTerm::FromVisitor => Direction::FromVisitor,
            DirectionTerm::FromAgent => Direction::FromAgent,
        }
    }
}

/// `#{committed_entries, pushes, outbox_entries, push_requests, last_error}`,
/// the last `nil` when there was none.
#[derive(rustler::NifMap)]
struct StatusMap {
    committed_entries: u64,
    pushes: u64,
    outbox_entries: u64,
    push_requests: u64,
    last_error: Option<String>,
}

impl From<Status> for StatusMap {
    fn from(s: Status) -> Self {
        StatusMap {
            committed_entries: s.committed_entries,
            pushes: s.pushes,
            outbox_entries: s.outbox_entries,
            push_requests: s.push_requests,
            last_error: s.last_error,
        }
    }
}

/// `{ok, Archive}` or `{error, Message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn archive_open(path: String, BadArg(store): BadArg<StoreTerm>) -> Result<Handle, NifError> {
    let archive = Archive::open(ArchiveConfig {
        path: path.into(),
        store: store.into(),
    })?;
    Ok(ResourceArc::new(ArchiveResource(archive)))
}

/// `recorded` or `closed`. Never blocks: hands the entry to the writer
/// thread.
#[rustler::nif]
fn archive_message(
    archive: Handle,
    BadArg(conversation): BadArg<ConversationTerm>,
    BadArg(direction): BadArg<DirectionTerm>,
    text: &str,
) -> Atom {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let conversation = conversation.into();
    match archive
        .0
        .message(&conversation, direction.into(), text, now_us)
    {
        Captured::Recorded => atoms::recorded(),
        Captured::Closed => atoms::closed(),
    }
}

/// `ok` or `{error, Message}`.
#[rustler::nif(schedule = "DirtyIo")]
fn archive_sync(archive: Handle, timeout_ms: u64) -> NifResult<Atom> {
    archive
        .0
        .sync(Duration::from_millis(timeout_ms))
        .map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// `{ok, Records, Count}` or `{error, Message}`: the agent's records in
/// this node's archive, in their stored form (the seed's
/// `term_to_binary([{record, [...]}])`), for `render_archive` to gather
/// with the other nodes'.
#[rustler::nif(schedule = "DirtyIo")]
fn archive_read<'a>(
    env: Env<'a>,
    archive: Handle,
    agent: &str,
) -> NifResult<(Atom, Binary<'a>, usize)> {
    let records = archive.0.read(agent).map_err(NifError::from)?;
    let stored = OwnedBinary::from_slice(&encode_archive(&records));
    Ok((atoms::ok(), stored.release(env), records.len()))
}

/// `{ok, Xml, Count}` or `{error, Message}`: the records `archive_read`
/// gave on each node, merged (a union, as Riak siblings are), as XML.
#[rustler::nif(schedule = "DirtyCpu")]
fn render_archive(agent: &str, parts: Vec<Binary>) -> NifResult<(Atom, String, usize)> {
    let mut records = Vec::new();
    for part in parts {
        let theirs = decode_archive(part.as_slice()).map_err(NifError::from)?;
        merge(&mut records, theirs);
    }
    Ok((
        atoms::ok(),
        render::conversations(agent, &records),
        records.len(),
    ))
}

#[rustler::nif]
fn archive_status(archive: Handle) -> StatusMap {
    archive.0.status().into()
}

#[rustler::nif(schedule = "DirtyIo")]
fn archive_close(archive: Handle) -> Atom {
    archive.0.close();
    atoms::ok()
}
