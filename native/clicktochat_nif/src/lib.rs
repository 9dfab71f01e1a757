//! Rustler glue for clicktochat: decodes Erlang terms, calls
//! `clicktochat_core`, encodes the answer. No logic lives here.
//!
//! The hot path (enter, release, presence changes, parsing a body, rendering
//! an answer) is plain NIFs called directly by the process that needs it:
//! each does O(log agents) work, plus one entry per visitor whose place in
//! line changed, or parses/renders at most a few kilobytes, far under the
//! ~1 ms a regular scheduler tolerates (see the hostile_inputs bench). What
//! walks every agent or the whole line (`queue`, `loads`, `line`, for
//! operators) and what does I/O (the archive's and the kept rows' open,
//! sync, read, close) runs on dirty schedulers. Bad terms raise `badarg`;
//! nothing here unwraps caller input.
//!
//! One module per resource or domain: `desk`, `archive`, `kept` (the
//! assignments' durable copy), `ratelimit` (the four resources),
//! `registration` (parsing a request body), `render` (the answers), `scram` (the keys of a visitor's password, dirty); `atoms`,
//! `terms` (the optional integers) and `error` (how failures reach Erlang)
//! are shared. NIFs and resources register themselves with `rustler::init!`.

/// A resource type holding a core handle: registered with rustler, and
/// unwind-safe because every operation of the handle completes or does
/// nothing under its own locks.
macro_rules! resource {
    ($name:ident($inner:ty)) => {
        pub struct $name($inner);

        #[rustler::resource_impl]
        impl rustler::Resource for $name {}

        impl std::panic::RefUnwindSafe for $name {}
    };
}

mod archive;
mod atoms;
mod desk;
mod error;
mod kept;
mod ratelimit;
mod raw;
mod registration;
mod render;
mod scram;
mod terms;

rustler::init!("clicktochat_nif", load = load);

/// Opens the resource types of our own (see `raw`); rustler registers its
/// own before.
fn load(env: rustler::Env, _info: rustler::Term) -> bool {
    desk::open(env)
}
