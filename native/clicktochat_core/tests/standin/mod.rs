//! Runs `test/riak_standin.py` (the Riak KV stand-in that speaks Riak's
//! Protocol Buffers protocol) with Debian's `/usr/bin/python3`, for the
//! tests and benches that need a Riak: missing python fails them, it does
//! not skip them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub const PYTHON: &str = "/usr/bin/python3";

fn standin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/riak_standin.py")
}

/// The first line a child prints on its piped stdout, waiting 10 s at most.
pub fn first_line(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        if BufReader::new(stdout).read_line(&mut line).is_ok() {
            let _ = tx.send(line);
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).ok()
}

/// A running stand-in; killed when dropped.
pub struct StandIn {
    child: Child,
    port: u16,
}

impl StandIn {
    /// Starts the stand-in on `port` and waits (10 s at most) for its
    /// "listening" line.
    pub fn start(port: u16, data: &Path) -> StandIn {
        let mut child = Command::new(PYTHON)
            .arg(standin_script())
            .args(["--port", &port.to_string(), "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} (Debian's python3 is required): {e}"));
        let expected = format!("riak stand-in listening on 127.0.0.1:{port}");
        match first_line(&mut child) {
            Some(line) if line.trim_end() == expected => StandIn { child, port },
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!("stand-in did not start: {other:?}, exit {status:?}");
            }
        }
    }

    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
