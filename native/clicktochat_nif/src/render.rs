//! The HTTP API's answers, as XML (the default, the original project's) or
//! JSON.

use crate::error::BadArg;
use crate::terms::Estimate;
use clicktochat_core::{render, Availability};
use rustler::{NifResult, Term};

/// `xml | json`; any other term is `badarg`.
#[derive(rustler::NifUnitEnum)]
enum Format {
    Xml,
    Json,
}

#[rustler::nif]
fn render_register_ok(BadArg(format): BadArg<Format>, from: &str, to: &str) -> String {
    match format {
        Format::Xml => render::register_ok(from, to),
        Format::Json => render::json_register_ok(from, to),
    }
}

#[rustler::nif]
fn render_list(BadArg(format): BadArg<Format>, usernames: Vec<&str>) -> String {
    match format {
        Format::Xml => render::connected_users(&usernames),
        Format::Json => render::json_connected_users(&usernames),
    }
}

/// The 202 of a registration put in line: its position and estimated wait
/// (`undefined`: left out).
#[rustler::nif]
fn render_register_waiting(
    BadArg(format): BadArg<Format>,
    from: &str,
    position: u64,
    Estimate(estimate): Estimate,
) -> String {
    match format {
        Format::Xml => render::register_waiting(from, position, estimate),
        Format::Json => render::json_register_waiting(from, position, estimate),
    }
}

/// `GET /status`: `{AgentsAvailable, FreeSlots}`, the waiting line's
/// length and a newcomer's estimated wait, as `status/1` gives them
/// (`undefined`: left out).
#[rustler::nif]
fn render_status(
    BadArg(format): BadArg<Format>,
    (agents_available, free_slots): (u32, u64),
    waiting: u64,
    Estimate(estimate): Estimate,
) -> String {
    let availability = Availability {
        agents_available,
        free_slots,
    };
    match format {
        Format::Xml => render::status(availability, waiting, estimate),
        Format::Json => render::json_status(availability, waiting, estimate),
    }
}

/// `Root` and `Reason` may each be an atom or a UTF-8 binary; JSON errors
/// have no root.
#[rustler::nif]
fn render_error(BadArg(format): BadArg<Format>, root: Term, reason: Term) -> NifResult<String> {
    Ok(match format {
        Format::Xml => render::error(&text_of(root)?, &text_of(reason)?),
        Format::Json => render::json_error(&text_of(reason)?),
    })
}

fn text_of(term: Term) -> NifResult<String> {
    term.atom_to_string()
        .or_else(|_| term.decode::<&str>().map(str::to_owned))
}
