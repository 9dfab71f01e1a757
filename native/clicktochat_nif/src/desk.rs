//! The desk of one helpdesk host (clicktochat_core::desk: its rotation of
//! agents, its waiting line, its wait estimate): created when
//! mod_clicktochat starts for that host, freed when the last reference to
//! it is dropped.
//!
//! The core takes the time as a parameter; here it is the milliseconds since
//! the resource was made, from a monotonic `Instant` (the wall clock may
//! jump, and the estimate's window must not), read only if the call needs it
//! (not for an agent handed out, nor for its release without a sample).
//!
//! The hot path answers the agent's name as a binary that points at the
//! desk's own copy of it (`enif_make_resource_binary`): no copy, and the
//! binary keeps the desk alive. The core stores every name once, at an
//! address that never changes while the desk lives, and knows those bytes
//! by their address: a release that hands the same binary back (as the
//! module does, from the visitor's Mnesia row, whose ETS table holds the
//! binary itself) finds its agent without hashing the name. Any other
//! binary with the same bytes (from another node, or read back from disk
//! after a restart) is found by its hash.
//!
//! Visitors the line hands a freed slot are not answered to the caller but
//! kept, in the desk's order, until `take_handed_over` takes them: the
//! callers are many Erlang processes, each of which tells the owner's
//! server that something changed, and their messages may arrive in any
//! order. The one server that writes hand-overs and sends their notices
//! takes them from here, so an agent hears of its visitors from the line
//! in line order, and a lost message loses no hand-over.

use crate::atoms;
use crate::error::BadArg;
use crate::raw::{args, nif_without_vec, Object, ResourceType};
use crate::terms::{DurationMs, Estimate, Text};
use clicktochat_core::desk::{Assignment, Changes, Desk, Entry, NewPosition, Now};
use clicktochat_core::{Release, Routing};
use parking_lot::Mutex;
use rustler::sys::ErlNifTerm;
use rustler::{Atom, Binary, Decoder, Encoder, Env, NifResult, Term};
use std::time::Instant;

pub struct DeskResource {
    desk: Mutex<Locked>,
    created: Instant,
}

/// What the lock guards: the desk, and its hand-overs not taken yet. The
/// desk is never replaced: binaries answered by `enter` and `pass_on`
/// point into it for as long as the resource lives.
struct Locked {
    desk: Desk,
    handed_over: Vec<Assignment>,
}

/// The desk's resource type (see `raw`), opened by [`open`] at load.
static DESK: ResourceType<DeskResource> = ResourceType::new();

/// Opens the desk's resource type; from the library's `load`.
pub fn open(env: Env) -> bool {
    DESK.open(env, c"clicktochat_desk")
}

/// A desk argument: `badarg` for any other term.
struct Handle<'a>(Object<'a, DeskResource>);

impl<'a> Decoder<'a> for Handle<'a> {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        DESK.get(term).map(Handle)
    }
}

impl std::ops::Deref for Handle<'_> {
    type Target = DeskResource;

    fn deref(&self) -> &DeskResource {
        self.0.value
    }
}

impl<'a> Handle<'a> {
    /// An agent's name as a binary pointing at the desk's copy.
    ///
    /// # Safety
    /// `agent` must be a name this desk answered borrowed (`enter_ref`,
    /// `pass_on_ref`): those stay at their address, unchanged, for as long
    /// as the desk lives (`Rotation::name`), and the desk lives as long as
    /// the resource (never replaced, see `Locked`).
    unsafe fn agent_binary(&self, env: Env<'a>, agent: &str) -> Term<'a> {
        // SAFETY: the caller's promise is `Object::binary`'s.
        unsafe { self.0.binary(env, agent.as_bytes()) }
    }
}

// The lock is never held across a call that could panic half-way through a
// state change (every core operation completes or does nothing), so a panic
// caught at the NIF boundary cannot leave a broken desk behind.
impl std::panic::RefUnwindSafe for DeskResource {}

impl DeskResource {
    /// Runs `f` on the desk, locked, with the time now, read if the desk
    /// asks for it.
    fn with<T>(&self, f: impl FnOnce(&mut Desk, Clock) -> T) -> T {
        f(&mut self.desk.lock().desk, Clock(self.created))
    }

