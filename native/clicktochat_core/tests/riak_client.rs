//! The Riak client against two kinds of server:
//!
//! - `test/riak_standin.py`, a Riak KV stand-in that speaks Riak's Protocol
//!   Buffers wire protocol, run with Debian's `/usr/bin/python3` (missing
//!   python fails these tests, it does not skip them);
//! - tiny servers on threads of this test that send hostile replies. A
//!   per-thread allocation counter (the global allocator below) shows that no
//!   reply makes the client allocate more than the bytes that actually came.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clicktochat_core::riak::{Fetched, RiakClient, RiakConfig, RiakError, Sibling};

#[path = "standin/mod.rs"]
mod standin;
use standin::{first_line, StandIn, PYTHON};

// --- allocation accounting ---------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap it held at once on
/// this thread, above what the thread held before.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, usize::try_from(peak - base).unwrap_or(0))
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// --- the stand-in ----------------------------------------------------------------

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("clicktochat-riak-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(nodes: &[String]) -> RiakClient {
    RiakClient::new(RiakConfig {
        nodes: nodes.to_vec(),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        ..RiakConfig::default()
    })
    .expect("valid config")
}

fn sibling(value: &[u8], content_type: &str) -> Sibling {
    Sibling {
        value: value.to_vec(),
        content_type: Some(content_type.to_string()),
    }
}

fn sorted(mut siblings: Vec<Sibling>) -> Vec<Sibling> {
    siblings.sort_by(|a, b| a.value.cmp(&b.value));
    siblings
}

const CT: &str = "application/x-erlang-binary";

#[test]
fn ping_get_and_put_against_the_standin() {
    let dir = TempDir::new("basic");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let mut c = client(&[riak.node()]);

    c.ping().expect("ping");
    assert_eq!(
        c.get(b"chats", b"missing").expect("get"),
        Fetched::default()
    );

    let vclock = c
        .put(b"chats", b"agent1@helpdesk", None, b"\x83hello", CT)
        .expect("put")
        .expect("a resolved object has a vclock");
    let fetched = c.get(b"chats", b"agent1@helpdesk").expect("get");
    assert_eq!(fetched.siblings, [sibling(b"\x83hello", CT)]);
    assert_eq!(fetched.vclock.as_ref(), Some(&vclock));

    // An empty value is a value; an empty key is refused by Riak with an
    // RpbErrorResp, after which the connection is still good.
    c.put(b"chats", b"empty", None, b"", "text/plain")
        .expect("put");
    assert_eq!(
        c.get(b"chats", b"empty").expect("get").siblings,
        [sibling(b"", "text/plain")]
    );
    let err = c.get(b"chats", b"").expect_err("empty key");
    assert!(matches!(err, RiakError::Server { .. }), "{err:?}");
    c.ping().expect("ping after a server error");
}

#[test]
fn concurrent_writers_make_siblings_and_the_merged_vclock_resolves_them() {
    let dir = TempDir::new("siblings");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let (mut a, mut b) = (client(&[riak.node()]), client(&[riak.node()]));

    let v0 = a
        .put(b"chats", b"k", None, b"v0", CT)
        .expect("put")
        .expect("vclock");
    // Both writers start from v0; the first replaces it, the second, now
    // stale, adds a sibling and gets no vclock to reuse.
    let va = a.put(b"chats", b"k", Some(&v0), b"a", CT).expect("put a");
    assert!(va.is_some(), "a replaced v0 and is alone");
    let vb = b.put(b"chats", b"k", Some(&v0), b"b", CT).expect("put b");
    assert_eq!(vb, None, "b left a sibling beside a");

    let fetched = b.get(b"chats", b"k").expect("get");
    assert_eq!(
        sorted(fetched.siblings),
        [sibling(b"a", CT), sibling(b"b", CT)]
    );
    let merged = fetched.vclock.expect("vclock");

    let resolved = b
        .put(b"chats", b"k", Some(&merged), b"a+b", CT)
        .expect("put merged")
        .expect("resolved");
    let fetched = a.get(b"chats", b"k").expect("get");
    assert_eq!(fetched.siblings, [sibling(b"a+b", CT)]);
    assert_eq!(fetched.vclock, Some(resolved));

    // A put without a vclock on an existing key is a sibling too.
    assert_eq!(
        a.put(b"chats", b"k", None, b"blind", CT).expect("put"),
        None
    );
    assert_eq!(a.get(b"chats", b"k").expect("get").siblings.len(), 2);
}

