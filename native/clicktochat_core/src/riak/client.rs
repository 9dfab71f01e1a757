//! The client: one connection at a time, made lazily, failing over to the
//! next node; ping, get and put.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::framing::{self, body};
use super::messages::{
    self, check_reply_code, decode_get_resp, decode_put_resp, Fetched, MSG_GET_REQ, MSG_GET_RESP,
    MSG_PING_REQ, MSG_PING_RESP, MSG_PUT_REQ, MSG_PUT_RESP,
};
use super::nodes::Node;
use super::{RiakConfig, RiakError, MAX_TIMEOUT};

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
    /// Requests sent (answered or not), for operators' counters.
    requests: u64,
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
            requests: 0,
        })
    }

    /// How many requests this client has sent.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// `RpbPingReq`: succeeds when a node answers `RpbPingResp`.
    pub fn ping(&mut self) -> Result<(), RiakError> {
        self.call(MSG_PING_REQ, &[], MSG_PING_RESP).map(|_| ())
    }

    /// `RpbGetReq` with the bucket's default options.
    pub fn get(&mut self, bucket: &[u8], key: &[u8]) -> Result<Fetched, RiakError> {
        let request = messages::get_request(bucket, key);
        let frame = self.call(MSG_GET_REQ, &request, MSG_GET_RESP)?;
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
        let request = messages::put_request(bucket, key, vclock, value, content_type);
        let frame = self.call(MSG_PUT_REQ, &request, MSG_PUT_RESP)?;
        decode_put_resp(body(&frame)).map_err(|e| self.dropping(e))
    }

    /// One exchange: sends `code` + `body`, returns the reply frame (code
    /// byte first) if its code is `expected`. An `RpbErrorResp` becomes
    /// [`RiakError::Server`]; any other failure also drops the connection.
    fn call(&mut self, code: u8, body_bytes: &[u8], expected: u8) -> Result<Vec<u8>, RiakError> {
        self.requests += 1;
        let request = framing::encode(code, body_bytes, self.max_frame_bytes)?;
        let (max, io_timeout) = (self.max_frame_bytes, self.io_timeout);
        let stream = self.connection()?;
        let deadline = Instant::now() + io_timeout;
        let result = framing::exchange(stream, &request, max, deadline);
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

#[cfg(test)]
mod tests {
    use super::*;

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
