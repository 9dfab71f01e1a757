//! The layout of Riak's outbox, and of the embedded archive before
//! `commits`: an agent's keys, grouped by conversation and in time order.
//!
//! Key: `agent 0x00 start visitor 0x00 time seq`, where `start` and `time`
//! are 8 bytes big-endian with the sign bit flipped (so that they sort as
//! numbers) and `seq` 4 bytes big-endian, telling apart keys of one
//! conversation with the same time, in the order they were written. JIDs
//! cannot contain NUL, so an agent's keys are exactly those that begin with
//! `agent 0x00`. Value: entries in the seed's text format
//! (`|current_time^...|from^...|to^...|msg^...|`), one after the other, in
//! time order; `time` is the first one's.
//!
//! Riak's outbox writes one entry a key ([`insert`]: its length counts the
//! entries waiting). Embedded archives of the two versions before `commits`
//! wrote one entry a key, then one key per conversation and commit; both
//! read the same way.

use super::ArchiveError;
use crate::conversation::{encode_entry_into, split_entries, Entry};
use crate::records::{Record, RecordsError};
use redb::{ReadableTable, Table, TableDefinition};

pub(super) type Entries = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// A message entry on its way to a store, with the conversation it
/// belongs to. Its five texts share one allocation: it is made on the
/// scheduler thread that captured the message and freed by the writer
/// thread, and each allocation crossing threads costs both of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    /// agent, visitor, from, to and msg, one after the other.
    texts: Box<str>,
    /// Where agent, visitor, from and to end in `texts` (msg is the rest).
    ends: [usize; 4],
    pub start_us: i64,
    pub time_us: i64,
}

impl Pending {
    pub(super) fn new(
        (agent, visitor, start_us): (&str, &str, i64),
        time_us: i64,
        from: &str,
        to: &str,
        msg: &str,
    ) -> Pending {
        let parts = [agent, visitor, from, to, msg];
        let mut texts = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; 4];
        for (i, part) in parts.iter().enumerate() {
            texts.push_str(part);
            if let Some(end) = ends.get_mut(i) {
                *end = texts.len();
            }
        }
        Pending {
            texts: texts.into_boxed_str(),
            ends,
            start_us,
            time_us,
        }
    }

    /// A decoded entry of `agent`'s conversation with `visitor`.
    pub(super) fn of_entry(agent: &str, visitor: &str, start_us: i64, entry: &Entry) -> Pending {
        Pending::new(
            (agent, visitor, start_us),
            entry.time_us,
            &entry.from,
            &entry.to,
            &entry.msg,
        )
    }

    /// The `index`th text (`ends` are char boundaries by construction).
    fn text(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(index).copied().unwrap_or(self.texts.len());
        self.texts.get(start..end).unwrap_or_default()
    }

    pub(super) fn agent(&self) -> &str {
        self.text(0)
    }

    pub(super) fn visitor(&self) -> &str {
        self.text(1)
    }

    /// Whether both are of one conversation of their agent.
    pub(super) fn same_conversation(&self, other: &Pending) -> bool {
        self.start_us == other.start_us && self.visitor() == other.visitor()
    }

    /// `batch` by agent, conversation (start, then visitor) and time;
    /// entries of one conversation at the same time keep their order.
    pub(super) fn in_conversation_order(batch: &[Pending]) -> Vec<&Pending> {
        let mut order: Vec<&Pending> = batch.iter().collect();
        order.sort_by(|a, b| {
            (a.agent(), a.start_us, a.visitor(), a.time_us).cmp(&(
                b.agent(),
                b.start_us,
                b.visitor(),
                b.time_us,
            ))
        });
        order
    }

    /// The entry in the seed's format, appended to `out`.
    pub(super) fn encode_entry_into(&self, out: &mut String) {
        encode_entry_into(out, self.time_us, self.text(2), self.text(3), self.text(4));
    }
}

const TIME_BYTES: usize = 8;
const SEQ_BYTES: usize = 4;