    /// Runs `f` on the desk, locked, and keeps the hand-overs of the
    /// `Changes` it answers: answers `f`'s other result and the [`Told`].
    fn changing<T>(&self, f: impl FnOnce(&mut Desk, Clock) -> (T, Changes)) -> (T, Told) {
        let mut locked = self.desk.lock();
        let (result, changes) = f(&mut locked.desk, Clock(self.created));
        let told = Told {
            handed_over: changes.assigned.len(),
            moved: changes.moved,
        };
        locked.handed_over.extend(changes.assigned);
        (result, told)
    }
}

/// The milliseconds since the desk was made.
struct Clock(Instant);

impl Now for Clock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// `round_robin | least_busy`; any other term is `badarg`.
#[derive(rustler::NifUnitEnum)]
enum RoutingName {
    RoundRobin,
    LeastBusy,
}

impl From<RoutingName> for Routing {
    fn from(name: RoutingName) -> Self {
        match name {
            RoutingName::RoundRobin => Routing::RoundRobin,
            RoutingName::LeastBusy => Routing::LeastBusy,
        }
    }
}

/// What a call answers of its `Changes`: how many visitors were handed a
/// slot (kept for `take_handed_over`), and who moved.
struct Told {
    handed_over: usize,
    moved: Vec<NewPosition>,
}

/// `{HandedOver, [{Visitor, Position, Estimate}]}`, in line order.
fn encode_changes(env: Env, told: Told) -> Term {
    (told.handed_over, encode_positions(env, told.moved)).encode(env)
}

/// `[{Visitor, Position, Estimate}]`.
fn encode_positions(env: Env, positions: Vec<NewPosition>) -> Term {
    positions
        .into_iter()
        .map(|p| (p.visitor, p.position, Estimate(p.estimate)))
        .collect::<Vec<_>>()
        .encode(env)
}

#[rustler::nif]
fn new<'a>(
    env: Env<'a>,
    max_sessions: u32,
    BadArg(routing): BadArg<RoutingName>,
    max_waiting: u64,
) -> NifResult<Term<'a>> {
    let desk = DeskResource {
        desk: Mutex::new(Locked {
            desk: Desk::new(max_sessions, routing.into(), max_waiting),
            handed_over: Vec::new(),
        }),
        created: Instant::now(),
    };
    DESK.make(env, desk)
}

/// `enter(Desk, Visitor)`: `{assigned, Agent} | {waiting, Position,
/// Estimate} | line_full | no_agent_available`. The agent's name is the
/// desk's own (see the module's documentation). (The hot path: see `raw`.)
fn enter<'a>(env: Env<'a>, args: &[ErlNifTerm]) -> NifResult<Term<'a>> {
    let [desk, visitor] = self::args(env, args)?;
    let desk: Handle = desk.decode()?;
    let Text(visitor) = visitor.decode()?;
    Ok(desk.with(|d, now| match d.enter_ref(visitor, now) {
        // SAFETY: the name `enter_ref` borrowed from this desk.
        Entry::Assigned(agent) => {
            (atoms::assigned(), unsafe { desk.agent_binary(env, agent) }).encode(env)
        }
        Entry::Waiting { position, estimate } => {
            (atoms::waiting(), position, Estimate(estimate)).encode(env)
        }
        Entry::LineFull => atoms::line_full().encode(env),
        Entry::NoAgent => atoms::no_agent_available().encode(env),
    }))
}
nif_without_vec!("enter", 2, enter);

