//! The pure-Rust core of clicktochat, with no Erlang in it: the helpdesk
//! rotation, the registration request parser, the response renderer and the
//! conversation archive's message entry codec.
//! `clicktochat_nif` only converts Erlang terms and calls into this crate.

pub mod conversation;
pub mod registration;
pub mod render;
pub mod rotation;

pub use registration::{parse_registration, Registration, RegistrationError};
pub use rotation::{Release, Rotation};
