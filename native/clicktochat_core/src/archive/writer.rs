//! The writer thread: takes what the handle sends, batches it, saves each
//! batch to the store and pushes the store's outbox on, retrying failures
//! with back-off. It knows nothing of which store it writes to.

use super::entries::Pending;
use super::store::Store;
use super::Status;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most commands one batch takes from the channel before committing.
const BATCH_MAX: usize = 4096;
/// How long the first entry of a batch waits for others before the batch is
/// committed (and so acknowledged). A commit (a redb transaction, its
/// checksums and fsync) costs 0.5-1 ms of CPU, an entry a few µs: with
/// 10 ms windows, 1 000 messages a second cost 55 µs of the writer's CPU
/// each, with 100 ms windows 10 µs (5 000 a second: 20 and 5.5 µs). The
/// writer sleeps through the window rather than waking for each message. A
/// sync (a transcript read) waits for the window's end at most; a full
/// batch commits at once.
const COMMIT_WINDOW: Duration = Duration::from_millis(100);
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub(super) enum Command {
    Record(Pending),
    Sync(Sender<()>),
    Shutdown,
}

/// When to try something next: soon, or after a failure's back-off
/// (0.2 s doubling to 30 s); `None` when there is nothing to do.
struct Retry {
    at: Option<Instant>,
    delay: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            at: None,
            delay: RETRY_FIRST,
        }
    }

    /// Now, unless already scheduled: a failure's back-off stands.
    fn soon(&mut self) {
        self.at.get_or_insert_with(Instant::now);
    }

    /// As [`Retry::soon`], but not before `earliest`.
    fn not_before(&mut self, earliest: Option<Instant>) {
        let now = Instant::now();
        self.at
            .get_or_insert(earliest.map_or(now, |earliest| earliest.max(now)));
    }

    /// Now, if scheduled later and not backing off from a failure.
    fn hurry(&mut self) {
        if self.delay == RETRY_FIRST {
            if let Some(at) = &mut self.at {
                *at = (*at).min(Instant::now());
            }
        }
    }

    fn is_due(&self) -> bool {
        self.at.is_some_and(|at| at <= Instant::now())
    }

    fn succeeded(&mut self) {
        self.at = None;
        self.delay = RETRY_FIRST;
    }

    fn failed(&mut self) {
        self.at = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(RETRY_MAX);
    }
}

pub(super) struct Writer {
    store: Arc<dyn Store>,
    status: Arc<Mutex<Status>>,
    save: Retry,
    push: Retry,
    /// When the last round of pushes began.
    last_push: Option<Instant>,
}

impl Writer {
    pub(super) fn new(store: Arc<dyn Store>, status: Arc<Mutex<Status>>) -> Writer {
        let mut push = Retry::new();
        // What a previous run left in the outbox goes first.
        if status.lock().outbox_entries > 0 {
            push.soon();
        }
        Writer {
            store,
            status,
            save: Retry::new(),
            push,
            last_push: None,
        }
    }

    pub(super) fn run(mut self, receiver: Receiver<Command>) {
        let mut unsaved = Vec::new();
        // Syncs wait until everything handed over before them is committed.
        let mut syncs = Vec::new();
        loop {
            let wake = [self.save.at, self.push.at].into_iter().flatten().min();
            let mut commands = Vec::new();
            if !unsaved.is_empty() && syncs.is_empty() {
                // A batch's window is open: let it fill (a window at most:
                // a failure's back-off is slept through in windows, to take
                // syncs and shutdowns meanwhile).
                if let Some(at) = wake {
                    let left = at.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(COMMIT_WINDOW));
                }
            } else {
                let first = match wake {
                    Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
                    None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match first {
                    Ok(command) => commands.push(command),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            while commands.len() < BATCH_MAX {
                match receiver.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            let mut shutdown = false;
            let unsaved_before = unsaved.len();
            for command in commands {
                match command {
                    Command::Record(pending) => unsaved.push(pending),
                    Command::Sync(done) => syncs.push(done),
                    Command::Shutdown => shutdown = true,
                }
            }
            if unsaved.len() > unsaved_before {
                // Once per drain rather than per message: reading the clock
                // was a visible share of the writer's time.
                self.save
                    .not_before(Instant::now().checked_add(COMMIT_WINDOW));
            }
            if !syncs.is_empty() || shutdown || unsaved.len() >= BATCH_MAX {
                self.save.hurry();
            }
            if !unsaved.is_empty() && self.save.is_due() {
                match self.store.save(&unsaved) {
                    Ok(waiting) => {
                        let mut status = self.status.lock();
                        status.committed_entries += unsaved.len() as u64;
                        status.outbox_entries = waiting;
                        unsaved.clear();
                        self.save.succeeded();
                        if waiting > 0 {
                            let interval = self.store.push_interval();
                            self.push
                                .not_before(self.last_push.and_then(|at| at.checked_add(interval)));
                        }
                    }
                    Err(e) => {
                        self.status.lock().last_error = Some(e.to_string());
                        self.save.failed();
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
            if self.push.is_due() {
                self.push_outbox();
            }
        }
    }

    /// Pushes every waiting entry on; stops at the first failure and backs
    /// off (the rest waits, nothing is dropped).
    fn push_outbox(&mut self) {
        self.last_push = Some(Instant::now());
        self.push_all();
        self.status.lock().push_requests = self.store.push_requests();
    }

    fn push_all(&mut self) {
        loop {
            match self.store.push_one() {
                Ok(Some(left)) => {
                    let mut status = self.status.lock();
                    status.pushes += 1;
                    status.outbox_entries = left;
                    if left == 0 {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.status.lock().last_error = Some(e.to_string());
                    self.push.failed();
                    return;
                }
            }
        }
        self.push.succeeded();
    }
}
