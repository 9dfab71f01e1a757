//! A small Riak KV client over Riak's Protocol Buffers API (port 8087): ping,
//! get and put, nothing else. It is what the conversation archive needs and
//! it runs inside the ejabberd VM (on a writer thread), so every reply is
//! treated as hostile input:
//!
//! - a frame is read only after its length has been checked against
//!   [`RiakConfig::max_frame_bytes`] (length 0 is an error), and its buffer
//!   grows with the bytes that actually arrive, never with the declared
//!   length alone;
//! - replies are decoded into lean structs that hold only the fields used
//!   here (unknown and unused fields are skipped without allocating), and a
//!   get reply with more than [`MAX_SIBLINGS`] contents is refused, so
//!   decoding never needs much more memory than the frame itself;
//! - every request/reply exchange has one deadline ([`RiakConfig::io_timeout`]),
//!   so a server that dribbles bytes cannot hold the caller forever;
//! - no panic, no `unwrap` on anything that came from the network.
//!
//! Connections are made lazily. When a node cannot be reached the next one is
//! tried (round robin). After any error other than a Riak error reply the
//! connection is dropped, so a half-read reply can never be taken for the
//! answer to a later request; the next call reconnects, starting with the
//! next node. Requests are never retried here: a put that failed in flight
//! may or may not have been applied, and only the caller knows whether
//! retrying it is right.
//!
//! Messages and field numbers are those of `riak.proto` and `riak_kv.proto`
//! in basho/riak_pb, written out by hand for `prost` (no `protoc`).
//!
//! Layout: `client` holds the connection, failover and the calls;
//! `framing` the length-prefixed frames with their size limit and
//! deadlines; `messages` the Protocol Buffers messages and the decoding of
//! replies; `nodes` the parsing of node addresses.

mod client;
mod framing;
mod messages;
mod nodes;

use std::fmt;
use std::io;
use std::time::Duration;

pub use client::RiakClient;
pub use messages::{decode_get_reply, decode_put_reply, Fetched, Sibling, MAX_SIBLINGS};

/// Longest accepted `connect_timeout` and `io_timeout`: one day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Where and how to reach Riak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiakConfig {
    /// Protocol Buffers endpoints, `"host:port"` (`"[v6addr]:port"` for IPv6).
    pub nodes: Vec<String>,
    /// Longest wait for a TCP connection to one node.
    pub connect_timeout: Duration,
    /// Longest time for one request: writing it and reading the whole reply.
    pub io_timeout: Duration,
    /// Largest frame (message code + body) sent or accepted.
    pub max_frame_bytes: usize,
}

impl Default for RiakConfig {
    fn default() -> Self {
        RiakConfig {
            nodes: vec!["127.0.0.1:8087".to_string()],
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            max_frame_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum RiakError {
    /// A socket error, including a connection closed in the middle of a reply.
    Io(io::Error),
    /// The connect timeout or the request deadline passed.
    Timeout,
    /// A frame (sent or received) longer than `max_frame_bytes`.
    FrameTooLarge { len: usize, max: usize },
    /// A received frame of length 0 (it lacks even the message code).
    EmptyFrame,
    /// The reply's message code was not the expected one.
    UnexpectedCode { expected: u8, got: u8 },
    /// The reply body is not the protobuf message its code announces.
    Decode(String),
    /// Riak answered with an `RpbErrorResp`.
    Server { code: u32, message: String },
    /// The configuration lists no node.
    NoNodes,
    /// A node string that is not `host:port`.
    BadNode { node: String, reason: &'static str },
    /// A timeout of zero or over [`MAX_TIMEOUT`], or a size limit of zero.
    BadConfig(&'static str),
}

impl fmt::Display for RiakError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiakError::Io(e) => write!(f, "riak: i/o error: {e}"),
            RiakError::Timeout => write!(f, "riak: timed out"),
            RiakError::FrameTooLarge { len, max } => {
                write!(f, "riak: frame of {len} bytes exceeds the limit of {max}")
            }
            RiakError::EmptyFrame => write!(f, "riak: empty frame"),
            RiakError::UnexpectedCode { expected, got } => {
                write!(f, "riak: expected message code {expected}, got {got}")
            }
            RiakError::Decode(why) => write!(f, "riak: undecodable reply: {why}"),
            RiakError::Server { code, message } => {
                write!(f, "riak: server error {code}: {message}")
            }
            RiakError::NoNodes => write!(f, "riak: no node configured"),
            RiakError::BadNode { node, reason } => {
                write!(f, "riak: bad node {node:?}: {reason}")
            }
            RiakError::BadConfig(why) => write!(f, "riak: bad configuration: {why}"),
        }
    }
}

impl std::error::Error for RiakError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RiakError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A socket error; a socket read/write timeout becomes [`RiakError::Timeout`].
impl From<io::Error> for RiakError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // A socket read/write timeout is WouldBlock on Unix, TimedOut on Windows.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RiakError::Timeout,
            _ => RiakError::Io(e),
        }
    }
}

impl From<prost::DecodeError> for RiakError {
    fn from(e: prost::DecodeError) -> Self {
        RiakError::Decode(e.to_string())
    }
}
