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

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use prost::Message;

/// Most contents (siblings and tombstones) accepted in one get reply. Riak
/// itself refuses writes beyond 100 siblings by default
/// (`object.siblings.maximum`).
pub const MAX_SIBLINGS: usize = 512;

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

/// What a get found. A missing key is an empty `Fetched` (no vclock, no siblings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The object's vector clock: pass it to the next put of this key so that
    /// the put replaces every sibling read here.
    pub vclock: Option<Vec<u8>>,
    /// The live values (tombstones are left out); more than one when
    /// concurrent writes created siblings.
    pub siblings: Vec<Sibling>,
}

/// One value of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub value: Vec<u8>,
    /// Lossily decoded as UTF-8 (media types are ASCII).
    pub content_type: Option<String>,
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

fn io_error(e: io::Error) -> RiakError {
    match e.kind() {
        // A socket read/write timeout is WouldBlock on Unix, TimedOut on Windows.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RiakError::Timeout,
        _ => RiakError::Io(e),
    }
}

/// A client for one thread: calls are sequential on one connection at a time.
#[derive(Debug)]
pub struct RiakClient {
    nodes: Vec<Node>,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_frame_bytes: usize,
    /// Index of the node `conn` is connected to, or to try first.
    next: usize,
    conn: Option<TcpStream>,
}

impl RiakClient {
    /// Checks the configuration; does no I/O (no DNS lookup either).
    pub fn new(config: RiakConfig) -> Result<Self, RiakError> {
        if config.nodes.is_empty() {
            return Err(RiakError::NoNodes);
        }
        // Bounded so that `Instant::now() + timeout` cannot overflow.
        let sane = |d: Duration| !d.is_zero() && d <= MAX_TIMEOUT;
        if !sane(config.connect_timeout) {
            return Err(RiakError::BadConfig("connect_timeout is 0 or over a day"));
        }
        if !sane(config.io_timeout) {
            return Err(RiakError::BadConfig("io_timeout is 0 or over a day"));
        }
        if config.max_frame_bytes == 0 {
            return Err(RiakError::BadConfig("max_frame_bytes is zero"));
        }
        let nodes = config
            .nodes
            .iter()
            .map(|n| Node::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RiakClient {
            nodes,
            connect_timeout: config.connect_timeout,
            io_timeout: config.io_timeout,
            max_frame_bytes: config.max_frame_bytes,
            next: 0,
            conn: None,
        })
    }

    /// `RpbPingReq`: succeeds when a node answers `RpbPingResp`.
    pub fn ping(&mut self) -> Result<(), RiakError> {
        self.call(MSG_PING_REQ, &[], MSG_PING_RESP).map(|_| ())
    }

    /// `RpbGetReq` with the bucket's default options.
    pub fn get(&mut self, bucket: &[u8], key: &[u8]) -> Result<Fetched, RiakError> {
        let req = RpbGetReq {
            bucket: bucket.to_vec(),
            key: key.to_vec(),
            ..RpbGetReq::default()
        };
        let frame = self.call(MSG_GET_REQ, &req.encode_to_vec(), MSG_GET_RESP)?;
        decode_get_resp(body(&frame)).map_err(|e| self.dropping(e))
    }

    /// `RpbPutReq` of one value, with `return_head` set. With the vclock of
    /// a get, the put replaces every sibling that get returned; without one
    /// (or with a stale one) it adds a sibling.
    ///
    /// Returns the object's new vclock when the object now holds only the
    /// value just written, so the caller may keep it for its next put of the
    /// key. Returns `None` when the put left siblings (another writer got in
    /// between, or Riak sent no vclock): Riak's vclock then covers those
    /// siblings too, and a put with it would silently discard them, so the
    /// caller must get, merge and put with the get's vclock instead.
    pub fn put(
        &mut self,
        bucket: &[u8],
        key: &[u8],
        vclock: Option<&[u8]>,
        value: &[u8],
        content_type: &str,
    ) -> Result<Option<Vec<u8>>, RiakError> {
        let req = RpbPutReq {
            bucket: bucket.to_vec(),
            key: Some(key.to_vec()),
            vclock: vclock.map(<[u8]>::to_vec),
            content: RpbContent {
                value: value.to_vec(),
                content_type: Some(content_type.as_bytes().to_vec()),
                ..RpbContent::default()
            },
            return_head: Some(true),
            ..RpbPutReq::default()
        };
        let frame = self.call(MSG_PUT_REQ, &req.encode_to_vec(), MSG_PUT_RESP)?;
        decode_put_resp(body(&frame)).map_err(|e| self.dropping(e))
    }

