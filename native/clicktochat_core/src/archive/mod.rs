//! The conversation archive: messages between a visitor and its agent are
//! handed over by the hooks (a channel send, nothing more on the XMPP path),
//! each with the conversation it belongs to (the Erlang side owns the
//! visitor -> agent assignment), and one writer thread per archive batches
//! them into the store.
//!
//! - `embedded` store: a redb file (ACID, copy-on-write B-tree, fsync on
//!   commit), a commit's entries one key per agent (`commits`), so that a
//!   message costs the same whatever the length of its conversation; a read
//!   gathers the agent's keys into the seed's records.
//! - `riak` store: the seed's `[{record, [Record]}]` values in Riak KV under
//!   the agent's key, split into bounded values (`riak_store`). Batches are
//!   first committed to an outbox table of the same redb file (one key per
//!   entry: `entries`), then pushed with get-merge-put, at most one
//!   round of pushes per `push_interval` so that a push carries many
//!   entries; an unreachable Riak leaves them in the outbox, retried with
//!   back-off, so nothing acknowledged is lost and a retried push cannot
//!   duplicate (merge is a union).
//!
//! An entry is acknowledged once its batch is committed to the redb file.
//!
//! Layout: this module is the handle ([`Archive`]); `writer` the batching
//! thread; `store` the boundary between them and the stores (the only place
//! that knows which one is configured); `commits` the embedded store's key
//! layout, `entries` the outbox's (and earlier embedded files'); `embedded`
//! and `riak_store` the two stores.

mod commits;
mod embedded;
mod entries;
mod riak_store;
mod store;
mod writer;

use crate::records::{Record, RecordsError};
use crate::riak::{RiakConfig, RiakError};
use crossbeam_channel::{RecvTimeoutError, Sender};
use entries::Pending;
use parking_lot::{Mutex, RwLock};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use store::Store;
use writer::{Command, Writer};

pub use riak_store::CONTENT_TYPE;

/// Which store the archive keeps its records in.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Embedded,
    Riak(RiakStoreConfig),
}

#[derive(Debug, Clone)]
pub struct RiakStoreConfig {
    pub config: RiakConfig,
    pub bucket: Vec<u8>,
    /// The most bytes one Riak value of an agent's archive holds (a single
    /// entry larger than that gets a value of its own).
    pub max_value_bytes: usize,
    /// The shortest time between two rounds of pushes.
    pub push_interval: Duration,
}

impl RiakStoreConfig {
    /// Riak advises objects well under a megabyte.
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 512 * 1024;
    /// At a desk's pace (a message every few seconds per agent), ten
    /// seconds make a push (two round trips) carry ~20 messages.
    pub const DEFAULT_PUSH_INTERVAL: Duration = Duration::from_secs(10);

