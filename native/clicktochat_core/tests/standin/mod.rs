//! Runs `test/riak_standin.py` (the Riak KV stand-in that speaks Riak's
//! Protocol Buffers protocol) with Debian's `/usr/bin/python3`, for the
//! tests and benches that need a Riak: missing python fails them, it does
//! not skip them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

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

/// How a launch of the stand-in ended.
enum Launch {
    Listening(StandIn),
    /// Its port was taken (by another test's connection, say).
    PortTaken,
}

impl StandIn {
    /// Starts the stand-in on a port the kernel picks for it (so no other
    /// test can take it between the choice and the bind) and waits (10 s at
    /// most) for its "listening" line.
    pub fn start(data: &Path) -> StandIn {
        match Self::launch(0, data) {
            Launch::Listening(riak) => riak,
            Launch::PortTaken => panic!("stand-in could not bind port 0"),
        }
    }

    /// Starts the stand-in on a given `port` (one a stopped stand-in had, or
    /// one a client was given before Riak was up): while that port is taken
    /// (another test's outgoing connection may land on a free port), tries
    /// again, for 10 s at most.
    pub fn restart_on(port: u16, data: &Path) -> StandIn {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::launch(port, data) {
                Launch::Listening(riak) => return riak,
                Launch::PortTaken if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50))
                }
                Launch::PortTaken => panic!("port {port} stayed in use for 10 s"),
            }
        }
    }

    fn launch(port: u16, data: &Path) -> Launch {
        let mut child = Command::new(PYTHON)
            .arg(standin_script())
            .args(["--port", &port.to_string(), "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} (Debian's python3 is required): {e}"));
        let line = first_line(&mut child);
        let listening = line.as_deref().and_then(|l| {
            l.trim_end()
                .strip_prefix("riak stand-in listening on 127.0.0.1:")?
                .parse::<u16>()
                .ok()
        });
        match listening {
            Some(bound) if port == 0 || bound == port => {
                // From here on its stderr goes where it went before it was
                // piped (a pipe nobody read would fill and stall it).
                if let Some(mut pipe) = child.stderr.take() {
                    thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::stderr()));
                }
                Launch::Listening(StandIn { child, port: bound })
            }
            _ => {
                let _ = child.kill();
                let status = child.wait();
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                if stderr.contains("Address already in use") {
                    return Launch::PortTaken;
                }
                panic!("stand-in did not start: {line:?}, exit {status:?}, stderr:\n{stderr}");
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
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