fn sortable(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// The prefix of every key of `agent`.
pub(super) fn agent_prefix(agent: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(agent.len() + 1);
    key.extend_from_slice(agent.as_bytes());
    key.push(0);
    key
}

/// The key of a value whose first entry is `pending`, at seq 0.
fn entry_key(pending: &Pending) -> Vec<u8> {
    let mut key = agent_prefix(pending.agent());
    key.extend_from_slice(&sortable(pending.start_us));
    key.extend_from_slice(pending.visitor().as_bytes());
    key.push(0);
    key.extend_from_slice(&sortable(pending.time_us));
    key.extend_from_slice(&0u32.to_be_bytes());
    key
}

/// Adds one entry.
pub(super) fn insert(
    table: &mut Table<&'static [u8], &'static [u8]>,
    pending: &Pending,
) -> Result<(), ArchiveError> {
    let mut value = String::new();
    pending.encode_entry_into(&mut value);
    insert_value(table, entry_key(pending), value.as_bytes())
}

/// Adds a batch's entries, one key per conversation holding its entries of
/// the batch in time order (recording order among equal times): what the
/// embedded store wrote before `commits`, kept to be measured against it
/// (`Archive::open_embedded_previous_layout`).
pub(super) fn insert_grouped(
    table: &mut Table<&'static [u8], &'static [u8]>,
    batch: &[Pending],
) -> Result<(), ArchiveError> {
    let order = Pending::in_conversation_order(batch);
    let mut value = String::new();
    for group in order.chunk_by(|a, b| a.agent() == b.agent() && a.same_conversation(b)) {
        value.clear();
        for pending in group {
            pending.encode_entry_into(&mut value);
        }
        insert_value(table, entry_key(group[0]), value.as_bytes())?;
    }
    Ok(())
}

/// Puts `value` under `key`, or, if the key is taken (a second key of the
/// same conversation with the same time), under the next free `seq`.
fn insert_value(
    table: &mut Table<&'static [u8], &'static [u8]>,
    mut key: Vec<u8>,
    value: &[u8],
) -> Result<(), ArchiveError> {
    let seq_at = key.len() - SEQ_BYTES;
    // One B-tree operation when the key is free, which it almost always is;
    // on a clash the earlier value is put back, and this one goes after it.
    for seq in 1..=u32::MAX {
        let Some(previous) = table
            .insert(key.as_slice(), value)?
            .map(|previous| previous.value().to_vec())
        else {
            return Ok(());
        };
        table.insert(key.as_slice(), previous.as_slice())?;
        key[seq_at..].copy_from_slice(&seq.to_be_bytes());
    }
    Err(ArchiveError::Corrupt(RecordsError::NotAnArchive))
}

/// Decodes a run of entries in the seed's format onto `entries`, those of
/// the `record`th record read (for the error).
pub(super) fn push_entries(
    run: &str,
    record: usize,
    entries: &mut Vec<Entry>,
) -> Result<(), ArchiveError> {
    for piece in split_entries(run) {
        let entry = Entry::decode(piece).map_err(|error| {
            ArchiveError::Corrupt(RecordsError::Entry {
                record,
                entry: entries.len(),
                error,
            })
        })?;
        entries.push(entry);
    }
    Ok(())
}

/// Where a key's conversation is: `(start_us, visitor)`.
fn conversation_of(key: &[u8], prefix_len: usize) -> Option<(i64, &str)> {
    let rest = key.get(prefix_len..)?;
    let (start, rest) = rest.split_first_chunk::<8>()?;
    let visitor_len = rest.len().checked_sub(1 + TIME_BYTES + SEQ_BYTES)?;
    let visitor = std::str::from_utf8(&rest[..visitor_len]).ok()?;
    Some((unsortable(*start), visitor))
}

/// Reads up to `max_entries` of the agent's entries (all with `usize::MAX`),
/// as records in key order: conversations by start then visitor, entries
/// by time then recording order. Returns them with the keys read.
pub(super) fn read_agent<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    agent: &str,
    max_entries: usize,
) -> Result<(Vec<Record>, Vec<Vec<u8>>), ArchiveError> {
    let prefix = agent_prefix(agent);
    let mut records: Vec<Record> = Vec::new();
    let mut keys = Vec::new();
    for item in table.range(prefix.as_slice()..)? {
        if keys.len() >= max_entries {
            break;
        }
        let (key, value) = item?;
        let key = key.value();
        if !key.starts_with(&prefix) {
            break;
        }
        let corrupt = || ArchiveError::Corrupt(RecordsError::NotAnArchive);
        let (start_us, visitor) = conversation_of(key, prefix.len()).ok_or_else(corrupt)?;
        let text = std::str::from_utf8(value.value()).map_err(|_| corrupt())?;
        if !matches!(records.last(), Some(last) if last.start_us == start_us && last.user == visitor)
        {
            records.push(Record {
                start_us,
                user: visitor.to_owned(),
                entries: Vec::new(),
            });
        }
        let record_index = records.len() - 1;
        let record = &mut records[record_index];
        push_entries(text, record_index, &mut record.entries)?;
        keys.push(key.to_vec());
    }
    // Each key is in time order, and keys by their first time; an entry
    // whose time was taken just before a commit but that reached the writer
    // just after it is in the next key: put back in time order (stable, so
    // equal times keep the order they were recorded in).
    for record in &mut records {
        if !record.entries.is_sorted_by_key(|entry| entry.time_us) {
            record.entries.sort_by_key(|entry| entry.time_us);
        }
    }
    Ok((records, keys))
}