    pub fn new(config: RiakConfig, bucket: Vec<u8>) -> RiakStoreConfig {
        RiakStoreConfig {
            config,
            bucket,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            push_interval: Self::DEFAULT_PUSH_INTERVAL,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The redb file (the archive itself, or Riak's outbox).
    pub path: PathBuf,
    pub store: StoreConfig,
}

/// Why an archive call failed.
#[derive(Debug)]
pub enum ArchiveError {
    /// The redb file (or the file system under it).
    Db(redb::Error),
    Riak(RiakError),
    /// A stored value (in the redb file or in Riak) is not an archive.
    Corrupt(RecordsError),
    Closed,
    Timeout,
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Db(e) => write!(f, "embedded store: {e}"),
            // RiakError's own message begins with "riak: ".
            ArchiveError::Riak(e) => e.fmt(f),
            ArchiveError::Corrupt(e) => write!(f, "stored value does not decode: {e}"),
            ArchiveError::Closed => f.write_str("archive is closed"),
            ArchiveError::Timeout => f.write_str("archive writer did not answer in time"),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// redb's errors, and I/O errors (creating the file's directory, starting
/// the writer thread), which redb's error type carries too.
impl<E: Into<redb::Error>> From<E> for ArchiveError {
    fn from(e: E) -> Self {
        ArchiveError::Db(e.into())
    }
}

impl From<RiakError> for ArchiveError {
    fn from(e: RiakError) -> Self {
        ArchiveError::Riak(e)
    }
}

impl From<RecordsError> for ArchiveError {
    fn from(e: RecordsError) -> Self {
        ArchiveError::Corrupt(e)
    }
}

/// The conversation a message belongs to. The caller (the Erlang side,
/// which owns the visitor -> agent assignment) decides it; the archive does
/// not second-guess it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation<'a> {
    /// The visitor's bare JID.
    pub visitor: &'a str,
    /// The agent's bare JID.
    pub agent: &'a str,
    /// When the conversation started, Unix microseconds.
    pub start_us: i64,
}

/// Who sent a message: decides the entry's `from` and `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    FromVisitor,
    FromAgent,
}

/// What happened to a message handed to [`Archive::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Captured {
    Recorded,
    /// The archive is closed: the message was not taken.
    Closed,
}

/// Counters for operators (and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub committed_entries: u64,
    /// Riak: pushes done (each a get and one or more puts of one agent).
    pub pushes: u64,
    /// Riak: entries committed here that wait to be pushed.
    pub outbox_entries: u64,
    /// Riak: requests (round trips) the pushes have made.
    pub push_requests: u64,
    pub last_error: Option<String>,
}

