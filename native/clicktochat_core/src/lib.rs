//! The pure-Rust core of clicktochat, with no Erlang in it: the helpdesk
//! (its rotation of agents, its waiting line and their wait estimate), the
//! registration request parser, the response renderer, and the
//! conversation archive: message entries, Erlang's external term format, the
//! stored records with their merge, the writer with its embedded store, and a
//! Riak KV client; SCRAM's stored keys of a password; and the durable copy
//! of the visitors' assignments (`kept`).
//! `clicktochat_nif` only converts Erlang terms and calls into this crate.

pub mod archive;
pub mod calendar;
pub mod conversation;
pub mod desk;
pub mod estimate;
pub mod etf;
pub mod id_list;
pub mod interner;
pub mod kept;
pub mod line;
pub mod ranking;
pub mod ratelimit;
pub mod records;
pub mod registration;
pub mod render;
pub mod riak;
pub mod rotation;
pub mod scram;

pub use desk::{Assignment, Changes, Desk, Entry, NewPosition, Status};
pub use registration::{parse_registration, Registration, RegistrationError};
pub use rotation::{AgentId, Availability, Release, Rotation, Routing};
