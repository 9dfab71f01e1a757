//! Riak node addresses: `"host:port"` (`"[v6addr]:port"` for IPv6),
//! checked when the client is made (no I/O, no DNS lookup then), resolved
//! and connected to with a deadline when needed.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::RiakError;

/// A validated node: an address, or a host name resolved at connect time.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Node {
    pub(super) fn parse(node: &str) -> Result<Node, RiakError> {
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
    pub(super) fn connect(&self, timeout: Duration) -> Result<TcpStream, RiakError> {
        let addrs: Vec<SocketAddr> = match self {
            Node::Addr(addr) => vec![*addr],
            Node::Name(host, port) => (host.as_str(), *port).to_socket_addrs()?.collect(),
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
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
