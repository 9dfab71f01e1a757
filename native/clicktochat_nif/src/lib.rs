//! Rustler glue for clicktochat: decodes Erlang terms, calls
//! `clicktochat_core`, encodes the answer. No logic lives here.
//!
//! The hot path (pick, release, presence changes, parsing a body, rendering
//! an answer) is plain NIFs called directly by the process that needs it:
//! each does O(log agents) work or parses/renders at most a few kilobytes,
//! far under the ~1 ms a regular scheduler tolerates (see the hostile_inputs
//! bench). What walks every agent (`queue`, `loads`, for operators) and
//! what does I/O (the archive's open, sync,
//! read, close) runs on dirty schedulers. Bad terms raise `badarg`; nothing
//! here unwraps caller input.

use clicktochat_core::archive::{
    Archive, ArchiveConfig, Captured, Conversation, Direction, StoreConfig,
};
use clicktochat_core::ratelimit::RateLimiter;
use clicktochat_core::registration::parse_registration_json;
use clicktochat_core::riak::RiakConfig;
use clicktochat_core::{parse_registration, render, Release, Rotation};
use parking_lot::Mutex;
use rustler::{Atom, Binary, Encoder, Env, Error, NifResult, ResourceArc, Term};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod atoms {
    rustler::atoms! {
        ok, none, error, not_assigned, embedded, riak, recorded, closed,
        committed_entries, pushed_keys, outbox_keys, last_error, nil, xml, json
    }
}

/// The rotation of one helpdesk host, created when mod_clicktochat starts
/// for that host and freed when the last reference to it is dropped.
pub struct RotationResource(Mutex<Rotation>);

#[rustler::resource_impl]
impl rustler::Resource for RotationResource {}

// The lock is never held across a call that could panic half-way through a
// state change (every core operation completes or does nothing), so a panic
// caught at the NIF boundary cannot leave a broken rotation behind.
impl std::panic::RefUnwindSafe for RotationResource {}

type Handle = ResourceArc<RotationResource>;

#[rustler::nif]
fn new(max_sessions: u32) -> Handle {
    ResourceArc::new(RotationResource(Mutex::new(Rotation::new(max_sessions))))
}

#[rustler::nif]
fn resource_available(rotation: Handle, agent: &str, resource: &str) -> Atom {
    rotation.0.lock().resource_available(agent, resource);
    atoms::ok()
}

#[rustler::nif]
fn resource_unavailable(rotation: Handle, agent: &str, resource: &str) -> Atom {
    rotation.0.lock().resource_unavailable(agent, resource);
    atoms::ok()
}

#[rustler::nif]
fn pick(env: Env, rotation: Handle) -> Term {
    match rotation.0.lock().pick() {
        Some(agent) => (atoms::ok(), agent).encode(env),
        None => atoms::none().encode(env),
    }
}

#[rustler::nif]
fn release(rotation: Handle, agent: &str) -> Atom {
    match rotation.0.lock().release(agent) {
        Release::Freed => atoms::ok(),
        Release::NotAssigned => atoms::not_assigned(),
    }
}

#[rustler::nif]
fn restore(rotation: Handle, agent: &str) -> Atom {
    rotation.0.lock().restore(agent);
    atoms::ok()
}

#[rustler::nif(schedule = "DirtyCpu")]
fn queue(rotation: Handle) -> Vec<String> {
    rotation.0.lock().queue()
}

#[rustler::nif(schedule = "DirtyCpu")]
fn loads(rotation: Handle) -> Vec<(String, u32)> {
    rotation.0.lock().loads()
}

#[rustler::nif(name = "parse_registration")]
fn parse_registration_nif<'a>(env: Env<'a>, body: Binary<'a>) -> NifResult<Term<'a>> {
    registration_term(env, parse_registration(body.as_slice()))
}

#[rustler::nif(name = "parse_registration_json")]
fn parse_registration_json_nif<'a>(env: Env<'a>, body: Binary<'a>) -> NifResult<Term<'a>> {
    registration_term(env, parse_registration_json(body.as_slice()))
}

/// `{ok, Username, Password}` or `{error, Reason}`.
fn registration_term(
    env: Env,
    parsed: Result<clicktochat_core::Registration, clicktochat_core::RegistrationError>,
) -> NifResult<Term> {
    Ok(match parsed {
        Ok(registration) => (atoms::ok(), registration.username, registration.password).encode(env),
        Err(reason) => (atoms::error(), Atom::from_str(env, reason.code())?).encode(env),
    })
}

/// Answers are rendered as `xml` (the default, the original project's) or
/// `json`.
fn is_json(format: Atom) -> NifResult<bool> {
    if format == atoms::json() {
        Ok(true)
    } else if format == atoms::xml() {
        Ok(false)
    } else {
        Err(Error::BadArg)
    }
}

#[rustler::nif]
fn render_register_ok(format: Atom, from: &str, to: &str) -> NifResult<String> {
    Ok(if is_json(format)? {
        render::json_register_ok(from, to)
    } else {
        render::register_ok(from, to)
    })
}

#[rustler::nif]
fn render_list(format: Atom, usernames: Vec<&str>) -> NifResult<String> {
    Ok(if is_json(format)? {
        render::json_connected_users(&usernames)
    } else {
        render::connected_users(&usernames)
    })
}

/// `Root` and `Reason` may each be an atom or a UTF-8 binary; JSON errors
/// have no root.
#[rustler::nif]
fn render_error(format: Atom, root: Term, reason: Term) -> NifResult<String> {
    Ok(if is_json(format)? {
        render::json_error(&text_of(reason)?)
    } else {
        render::error(&text_of(root)?, &text_of(reason)?)
    })
}

