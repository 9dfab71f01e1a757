//! What archiving a message costs against the length of its conversation,
//! end to end through the writer thread: messages handed to an embedded
//! archive as the capture hook does, then `sync` (everything committed,
//! fsync included). Conversations of 10 to 100 000 messages, 16 at a time
//! (each with its own agent, as on a busy desk) whose messages interleave;
//! when they have all reached the length, the next 16 begin. A run is
//! 100 000 messages, or 16 conversations' worth when that is more.
//!
//! The alternatives, in the same run, interleaved (now, entry, old, now,
//! entry, old): the two previous layouts, reproduced here as they were
//! written: one key per message entry (each entry its own B-tree insert),
//! and one key per conversation (the writer appended each message to its
//! pending records, then each batch decoded, merged and re-encoded the whole
//! conversation).
//!
//! Now a commit writes one key per conversation it has messages of, so a
//! message costs less the more of its conversation's messages a commit
//! holds: in this burst, at 10 messages a conversation a commit of 4 096
//! holds about 400 conversations, from 256 messages on, 16. That, not the
//! conversation's length, is what the 10-message figure shows (the entry
//! layout, one key a message whatever the burst, shows the length alone).
//!
//! Figures: CPU per message (the whole process: the writer thread does
//! almost all of it; the sender only hands messages over), wall time per
//! message, and the commit lag (from the last message handed over to
//! `sync`'s return) of the burst. `cargo bench -p clicktochat_core --bench
//! archive_writer [-- JSON_PATH]` (part of `make bench`, which passes
//! _build/bench/archive.json).

use clicktochat_core::archive::{Archive, ArchiveConfig, Conversation, Direction, StoreConfig};
use clicktochat_core::conversation::Entry;
use clicktochat_core::records::{decode_archive, encode_archive, merge, Record};
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Messages in a run of the current layout, at least.
const MESSAGES: usize = 100_000;
/// Conversations going on at once.
const AT_ONCE: usize = 16;
/// Messages in a run of the previous layout, whose cost grows with the
/// conversation: enough for a stable figure, few enough to end.
const OLD_MESSAGES: usize = 20_000;
const OLD_LENGTHS: [usize; 4] = [10, 100, 1_000, 10_000];
const LENGTHS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
const AGENTS: usize = 50;
const ROUNDS: usize = 2;
/// Messages handed over before waiting for the writer to commit them.
const PACE: usize = 20_000;
const TEXT: &str = "Hello, I have a question about my order number 123456789.";

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Current,
    EntryPerKey,
    ConversationPerKey,
}

/// A conversation length, its run with the current layout, with one key
/// per entry, and with one key per conversation (not run past OLD_LENGTHS).
type Row = (usize, Run, Run, Option<Run>);

struct Run {
    cpu_us_per_message: f64,
    wall_us_per_message: f64,
    lag_ms: f64,
}

fn main() {
    let json = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    println!(
        "archive writer, embedded store, messages of {} bytes, {} agents; \
         CPU = the whole process",
        TEXT.len(),
        AGENTS
    );
    println!(
        "{:>13} {:>22} {:>12} {:>12} {:>10}",
        "messages/conv", "layout", "CPU us/msg", "wall us/msg", "lag ms"
    );
    let mut rows = Vec::new();
    for length in LENGTHS {
        let messages = MESSAGES.max(AT_ONCE * length);
        let (mut new_runs, mut entry_runs, mut old_runs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            new_runs.push(burst(Layout::Current, length, messages, true));
            entry_runs.push(burst(Layout::EntryPerKey, length, messages, true));
            if OLD_LENGTHS.contains(&length) {
                old_runs.push(burst(
                    Layout::ConversationPerKey,
                    length,
                    OLD_MESSAGES,
                    true,
                ));
            }
        }
        let (new, entry) = (best(new_runs), best(entry_runs));
        print_row(length, "now", &new);
        print_row(length, "entry per key", &entry);
        let old = (!old_runs.is_empty()).then(|| best(old_runs));
        if let Some(old) = &old {
            print_row(length, "conversation per key", old);
        }
        rows.push((length, new, entry, old));
    }
    // The commit lag of a burst of 100 000 messages handed over as fast as
    // a loop can (far faster than ejabberd routes them).
    let lag = best(
        (0..ROUNDS)
            .map(|_| burst(Layout::Current, MESSAGES, MESSAGES, false))
            .collect(),
    )
    .lag_ms;
    println!("commit lag after a burst of {MESSAGES} messages handed over at once: {lag:.0} ms");
    for (layout, cpu) in [
        (
            "now",
            rows.iter()
                .map(|r| r.1.cpu_us_per_message)
                .collect::<Vec<_>>(),
        ),
        (
            "entry per key",
            rows.iter().map(|r| r.2.cpu_us_per_message).collect(),
        ),
    ] {
        println!(
            "{layout}: CPU per message from {} to {} messages a conversation, \
             farthest from the median: {:.0}%",
            LENGTHS[0],
            LENGTHS[LENGTHS.len() - 1],
            spread(&cpu) * 100.0
        );
    }
    for (length, new, entry, old) in &rows {
        let before = old.as_ref().map_or(String::new(), |old| {
            format!(
                ", one key per conversation / now = {:.1}x",
                old.cpu_us_per_message / new.cpu_us_per_message
            )
        });
        println!(
            "{length:>6} messages a conversation: one key per entry / now = {:.1}x CPU{before}",
            entry.cpu_us_per_message / new.cpu_us_per_message
        );
    }
    if let Some(path) = json {
        write_json(Path::new(&path), &rows, lag);
    }
}

