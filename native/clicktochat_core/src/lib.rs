//! The pure-Rust core of clicktochat, with no Erlang in it: the helpdesk
//! rotation, the registration request parser, the response renderer and a
//! Riak KV client for the conversation archive.
//! `clicktochat_nif` only converts Erlang terms and calls into this crate.

pub mod registration;
pub mod render;
pub mod riak;
pub mod rotation;
pub mod archive;

pub use registration::{parse_registration, Registration, RegistrationError};
pub use rotation::{Release, Rotation};
