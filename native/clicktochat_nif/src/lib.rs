//! Rustler glue for clicktochat: decodes Erlang terms, calls
//! `clicktochat_core`, encodes the answer. No logic lives here.
//!
//! The hot path (pick, release, presence changes, parsing a body, rendering
//! an answer) is plain NIFs called directly by the process that needs it:
//! each does O(log agents) work or parses/renders at most a few kilobytes,
//! far under the ~1 ms a regular scheduler tolerates (see the hostile_inputs
//! bench). What walks every agent (`queue`, `loads`, for operators) and
//! what does I/O (the archive's open, sync, read, close) runs on dirty
//! schedulers. Bad terms raise `badarg`; nothing here unwraps caller input.
//!
//! One module per resource or domain: `rotation`, `archive`, `ratelimit`
//! (the three resources), `registration` (parsing a request body), `render`
//! (the answers); `atoms` and `error` (how failures reach Erlang) are
//! shared. NIFs and resources register themselves with `rustler::init!`.

mod archive;
mod atoms;
mod error;
mod ratelimit;
mod registration;
mod render;
mod rotation;

rustler::init!("clicktochat_nif");