pub struct Archive {
    /// Taken by `close`, so that the file is released even while Erlang
    /// still holds a reference to this archive.
    store: RwLock<Option<Arc<dyn Store>>>,
    sender: Sender<Command>,
    status: Arc<Mutex<Status>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Archive {
    /// Opens (or creates) the redb file and starts the writer thread.
    pub fn open(config: ArchiveConfig) -> Result<Archive, ArchiveError> {
        Archive::start(store::open(&config)?)
    }

    /// An embedded archive that writes the layout before the current one
    /// (one key per conversation and commit), through the same writer: for
    /// the archive_writer bench to measure the current layout against, in
    /// the same run. Reads as any.
    #[doc(hidden)]
    pub fn open_embedded_previous_layout(path: PathBuf) -> Result<Archive, ArchiveError> {
        Archive::start(store::open_previous_layout(&path)?)
    }

    fn start(store: Arc<dyn Store>) -> Result<Archive, ArchiveError> {
        let status = Arc::new(Mutex::new(Status {
            outbox_entries: store.unpushed()?,
            ..Status::default()
        }));
        let (sender, receiver) = crossbeam_channel::unbounded();
        let writer = Writer::new(store.clone(), status.clone());
        let handle = std::thread::Builder::new()
            .name("clicktochat-archive".into())
            .spawn(move || writer.run(receiver))?;
        Ok(Archive {
            store: RwLock::new(Some(store)),
            sender,
            status,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Records a message of `conversation` (bare JIDs). Never blocks.
    pub fn message(
        &self,
        conversation: &Conversation,
        direction: Direction,
        msg: &str,
        time_us: i64,
    ) -> Captured {
        let (from, to) = match direction {
            Direction::FromVisitor => (conversation.visitor, conversation.agent),
            Direction::FromAgent => (conversation.agent, conversation.visitor),
        };
        let command = Command::Record(Pending::new(
            (
                conversation.agent,
                conversation.visitor,
                conversation.start_us,
            ),
            time_us,
            from,
            to,
            msg,
        ));
        match self.sender.send(command) {
            Ok(()) => Captured::Recorded,
            Err(_) => Captured::Closed,
        }
    }

    /// Waits until everything handed over before this call is committed.
    pub fn sync(&self, timeout: Duration) -> Result<(), ArchiveError> {
        let (done, wait) = crossbeam_channel::bounded(1);
        self.sender
            .send(Command::Sync(done))
            .map_err(|_| ArchiveError::Closed)?;
        match wait.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(ArchiveError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(ArchiveError::Closed),
        }
    }

    /// The agent's archived conversations: from the redb file, or from Riak
    /// (siblings merged) plus what still waits in the outbox. Blocking I/O.
    pub fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let store = self.store.read().clone().ok_or(ArchiveError::Closed)?;
        store.read(agent)
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Stops the writer after it has committed what it was handed, and
    /// releases the redb file (so that a restarted module can open it).
    pub fn close(&self) {
        let _ = self.sender.send(Command::Shutdown);
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
        self.store.write().take();
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &std::path::Path) -> ArchiveConfig {
        ArchiveConfig {
            path: path.to_owned(),
            store: StoreConfig::Embedded,
        }
    }

    const CONVERSATION: Conversation = Conversation {
        visitor: "v@c",
        agent: "a@h",
        start_us: 0,
    };

    #[test]
    fn close_releases_the_file_while_the_archive_is_still_referenced() {
        let dir = std::env::temp_dir().join(format!("clicktochat-reopen-{}", std::process::id()));
        let path = dir.join("a.redb");
        let first = Archive::open(config(&path)).expect("open");
        assert_eq!(
            first.message(&CONVERSATION, Direction::FromVisitor, "hi", 1),
            Captured::Recorded
        );
        first.close();
        // A module restart opens the same file before the old one is dropped.
        let second = Archive::open(config(&path)).expect("reopen after close");
        assert_eq!(second.read("a@h").expect("read")[0].entries[0].msg, "hi");
        assert!(matches!(first.read("a@h"), Err(ArchiveError::Closed)));
        assert_eq!(
            first.message(&CONVERSATION, Direction::FromVisitor, "late", 2),
            Captured::Closed
        );
        drop(first);
        drop(second);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn direction_sets_from_and_to_and_conversations_keep_apart() {
        let dir = std::env::temp_dir().join(format!("clicktochat-links-{}", std::process::id()));
        let archive = Archive::open(config(&dir.join("a.redb"))).expect("open");
        let first = Conversation {
            visitor: "v@c",
            agent: "a@h",
            start_us: 5,
        };
        // The same visitor, later, with another agent; and another visitor
        // of the first agent.
        let second = Conversation {
            visitor: "v@c",
            agent: "b@h",
            start_us: 7,
        };
        let third = Conversation {
            visitor: "x@c",
            agent: "a@h",
            start_us: 6,
        };
        let said = [
            (&first, Direction::FromVisitor, "1"),
            (&first, Direction::FromAgent, "2"),
            (&second, Direction::FromVisitor, "3"),
            (&third, Direction::FromAgent, "4"),
            (&second, Direction::FromAgent, "5"),
            (&first, Direction::FromVisitor, "6"),
        ];
        for (time_us, (conversation, direction, msg)) in (10..).zip(said) {
            assert_eq!(
                archive.message(conversation, direction, msg, time_us),
                Captured::Recorded
            );
        }
        archive.sync(Duration::from_secs(10)).expect("sync");
        let entries = |record: &Record| -> Vec<(String, String, String)> {
            record
                .entries
                .iter()
                .map(|e| (e.from.clone(), e.to.clone(), e.msg.clone()))
                .collect()
        };
        let owned = |from: &str, to: &str, msg: &str| (from.into(), to.into(), msg.into());
        let a = archive.read("a@h").expect("read a");
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].start_us, a[0].user.as_str()), (5, "v@c"));
        assert_eq!(
            entries(&a[0]),
            [
                owned("v@c", "a@h", "1"),
                owned("a@h", "v@c", "2"),
                owned("v@c", "a@h", "6")
            ]
        );
        assert_eq!((a[1].start_us, a[1].user.as_str()), (6, "x@c"));
        assert_eq!(entries(&a[1]), [owned("a@h", "x@c", "4")]);
        let b = archive.read("b@h").expect("read b");
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].start_us, b[0].user.as_str()), (7, "v@c"));
        assert_eq!(
            entries(&b[0]),
            [owned("v@c", "b@h", "3"), owned("b@h", "v@c", "5")]
        );
        assert_eq!(archive.status().committed_entries, 6);
        drop(archive);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