fn print_row(length: usize, layout: &str, run: &Run) {
    println!(
        "{length:>13} {layout:>22} {:>12.2} {:>12.2} {:>10.1}",
        run.cpu_us_per_message, run.wall_us_per_message, run.lag_ms
    );
}

/// The run with the least CPU (the least disturbed by the rest of the
/// machine).
fn best(runs: Vec<Run>) -> Run {
    runs.into_iter()
        .min_by(|a, b| a.cpu_us_per_message.total_cmp(&b.cpu_us_per_message))
        .expect("at least one run")
}

/// The shape test/bench/report.py reads (its docstring).
/// How far from their median the figures go, at most (0.25: +-25%).
fn spread(figures: &[f64]) -> f64 {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    sorted
        .iter()
        .map(|c| (c / median - 1.0).abs())
        .fold(0f64, f64::max)
}

fn write_json(path: &Path, rows: &[Row], lag: f64) {
    let point = |x: usize, run: &Run| {
        format!(
            "{{\"x\": {x}, \"y\": {:.3}, \"wall us\": {:.3}}}",
            run.cpu_us_per_message, run.wall_us_per_message
        )
    };
    let ours: Vec<String> = rows.iter().map(|(x, new, _, _)| point(*x, new)).collect();
    let entry: Vec<String> = rows.iter().map(|(x, _, e, _)| point(*x, e)).collect();
    let before: Vec<String> = rows
        .iter()
        .filter_map(|(x, _, _, old)| old.as_ref().map(|old| point(*x, old)))
        .collect();
    let (now_cpu, entry_cpu): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .map(|r| (r.1.cpu_us_per_message, r.2.cpu_us_per_message))
        .unzip();
    let (spread_now, spread_entry) = (spread(&now_cpu), spread(&entry_cpu));
    // Never dearer than one key per entry, at any length.
    let cheaper = rows
        .iter()
        .all(|(_, new, entry, _)| new.cpu_us_per_message <= entry.cpu_us_per_message);
    let text = format!(
        "{{\"bench\": \"archive\", \
         \"description\": \"The archive writer (embedded store, fsync'd commits), CPU of the whole \
         process per archived message, conversations of 10 to 100 000 messages ({AT_ONCE} at a time, \
         handed over as fast as a loop can, commits of up to 4 096); the alternatives are the two \
         previous layouts, reproduced in the same run: one key per entry, and one key per \
         conversation rewritten each batch (up to 10 000). A commit now writes one key per \
         conversation it has messages of: at 10 messages a conversation a commit holds about 400 \
         conversations, from 256 on, 16, which is what makes the short ones dearer here. Commit lag \
         after a burst of 100 000 messages handed over at once: {lag:.0} ms.\", \
         \"command\": \"cargo bench -p clicktochat_core --bench archive_writer\", \
         \"x_label\": \"messages in the conversation\", \
         \"y_label\": \"CPU us per message\", \
         \"series\": [{}], \
         \"alternatives\": [{{\"name\": \"one key per entry\", \"series\": [{}]}}, \
         {{\"name\": \"one key per conversation\", \"series\": [{}]}}], \
         \"lag_ms_after_100000_burst\": {lag:.1}, \
         \"goal\": {{\"text\": \"flat within +-25% from 10 to 100 000 messages: now every length \
         within {:.0}% of their median (one key per entry: {:.0}%), and {} than one key per entry \
         at every length; commit lag <= 500 ms ({lag:.0} ms)\", \"met\": {}}}}}\n",
        ours.join(", "),
        entry.join(", "),
        before.join(", "),
        spread_now * 100.0,
        spread_entry * 100.0,
        if cheaper { "cheaper" } else { "not always cheaper" },
        spread_now <= 0.25 && lag <= 500.0
    );
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, text).expect("write the JSON figures");
}

