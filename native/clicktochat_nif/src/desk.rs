//! The desk of one helpdesk host (clicktochat_core::desk: its rotation of
//! agents, its waiting line, its wait estimate): created when
//! mod_clicktochat starts for that host, freed when the last reference to
//! it is dropped.
//!
//! The core takes the time as a parameter; here it is the milliseconds since
//! the resource was made, from a monotonic `Instant` (the wall clock may
//! jump, and the estimate's window must not).

use crate::atoms;
use crate::error::BadArg;
use crate::terms::{DurationMs, Estimate};
use clicktochat_core::desk::{Changes, Desk, Entry, NewPosition};
use clicktochat_core::{Release, Routing};
use parking_lot::Mutex;
use rustler::{Atom, Encoder, Env, ResourceArc, Term};
use std::time::Instant;

pub struct DeskResource {
    desk: Mutex<Desk>,
    created: Instant,
}

#[rustler::resource_impl]
impl rustler::Resource for DeskResource {}

// The lock is never held across a call that could panic half-way through a
// state change (every core operation completes or does nothing), so a panic
// caught at the NIF boundary cannot leave a broken desk behind.
impl std::panic::RefUnwindSafe for DeskResource {}

impl DeskResource {
    /// Runs `f` on the desk, locked, with the time now. The answer is
    /// encoded after the lock is released.
    fn with<T>(&self, f: impl FnOnce(&mut Desk, u64) -> T) -> T {
        let now_ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        f(&mut self.desk.lock(), now_ms)
    }
}

type Handle = ResourceArc<DeskResource>;

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

/// `{[{Visitor, Agent}], [{Visitor, Position, Estimate}]}`, in line order.
fn encode_changes(env: Env, changes: Changes) -> Term {
    let assigned: Vec<(String, String)> = changes
        .assigned
        .into_iter()
        .map(|a| (a.visitor, a.agent))
        .collect();
    (assigned, encode_positions(env, changes.moved)).encode(env)
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
fn new(max_sessions: u32, BadArg(routing): BadArg<RoutingName>, max_waiting: u64) -> Handle {
    ResourceArc::new(DeskResource {
        desk: Mutex::new(Desk::new(max_sessions, routing.into(), max_waiting)),
        created: Instant::now(),
    })
}

/// `{assigned, Agent} | {waiting, Position, Estimate} | line_full |
/// no_agent_available`.
#[rustler::nif]
fn enter<'a>(env: Env<'a>, desk: Handle, visitor: &str) -> Term<'a> {
    match desk.with(|d, now_ms| d.enter(visitor, now_ms)) {
        Entry::Assigned(agent) => (atoms::assigned(), agent).encode(env),
        Entry::Waiting { position, estimate } => {
            (atoms::waiting(), position, Estimate(estimate)).encode(env)
        }
        Entry::LineFull => atoms::line_full().encode(env),
        Entry::NoAgent => atoms::no_agent_available().encode(env),
    }
}

/// `{ok | not_assigned, Changes}`.
#[rustler::nif]
fn release<'a>(
    env: Env<'a>,
    desk: Handle,
    agent: &str,
    DurationMs(duration_ms): DurationMs,
) -> Term<'a> {
    let (release, changes) = desk.with(|d, now_ms| d.release(agent, duration_ms, now_ms));
    let release = match release {
        Release::Freed => atoms::ok(),
        Release::NotAssigned => atoms::not_assigned(),
    };
    (release, encode_changes(env, changes)).encode(env)
}

#[rustler::nif]
fn leave<'a>(env: Env<'a>, desk: Handle, visitor: &str) -> Term<'a> {
    encode_changes(env, desk.with(|d, now_ms| d.leave(visitor, now_ms)))
}

#[rustler::nif]
fn resource_available<'a>(env: Env<'a>, desk: Handle, agent: &str, resource: &str) -> Term<'a> {
    let changes = desk.with(|d, now_ms| d.resource_available(agent, resource, now_ms));
    encode_changes(env, changes)
}

#[rustler::nif]
fn resource_unavailable(desk: Handle, agent: &str, resource: &str) -> Atom {
    desk.with(|d, _| d.resource_unavailable(agent, resource));
    atoms::ok()
}

#[rustler::nif]
fn restore(desk: Handle, agent: &str) -> Atom {
    desk.with(|d, _| d.restore(agent));
    atoms::ok()
}

#[rustler::nif]
fn restore_waiting(desk: Handle, visitor: &str) -> Atom {
    desk.with(|d, _| d.restore_waiting(visitor));
    atoms::ok()
}

/// `{ok, ToAgent} | none`: answer_timeout's new agent for the visitor.
#[rustler::nif]
fn pass_on<'a>(env: Env<'a>, desk: Handle, visitor: &str, from_agent: &str) -> Term<'a> {
    match desk.with(|d, _| d.pass_on(visitor, from_agent)) {
        Some(to) => (atoms::ok(), to).encode(env),
        None => atoms::none().encode(env),
    }
}

/// `{AgentsAvailable, FreeSlots, Waiting, Estimate}`: O(1).
#[rustler::nif]
fn status(desk: Handle) -> (u32, u64, u64, Estimate) {
    let status = desk.with(|d, now_ms| d.status(now_ms));
    (
        status.availability.agents_available,
        status.availability.free_slots,
        status.waiting,
        Estimate(status.estimate),
    )
}

/// `[{Visitor, Position, Estimate}]`, head first.
#[rustler::nif(schedule = "DirtyCpu")]
fn line<'a>(env: Env<'a>, desk: Handle) -> Term<'a> {
    let line = desk.with(|d, now_ms| d.line(now_ms));
    encode_positions(env, line)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn queue(desk: Handle) -> Vec<String> {
    desk.with(|d, _| d.queue())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn loads(desk: Handle) -> Vec<(String, u32)> {
    desk.with(|d, _| d.loads())
}