#[test]
fn a_restarted_standin_keeps_its_data_and_clients_reconnect() {
    let dir = TempDir::new("restart");
    let data = dir.0.join("data.json");
    let riak = StandIn::start(&data);
    let port = riak.port();
    let mut c = client(&[riak.node()]);
    let v1 = c
        .put(b"chats", b"k1", None, b"one", CT)
        .expect("put")
        .expect("vclock");
    c.put(b"chats", b"k2", None, b"two", CT).expect("put");
    drop(riak); // SIGKILL: only the rename-after-every-put keeps the data

    let riak = StandIn::restart_on(port, &data);
    let mut fresh = client(&[riak.node()]);
    assert_eq!(
        fresh.get(b"chats", b"k1").expect("get").siblings,
        [sibling(b"one", CT)]
    );
    // The clocks survived too: the old vclock still replaces the value.
    assert!(fresh
        .put(b"chats", b"k1", Some(&v1), b"one'", CT)
        .expect("put")
        .is_some());
    assert_eq!(
        fresh.get(b"chats", b"k1").expect("get").siblings,
        [sibling(b"one'", CT)]
    );
    // The old client's connection died with the old process: at most one
    // call fails (with an I/O error, not a panic), then it reconnects.
    if let Err(e) = c.get(b"chats", b"k2") {
        assert!(matches!(e, RiakError::Io(_)), "{e:?}");
    }
    assert_eq!(
        c.get(b"chats", b"k2")
            .expect("get after reconnect")
            .siblings,
        [sibling(b"two", CT)]
    );
}

#[test]
fn a_closed_first_node_fails_over_to_the_second() {
    let dir = TempDir::new("failover");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let closed = closed_port();
    let mut c = client(&[closed.node(), riak.node()]);
    c.ping().expect("ping through the second node");
    c.put(b"chats", b"k", None, b"v", CT).expect("put");
    assert_eq!(
        c.get(b"chats", b"k").expect("get").siblings,
        [sibling(b"v", CT)]
    );
}

/// A python child holding a port of 127.0.0.1 until dropped: bound and not
/// listening (connections to it are refused, and nothing else can bind it
/// meanwhile, unlike a port merely found free), or listening with a backlog
/// of 0 (std cannot set a backlog, python can).
struct PortHolder {
    child: Child,
    port: u16,
}

impl PortHolder {
    fn start(listen: bool) -> PortHolder {
        let code = format!(
            "import socket, sys\n\
             s = socket.socket()\n\
             s.bind(('127.0.0.1', 0))\n\
             {}\n\
             print(s.getsockname()[1], flush=True)\n\
             sys.stdin.read()\n",
            if listen { "s.listen(0)" } else { "pass" }
        );
        let mut child = Command::new(PYTHON)
            .args(["-c", &code])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
        let line = first_line(&mut child);
        match line.as_deref().map(|l| l.trim().parse::<u16>()) {
            Some(Ok(port)) => PortHolder { child, port },
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("port holder did not start: {other:?}");
            }
        }
    }

    fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that refuses connections.
fn closed_port() -> PortHolder {
    PortHolder::start(false)
}

/// A listener that never accepts, its queue filled: a connection attempt to
/// it gets no answer at all, which is what an unreachable host looks like.
struct BlackHole {
    holder: PortHolder,
    _fillers: Vec<TcpStream>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let mut hole = BlackHole {
            holder: PortHolder::start(true),
            _fillers: Vec::new(),
        };
        let addr = ([127, 0, 0, 1], hole.holder.port).into();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => hole._fillers.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return hole,
                Err(e) => panic!("filling the black hole's queue: {e}"),
            }
        }
        panic!("the black hole's accept queue never filled");
    }
}

