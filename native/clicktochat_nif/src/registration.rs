//! Parsing a registration request body, XML or JSON.

use crate::atoms;
use clicktochat_core::registration::{
    parse_registration, parse_registration_json, Registration, RegistrationError,
};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};

#[rustler::nif(name = "parse_registration")]
fn parse_registration_nif<'a>(env: Env<'a>, body: Binary<'a>) -> NifResult<Term<'a>> {
    registration_term(env, parse_registration(body.as_slice()))
}

#[rustler::nif(name = "parse_registration_json")]
fn parse_registration_json_nif<'a>(env: Env<'a>, body: Binary<'a>) -> NifResult<Term<'a>> {
    registration_term(env, parse_registration_json(body.as_slice()))
}

/// `{ok, Username, Password}` or `{error, Reason}`, the reason an atom.
fn registration_term(env: Env, parsed: Result<Registration, RegistrationError>) -> NifResult<Term> {
    Ok(match parsed {
        Ok(registration) => (atoms::ok(), registration.username, registration.password).encode(env),
        Err(reason) => (atoms::error(), Atom::from_str(env, reason.code())?).encode(env),
    })
}