    /// One exchange: sends `code` + `body`, returns the reply frame (code
    /// byte first) if its code is `expected`. An `RpbErrorResp` becomes
    /// [`RiakError::Server`]; any other failure also drops the connection.
    fn call(&mut self, code: u8, body_bytes: &[u8], expected: u8) -> Result<Vec<u8>, RiakError> {
        let frame_len = body_bytes.len().saturating_add(1);
        if frame_len > self.max_frame_bytes || u32::try_from(frame_len).is_err() {
            return Err(RiakError::FrameTooLarge {
                len: frame_len,
                max: self.max_frame_bytes,
            });
        }
        let mut out = Vec::with_capacity(frame_len + 4);
        out.extend_from_slice(&(frame_len as u32).to_be_bytes());
        out.push(code);
        out.extend_from_slice(body_bytes);

        let (max, io_timeout) = (self.max_frame_bytes, self.io_timeout);
        let stream = self.connection()?;
        let deadline = Instant::now() + io_timeout;
        let result =
            write_all_by(stream, &out, deadline).and_then(|()| read_frame(stream, max, deadline));
        let frame = result.map_err(|e| self.dropping(e))?;
        match check_reply_code(&frame, expected) {
            Ok(()) => Ok(frame),
            // A whole, well-framed error reply: the connection stays usable.
            Err(e @ RiakError::Server { .. }) => Err(e),
            Err(e) => Err(self.dropping(e)),
        }
    }

    /// Forgets the connection (the next call reconnects, starting with the
    /// next node) and passes `e` through.
    fn dropping(&mut self, e: RiakError) -> RiakError {
        if self.conn.take().is_some() {
            self.next = (self.next + 1) % self.nodes.len();
        }
        e
    }