/// CPU time of this process, every thread, from /proc/self/task/*/schedstat
/// (nanoseconds; /proc/self/stat counts in 10 ms ticks, a tenth of a run's
/// CPU at these rates).
fn process_cpu() -> Duration {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let nanos: u64 = tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn fresh_dir(layout: Layout, length: usize) -> PathBuf {
    let tag = match layout {
        Layout::Current => "new",
        Layout::EntryPerKey => "entry",
        Layout::ConversationPerKey => "old",
    };
    let dir = std::env::temp_dir().join(format!(
        "clicktochat-writer-bench-{}-{tag}-{length}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// `messages` messages in conversations of `length`, up to AT_ONCE of them
/// at a time; `pace`: waiting for the writer every PACE messages.
fn burst(layout: Layout, length: usize, messages: usize, pace: bool) -> Run {
    let dir = fresh_dir(layout, length);
    let conversations = (messages / length).max(1);
    let at_once = conversations.min(AT_ONCE);
    let visitors: Vec<String> = (0..conversations)
        .map(|i| format!("visitor{i:06}@clients.example.com"))
        .collect();
    let agents: Vec<String> = (0..AGENTS)
        .map(|i| format!("agent{i:03}@helpdesk.example.com"))
        .collect();
    let mut sink: Box<dyn Sink> = match layout {
        Layout::Current => Box::new(
            Archive::open(ArchiveConfig {
                path: dir.join("archive.redb"),
                store: StoreConfig::Embedded,
            })
            .expect("open the archive"),
        ),
        Layout::EntryPerKey => Box::new(EntryPerKey::open(&dir.join("entry.redb"))),
        Layout::ConversationPerKey => Box::new(ConversationPerKey::open(&dir.join("old.redb"))),
    };
    let (cpu, start) = (process_cpu(), Instant::now());
    for i in 0..messages {
        let (group, within) = (i / (at_once * length), i % (at_once * length));
        let c = (group * at_once + within % at_once).min(conversations - 1);
        let conversation = Conversation {
            visitor: &visitors[c],
            agent: &agents[c % AGENTS],
            start_us: 1_795_612_320_000_000 + c as i64,
        };
        let direction = if (within / at_once).is_multiple_of(2) {
            Direction::FromVisitor
        } else {
            Direction::FromAgent
        };
        sink.message(&conversation, direction, 1_795_612_400_000_000 + i as i64);
        // Messages arrive at the pace the writer takes them (ejabberd routes
        // them far slower than this loop hands them over): without this, a
        // run of a million would measure a backlog of a million in memory.
        if pace && (i + 1) % PACE == 0 {
            sink.sync();
        }
    }
    let handed_over = Instant::now();
    sink.sync();
    let (wall, cpu) = (start.elapsed(), process_cpu().saturating_sub(cpu));
    let lag = handed_over.elapsed();
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        cpu_us_per_message: cpu.as_secs_f64() * 1e6 / messages as f64,
        wall_us_per_message: wall.as_secs_f64() * 1e6 / messages as f64,
        lag_ms: lag.as_secs_f64() * 1e3,
    }
}

trait Sink {
    fn message(&mut self, conversation: &Conversation, direction: Direction, time_us: i64);
    fn sync(&mut self);
}

impl Sink for Archive {
    fn message(&mut self, conversation: &Conversation, direction: Direction, time_us: i64) {
        Archive::message(self, conversation, direction, TEXT, time_us);
    }

    fn sync(&mut self) {
        Archive::sync(self, Duration::from_secs(600)).expect("everything committed");
    }
}

/// The layout before this one, as its writer did it: every entry its own
/// key (agent, start, visitor, time, seq), batches of the writer's largest
/// size.
struct EntryPerKey {
    db: Database,
    pending: Vec<(Vec<u8>, String)>,
}

const ENTRY_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");

impl EntryPerKey {
    fn open(path: &Path) -> EntryPerKey {
        EntryPerKey {
            db: Database::create(path).expect("entry layout file"),
            pending: Vec::new(),
        }
    }

    fn save(&mut self) {
        let txn = self.db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(ENTRY_TABLE).expect("table");
            for (key, value) in self.pending.drain(..) {
                table
                    .insert(key.as_slice(), value.as_bytes())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
}

impl Sink for EntryPerKey {
    fn message(&mut self, conversation: &Conversation, direction: Direction, time_us: i64) {
        let (from, to) = match direction {
            Direction::FromVisitor => (conversation.visitor, conversation.agent),
            Direction::FromAgent => (conversation.agent, conversation.visitor),
        };
        let sortable = |n: i64| ((n as u64) ^ (1 << 63)).to_be_bytes();
        let mut key = Vec::new();
        key.extend_from_slice(conversation.agent.as_bytes());
        key.push(0);
        key.extend_from_slice(&sortable(conversation.start_us));
        key.extend_from_slice(conversation.visitor.as_bytes());
        key.push(0);
        key.extend_from_slice(&sortable(time_us));
        key.extend_from_slice(&0u32.to_be_bytes());
        let entry = Entry {
            time_us,
            from: from.to_owned(),
            to: to.to_owned(),
            msg: TEXT.to_owned(),
        };
        self.pending.push((key, entry.encode()));
        if self.pending.len() == OLD_BATCH {
            self.save();
        }
    }

    fn sync(&mut self) {
        if !self.pending.is_empty() {
            self.save();
        }
    }
}

/// The layout before those, as its writer did it, batches of the writer's
/// largest size (a burst outruns the writer, so batches are full).
struct ConversationPerKey {
    db: Database,
    pending: BTreeMap<String, Vec<Record>>,
    pending_count: usize,
}

const OLD_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");
const OLD_BATCH: usize = 4096;

impl ConversationPerKey {
    fn open(path: &Path) -> ConversationPerKey {
        ConversationPerKey {
            db: Database::create(path).expect("old layout file"),
            pending: BTreeMap::new(),
            pending_count: 0,
        }
    }

    fn save(&mut self) {
        let txn = self.db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(OLD_TABLE).expect("table");
            for (agent, records) in std::mem::take(&mut self.pending) {
                for record in records {
                    let start = (record.start_us as u64) ^ (1 << 63);
                    let key = format!("{agent}\0{start:020}\0{}", record.user);
                    let mut stored = match table.get(key.as_str()).expect("get") {
                        Some(value) => decode_archive(value.value()).expect("decode"),
                        None => Vec::new(),
                    };
                    merge(&mut stored, vec![record]);
                    table
                        .insert(key.as_str(), encode_archive(&stored).as_slice())
                        .expect("insert");
                }
            }
        }
        txn.commit().expect("commit");
        self.pending_count = 0;
    }
}

impl Sink for ConversationPerKey {
    fn message(&mut self, conversation: &Conversation, direction: Direction, time_us: i64) {
        let (from, to) = match direction {
            Direction::FromVisitor => (conversation.visitor, conversation.agent),
            Direction::FromAgent => (conversation.agent, conversation.visitor),
        };
        let records = self
            .pending
            .entry(conversation.agent.to_owned())
            .or_default();
        // What `records::append` did for each message.
        merge(
            records,
            vec![Record {
                start_us: conversation.start_us,
                user: conversation.visitor.to_owned(),
                entries: vec![Entry {
                    time_us,
                    from: from.to_owned(),
                    to: to.to_owned(),
                    msg: TEXT.to_owned(),
                }],
            }],
        );
        self.pending_count += 1;
        if self.pending_count == OLD_BATCH {
            self.save();
        }
    }

    fn sync(&mut self) {
        if self.pending_count > 0 {
            self.save();
        }
    }
}