/// The agent of the table's first key, if any.
pub(super) fn first_agent<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
) -> Result<Option<String>, ArchiveError> {
    let Some((key, _)) = table.first()? else {
        return Ok(None);
    };
    let key = key.value();
    let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    let agent = std::str::from_utf8(&key[..end])
        .map_err(|_| ArchiveError::Corrupt(RecordsError::NotAnArchive))?;
    Ok(Some(agent.to_owned()))
}

/// Commits both layouts' tests write and read back.
#[cfg(test)]
pub(super) mod scenario {
    use super::Pending;

    /// (start, visitor, its messages in order).
    pub type Said = (i64, String, Vec<String>);

    pub fn pending(agent: &str, visitor: &str, start_us: i64, time_us: i64, msg: &str) -> Pending {
        Pending::new((agent, visitor, start_us), time_us, visitor, agent, msg)
    }

    pub fn conversation(start_us: i64, visitor: &str, msgs: &[&str]) -> Said {
        let msgs = msgs.iter().map(|m| m.to_string()).collect();
        (start_us, visitor.to_owned(), msgs)
    }

    /// Three conversations of `a@h` and one of another agent whose name
    /// begins as its does, mixed in one commit, out of time order, two at
    /// the same time, one started before the epoch; then a commit holding an
    /// entry older than the previous commit's last, of a conversation that
    /// sorts first; then one at the same time as the first commit's first.
    pub fn three_commits() -> [Vec<Pending>; 3] {
        [
            vec![
                pending("a@h", "v@c", 5, 30, "c"),
                pending("a@h", "w@c", 6, 10, "w first"),
                pending("a@h", "v@c", 5, 20, "b, same time, one"),
                pending("ab@h", "v@c", 0, 0, "another agent"),
                pending("a@h", "v@c", 5, 20, "b, same time, two"),
                pending("a@h", "w@c", 6, 11, "w | second ^ %"),
                pending("a@h", "u@c", -7, 1, "before the epoch"),
            ],
            vec![
                pending("a@h", "v@c", 5, 25, "late"),
                pending("a@h", "v@c", 5, 40, "d"),
                pending("a@h", "u@c", -7, 2, "before, again"),
            ],
            vec![pending("a@h", "v@c", 5, 20, "b, again")],
        ]
    }