    /// The open connection, or a new one to the first node that answers,
    /// starting at `next` and going round the list once.
    fn connection(&mut self) -> Result<&mut TcpStream, RiakError> {
        if self.conn.is_none() {
            let n = self.nodes.len();
            let mut last = RiakError::NoNodes;
            for i in 0..n {
                let idx = (self.next + i) % n;
                match self.nodes[idx].connect(self.connect_timeout) {
                    Ok(stream) => {
                        self.next = idx;
                        self.conn = Some(stream);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if self.conn.is_none() {
                self.next = (self.next + 1) % n;
                return Err(last);
            }
        }
        self.conn.as_mut().ok_or(RiakError::NoNodes)
    }
}

/// The body of a frame returned by `read_frame` (which is never empty).
fn body(frame: &[u8]) -> &[u8] {
    frame.get(1..).unwrap_or(&[])
}

/// Whether a reply frame (message code first) answers a request expecting
/// `expected`: an `RpbErrorResp` is [`RiakError::Server`], any other code
/// [`RiakError::UnexpectedCode`].
fn check_reply_code(frame: &[u8], expected: u8) -> Result<(), RiakError> {
    let Some(&got) = frame.first() else {
        return Err(RiakError::EmptyFrame);
    };
    if got == expected {
        Ok(())
    } else if got == MSG_ERROR_RESP {
        match RpbErrorResp::decode(body(frame)) {
            Ok(err) => Err(RiakError::Server {
                code: err.errcode,
                message: String::from_utf8_lossy(&err.errmsg).into_owned(),
            }),
            Err(e) => Err(RiakError::Decode(e.to_string())),
        }
    } else {
        Err(RiakError::UnexpectedCode { expected, got })
    }
}

/// The decoding step of [`RiakClient::get`], without the I/O: the reply
/// frame as read off the wire after its 4-byte length (message code, then
/// body), to what `get` returns. For tests and fuzzing; `get` runs the same
/// two steps.
pub fn decode_get_reply(frame: &[u8]) -> Result<Fetched, RiakError> {
    check_reply_code(frame, MSG_GET_RESP)?;
    decode_get_resp(body(frame))
}

/// The decoding step of [`RiakClient::put`], as [`decode_get_reply`] is of `get`.
pub fn decode_put_reply(frame: &[u8]) -> Result<Option<Vec<u8>>, RiakError> {
    check_reply_code(frame, MSG_PUT_RESP)?;
    decode_put_resp(body(frame))
}

/// A validated node: an address, or a host name resolved at connect time.
#[derive(Debug, Clone)]
enum Node {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Node {
    fn parse(node: &str) -> Result<Node, RiakError> {
        let bad = |reason| RiakError::BadNode {
            node: node.to_string(),
            reason,
        };
        if let Ok(addr) = node.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(bad("port 0"))
            } else {
                Ok(Node::Addr(addr))
            };
        }
        let (host, port) = node.rsplit_once(':').ok_or_else(|| bad("no :port"))?;
        let port: u16 = port.parse().map_err(|_| bad("port is not 1-65535"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        if host.is_empty() || host.len() > 253 {
            return Err(bad("host name empty or too long"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(bad("host is not an IP address or a DNS name"));
        }
        Ok(Node::Name(host.to_string(), port))
    }

    /// Connects within `timeout` in all (a name may resolve to several
    /// addresses). The DNS lookup itself is the system resolver's, with its
    /// own timeouts: give IP addresses where that matters.
    fn connect(&self, timeout: Duration) -> Result<TcpStream, RiakError> {
        let addrs: Vec<SocketAddr> = match self {
            Node::Addr(addr) => vec![*addr],
            Node::Name(host, port) => (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(RiakError::Io)?
                .collect(),
        };
        let deadline = Instant::now() + timeout;
        let mut last = RiakError::Io(io::Error::new(
            io::ErrorKind::NotFound,
            "host name resolved to no address",
        ));
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RiakError::Timeout);
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(RiakError::Io)?;
                    return Ok(stream);
                }
                Err(e) => last = io_error(e),
            }
        }
        Err(last)
    }
}

/// Time left before `deadline`, or `Timeout`.
fn time_left(deadline: Instant) -> Result<Duration, RiakError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(RiakError::Timeout)
    } else {
        Ok(left)
    }
}

fn write_all_by(
    stream: &mut TcpStream,
    mut buf: &[u8],
    deadline: Instant,
) -> Result<(), RiakError> {
    while !buf.is_empty() {
        stream
            .set_write_timeout(Some(time_left(deadline)?))
            .map_err(RiakError::Io)?;
        match stream.write(buf) {
            Ok(0) => return Err(RiakError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    Ok(())
}

/// Fills `buf` from `stream` before `deadline`; end of stream is `UnexpectedEof`.
fn read_exact_by(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), RiakError> {
    let mut filled = 0;
    while filled < buf.len() {
        stream
            .set_read_timeout(Some(time_left(deadline)?))
            .map_err(RiakError::Io)?;
        match stream.read(buf.get_mut(filled..).unwrap_or(&mut [])) {
            Ok(0) => return Err(RiakError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    Ok(())
}

/// Buffer growth step while reading a frame body.
const READ_CHUNK: usize = 64 * 1024;

/// Reads one frame: a 4-byte big-endian length `L` (1 <= L <= `max`), then
/// `L` bytes, the message code and the body. Returns those `L` bytes. The
/// buffer doubles as bytes arrive (starting at 64 KiB) and never exceeds
/// `L`, so a length that lies costs nothing until the bytes come.
fn read_frame(stream: &mut TcpStream, max: usize, deadline: Instant) -> Result<Vec<u8>, RiakError> {
    let mut header = [0u8; 4];
    read_exact_by(stream, &mut header, deadline)?;
    let len = u32::from_be_bytes(header);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(RiakError::EmptyFrame);
    }
    if len > max {
        return Err(RiakError::FrameTooLarge { len, max });
    }
    let mut frame: Vec<u8> = Vec::new();
    let mut filled = 0;
    while filled < len {
        let size = len.min(frame.len().saturating_mul(2).max(READ_CHUNK));
        frame.reserve_exact(size - frame.len());
        frame.resize(size, 0);
        read_exact_by(stream, frame.get_mut(filled..).unwrap_or(&mut []), deadline)?;
        filled = size;
    }
    Ok(frame)
}

// Message codes (riak_pb's riak_pb_messages.csv).
const MSG_ERROR_RESP: u8 = 0;
const MSG_PING_REQ: u8 = 1;
const MSG_PING_RESP: u8 = 2;
const MSG_GET_REQ: u8 = 9;
const MSG_GET_RESP: u8 = 10;
const MSG_PUT_REQ: u8 = 11;
const MSG_PUT_RESP: u8 = 12;

// The messages, as in riak.proto and riak_kv.proto (proto2). `required`
// fields are always encoded, `optional` ones only when Some. Requests are
// encoded from the full definitions; replies are decoded into lean views
// (below) that hold only what this client reads.

/// `RpbErrorResp` (riak.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbErrorResp {
    #[prost(bytes = "vec", required, tag = "1")]
    errmsg: Vec<u8>,
    #[prost(uint32, required, tag = "2")]
    errcode: u32,
}

/// `RpbPair` (riak.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbPair {
    #[prost(bytes = "vec", required, tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    value: Option<Vec<u8>>,
}

/// `RpbLink` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbLink {
    #[prost(bytes = "vec", optional, tag = "1")]
    bucket: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    tag: Option<Vec<u8>>,
}

/// `RpbContent` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbContent {
    #[prost(bytes = "vec", required, tag = "1")]
    value: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    content_type: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    charset: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    content_encoding: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    vtag: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "6")]
    links: Vec<RpbLink>,
    #[prost(uint32, optional, tag = "7")]
    last_mod: Option<u32>,
    #[prost(uint32, optional, tag = "8")]
    last_mod_usecs: Option<u32>,
    #[prost(message, repeated, tag = "9")]
    usermeta: Vec<RpbPair>,
    #[prost(message, repeated, tag = "10")]
    indexes: Vec<RpbPair>,
    #[prost(bool, optional, tag = "11")]
    deleted: Option<bool>,
    /// Only in riak_pb's `master` branch (object TTL), not in `develop`.
    #[prost(uint32, optional, tag = "12")]
    ttl: Option<u32>,
}