/// `release(Desk, Agent, DurationMs)`: `{ok | not_assigned, Changes}`.
/// The agent's name is taken as bytes: the desk's own binary is found by
/// its address, any other by its hash; bytes that are no agent's name and
/// not UTF-8 either are `badarg` (a release of nobody changes nothing).
/// (The hot path: see `raw`.)
fn release<'a>(env: Env<'a>, args: &[ErlNifTerm]) -> NifResult<Term<'a>> {
    let [desk, agent, duration_ms] = self::args(env, args)?;
    let desk: Handle = desk.decode()?;
    let agent = Binary::from_term(agent)?.as_slice();
    let DurationMs(duration_ms) = duration_ms.decode()?;
    let (release, told) = desk.changing(|d, now| d.release(agent, duration_ms, now));
    let release = match release {
        Release::Freed => atoms::ok(),
        Release::NotAssigned if std::str::from_utf8(agent).is_err() => {
            return Err(rustler::Error::BadArg)
        }
        Release::NotAssigned => atoms::not_assigned(),
    };
    Ok((release, encode_changes(env, told)).encode(env))
}
nif_without_vec!("release", 3, release);

#[rustler::nif]
fn leave<'a>(env: Env<'a>, desk: Handle<'a>, visitor: &str) -> Term<'a> {
    let ((), told) = desk.changing(|d, now| ((), d.leave(visitor, now)));
    encode_changes(env, told)
}

#[rustler::nif]
fn resource_available<'a>(env: Env<'a>, desk: Handle<'a>, agent: &str, resource: &str) -> Term<'a> {
    let ((), told) = desk.changing(|d, now| ((), d.resource_available(agent, resource, now)));
    encode_changes(env, told)
}

/// `[{Visitor, Agent}]`: the visitors handed a slot since the last call, in
/// the desk's order (line order), each once.
#[rustler::nif]
fn take_handed_over<'a>(desk: Handle<'a>) -> Vec<(String, String)> {
    let taken = std::mem::take(&mut desk.desk.lock().handed_over);
    taken.into_iter().map(|a| (a.visitor, a.agent)).collect()
}

#[rustler::nif]
fn resource_unavailable<'a>(desk: Handle<'a>, agent: &str, resource: &str) -> Atom {
    desk.with(|d, _| d.resource_unavailable(agent, resource));
    atoms::ok()
}

#[rustler::nif]
fn restore<'a>(desk: Handle<'a>, agent: &str) -> Atom {
    desk.with(|d, _| d.restore(agent));
    atoms::ok()
}

#[rustler::nif]
fn restore_waiting<'a>(desk: Handle<'a>, visitor: &str) -> Atom {
    desk.with(|d, _| d.restore_waiting(visitor));
    atoms::ok()
}

/// `{ok, ToAgent} | none`: answer_timeout's new agent for the visitor.
#[rustler::nif]
fn pass_on<'a>(env: Env<'a>, desk: Handle<'a>, visitor: &str, from_agent: &str) -> Term<'a> {
    desk.with(|d, _| match d.pass_on_ref(visitor, from_agent) {
        // SAFETY: the name `pass_on_ref` borrowed from this desk.
        Some(to) => (atoms::ok(), unsafe { desk.agent_binary(env, to) }).encode(env),
        None => atoms::none().encode(env),
    })
}

/// `{AgentsAvailable, FreeSlots, Waiting, Estimate}`: O(1).
#[rustler::nif]
fn status<'a>(desk: Handle<'a>) -> (u32, u64, u64, Estimate) {
    let status = desk.with(|d, now| d.status(now));
    (
        status.availability.agents_available,
        status.availability.free_slots,
        status.waiting,
        Estimate(status.estimate),
    )
}

/// `[{Visitor, Position, Estimate}]`, head first.
#[rustler::nif(schedule = "DirtyCpu")]
fn line<'a>(env: Env<'a>, desk: Handle<'a>) -> Term<'a> {
    let line = desk.with(|d, now| d.line(now));
    encode_positions(env, line)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn queue<'a>(desk: Handle<'a>) -> Vec<String> {
    desk.with(|d, _| d.queue())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn loads<'a>(desk: Handle<'a>) -> Vec<(String, u32)> {
    desk.with(|d, _| d.loads())
}
