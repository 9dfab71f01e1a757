//! The conversation archive: messages between a visitor and its agent are
//! handed over by the hooks (a channel send, nothing more on the XMPP path),
//! each with the conversation it belongs to (the Erlang side owns the
//! visitor -> agent assignment), and one writer thread per archive batches
//! them into the stores.
//!
//! - `embedded` store: a redb file (ACID, copy-on-write B-tree, fsync on
//!   commit). One key per conversation (agent, start, visitor), so a new
//!   message rewrites its conversation, not the agent's whole history; the
//!   value is the seed's `[{record, [Record]}]` in Erlang external term
//!   format, and a read gathers the agent's keys into one archive.
//! - `riak` store: the same value in Riak KV. Batches are first committed to
//!   an outbox table of the same redb file, then pushed with get-merge-put;
//!   an unreachable Riak leaves them in the outbox, retried with back-off, so
//!   nothing acknowledged is lost and a retried push cannot duplicate (merge
//!   is a union).
//!
//! An entry is acknowledged once its batch is committed to the redb file.

use crate::conversation::Entry;
use crate::records::{decode_archive, encode_archive, merge, Record};
use crate::riak::{RiakClient, RiakConfig, RiakError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The content type the seed's Erlang riakc users read and write.
pub const CONTENT_TYPE: &str = "application/x-erlang-binary";

const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("riak_outbox");

/// Most commands one batch takes from the channel before committing.
const BATCH_MAX: usize = 4096;
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub enum Store {
    Embedded,
    Riak { config: RiakConfig, bucket: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The redb file (the archive itself, or Riak's outbox).
    pub path: PathBuf,
    pub store: Store,
}

#[derive(Debug)]
pub enum ArchiveError {
    Db(redb::Error),
    Riak(RiakError),
    Corrupt(String),
    Closed,
    Timeout,
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Db(e) => write!(f, "embedded store: {e}"),
            ArchiveError::Riak(e) => write!(f, "riak: {e}"),
            ArchiveError::Corrupt(e) => write!(f, "stored value does not decode: {e}"),
            ArchiveError::Closed => f.write_str("archive is closed"),
            ArchiveError::Timeout => f.write_str("archive writer did not answer in time"),
        }
    }
}

impl std::error::Error for ArchiveError {}

impl<E: Into<redb::Error>> From<E> for ArchiveError {
    fn from(e: E) -> Self {
        ArchiveError::Db(e.into())
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
    pub pushed_keys: u64,
    pub outbox_keys: u64,
    pub last_error: Option<String>,
}

enum Command {
    Record {
        agent: String,
        visitor: String,
        start_us: i64,
        entry: Entry,
    },
    Sync(Sender<()>),
    Shutdown,
}

pub struct Archive {
    /// Taken by `close`, so that the file is released even while Erlang
    /// still holds a reference to this archive.
    db: RwLock<Option<Arc<Database>>>,
    store: Store,
    sender: Sender<Command>,
    status: Arc<Mutex<Status>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Archive {
    /// Opens (or creates) the redb file and starts the writer thread.
    pub fn open(config: ArchiveConfig) -> Result<Archive, ArchiveError> {
        if let Some(dir) = config.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ArchiveError::Db(e.into()))?;
        }
        let db = Arc::new(create_database(&config.path)?);
        let txn = db.begin_write()?;
        txn.open_table(CONVERSATIONS)?;
        let outbox_keys = txn.open_table(OUTBOX)?.len()?;
        txn.commit()?;
        let status = Arc::new(Mutex::new(Status {
            outbox_keys,
            ..Status::default()
        }));
        let (sender, receiver) = crossbeam_channel::unbounded();
        let writer = Writer {
            db: db.clone(),
            riak: match &config.store {
                Store::Embedded => None,
                Store::Riak { config, bucket } => Some(Pusher {
                    client: RiakClient::new(config.clone()).map_err(ArchiveError::Riak)?,
                    bucket: bucket.clone(),
                    retry_at: Some(Instant::now()),
                    delay: RETRY_FIRST,
                }),
            },
            status: status.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("clicktochat-archive".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| ArchiveError::Db(e.into()))?;
        Ok(Archive {
            db: RwLock::new(Some(db)),
            store: config.store,
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
        let command = Command::Record {
            agent: conversation.agent.to_owned(),
            visitor: conversation.visitor.to_owned(),
            start_us: conversation.start_us,
            entry: Entry {
                time_us,
                from: from.to_owned(),
                to: to.to_owned(),
                msg: msg.to_owned(),
            },
        };
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
        let db = self.db.read().clone().ok_or(ArchiveError::Closed)?;
        let txn = db.begin_read()?;
        match &self.store {
            Store::Embedded => {
                let table = txn.open_table(CONVERSATIONS)?;
                let prefix = agent_prefix(agent);
                let mut records = Vec::new();
                for item in table.range(prefix.as_str()..)? {
                    let (key, value) = item?;
                    if !key.value().starts_with(&prefix) {
                        break;
                    }
                    let record = decode_archive(value.value())
                        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
                    merge(&mut records, record);
                }
                Ok(records)
            }
            Store::Riak { config, bucket } => {
                let mut records = stored_records(&txn.open_table(OUTBOX)?, agent)?;
                drop(txn);
                let mut client = RiakClient::new(config.clone()).map_err(ArchiveError::Riak)?;
                let fetched = client
                    .get(bucket, agent.as_bytes())
                    .map_err(ArchiveError::Riak)?;
                for sibling in fetched.siblings {
                    let theirs = decode_archive(&sibling.value)
                        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
                    merge(&mut records, theirs);
                }
                Ok(records)
            }
        }
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
        self.db.write().take();
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens or creates the file. A module restart may open it while a read of
/// the previous instance still holds it for a moment: retry briefly.
fn create_database(path: &std::path::Path) -> Result<Database, ArchiveError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return Ok(result?),
        }
    }
}

/// Conversation keys sort by agent, then start, then visitor. JIDs cannot
/// contain NUL, and the start is offset to sort as unsigned, zero-padded.
fn agent_prefix(agent: &str) -> String {
    format!("{agent}\0")
}

fn conversation_key(agent: &str, record: &Record) -> String {
    let start = (record.start_us as u64) ^ (1 << 63);
    format!("{agent}\0{start:020}\0{}", record.user)
}

fn stored_records<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    agent: &str,
) -> Result<Vec<Record>, ArchiveError> {
    match table.get(agent)? {
        Some(value) => {
            decode_archive(value.value()).map_err(|e| ArchiveError::Corrupt(e.to_string()))
        }
        None => Ok(Vec::new()),
    }
}

struct Writer {
    db: Arc<Database>,
    riak: Option<Pusher>,
    status: Arc<Mutex<Status>>,
}

struct Pusher {
    client: RiakClient,
    bucket: Vec<u8>,
    /// When the outbox should next be pushed (None: it is empty).
    retry_at: Option<Instant>,
    delay: Duration,
}

/// New entries, by agent key, then by conversation.
type Batch = BTreeMap<String, Vec<Record>>;

impl Writer {
    fn run(mut self, receiver: Receiver<Command>) {
        let mut unsaved = Batch::new();
        let mut unsaved_entries = 0u64;
        let mut save_delay = RETRY_FIRST;
        let mut save_retry_at: Option<Instant> = None;
        // Syncs wait until everything handed over before them is committed.
        let mut syncs = Vec::new();
        loop {
            let wake = [save_retry_at, self.riak.as_ref().and_then(|p| p.retry_at)]
                .into_iter()
                .flatten()
                .min();
            let first = match wake {
                Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let mut commands = Vec::new();
            match first {
                Ok(command) => commands.push(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while commands.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            let mut shutdown = false;
            for command in commands {
                match command {
                    Command::Record {
                        agent,
                        visitor,
                        start_us,
                        entry,
                    } => {
                        let records = unsaved.entry(agent).or_default();
                        crate::records::append(records, start_us, &visitor, vec![entry]);
                        unsaved_entries += 1;
                    }
                    Command::Sync(done) => syncs.push(done),
                    Command::Shutdown => shutdown = true,
                }
            }
            if !unsaved.is_empty() && save_retry_at.is_none_or(|at| at <= Instant::now()) {
                match self.save(&unsaved) {
                    Ok(()) => {
                        unsaved.clear();
                        let mut status = self.status.lock();
                        status.committed_entries += unsaved_entries;
                        unsaved_entries = 0;
                        save_delay = RETRY_FIRST;
                        save_retry_at = None;
                        if let Some(pusher) = &mut self.riak {
                            pusher.retry_at.get_or_insert_with(Instant::now);
                        }
                    }
                    Err(e) => {
                        self.status.lock().last_error = Some(e.to_string());
                        save_retry_at = Some(Instant::now() + save_delay);
                        save_delay = (save_delay * 2).min(RETRY_MAX);
                    }
                }
            }
            if unsaved.is_empty() {
                for done in syncs.drain(..) {
                    let _ = done.send(());
                }
            }
            if shutdown {
                break;
            }
            if let Some(pusher) = &mut self.riak {
                if pusher.retry_at.is_some_and(|at| at <= Instant::now()) {
                    pusher.push_outbox(&self.db, &self.status);
                }
            }
        }
    }

    /// Merges the batch into the stored values, one transaction (one fsync):
    /// per conversation in the embedded store, per agent in Riak's outbox.
    fn save(&self, batch: &Batch) -> Result<(), ArchiveError> {
        let txn = self.db.begin_write()?;
        if self.riak.is_some() {
            let mut table = txn.open_table(OUTBOX)?;
            for (agent, new_records) in batch {
                let mut records = stored_records(&table, agent)?;
                merge(&mut records, new_records.clone());
                table.insert(agent.as_str(), encode_archive(&records).as_slice())?;
            }
        } else {
            let mut table = txn.open_table(CONVERSATIONS)?;
            for (agent, new_records) in batch {
                for record in new_records {
                    let key = conversation_key(agent, record);
                    let mut records = stored_records(&table, &key)?;
                    merge(&mut records, vec![record.clone()]);
                    table.insert(key.as_str(), encode_archive(&records).as_slice())?;
                }
            }
        }
        txn.commit()?;
        if self.riak.is_some() {
            let keys = self.db.begin_read()?.open_table(OUTBOX)?.len()?;
            self.status.lock().outbox_keys = keys;
        }
        Ok(())
    }
}

impl Pusher {
    /// Pushes every outbox key to Riak; stops at the first failure and
    /// backs off (the rest waits, nothing is dropped).
    fn push_outbox(&mut self, db: &Database, status: &Mutex<Status>) {
        let result = (|| -> Result<u64, ArchiveError> {
            let keys: Vec<String> = {
                let txn = db.begin_read()?;
                let table = txn.open_table(OUTBOX)?;
                let mut keys = Vec::new();
                for item in table.iter()? {
                    keys.push(item?.0.value().to_owned());
                }
                keys
            };
            let mut pushed = 0;
            for key in keys {
                self.push_key(db, &key)?;
                pushed += 1;
            }
            Ok(pushed)
        })();
        let mut status = status.lock();
        match result {
            Ok(pushed) => {
                status.pushed_keys += pushed;
                status.outbox_keys = 0;
                self.retry_at = None;
                self.delay = RETRY_FIRST;
            }
            Err(e) => {
                status.last_error = Some(e.to_string());
                if let Ok(Ok(Ok(n))) = db
                    .begin_read()
                    .map(|t| t.open_table(OUTBOX).map(|t| t.len()))
                {
                    status.outbox_keys = n;
                }
                self.retry_at = Some(Instant::now() + self.delay);
                self.delay = (self.delay * 2).min(RETRY_MAX);
            }
        }
    }

    /// get, merge the siblings and the pending records, put with the
    /// vclock, then drop the key from the outbox.
    fn push_key(&mut self, db: &Database, key: &str) -> Result<(), ArchiveError> {
        let mut records = {
            let txn = db.begin_read()?;
            stored_records(&txn.open_table(OUTBOX)?, key)?
        };
        let fetched = self
            .client
            .get(&self.bucket, key.as_bytes())
            .map_err(ArchiveError::Riak)?;
        for sibling in fetched.siblings {
            // A sibling we cannot read is not ours to overwrite: fail (and
            // retry later) rather than lose it.
            let theirs =
                decode_archive(&sibling.value).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
            merge(&mut records, theirs);
        }
        self.client
            .put(
                &self.bucket,
                key.as_bytes(),
                fetched.vclock.as_deref(),
                &encode_archive(&records),
                CONTENT_TYPE,
            )
            .map_err(ArchiveError::Riak)?;
        // Only this thread writes the outbox, so the key holds exactly what
        // was pushed.
        let txn = db.begin_write()?;
        txn.open_table(OUTBOX)?.remove(key)?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &std::path::Path) -> ArchiveConfig {
        ArchiveConfig {
            path: path.to_owned(),
            store: Store::Embedded,
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