/// `RpbGetReq` (riak_kv.proto).
#[derive(Clone, PartialEq, Message)]
struct RpbGetReq {
    #[prost(bytes = "vec", required, tag = "1")]
    bucket: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    key: Vec<u8>,
    #[prost(uint32, optional, tag = "3")]
    r: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pr: Option<u32>,
    #[prost(bool, optional, tag = "5")]
    basic_quorum: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    notfound_ok: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "7")]
    if_modified: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "8")]
    head: Option<bool>,
    #[prost(bool, optional, tag = "9")]
    deletedvclock: Option<bool>,
    #[prost(uint32, optional, tag = "10")]
    timeout: Option<u32>,
    #[prost(bool, optional, tag = "11")]
    sloppy_quorum: Option<bool>,
    #[prost(uint32, optional, tag = "12")]
    n_val: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "13")]
    r#type: Option<Vec<u8>>,
}

/// `RpbPutReq` (riak_kv.proto; `develop` adds `node_confirms = 17`, unused here).
#[derive(Clone, PartialEq, Message)]
struct RpbPutReq {
    #[prost(bytes = "vec", required, tag = "1")]
    bucket: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    vclock: Option<Vec<u8>>,
    #[prost(message, required, tag = "4")]
    content: RpbContent,
    #[prost(uint32, optional, tag = "5")]
    w: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    dw: Option<u32>,
    #[prost(bool, optional, tag = "7")]
    return_body: Option<bool>,
    #[prost(uint32, optional, tag = "8")]
    pw: Option<u32>,
    #[prost(bool, optional, tag = "9")]
    if_not_modified: Option<bool>,
    #[prost(bool, optional, tag = "10")]
    if_none_match: Option<bool>,
    #[prost(bool, optional, tag = "11")]
    return_head: Option<bool>,
    #[prost(uint32, optional, tag = "12")]
    timeout: Option<u32>,
    #[prost(bool, optional, tag = "13")]
    asis: Option<bool>,
    #[prost(bool, optional, tag = "14")]
    sloppy_quorum: Option<bool>,
    #[prost(uint32, optional, tag = "15")]
    n_val: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "16")]
    r#type: Option<Vec<u8>>,
}