    /// What `a@h` reads after [`three_commits`], after `earlier` messages
    /// of its conversation with `v@c` (written before them, at time 1).
    pub fn a_h_reads(earlier: &[&str]) -> Vec<Said> {
        let mut v = earlier.to_vec();
        v.extend([
            "b, same time, one",
            "b, same time, two",
            "b, again",
            "late",
            "c",
            "d",
        ]);
        vec![
            conversation(-7, "u@c", &["before the epoch", "before, again"]),
            conversation(5, "v@c", &v),
            conversation(6, "w@c", &["w first", "w | second ^ %"]),
        ]
    }

    /// Records as what was said in them.
    pub fn said(records: Vec<crate::records::Record>) -> Vec<Said> {
        records
            .into_iter()
            .map(|r| {
                let msgs = r.entries.into_iter().map(|e| e.msg).collect();
                (r.start_us, r.user, msgs)
            })
            .collect()
    }

    pub fn ab_h_reads() -> Vec<Said> {
        vec![conversation(0, "v@c", &["another agent"])]
    }
}

#[cfg(test)]
mod tests {
    use super::scenario::*;
    use super::*;
    use redb::{Database, ReadableDatabase};

    const TABLE: Entries = TableDefinition::new("entries_test");

    /// The agent's records as (start, visitor, its messages), and how many
    /// keys they came from.
    fn read_messages(db: &Database, agent: &str) -> (Vec<Said>, usize) {
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(TABLE).expect("table");
        let (records, keys) = read_agent(&table, agent, usize::MAX).expect("read");
        (said(records), keys.len())
    }

    #[test]
    fn keys_group_by_agent_and_conversation_in_time_then_recording_order() {
        let dir = std::env::temp_dir().join(format!("clicktochat-entries-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Database::create(dir.join("e.redb")).expect("db");
        let said = [
            pending("a@h", "v@c", 5, 30, "third"),
            pending("a@h", "v@c", 5, 10, "first"),
            pending("a@h", "w@c", -7, 1, "earlier conversation"),
            pending("ab@h", "v@c", 0, 0, "another agent"),
            pending("a@h", "v@c", 5, 20, "same time, one"),
            pending("a@h", "v@c", 5, 20, "same time, two"),
            pending("a@h", "v@c", 5, 20, "same time, one"),
        ];
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(TABLE).expect("table");
            for p in &said {
                insert(&mut table, p).expect("insert");
            }
        }
        txn.commit().expect("commit");
        let (got, keys) = read_messages(&db, "a@h");
        assert_eq!(
            got,
            [
                conversation(-7, "w@c", &["earlier conversation"]),
                conversation(
                    5,
                    "v@c",
                    &[
                        "first",
                        "same time, one",
                        "same time, two",
                        "same time, one",
                        "third"
                    ]
                ),
            ]
        );
        assert_eq!(keys, 6);
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(TABLE).expect("table");
        let (first_two, _) = read_agent(&table, "a@h", 2).expect("read two");
        assert_eq!(first_two.iter().map(|r| r.entries.len()).sum::<usize>(), 2);
        assert_eq!(first_agent(&table).expect("first").as_deref(), Some("a@h"));
        drop(table);
        drop(txn);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_batch_goes_one_key_a_conversation_and_reads_back_in_time_order() {
        let dir = std::env::temp_dir().join(format!("clicktochat-grouped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Database::create(dir.join("g.redb")).expect("db");
        let write = |batch: &[Pending], one_a_key: bool| {
            let txn = db.begin_write().expect("txn");
            {
                let mut table = txn.open_table(TABLE).expect("table");
                if one_a_key {
                    for p in batch {
                        insert(&mut table, p).expect("insert");
                    }
                } else {
                    insert_grouped(&mut table, batch).expect("insert");
                }
            }
            txn.commit().expect("commit");
        };
        // Written one entry a key (as files of the previous version are).
        write(&[pending("a@h", "v@c", 5, 1, "one a key")], true);
        for commit in three_commits() {
            write(&commit, false);
        }
        // One key a conversation and commit (the third commit's same-time
        // key took the next seq).
        assert_eq!(read_messages(&db, "a@h"), (a_h_reads(&["one a key"]), 7));
        assert_eq!(read_messages(&db, "ab@h").0, ab_h_reads());
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