#[test]
fn unreachable_nodes_fail_within_the_connect_timeout() {
    let timeout = Duration::from_millis(300);
    let hole = BlackHole::start();
    let closed = closed_port();
    let cases = [
        (hole.holder.node(), "no answer"),
        (closed.node(), "closed port"),
    ];
    for (node, what) in cases {
        let mut c = RiakClient::new(RiakConfig {
            nodes: vec![node],
            connect_timeout: timeout,
            ..RiakConfig::default()
        })
        .expect("valid");
        let start = Instant::now();
        let err = c.ping().expect_err("nothing answers");
        let took = start.elapsed();
        match what {
            "no answer" => assert!(matches!(err, RiakError::Timeout), "{err:?}"),
            _ => assert!(matches!(err, RiakError::Io(_)), "{err:?}"),
        }
        assert!(took < timeout + Duration::from_secs(1), "{what}: {took:?}");
    }

    // A node that does not answer is skipped for the next one.
    let dir = TempDir::new("timeout-failover");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let mut c = RiakClient::new(RiakConfig {
        nodes: vec![hole.holder.node(), riak.node()],
        connect_timeout: timeout,
        ..RiakConfig::default()
    })
    .expect("valid");
    let start = Instant::now();
    c.ping().expect("ping through the second node");
    assert!(start.elapsed() >= timeout, "the first node was tried");
}

// --- hostile servers ---------------------------------------------------------------

/// What one accepted connection does: after each request it reads, it sends
/// the next reply (raw bytes, framing included); then it closes, or holds
/// the connection until the client hangs up. `dribble` sends replies one
/// byte at a time, this far apart.
struct Script {
    replies: Vec<Vec<u8>>,
    hold: bool,
    dribble: Option<Duration>,
}

fn send(replies: &[Vec<u8>]) -> Script {
    Script {
        replies: replies.to_vec(),
        hold: false,
        dribble: None,
    }
}

/// A server on a thread that plays `scripts`, one per connection, in order.
fn hostile(scripts: Vec<Script>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let node = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        for script in scripts {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            for reply in &script.replies {
                read_request(&mut conn);
                match script.dribble {
                    None => conn.write_all(reply).expect("write"),
                    Some(gap) => {
                        for byte in reply {
                            if conn.write_all(&[*byte]).is_err() {
                                break; // the client gave up
                            }
                            thread::sleep(gap);
                        }
                    }
                }
            }
            if script.hold {
                let _ = conn.read_to_end(&mut Vec::new());
            }
        }
    });
    (node, handle)
}

fn read_request(conn: &mut TcpStream) {
    let mut header = [0u8; 4];
    conn.read_exact(&mut header).expect("request header");
    let mut frame = vec![0u8; u32::from_be_bytes(header) as usize];
    conn.read_exact(&mut frame).expect("request frame");
}

/// A frame: length, code, body.
fn frame(code: u8, body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(code);
    out.extend_from_slice(body);
    out
}

fn hostile_client(node: &str, io_timeout: Duration) -> RiakClient {
    RiakClient::new(RiakConfig {
        nodes: vec![node.to_string()],
        io_timeout,
        ..RiakConfig::default()
    })
    .expect("valid")
}

const PONG: u8 = 2;

