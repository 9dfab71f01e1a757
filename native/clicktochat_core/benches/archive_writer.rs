//! What archiving a message costs against the length of its conversation,
//! end to end through the writer thread: messages handed to an embedded
//! archive as the capture hook does, then `sync` (everything committed,
//! fsync included). Conversations of 10 to 100 000 messages, 16 at a time
//! (each with its own agent, as on a busy desk) whose messages interleave;
//! when they have all reached the length, the next 16 begin. A run is
//! 100 000 messages, or 16 conversations' worth when that is more.
//!
//! The alternatives, in the same run, interleaved (now, conversation and
//! commit, entry, old, now, ...): the three previous layouts: one key per
//! conversation and commit, written by the archive's own writer
//! (`Archive::open_embedded_previous_layout`), and two reproduced here as
//! they were written, inline (no writer thread): one key per message entry
//! (each entry its own B-tree insert), and one key per conversation (the
//! writer appended each message to its pending records, then each batch
//! decoded, merged and re-encoded the whole conversation).
//!
//! Now a commit writes one key per agent it has messages of (50 here). With
//! one key per conversation and commit, a message cost less the more of its
//! conversation's messages a commit held: at 10 messages a conversation a
//! commit of 4 096 holds about 400 conversations, from 256 messages on, 16,
//! which made short conversations dearer.
//!
//! Figures: CPU per message (the whole process: the writer thread does
//! almost all of it; the sender only hands messages over), wall time per
//! message, and the commit lag (from the last message handed over to
//! `sync`'s return) of the burst. `cargo bench -p clicktochat_core --bench
//! archive_writer [-- JSON_PATH]` (part of `make bench`, which passes
//! _build/bench/archive.json).

use clicktochat_core::archive::{Archive, ArchiveConfig, Conversation, Direction, StoreConfig};
use clicktochat_core::conversation::{encode_entry_into, Entry};
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
    ConversationAndCommit,
    EntryPerKey,
    ConversationPerKey,
}

/// A conversation length, and its run with each layout: the current one,
/// one key per conversation and commit, one key per entry, and one key per
/// conversation (not run past OLD_LENGTHS).
struct Row {
    length: usize,
    now: Run,
    by_commit: Run,
    entry: Run,
    old: Option<Run>,
}

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
        "{:>13} {:>24} {:>12} {:>12} {:>10}",
        "messages/conv", "layout", "CPU us/msg", "wall us/msg", "lag ms"
    );
    let mut rows = Vec::new();
    for length in LENGTHS {
        let messages = MESSAGES.max(AT_ONCE * length);
        let mut runs: [Vec<Run>; 4] = Default::default();
        for _ in 0..ROUNDS {
            for (i, layout) in [
                Layout::Current,
                Layout::ConversationAndCommit,
                Layout::EntryPerKey,
            ]
            .into_iter()
            .enumerate()
            {
                runs[i].push(burst(layout, length, messages, true));
            }
            if OLD_LENGTHS.contains(&length) {
                runs[3].push(burst(
                    Layout::ConversationPerKey,
                    length,
                    OLD_MESSAGES,
                    true,
                ));
            }
        }
        let [now, by_commit, entry, old] = runs.map(|runs| (!runs.is_empty()).then(|| best(runs)));
        let row = Row {
            length,
            now: now.expect("run"),
            by_commit: by_commit.expect("run"),
            entry: entry.expect("run"),
            old,
        };
        print_row(length, "now", &row.now);
        print_row(length, "conversation and commit", &row.by_commit);
        print_row(length, "entry per key", &row.entry);
        if let Some(old) = &row.old {
            print_row(length, "conversation per key", old);
        }
        rows.push(row);
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
        ("now", cpu_of(&rows, |r| &r.now)),
        ("conversation and commit", cpu_of(&rows, |r| &r.by_commit)),
        ("entry per key", cpu_of(&rows, |r| &r.entry)),
    ] {
        println!(
            "{layout}: CPU per message from {} to {} messages a conversation, \
             farthest from the median: {:.0}%",
            LENGTHS[0],
            LENGTHS[LENGTHS.len() - 1],
            spread(&cpu) * 100.0
        );
    }
    for row in &rows {
        let before = row.old.as_ref().map_or(String::new(), |old| {
            format!(
                ", one key per conversation / now = {:.1}x",
                old.cpu_us_per_message / row.now.cpu_us_per_message
            )
        });
        println!(
            "{:>6} messages a conversation: one key per conversation and commit / now = {:.1}x \
             CPU, one key per entry / now = {:.1}x{before}",
            row.length,
            row.by_commit.cpu_us_per_message / row.now.cpu_us_per_message,
            row.entry.cpu_us_per_message / row.now.cpu_us_per_message
        );
    }
    if let Some(path) = json {
        write_json(Path::new(&path), &rows, lag);
    }
}

fn cpu_of(rows: &[Row], run: impl Fn(&Row) -> &Run) -> Vec<f64> {
    rows.iter().map(|r| run(r).cpu_us_per_message).collect()
}

