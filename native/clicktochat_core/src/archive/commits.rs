//! The embedded archive's layout: a commit writes one key per agent it has
//! messages of, holding that agent's messages of the commit, conversation by
//! conversation. Keys a commit are at most the agents with messages in it,
//! whatever the length of their conversations or how many each has going:
//! a B-tree insert (with the pages it dirties) costs 5-10 µs, the entries
//! of a message about 1 µs, so a key per conversation made a short
//! conversation's messages dearer (2.1 against 1.5 µs at 10 messages a
//! conversation, in the archive_writer bench).
//!
//! Key: `agent 0x00 n`, `n` 8 bytes big-endian: the agent's commits
//! numbered 0, 1, 2... (the next is one past the agent's last key), so an
//! agent's keys are its messages in the order they were committed. JIDs
//! cannot contain NUL, so an agent's keys are exactly those that begin with
//! `agent 0x00`.
//!
//! Value: for each conversation, by start then visitor: `start` (8 bytes,
//! big-endian two's complement), the visitor's length (4 bytes big-endian)
//! and the visitor, the entries' length (4 bytes) and the entries in the
//! seed's text format (`|current_time^...|msg^...|`), one after the other,
//! in time order (recording order among equal times).
//!
//! Files written before this layout keep their entries in `entries`' table
//! (see `entries`): a read takes them first, then these.

use super::entries::{agent_prefix, push_entries, Pending};
use super::ArchiveError;
use crate::conversation::Entry;
use crate::records::{Record, RecordsError};
use redb::{ReadableTable, Table, TableDefinition};
use std::collections::BTreeMap;

pub(super) type Commits = TableDefinition<'static, &'static [u8], &'static [u8]>;

const NUMBER_BYTES: usize = 8;

fn corrupt() -> ArchiveError {
    ArchiveError::Corrupt(RecordsError::NotAnArchive)
}

/// `agent 0x00`, and the first byte string past all of the agent's keys.
fn agent_range(agent: &str) -> (Vec<u8>, Vec<u8>) {
    let prefix = agent_prefix(agent);
    let mut end = prefix.clone();
    end[agent.len()] = 1;
    (prefix, end)
}

/// Adds a commit's entries: one key per agent, its conversations by start
/// then visitor, each one's entries in time order (recording order among
/// equal times).
pub(super) fn insert_commit(
    table: &mut Table<&'static [u8], &'static [u8]>,
    batch: &[Pending],
) -> Result<(), ArchiveError> {
    let order = Pending::in_conversation_order(batch);
    let (mut value, mut run) = (Vec::new(), String::new());
    for agent_entries in order.chunk_by(|a, b| a.agent() == b.agent()) {
        value.clear();
        for conversation in agent_entries.chunk_by(|a, b| a.same_conversation(b)) {
            run.clear();
            for pending in conversation {
                pending.encode_entry_into(&mut run);
            }
            let first = conversation[0];
            value.extend_from_slice(&first.start_us.to_be_bytes());
            push_counted(&mut value, first.visitor().as_bytes())?;
            push_counted(&mut value, run.as_bytes())?;
        }
        let key = next_key(table, agent_entries[0].agent())?;
        table.insert(key.as_slice(), value.as_slice())?;
    }
    Ok(())
}

/// `bytes`, after their length in 4 bytes.
fn push_counted(value: &mut Vec<u8>, bytes: &[u8]) -> Result<(), ArchiveError> {
    let length = u32::try_from(bytes.len()).map_err(|_| corrupt())?;
    value.extend_from_slice(&length.to_be_bytes());
    value.extend_from_slice(bytes);
    Ok(())
}

/// The key of the agent's next commit: one past its last.
fn next_key(
    table: &Table<&'static [u8], &'static [u8]>,
    agent: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let (mut key, end) = agent_range(agent);
    let next = match table.range(key.as_slice()..end.as_slice())?.next_back() {
        Some(last) => {
            let (last, _) = last?;
            let number = last
                .value()
                .last_chunk::<NUMBER_BYTES>()
                .ok_or_else(corrupt)?;
            u64::from_be_bytes(*number)
                .checked_add(1)
                .ok_or_else(corrupt)?
        }
        None => 0,
    };
    key.extend_from_slice(&next.to_be_bytes());
    Ok(key)
}

/// An agent's conversations as a read gathers them, from one layout after
/// the other: entries are added in the order they were committed.
#[derive(Default)]
pub(super) struct Gathered {
    conversations: BTreeMap<(i64, String), Vec<Entry>>,
}

impl Gathered {
    /// Adds records read from an earlier layout.
    pub(super) fn add_records(&mut self, records: Vec<Record>) {
        for record in records {
            self.conversations
                .entry((record.start_us, record.user))
                .or_default()
                .extend(record.entries);
        }
    }

