//! Rustler glue for clicktochat: decodes Erlang terms, calls
//! `clicktochat_core`, encodes the answer. No logic lives here.
//!
//! Every function is a plain (non-dirty) NIF called directly by the process
//! that needs it: each one does O(1) work or parses/renders at most a few
//! kilobytes, far under the ~1 ms a regular scheduler tolerates. Bad terms
//! raise `badarg`; nothing here unwraps caller input.

use clicktochat_core::{parse_registration, render, Release, Rotation};
use parking_lot::Mutex;
use rustler::{Atom, Binary, Encoder, Env, NifResult, ResourceArc, Term};

mod atoms {
    rustler::atoms! { ok, none, error, not_assigned }
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
fn set_max_sessions(rotation: Handle, max_sessions: u32) -> Atom {
    rotation.0.lock().set_max_sessions(max_sessions);
    atoms::ok()
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

#[rustler::nif]
fn queue(rotation: Handle) -> Vec<String> {
    rotation.0.lock().queue()
}

#[rustler::nif]
fn loads(rotation: Handle) -> Vec<(String, u32)> {
    rotation.0.lock().loads()
}

#[rustler::nif(name = "parse_registration")]
fn parse_registration_nif<'a>(env: Env<'a>, body: Binary<'a>) -> NifResult<Term<'a>> {
    Ok(match parse_registration(body.as_slice()) {
        Ok(registration) => (atoms::ok(), registration.username, registration.password).encode(env),
        Err(reason) => (atoms::error(), Atom::from_str(env, reason.code())?).encode(env),
    })
}

#[rustler::nif]
fn render_register_ok(from: &str, to: &str) -> String {
    render::register_ok(from, to)
}

#[rustler::nif]
fn render_list(usernames: Vec<&str>) -> String {
    render::connected_users(&usernames)
}

/// `Root` and `Reason` may each be an atom or a UTF-8 binary.
#[rustler::nif]
fn render_error(root: Term, reason: Term) -> NifResult<String> {
    Ok(render::error(&text_of(root)?, &text_of(reason)?))
}

fn text_of(term: Term) -> NifResult<String> {
    term.atom_to_string()
        .or_else(|_| term.decode::<&str>().map(str::to_owned))
}

rustler::init!("clicktochat_nif");