fn text_of(term: Term) -> NifResult<String> {
    term.atom_to_string()
        .or_else(|_| term.decode::<&str>().map(str::to_owned))
}

/// The conversation archive of one client host: writer thread and stores (see clicktochat_core::archive).
pub struct ArchiveResource(Archive);

#[rustler::resource_impl]
impl rustler::Resource for ArchiveResource {}

// As for the rotation: every archive operation completes or does nothing
// under its locks.
impl std::panic::RefUnwindSafe for ArchiveResource {}

type ArchiveHandle = ResourceArc<ArchiveResource>;

/// `embedded` or `{riak, [<<"host:port">>, ...], Bucket}`.
fn decode_store(term: Term) -> NifResult<StoreConfig> {
    if term.decode::<Atom>().is_ok_and(|a| a == atoms::embedded()) {
        return Ok(StoreConfig::Embedded);
    }
    let (tag, nodes, bucket): (Atom, Vec<String>, Binary) = term.decode()?;
    if tag != atoms::riak() {
        return Err(Error::BadArg);
    }
    Ok(StoreConfig::Riak {
        config: RiakConfig {
            nodes,
            ..RiakConfig::default()
        },
        bucket: bucket.as_slice().to_vec(),
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn archive_open<'a>(env: Env<'a>, path: String, store: Term<'a>) -> NifResult<Term<'a>> {
    let config = ArchiveConfig {
        path: path.into(),
        store: decode_store(store)?,
    };
    Ok(match Archive::open(config) {
        Ok(archive) => (atoms::ok(), ResourceArc::new(ArchiveResource(archive))).encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    })
}

/// Decodes a `T`, raising `badarg` on a bad term like every other argument
/// (rustler's derived decoders raise their own descriptive terms instead).
struct BadArg<T>(T);

impl<'a, T: rustler::Decoder<'a>> rustler::Decoder<'a> for BadArg<T> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        T::decode(term).map(BadArg).map_err(|_| Error::BadArg)
    }
}

/// `{Visitor, Agent, StartUs}`: bare JIDs, Unix microseconds.
#[derive(rustler::NifTuple)]
struct ConversationTerm<'a> {
    visitor: &'a str,
    agent: &'a str,
    start_us: i64,
}

/// `from_visitor | from_agent`.
#[derive(rustler::NifUnitEnum)]
enum DirectionTerm {
    FromVisitor,
    FromAgent,
}

/// Never blocks: hands the entry to the writer thread.
#[rustler::nif]
fn archive_message(
    archive: ArchiveHandle,
    BadArg(conversation): BadArg<ConversationTerm>,
    BadArg(direction): BadArg<DirectionTerm>,
    text: &str,
) -> Atom {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let conversation = Conversation {
        visitor: conversation.visitor,
        agent: conversation.agent,
        start_us: conversation.start_us,
    };
    let direction = match direction {
        DirectionTerm::FromVisitor => Direction::FromVisitor,
        DirectionTerm::FromAgent => Direction::FromAgent,
    };
    match archive.0.message(&conversation, direction, text, now_us) {
        Captured::Recorded => atoms::recorded(),
        Captured::Closed => atoms::closed(),
    }
}

#[rustler::nif(schedule = "DirtyIo")]
fn archive_sync(env: Env, archive: ArchiveHandle, timeout_ms: u64) -> Term {
    match archive.0.sync(Duration::from_millis(timeout_ms)) {
        Ok(()) => atoms::ok().encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    }
}

#[rustler::nif(schedule = "DirtyIo")]
fn archive_read_xml<'a>(env: Env<'a>, archive: ArchiveHandle, agent: &str) -> Term<'a> {
    match archive.0.read(agent) {
        Ok(records) => (
            atoms::ok(),
            render::conversations(agent, &records),
            records.len(),
        )
            .encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    }
}

#[rustler::nif]
fn archive_status(env: Env, archive: ArchiveHandle) -> NifResult<Term> {
    let status = archive.0.status();
    let last_error = match status.last_error {
        Some(e) => e.encode(env),
        None => atoms::nil().encode(env),
    };
    Term::map_from_pairs(
        env,
        &[
            (
                atoms::committed_entries().encode(env),
                status.committed_entries.encode(env),
            ),
            (
                atoms::pushed_keys().encode(env),
                status.pushed_keys.encode(env),
            ),
            (
                atoms::outbox_keys().encode(env),
                status.outbox_keys.encode(env),
            ),
            (atoms::last_error().encode(env), last_error),
        ],
    )
}

#[rustler::nif(schedule = "DirtyIo")]
fn archive_close(archive: ArchiveHandle) -> Atom {
    archive.0.close();
    atoms::ok()
}

/// Registrations per client address per minute, one limiter per client host.
pub struct RateLimitResource(Mutex<RateLimiter>);

#[rustler::resource_impl]
impl rustler::Resource for RateLimitResource {}

impl std::panic::RefUnwindSafe for RateLimitResource {}

#[rustler::nif]
fn ratelimit_new(per_minute: u32) -> ResourceArc<RateLimitResource> {
    ResourceArc::new(RateLimitResource(Mutex::new(RateLimiter::new(per_minute))))
}

/// true if `address` may register now; false when over its limit.
#[rustler::nif]
fn ratelimit_allow(limiter: ResourceArc<RateLimitResource>, address: &str) -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let now_ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    limiter
        .0
        .lock()
        .allow(address, u64::try_from(now_ms).unwrap_or(u64::MAX))
}

rustler::init!("clicktochat_nif");
