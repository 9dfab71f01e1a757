//! The pure-Rust core of clicktochat, with no Erlang in it: the helpdesk
//! rotation, the registration request parser and the response renderer.
//! `clicktochat_nif` only converts Erlang terms and calls into this crate.

pub mod registration;
pub mod render;
pub mod rotation;
pub mod archive;

pub use registration::{parse_registration, Registration, RegistrationError};
pub use rotation::{Release, Rotation};