#[test]
fn zero_length_frame_is_an_error() {
    let (node, server) = hostile(vec![send(&[vec![0, 0, 0, 0]])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let err = c.ping().expect_err("empty frame");
    assert!(matches!(err, RiakError::EmptyFrame), "{err:?}");
    server.join().expect("server");
}

#[test]
fn a_4_gib_length_is_refused_without_allocating_and_the_client_reconnects() {
    let (node, server) = hostile(vec![send(&[vec![0xff; 4]]), send(&[frame(PONG, &[])])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let (result, peak) = peak_heap(|| c.ping());
    let err = result.expect_err("too large");
    assert!(
        matches!(err, RiakError::FrameTooLarge { len: 0xffff_ffff, max } if max == 64 * MIB),
        "{err:?}"
    );
    assert!(peak < 64 * KIB, "peak heap {peak}");
    c.ping().expect("the next call reconnects");
    server.join().expect("server");
}

#[test]
fn a_truncated_body_is_an_io_error_and_memory_follows_the_bytes_received() {
    // Claims 60 MiB (under the 64 MiB limit), sends 1000 bytes, closes.
    let mut lying = (60 * MIB as u32).to_be_bytes().to_vec();
    lying.push(10);
    lying.extend_from_slice(&[0x0a; 1000]);
    // Claims 10 bytes, sends 3, closes.
    let short = vec![0, 0, 0, 10, PONG, 1, 2];
    let (node, server) = hostile(vec![send(&[lying]), send(&[short])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    for _ in 0..2 {
        let (result, peak) = peak_heap(|| c.get(b"b", b"k"));
        let err = result.expect_err("truncated");
        assert!(
            matches!(&err, RiakError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{err:?}"
        );
        assert!(peak < 256 * KIB, "peak heap {peak}");
    }
    server.join().expect("server");
}

#[test]
fn an_unexpected_code_is_an_error() {
    let (node, server) = hostile(vec![send(&[frame(99, &[])]), send(&[frame(PONG, &[])])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let err = c.get(b"b", b"k").expect_err("code 99");
    assert!(
        matches!(
            err,
            RiakError::UnexpectedCode {
                expected: 10,
                got: 99
            }
        ),
        "{err:?}"
    );
    let err = c.get(b"b", b"k").expect_err("a ping reply to a get");
    assert!(
        matches!(
            err,
            RiakError::UnexpectedCode {
                expected: 10,
                got: 2
            }
        ),
        "{err:?}"
    );
    server.join().expect("server");
}

#[test]
fn an_error_reply_is_a_server_error_on_a_connection_that_stays_open() {
    // errmsg = "overload", errcode = 42; then a pong on the same connection
    // (the server accepts only this one connection).
    let error = frame(0, b"\x0a\x08overload\x10\x2a");
    let (node, server) = hostile(vec![send(&[error, frame(PONG, &[])])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let err = c.put(b"b", b"k", None, b"v", CT).expect_err("error reply");
    match &err {
        RiakError::Server { code, message } => {
            assert_eq!((*code, message.as_str()), (42, "overload"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "riak: server error 42: overload");
    c.ping().expect("same connection");
    server.join().expect("server");
}

#[test]
fn undecodable_bodies_are_decode_errors() {
    let (node, server) = hostile(vec![
        send(&[frame(10, b"\x0a\x05ab")]), // get reply: field past the end
        send(&[frame(12, b"\x0a\x02\x0a")]), // put reply: content cut short
        send(&[frame(0, b"\x0a\xff\xff\xff\xff")]), // error reply: bad errmsg length
    ]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let err = c.get(b"b", b"k").expect_err("get");
    assert!(matches!(err, RiakError::Decode(_)), "{err:?}");
    let err = c.put(b"b", b"k", None, b"v", CT).expect_err("put");
    assert!(matches!(err, RiakError::Decode(_)), "{err:?}");
    let err = c.ping().expect_err("ping");
    assert!(matches!(err, RiakError::Decode(_)), "{err:?}");
    server.join().expect("server");
}

#[test]
fn a_flood_of_empty_contents_is_refused_within_the_frame_size() {
    // 4 MiB of empty RpbContent fields (2 bytes each on the wire): decoded
    // naively, two million structs; here, refused after 512.
    let flood = frame(10, &[0x0a, 0].repeat(2 * MIB));
    let (node, server) = hostile(vec![send(&[flood])]);
    let mut c = hostile_client(&node, Duration::from_secs(5));
    let (result, peak) = peak_heap(|| c.get(b"b", b"k"));
    let err = result.expect_err("flood");
    assert!(matches!(err, RiakError::Decode(_)), "{err:?}");
    assert!(peak < 6 * MIB, "peak heap {peak}");
    server.join().expect("server");
}

#[test]
fn a_silent_server_times_out() {
    let (node, server) = hostile(vec![Script {
        replies: vec![],
        hold: true,
        dribble: None,
    }]);
    let timeout = Duration::from_millis(300);
    let mut c = hostile_client(&node, timeout);
    let start = Instant::now();
    let err = c.ping().expect_err("silence");
    assert!(matches!(err, RiakError::Timeout), "{err:?}");
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    drop(c); // hang up, so that the server thread ends
    server.join().expect("server");
}

#[test]
fn a_dribbling_server_cannot_outlast_the_request_deadline() {
    // A 101-byte frame sent one byte every 20 ms (2 s in all): every read
    // gets a byte well within 300 ms, but the request has 300 ms in all.
    let (node, server) = hostile(vec![Script {
        replies: vec![frame(PONG, &[0; 100])],
        hold: true,
        dribble: Some(Duration::from_millis(20)),
    }]);
    let timeout = Duration::from_millis(300);
    let mut c = hostile_client(&node, timeout);
    let start = Instant::now();
    let err = c.ping().expect_err("dribble");
    assert!(matches!(err, RiakError::Timeout), "{err:?}");
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    drop(c);
    server.join().expect("server");
}

// --- the archive's Riak store ------------------------------------------------------

/// Waits (10 s at most) until `done` holds of the archive's status.
fn wait_for_status(
    archive: &clicktochat_core::archive::Archive,
    done: impl Fn(&clicktochat_core::archive::Status) -> bool,
) -> clicktochat_core::archive::Status {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = archive.status();
        if done(&status) || Instant::now() > deadline {
            return status;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_archive_keeps_batches_in_its_outbox_until_riak_answers() {
    use clicktochat_core::archive::{
        Archive, ArchiveConfig, Conversation, Direction, RiakStoreConfig, StoreConfig, CONTENT_TYPE,
    };
    use clicktochat_core::records::{decode_archive, encode_archive, Record};

    let dir = TempDir::new("archive-outbox");
    // Riak's port, refusing connections until the stand-in takes it.
    let down = closed_port();
    let port = down.port;
    let archive = Archive::open(ArchiveConfig {
        path: dir.0.join("outbox.redb"),
        store: StoreConfig::Riak(RiakStoreConfig::new(
            RiakConfig {
                nodes: vec![format!("127.0.0.1:{port}")],
                connect_timeout: Duration::from_secs(2),
                io_timeout: Duration::from_secs(5),
                ..RiakConfig::default()
            },
            b"chats".to_vec(),
        )),
    })
    .expect("open");
    let conversation = Conversation {
        visitor: "v@clients.test",
        agent: "a@helpdesk.test",
        start_us: 1_000_000,
    };
    archive.message(&conversation, Direction::FromVisitor, "hello", 2_000_000);
    archive.message(&conversation, Direction::FromAgent, "hi", 3_000_000);
    archive
        .sync(Duration::from_secs(10))
        .expect("committed to the outbox");

    // Riak is down: the batch waits in the outbox.
    let status = wait_for_status(&archive, |s| s.last_error.is_some());
    assert_eq!(status.committed_entries, 2, "{status:?}");
    assert_eq!((status.outbox_entries, status.pushes), (2, 0), "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("riak: ")),
        "{status:?}"
    );

    // Another writer's record is already there, as a sibling of no vclock.
    drop(down);
    let riak = StandIn::restart_on(port, &dir.0.join("data.json"));
    let theirs = Record {
        start_us: 500_000,
        user: "w@clients.test".into(),
        entries: Vec::new(),
    };
    let mut other = client(&[riak.node()]);
    other
        .put(
            b"chats",
            b"a@helpdesk.test",
            None,
            &encode_archive(std::slice::from_ref(&theirs)),
            CONTENT_TYPE,
        )
        .expect("put");

    // Riak is back: the next retry pushes, merging the sibling in.
    let status = wait_for_status(&archive, |s| s.outbox_entries == 0);
    assert_eq!((status.outbox_entries, status.pushes), (0, 1), "{status:?}");
    let fetched = other.get(b"chats", b"a@helpdesk.test").expect("get");
    assert_eq!(fetched.siblings.len(), 1, "the push resolved the siblings");
    let stored = decode_archive(&fetched.siblings[0].value).expect("an archive");
    let users: Vec<&str> = stored.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, ["w@clients.test", "v@clients.test"]);
    let said: Vec<(&str, &str)> = stored[1]
        .entries
        .iter()
        .map(|e| (e.from.as_str(), e.msg.as_str()))
        .collect();
    assert_eq!(
        said,
        [("v@clients.test", "hello"), ("a@helpdesk.test", "hi")]
    );

    // A read gathers Riak and the outbox alike.
    archive.message(&conversation, Direction::FromVisitor, "bye", 4_000_000);
    archive.sync(Duration::from_secs(10)).expect("committed");
    let read = archive.read("a@helpdesk.test").expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].entries.len(), 3);
    archive.close();
}

// --- an agent's archive in bounded values --------------------------------------------

const BOUND: usize = 4096;

fn bounded_archive(dir: &Path, name: &str, riak: &StandIn) -> clicktochat_core::archive::Archive {
    use clicktochat_core::archive::{Archive, ArchiveConfig, RiakStoreConfig, StoreConfig};
    let mut store = RiakStoreConfig::new(
        RiakConfig {
            nodes: vec![riak.node()],
            ..RiakConfig::default()
        },
        b"chats".to_vec(),
    );
    store.max_value_bytes = BOUND;
    store.push_interval = Duration::ZERO;
    Archive::open(ArchiveConfig {
        path: dir.join(name),
        store: StoreConfig::Riak(store),
    })
    .expect("open")
}

/// Every value stored for `agent`: its key, then Agent/1, Agent/2, ...
fn stored_values(riak: &StandIn, agent: &str) -> Vec<Vec<u8>> {
    let mut c = client(&[riak.node()]);
    let mut values = Vec::new();
    for number in 0.. {
        let key = match number {
            0 => agent.to_owned(),
            n => format!("{agent}/{n}"),
        };
        let fetched = c.get(b"chats", key.as_bytes()).expect("get");
        if fetched.siblings.is_empty() {
            break;
        }
        values.extend(fetched.siblings.into_iter().map(|s| s.value));
    }
    values
}

/// (visitor, msg) of every entry, conversation after conversation.
fn said(records: &[clicktochat_core::records::Record]) -> Vec<(i64, String, String)> {
    records
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .map(|e| (r.start_us, r.user.clone(), e.msg.clone()))
        })
        .collect()
}

#[test]
fn one_agent_far_past_the_bound_is_split_into_bounded_values_read_back_in_order() {
    use clicktochat_core::archive::{Conversation, Direction};
    use clicktochat_core::records::decode_archive;

    let dir = TempDir::new("bounded");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let archive = bounded_archive(&dir.0, "a.redb", &riak);
    // Three conversations, one of them alone many times the bound; 2 400
    // messages of ~100 bytes in entries: ~60 values' worth.
    let conversations: Vec<Conversation> = [("v1@c", 100), ("v2@c", 200), ("v3@c", 300)]
        .iter()
        .map(|&(visitor, start_us)| Conversation {
            visitor,
            agent: "a@h",
            start_us,
        })
        .collect();
    let mut expected = Vec::new();
    for i in 0..2400i64 {
        let c = &conversations[if i < 1600 { 0 } else { (i % 2 + 1) as usize }];
        let msg = format!("message {i:05} | ^ % {}", "x".repeat(16));
        archive.message(c, Direction::FromVisitor, &msg, 1_000 + i);
        expected.push((c.start_us, c.visitor.to_owned(), msg));
    }
    archive.sync(Duration::from_secs(30)).expect("sync");
    let status = wait_for_status(&archive, |s| s.outbox_entries == 0);
    assert_eq!(status.outbox_entries, 0, "{status:?}");
    // In order: by conversation start, then time.
    expected.sort_by_key(|(start, _, _)| *start);
    assert_eq!(said(&archive.read("a@h").expect("read")), expected);

    let values = stored_values(&riak, "a@h");
    assert!(values.len() >= 50, "{} values", values.len());
    for value in &values {
        assert!(value.len() <= BOUND, "a value of {} bytes", value.len());
        decode_archive(value).expect("each value in the seed's structure");
    }
    // What a seed reader of the agent's key alone sees is a bounded part.
    let mut merged = Vec::new();
    for value in &values {
        clicktochat_core::records::merge(&mut merged, decode_archive(value).expect("value"));
    }
    assert_eq!(said(&merged), expected);
    drop(archive);
}

#[test]
fn two_nodes_sealing_one_agent_at_once_lose_nothing() {
    use clicktochat_core::archive::{Conversation, Direction};

    let dir = TempDir::new("bounded-race");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let nodes = [
        bounded_archive(&dir.0, "a.redb", &riak),
        bounded_archive(&dir.0, "b.redb", &riak),
    ];
    let mut expected = Vec::new();
    for i in 0..1200i64 {
        let node = (i % 2) as usize;
        let visitor = ["va@c", "vb@c"][node];
        let c = Conversation {
            visitor,
            agent: "a@h",
            start_us: node as i64,
        };
        let msg = format!("node {node} message {i:05} {}", "y".repeat(40));
        nodes[node].message(&c, Direction::FromAgent, &msg, 1_000 + i);
        expected.push((node as i64, visitor.to_owned(), msg));
    }
    for node in &nodes {
        node.sync(Duration::from_secs(30)).expect("sync");
        let status = wait_for_status(node, |s| s.outbox_entries == 0);
        assert_eq!(status.outbox_entries, 0, "{status:?}");
    }
    expected.sort_by_key(|(start, _, _)| *start);
    for node in &nodes {
        assert_eq!(said(&node.read("a@h").expect("read")), expected);
    }
    for value in stored_values(&riak, "a@h") {
        assert!(value.len() <= BOUND, "a value of {} bytes", value.len());
    }
}

#[test]
fn an_outbox_written_before_entry_per_key_is_pushed_after_the_upgrade() {
    use clicktochat_core::archive::{Archive, ArchiveConfig, RiakStoreConfig, StoreConfig};

    // tests/data/riak_outbox_v1.redb: written by the archive before the
    // entry-per-key layout, with Riak down (7 entries of two agents wait in
    // its outbox, one key per agent).
    let dir = TempDir::new("old-outbox");
    let path = dir.0.join("old.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/riak_outbox_v1.redb"),
        &path,
    )
    .expect("copy the old file");
    let riak = StandIn::start(&dir.0.join("data.json"));
    let archive = Archive::open(ArchiveConfig {
        path,
        store: StoreConfig::Riak(RiakStoreConfig::new(
            RiakConfig {
                nodes: vec![riak.node()],
                ..RiakConfig::default()
            },
            b"clicktochat".to_vec(),
        )),
    })
    .expect("open the old file");
    let status = wait_for_status(&archive, |s| s.outbox_entries == 0);
    assert_eq!(status.outbox_entries, 0, "{status:?}");
    let mut c = client(&[riak.node()]);
    let fetched = c
        .get(b"clicktochat", b"agent1@helpdesk.localhost")
        .expect("get");
    let records = clicktochat_core::records::decode_archive(&fetched.siblings[0].value)
        .expect("the seed's structure");
    assert_eq!(said(&records), old_file_agent1());
}

/// agent1's records in tests/data/*_v1.redb, as (start, visitor, msg).
fn old_file_agent1() -> Vec<(i64, String, String)> {
    let first = 1_764_000_000_000_000;
    let second = 1_764_000_100_000_000;
    [
        (first, "v1@clients.localhost", "hello | ^ %"),
        (first, "v1@clients.localhost", "same time A"),
        (first, "v1@clients.localhost", "same time B"),
        (first, "v1@clients.localhost", "hi, how can I help?"),
        (second, "v2@clients.localhost", "bonjour é"),
        (second, "v2@clients.localhost", "salut"),
    ]
    .iter()
    .map(|&(start, visitor, msg)| (start, visitor.to_owned(), msg.to_owned()))
    .collect()
}
