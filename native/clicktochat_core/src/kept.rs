//! A durable copy of a set of rows (opaque keys and values), kept in a redb
//! file by a writer thread: the visitors' assignments of one client host,
//! which Erlang holds in a Mnesia `ram_copies` table and mirrors here (see
//! erlang_src/clicktochat_assignments_keeper.erl).
//!
//! Why not Mnesia's `disc_copies`: Mnesia folds a table's log into a fresh
//! snapshot of the whole table once the log reaches a quarter of the
//! snapshot, every ~N/6 writes for N rows, through `disk_log` in one
//! process: ~150 ms at 100 000 rows, during which this 2-core node's
//! registrations stalled (p99 x2-x10, README "Architecture"). redb updates
//! its B-tree in place: a change costs O(log N), never the whole table.
//!
//! Changes are handed over (a channel send) and committed in batches: the
//! first change of a batch waits at most [`COMMIT_WINDOW`] for others, then
//! one transaction (one fsync) takes them all, in order. What a crash can
//! lose is that window; [`KeptRows::sync`] waits until everything handed
//! over before it is committed.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rows");

/// A key and its value.
pub type Row = (Vec<u8>, Vec<u8>);

/// How long the first change of a batch waits for others. A commit (its
/// fsync) costs ~0.3-1 ms: at 1 000 registrations a second, 10 ms windows
/// make ~100 commits a second, and a crash loses at most 10 ms of changes.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(10);
/// Most changes one batch takes before committing.
const BATCH_MAX: usize = 4096;
/// redb's own page cache (1 GiB by default, grown with the pages a commit
/// touches: ~34 MB, 340 bytes a visitor at 100 000 visitors). The pages a
/// batch changes are read back through the OS's page cache instead.
const CACHE_BYTES: usize = 4 << 20;
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum KeptError {
    /// The redb file (or the file system under it).
    Db(redb::Error),
    /// The commit a sync waited for failed (the changes wait, tried again).
    NotCommitted(String),
    Closed,
    Timeout,
}

impl std::fmt::Display for KeptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kept rows: ")?;
        match self {
            KeptError::Db(e) => e.fmt(f),
            KeptError::NotCommitted(e) => write!(f, "not committed: {e}"),
            KeptError::Closed => f.write_str("closed"),
            KeptError::Timeout => f.write_str("the writer did not answer in time"),
        }
    }
}

impl std::error::Error for KeptError {}

/// What the writer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptStatus {
    /// Changes (puts, deletes, replacements) handed over.
    pub changes: u64,
    /// Of those, committed.
    pub committed_changes: u64,
    pub commits: u64,
    /// The last failure to commit, if any (the changes wait and are tried
    /// again with back-off).
    pub last_error: Option<String>,
}

enum Change {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Every row replaced by these.
    ReplaceAll(Vec<Row>),
}

enum Command {
    Change(Change),
    Sync(Sender<Result<(), String>>),
    Shutdown,
}

