//! The pure-Rust core of clicktochat, with no Erlang in it: the helpdesk
//! rotation, the registration request parser, the response renderer, and the
//! conversation archive: message entries, Erlang's external term format, the
//! stored records with their merge, the writer with its embedded store, and a
//! Riak KV client.
//! `clicktochat_nif` only converts Erlang terms and calls into this crate.

pub mod archive;
pub mod calendar;
pub mod conversation;
pub mod etf;
pub mod ratelimit;
pub mod records;
pub mod registration;
pub mod render;
pub mod riak;
pub mod rotation;

pub use registration::{parse_registration, Registration, RegistrationError};
pub use rotation::{Availability, Release, Rotation, Routing};