fn print_row(length: usize, layout: &str, run: &Run) {
    println!(
        "{length:>13} {layout:>24} {:>12.2} {:>12.2} {:>10.1}",
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
    let series = |run: &dyn Fn(&Row) -> Option<&Run>| {
        rows.iter()
            .filter_map(|row| {
                run(row).map(|run| {
                    format!(
                        "{{\"x\": {}, \"y\": {:.3}, \"wall us\": {:.3}}}",
                        row.length, run.cpu_us_per_message, run.wall_us_per_message
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let spread_now = spread(&cpu_of(rows, |r| &r.now));
    let spread_by_commit = spread(&cpu_of(rows, |r| &r.by_commit));
    // Never dearer than the layout before, at any length.
    let cheaper = rows
        .iter()
        .all(|r| r.now.cpu_us_per_message <= r.by_commit.cpu_us_per_message);
    let text = format!(
        "{{\"bench\": \"archive\", \
         \"description\": \"The archive writer (embedded store, fsync'd commits), CPU of the whole \
         process per archived message, conversations of 10 to 100 000 messages ({AT_ONCE} at a time, \
         {AGENTS} agents, handed over as fast as a loop can, commits of up to 4 096); the \
         alternatives are the three previous layouts, in the same run: one key per conversation \
         and commit (through the same writer), and reproduced inline, one key per entry and one \
         key per conversation rewritten each batch (up to 10 000). A commit now writes one key per agent it has messages of; with one \
         key per conversation and commit, a commit at 10 messages a conversation held about 400 \
         conversations, from 256 on 16, which made the short ones dearer. Commit lag after a burst \
         of 100 000 messages handed over at once: {lag:.0} ms.\", \
         \"command\": \"cargo bench -p clicktochat_core --bench archive_writer\", \
         \"x_label\": \"messages in the conversation\", \
         \"y_label\": \"CPU us per message\", \
         \"series\": [{}], \
         \"alternatives\": [{{\"name\": \"one key per conversation and commit\", \"series\": [{}]}}, \
         {{\"name\": \"one key per entry\", \"series\": [{}]}}, \
         {{\"name\": \"one key per conversation\", \"series\": [{}]}}], \
         \"lag_ms_after_100000_burst\": {lag:.1}, \
         \"goal\": {{\"text\": \"flat within +-25% from 10 to 100 000 messages: now every length \
         within {:.0}% of their median (one key per conversation and commit: {:.0}%), and {} than \
         it at every length; commit lag <= 500 ms ({lag:.0} ms)\", \"met\": {}}}}}\n",
        series(&|r| Some(&r.now)),
        series(&|r| Some(&r.by_commit)),
        series(&|r| Some(&r.entry)),
        series(&|r| r.old.as_ref()),
        spread_now * 100.0,
        spread_by_commit * 100.0,
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
        Layout::ConversationAndCommit => "by-commit",
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
        Layout::ConversationAndCommit => Box::new(
            Archive::open_embedded_previous_layout(dir.join("commit.redb"))
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

/// The layout before those two, as its writer did it: every entry its own
/// key (agent, start, visitor, time, seq), commits of the writer's largest
/// size; a message's texts in one allocation, encoded at the commit into a
/// reused buffer, as the writer after it did.
struct EntryPerKey {
    db: Database,
    pending: Vec<Message>,
}

struct Message {
    /// agent 0x00 start visitor 0x00: the key up to its time.
    conversation: Vec<u8>,
    agent_len: usize,
    time_us: i64,
    from_visitor: bool,
}

impl Message {
    fn encode_into(&self, out: &mut String) {
        let text = |range: std::ops::Range<usize>| {
            std::str::from_utf8(&self.conversation[range]).expect("UTF-8")
        };
        let agent = text(0..self.agent_len);
        let visitor = text(self.agent_len + 9..self.conversation.len() - 1);
        let (from, to) = if self.from_visitor {
            (visitor, agent)
        } else {
            (agent, visitor)
        };
        encode_entry_into(out, self.time_us, from, to, TEXT);
    }
}

const ENTRY_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");

fn sortable(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

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
            let (mut value, mut key) = (String::new(), Vec::new());
            for message in &self.pending {
                value.clear();
                message.encode_into(&mut value);
                key.clear();
                key.extend_from_slice(&message.conversation);
                key.extend_from_slice(&sortable(message.time_us));
                key.extend_from_slice(&0u32.to_be_bytes());
                table
                    .insert(key.as_slice(), value.as_bytes())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        self.pending.clear();
    }
}

impl Sink for EntryPerKey {
    fn message(&mut self, conversation: &Conversation, direction: Direction, time_us: i64) {
        let (agent, visitor) = (
            conversation.agent.as_bytes(),
            conversation.visitor.as_bytes(),
        );
        let mut key = Vec::with_capacity(agent.len() + visitor.len() + 10);
        key.extend_from_slice(agent);
        key.push(0);
        key.extend_from_slice(&sortable(conversation.start_us));
        key.extend_from_slice(visitor);
        key.push(0);
        self.pending.push(Message {
            conversation: key,
            agent_len: agent.len(),
            time_us,
            from_visitor: direction == Direction::FromVisitor,
        });
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
