//! The rotation of one helpdesk host (clicktochat_core::rotation): created
//! when mod_clicktochat starts for that host, freed when the last reference
//! to it is dropped.

use crate::atoms;
use clicktochat_core::{Release, Rotation, Routing};
use parking_lot::Mutex;
use rustler::{Atom, Encoder, Env, ResourceArc, Term};

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
    ResourceArc::new(RotationResource(Mutex::new(Rotation::new(
        max_sessions,
        Routing::RoundRobin,
    ))))
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

/// `{ok, Agent}` or `none`.
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

/// `{AgentsAvailable, FreeSlots}`, kept up to date by every change: O(1).
#[rustler::nif]
fn availability(rotation: Handle) -> (u32, u64) {
    let availability = rotation.0.lock().availability();
    (availability.agents_available, availability.free_slots)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn queue(rotation: Handle) -> Vec<String> {
    rotation.0.lock().queue()
}

#[rustler::nif(schedule = "DirtyCpu")]
fn loads(rotation: Handle) -> Vec<(String, u32)> {
    rotation.0.lock().loads()
}