pub struct KeptRows {
    /// Given up by `close`, so that the file is free for the next open
    /// whenever the handle itself goes.
    db: Mutex<Option<Arc<Database>>>,
    sender: Sender<Command>,
    status: Arc<Mutex<KeptStatus>>,
    changes: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl KeptRows {
    /// Opens (or creates) the file and starts its writer thread.
    pub fn open(path: &Path) -> Result<KeptRows, KeptError> {
        let db = open_db(path).map_err(KeptError::Db)?;
        let (sender, receiver) = crossbeam_channel::unbounded();
        let status = Arc::new(Mutex::new(KeptStatus::default()));
        let writer = Writer {
            db: db.clone(),
            status: status.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("clicktochat-kept".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| KeptError::Db(e.into()))?;
        Ok(KeptRows {
            db: Mutex::new(Some(db)),
            sender,
            status,
            changes: AtomicU64::new(0),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), KeptError> {
        self.send(Command::Change(Change::Put(key.to_vec(), value.to_vec())))
    }

    pub fn delete(&self, key: &[u8]) -> Result<(), KeptError> {
        self.send(Command::Change(Change::Delete(key.to_vec())))
    }

    /// Every row replaced by `rows`, after the changes handed over before.
    pub fn replace_all(&self, rows: Vec<Row>) -> Result<(), KeptError> {
        self.send(Command::Change(Change::ReplaceAll(rows)))
    }

    /// Waits until every change handed over before is committed.
    pub fn sync(&self, timeout: Duration) -> Result<(), KeptError> {
        let (done, answer) = crossbeam_channel::bounded(1);
        self.send(Command::Sync(done))?;
        match answer.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(KeptError::NotCommitted(message)),
            Err(RecvTimeoutError::Timeout) => Err(KeptError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(KeptError::Closed),
        }
    }

    /// The committed rows, in key order. Blocking I/O.
    pub fn all(&self) -> Result<Vec<Row>, KeptError> {
        let db = self.db.lock().clone().ok_or(KeptError::Closed)?;
        read_all(&db).map_err(KeptError::Db)
    }

    pub fn status(&self) -> KeptStatus {
        KeptStatus {
            changes: self.changes.load(Ordering::Relaxed),
            ..self.status.lock().clone()
        }
    }

    /// Commits what was handed over and stops the writer. Idempotent.
    pub fn close(&self) {
        if let Some(thread) = self.thread.lock().take() {
            let _ = self.sender.send(Command::Shutdown);
            let _ = thread.join();
        }
        self.db.lock().take();
    }

    fn send(&self, command: Command) -> Result<(), KeptError> {
        if self.thread.lock().is_none() {
            return Err(KeptError::Closed);
        }
        if let Command::Change(_) = command {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
        self.sender.send(command).map_err(|_| KeptError::Closed)
    }
}

impl Drop for KeptRows {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_db(path: &Path) -> Result<Arc<Database>, redb::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(ROWS)?;
    txn.commit()?;
    Ok(Arc::new(db))
}

fn read_all(db: &Database) -> Result<Vec<Row>, redb::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(ROWS)?;
    let mut rows = Vec::new();
    for item in table.iter()? {
        let (key, value) = item?;
        rows.push((key.value().to_vec(), value.value().to_vec()));
    }
    Ok(rows)
}

struct Writer {
    db: Arc<Database>,
    status: Arc<Mutex<KeptStatus>>,
}

impl Writer {
    fn run(self, receiver: Receiver<Command>) {
        let mut unsaved: Vec<Change> = Vec::new();
        let mut syncs: Vec<Sender<Result<(), String>>> = Vec::new();
        let mut retry = RETRY_FIRST;
        let mut shutdown = false;
        while !shutdown {
            // The first command blocks (nothing to do until one comes); then
            // the batch's window, cut short by a sync, a shutdown or a full
            // batch. After a failure, the back-off is the window.
            let window = if self.status.lock().last_error.is_some() {
                retry
            } else {
                COMMIT_WINDOW
            };
            if unsaved.is_empty() && syncs.is_empty() {
                match receiver.recv() {
                    Ok(command) => take(command, &mut unsaved, &mut syncs, &mut shutdown),
                    Err(_) => break,
                }
            }
            let deadline = Instant::now() + window;
            while syncs.is_empty() && !shutdown && unsaved.len() < BATCH_MAX {
                match receiver.recv_deadline(deadline) {
                    Ok(command) => take(command, &mut unsaved, &mut syncs, &mut shutdown),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        shutdown = true;
                        break;
                    }
                }
            }
            while unsaved.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(command) => take(command, &mut unsaved, &mut syncs, &mut shutdown),
                    Err(_) => break,
                }
            }
            let outcome = if unsaved.is_empty() {
                Ok(())
            } else {
                self.commit(&unsaved).map_err(|e| e.to_string())
            };
            match &outcome {
                Ok(()) => {
                    let mut status = self.status.lock();
                    status.committed_changes += unsaved.len() as u64;
                    status.commits += u64::from(!unsaved.is_empty());
                    status.last_error = None;
                    unsaved.clear();
                    retry = RETRY_FIRST;
                }
                Err(message) => {
                    self.status.lock().last_error = Some(message.clone());
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
            // A sync is answered either way: a caller waits for a commit,
            // not for a disk that may not come back.
            for done in syncs.drain(..) {
                let _ = done.send(outcome.clone());
            }
            if shutdown && outcome.is_err() {
                // One more try on the way down; what fails stays lost.
                let _ = self.commit(&unsaved);
            }
        }
    }

    /// The changes, in order, in one transaction.
    fn commit(&self, changes: &[Change]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ROWS)?;
            for change in changes {
                match change {
                    Change::Put(key, value) => {
                        table.insert(key.as_slice(), value.as_slice())?;
                    }
                    Change::Delete(key) => {
                        table.remove(key.as_slice())?;
                    }
                    Change::ReplaceAll(rows) => {
                        table.retain(|_, _| false)?;
                        for (key, value) in rows {
                            table.insert(key.as_slice(), value.as_slice())?;
                        }
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn take(
    command: Command,
    unsaved: &mut Vec<Change>,
    syncs: &mut Vec<Sender<Result<(), String>>>,
    shutdown: &mut bool,
) {
    match command {
        Command::Change(change) => unsaved.push(change),
        Command::Sync(done) => syncs.push(done),
        Command::Shutdown => *shutdown = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kept-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("rows.redb")
    }

    fn rows(pairs: &[(&str, &str)]) -> Vec<Row> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn changes_apply_in_order_and_survive_a_reopen() {
        let path = temp_path("order");
        let kept = KeptRows::open(&path).unwrap();
        kept.put(b"b", b"1").unwrap();
        kept.put(b"a", b"1").unwrap();
        kept.put(b"b", b"2").unwrap();
        kept.delete(b"a").unwrap();
        kept.put(b"c", b"3").unwrap();
        kept.delete(b"nothing").unwrap();
        kept.sync(SECOND).unwrap();
        assert_eq!(kept.all().unwrap(), rows(&[("b", "2"), ("c", "3")]));
        kept.close();
        assert!(matches!(kept.put(b"d", b"4"), Err(KeptError::Closed)));
        assert!(matches!(kept.all(), Err(KeptError::Closed)));
        // Closed, the file is free while the handle still exists.
        let again = KeptRows::open(&path).unwrap();
        assert_eq!(again.all().unwrap(), rows(&[("b", "2"), ("c", "3")]));
    }

    #[test]
    fn replace_all_takes_the_place_of_every_row_in_its_turn() {
        let path = temp_path("replace");
        let kept = KeptRows::open(&path).unwrap();
        kept.put(b"old", b"x").unwrap();
        kept.replace_all(rows(&[("n1", "1"), ("n2", "2")])).unwrap();
        kept.put(b"after", b"y").unwrap();
        kept.delete(b"n1").unwrap();
        kept.sync(SECOND).unwrap();
        assert_eq!(kept.all().unwrap(), rows(&[("after", "y"), ("n2", "2")]));
    }

    /// Rows 0..n (big-endian keys), handed over.
    fn put_rows(kept: &KeptRows, n: u32) {
        (0..n).for_each(|i| kept.put(&i.to_be_bytes(), b"v").unwrap());
    }

    #[test]
    fn close_commits_what_was_handed_over() {
        let path = temp_path("close");
        let kept = KeptRows::open(&path).unwrap();
        put_rows(&kept, 10_000);
        kept.close();
        drop(kept);
        let again = KeptRows::open(&path).unwrap();
        assert_eq!(again.all().unwrap().len(), 10_000);
    }

    #[test]
    fn changes_are_batched_into_few_commits() {
        let path = temp_path("batches");
        let kept = KeptRows::open(&path).unwrap();
        put_rows(&kept, 5_000);
        kept.sync(SECOND * 10).unwrap();
        let status = kept.status();
        assert_eq!((status.changes, status.committed_changes), (5_000, 5_000));
        assert!(status.commits <= 10, "{status:?}");
        assert_eq!(status.last_error, None);
    }

    #[test]
    fn a_sync_with_nothing_pending_answers_at_once() {
        let kept = KeptRows::open(&temp_path("idle")).unwrap();
        let start = Instant::now();
        kept.sync(SECOND).unwrap();
        assert!(start.elapsed() < SECOND);
        assert_eq!(kept.status().commits, 0);
    }
}