/// The part of an `RpbContent` this client reads: links, user metadata and
/// indexes are skipped by the decoder instead of being allocated.
#[derive(Clone, PartialEq, Message)]
struct ContentView {
    #[prost(bytes = "vec", required, tag = "1")]
    value: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "2")]
    content_type: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "11")]
    deleted: Option<bool>,
}

/// Decodes an `RpbGetResp` (`content = 1` repeated, `vclock = 2`,
/// `unchanged = 3`), or those fields of an `RpbPutResp`, one content at a
/// time, so that a flood of tiny contents is refused after [`MAX_SIBLINGS`]
/// instead of becoming millions of structs.
fn decode_get_resp(mut buf: &[u8]) -> Result<Fetched, RiakError> {
    let mut fetched = Fetched::default();
    let mut contents = 0usize;
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let tag = key >> 3;
        let value = match key & 7 {
            0 => {
                read_varint(&mut buf)?;
                None
            }
            1 => {
                take(&mut buf, 8)?;
                None
            }
            2 => {
                let len = read_varint(&mut buf)?;
                Some(take(&mut buf, usize::try_from(len).unwrap_or(usize::MAX))?)
            }
            5 => {
                take(&mut buf, 4)?;
                None
            }
            _ => return Err(RiakError::Decode(format!("bad wire type in key {key}"))),
        };
        match (tag, value) {
            (1, Some(bytes)) => {
                contents += 1;
                if contents > MAX_SIBLINGS {
                    return Err(RiakError::Decode(format!(
                        "more than {MAX_SIBLINGS} contents in one object"
                    )));
                }
                let content = ContentView::decode(bytes)
                    .map_err(|e| RiakError::Decode(format!("RpbContent: {e}")))?;
                if content.deleted != Some(true) {
                    fetched.siblings.push(Sibling {
                        value: content.value,
                        content_type: content
                            .content_type
                            .map(|ct| String::from_utf8_lossy(&ct).into_owned()),
                    });
                }
            }
            (2, Some(bytes)) => fetched.vclock = Some(bytes.to_vec()),
            (1 | 2, None) => {
                return Err(RiakError::Decode(format!("bad wire type for field {tag}")))
            }
            _ => {} // unchanged (3) and unknown fields
        }
    }
    Ok(fetched)
}