    /// The records, by start then visitor, each one's entries in time order
    /// (an entry whose time was taken just before a commit but that reached
    /// the writer just after it is in the next one; stable, so equal times
    /// keep the order they were committed in).
    pub(super) fn into_records(self) -> Vec<Record> {
        self.conversations
            .into_iter()
            .map(|((start_us, user), mut entries)| {
                if !entries.is_sorted_by_key(|entry| entry.time_us) {
                    entries.sort_by_key(|entry| entry.time_us);
                }
                Record {
                    start_us,
                    user,
                    entries,
                }
            })
            .collect()
    }
}

/// Adds the agent's entries of this layout to `gathered`.
pub(super) fn read_agent<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    agent: &str,
    gathered: &mut Gathered,
) -> Result<(), ArchiveError> {
    let (prefix, end) = agent_range(agent);
    for item in table.range(prefix.as_slice()..end.as_slice())? {
        let (_, value) = item?;
        let mut rest = value.value();
        while !rest.is_empty() {
            let (start, after) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let (visitor, after) = take_counted(after)?;
            let (run, after) = take_counted(after)?;
            rest = after;
            let visitor = std::str::from_utf8(visitor).map_err(|_| corrupt())?;
            let run = std::str::from_utf8(run).map_err(|_| corrupt())?;
            let records = gathered.conversations.len();
            let entries = gathered
                .conversations
                .entry((i64::from_be_bytes(*start), visitor.to_owned()))
                .or_default();
            push_entries(run, records, entries)?;
        }
    }
    Ok(())
}

/// The bytes after a 4-byte length, and what follows them.
fn take_counted(bytes: &[u8]) -> Result<(&[u8], &[u8]), ArchiveError> {
    let (length, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|_| corrupt())?;
    if rest.len() < length {
        return Err(corrupt());
    }
    Ok(rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::super::entries::scenario::*;
    use super::*;
    use redb::{Database, ReadableDatabase};

    const TABLE: Commits = TableDefinition::new("commits_test");

    /// The agent's records, and how many keys it has.
    fn read_messages(db: &Database, agent: &str) -> (Vec<Said>, usize) {
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(TABLE).expect("table");
        let mut gathered = Gathered::default();
        read_agent(&table, agent, &mut gathered).expect("read");
        let (prefix, end) = agent_range(agent);
        let keys = table
            .range(prefix.as_slice()..end.as_slice())
            .expect("range")
            .count();
        (said(gathered.into_records()), keys)
    }

    #[test]
    fn a_commit_goes_one_key_an_agent_and_reads_back_by_conversation_in_time_order() {
        let dir = std::env::temp_dir().join(format!("clicktochat-commits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Database::create(dir.join("c.redb")).expect("db");
        for commit in three_commits() {
            let txn = db.begin_write().expect("txn");
            {
                let mut table = txn.open_table(TABLE).expect("table");
                insert_commit(&mut table, &commit).expect("insert");
            }
            txn.commit().expect("commit");
        }
        // One key an agent and commit.
        assert_eq!(read_messages(&db, "a@h"), (a_h_reads(&[]), 3));
        assert_eq!(read_messages(&db, "ab@h"), (ab_h_reads(), 1));
        assert_eq!(read_messages(&db, "nobody@h"), (vec![], 0));
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_value_that_does_not_decode_is_corrupt_not_a_panic() {
        let dir =
            std::env::temp_dir().join(format!("clicktochat-commits-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Database::create(dir.join("c.redb")).expect("db");
        let mut good = Vec::new();
        good.extend_from_slice(&5i64.to_be_bytes());
        push_counted(&mut good, b"v@c").expect("count");
        push_counted(
            &mut good,
            b"|current_time^2026-01-01T00:00:00.000000Z|from^a|to^b|msg^m|",
        )
        .expect("count");
        let mut bad_entry = good.clone();
        let at = bad_entry.len() - 2;
        bad_entry[at] = b'^';
        for (n, value) in [
            good[..good.len() - 1].to_vec(),
            good[..5].to_vec(),
            bad_entry,
            [good.as_slice(), &[0xff; 9]].concat(),
        ]
        .into_iter()
        .enumerate()
        {
            let agent = format!("a{n}@h");
            let txn = db.begin_write().expect("txn");
            {
                let mut table = txn.open_table(TABLE).expect("table");
                let (mut key, _) = agent_range(&agent);
                key.extend_from_slice(&0u64.to_be_bytes());
                table
                    .insert(key.as_slice(), value.as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
            let txn = db.begin_read().expect("read");
            let table = txn.open_table(TABLE).expect("table");
            let read = read_agent(&table, &agent, &mut Gathered::default());
            assert!(matches!(read, Err(ArchiveError::Corrupt(_))), "value {n}");
        }
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