/// An `RpbPutResp` sent for a put with `return_head`: the new vclock when
/// the object holds exactly one content (see [`RiakClient::put`]).
fn decode_put_resp(buf: &[u8]) -> Result<Option<Vec<u8>>, RiakError> {
    // RpbPutResp shares `content = 1` and `vclock = 2` with RpbGetResp
    // (its `key = 3` is skipped like `unchanged = 3`); with return_head
    // each content comes with an empty value.
    let head = decode_get_resp(buf)?;
    Ok(match head.siblings.len() {
        1 => head.vclock,
        _ => None,
    })
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], RiakError> {
    if n > buf.len() {
        return Err(RiakError::Decode("field runs past the end".into()));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, RiakError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf
            .split_first()
            .ok_or_else(|| RiakError::Decode("truncated varint".into()))?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RiakError::Decode("varint longer than 10 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_bytes() {
        let req = RpbGetReq {
            bucket: b"b".to_vec(),
            key: b"k".to_vec(),
            ..RpbGetReq::default()
        };
        assert_eq!(req.encode_to_vec(), [0x0a, 1, b'b', 0x12, 1, b'k']);
    }

    #[test]
    fn put_request_bytes() {
        let req = RpbPutReq {
            bucket: b"b".to_vec(),
            key: Some(b"k".to_vec()),
            vclock: Some(b"V".to_vec()),
            content: RpbContent {
                value: Vec::new(),
                content_type: Some(b"t".to_vec()),
                ..RpbContent::default()
            },
            return_head: Some(true),
            ..RpbPutReq::default()
        };
        // bucket(1) key(2) vclock(3) content(4){value(1) = "" is required,
        // so present; content_type(2)} return_head(11, varint: key 0x58).
        let expected = [
            0x0a, 1, b'b', 0x12, 1, b'k', 0x1a, 1, b'V', 0x22, 5, 0x0a, 0, 0x12, 1, b't', 0x58, 1,
        ];
        assert_eq!(req.encode_to_vec(), expected);
    }

    #[test]
    fn error_reply_decodes() {
        let bytes = [0x0a, 3, b'b', b'a', b'd', 0x10, 7];
        let err = RpbErrorResp::decode(&bytes[..]).expect("decodes");
        assert_eq!(err.errmsg, b"bad");
        assert_eq!(err.errcode, 7);
    }

    #[test]
    fn whole_reply_frames_decode_by_their_code() {
        // get: not found, one sibling with a vclock.
        assert_eq!(
            decode_get_reply(&[MSG_GET_RESP]).expect("ok"),
            Fetched::default()
        );
        let one = [MSG_GET_RESP, 0x0a, 3, 0x0a, 1, b'a', 0x12, 1, b'V'];
        let fetched = decode_get_reply(&one).expect("ok");
        assert_eq!(fetched.vclock.as_deref(), Some(&b"V"[..]));
        assert_eq!(fetched.siblings.len(), 1);
        // put: the vclock only when exactly one content is left.
        let mut put = one;
        put[0] = MSG_PUT_RESP;
        assert_eq!(
            decode_put_reply(&put).expect("ok").as_deref(),
            Some(&b"V"[..])
        );
        let empty_content = [0x0a, 2, 0x0a, 0];
        let two = [
            &[MSG_PUT_RESP][..],
            &empty_content,
            &empty_content,
            &[0x12, 1, b'V'],
        ]
        .concat();
        assert_eq!(decode_put_reply(&two).expect("ok"), None);
        // An error reply, a wrong code, an empty frame, a bad error body.
        let error = [MSG_ERROR_RESP, 0x0a, 3, b'b', b'a', b'd', 0x10, 7];
        assert!(matches!(
            decode_get_reply(&error),
            Err(RiakError::Server { code: 7, ref message }) if message == "bad"
        ));
        assert!(matches!(
            decode_put_reply(&[MSG_GET_RESP]),
            Err(RiakError::UnexpectedCode {
                expected: MSG_PUT_RESP,
                got: MSG_GET_RESP
            })
        ));
        assert!(matches!(decode_get_reply(&[]), Err(RiakError::EmptyFrame)));
        assert!(matches!(
            decode_get_reply(&[MSG_ERROR_RESP, 0x0a]),
            Err(RiakError::Decode(_))
        ));
    }

    #[test]
    fn get_reply_decodes_siblings_skipping_tombstones() {
        assert_eq!(decode_get_resp(&[]).expect("not found"), Fetched::default());
        let mut body = Vec::new();
        // content {value "a", content_type "t", a link, usermeta} ...
        body.extend_from_slice(&[0x0a, 14, 0x0a, 1, b'a', 0x12, 1, b't']);
        body.extend_from_slice(&[0x32, 2, 0x12, 0, 0x4a, 2, 0x0a, 0]);
        // ... a tombstone {value "", deleted true} ...
        body.extend_from_slice(&[0x0a, 4, 0x0a, 0, 0x58, 1]);
        // ... content {value "b"}, vclock "VC", unchanged false, unknown field 99.
        body.extend_from_slice(&[0x0a, 3, 0x0a, 1, b'b', 0x12, 2, b'V', b'C', 0x18, 0]);
        body.extend_from_slice(&[0x98, 0x06, 1]);
        let fetched = decode_get_resp(&body).expect("decodes");
        assert_eq!(fetched.vclock.as_deref(), Some(&b"VC"[..]));
        assert_eq!(
            fetched.siblings,
            [
                Sibling {
                    value: b"a".to_vec(),
                    content_type: Some("t".into())
                },
                Sibling {
                    value: b"b".to_vec(),
                    content_type: None
                },
            ]
        );
    }

    #[test]
    fn get_reply_refuses_a_content_flood() {
        let body: Vec<u8> = [0x0a, 0].repeat(MAX_SIBLINGS + 1);
        assert!(matches!(decode_get_resp(&body), Err(RiakError::Decode(_))));
        let body: Vec<u8> = [0x0a, 0].repeat(MAX_SIBLINGS);
        assert_eq!(
            decode_get_resp(&body).expect("ok").siblings.len(),
            MAX_SIBLINGS
        );
    }

    #[test]
    fn get_reply_rejects_malformed_bodies() {
        let cases: [&[u8]; 7] = [
            &[0x0a],          // key without length
            &[0x0a, 5, 1, 2], // length past the end
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[0x08, 1],       // content as a varint
            &[0x0b, 0x0c],    // group wire type
            &[0xff; 11],      // overlong varint
            &[0x0a, 2, 0x0a, 5], // content with a truncated value
        ];
        for case in cases {
            assert!(
                matches!(decode_get_resp(case), Err(RiakError::Decode(_))),
                "{case:?}"
            );
        }
    }

    #[test]
    fn nodes_are_validated_without_io() {
        for ok in [
            "127.0.0.1:8087",
            "[::1]:8087",
            "riak-1.example.com:8087",
            "localhost:1",
        ] {
            assert!(Node::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "riak",
            "riak:",
            ":8087",
            "riak:0",
            "riak:65536",
            "riak:x",
            "::1:8087",
            "riak 1:8087",
            "127.0.0.1:0",
            "ri/ak:8087",
        ] {
            assert!(
                matches!(Node::parse(bad), Err(RiakError::BadNode { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_is_validated() {
        let ok = RiakConfig::default();
        assert!(RiakClient::new(ok.clone()).is_ok());
        let cases = [
            (
                RiakConfig {
                    nodes: vec![],
                    ..ok.clone()
                },
                "NoNodes",
            ),
            (
                RiakConfig {
                    nodes: vec!["x".into()],
                    ..ok.clone()
                },
                "BadNode",
            ),
            (
                RiakConfig {
                    connect_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                "BadConfig",
            ),
            (
                RiakConfig {
                    io_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                "BadConfig",
            ),
            (
                RiakConfig {
                    max_frame_bytes: 0,
                    ..ok.clone()
                },
                "BadConfig",
            ),
        ];
        for (config, want) in cases {
            let err = RiakClient::new(config).expect_err(want);
            assert!(format!("{err:?}").starts_with(want), "{err:?}");
        }
    }

    #[test]
    fn oversized_requests_are_refused_before_any_io() {
        let mut client = RiakClient::new(RiakConfig {
            nodes: vec!["127.0.0.1:9".into()],
            max_frame_bytes: 100,
            ..RiakConfig::default()
        })
        .expect("valid");
        let err = client
            .put(b"b", b"k", None, &[0; 200], "application/octet-stream")
            .expect_err("too large");
        assert!(
            matches!(err, RiakError::FrameTooLarge { max: 100, .. }),
            "{err:?}"
        );
    }
}
