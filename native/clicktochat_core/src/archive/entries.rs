//! One key per message entry: the layout both stores write (the embedded
//! archive itself, and Riak's outbox). Adding a message inserts one small
//! key, whatever the length of its conversation or of the agent's history;
//! a read walks the agent's keys, which come out grouped by conversation
//! and in time order.
//!
//! Key: `agent 0x00 start visitor 0x00 time seq`, where `start` and `time`
//! are 8 bytes big-endian with the sign bit flipped (so that they sort as
//! numbers) and `seq` 4 bytes big-endian, telling apart entries of one
//! conversation recorded in the same microsecond, in the order they were
//! recorded. JIDs cannot contain NUL, so an agent's keys are exactly those
//! that begin with `agent 0x00`. Value: the entry in the seed's text format
//! (`|current_time^...|from^...|to^...|msg^...|`).

use super::ArchiveError;
use crate::conversation::Entry;
use crate::records::{Record, RecordsError};
use redb::{ReadableTable, Table, TableDefinition};

pub(super) type Entries = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// A message entry on its way to a store, with the conversation it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pending {
    pub agent: String,
    pub visitor: String,
    pub start_us: i64,
    pub entry: Entry,
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

fn entry_key(pending: &Pending, seq: u32) -> Vec<u8> {
    let mut key = agent_prefix(&pending.agent);
    key.extend_from_slice(&sortable(pending.start_us));
    key.extend_from_slice(pending.visitor.as_bytes());
    key.push(0);
    key.extend_from_slice(&sortable(pending.entry.time_us));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Adds one entry. Returns the key it got.
pub(super) fn insert(
    table: &mut Table<&'static [u8], &'static [u8]>,
    pending: &Pending,
) -> Result<Vec<u8>, ArchiveError> {
    let mut key = entry_key(pending, 0);
    let seq_at = key.len() - SEQ_BYTES;
    let value = pending.entry.encode();
    // One B-tree operation when the key is free, which it almost always is;
    // a clash is a second entry of the same conversation in the same
    // microsecond: the first is put back, and this one goes after it.
    for seq in 1..=u32::MAX {
        let Some(previous) = table
            .insert(key.as_slice(), value.as_bytes())?
            .map(|previous| previous.value().to_vec())
        else {
            return Ok(key);
        };
        table.insert(key.as_slice(), previous.as_slice())?;
        key[seq_at..].copy_from_slice(&seq.to_be_bytes());
    }
    Err(ArchiveError::Corrupt(RecordsError::NotAnArchive))
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
        let entry = Entry::decode(text).map_err(|error| {
            ArchiveError::Corrupt(RecordsError::Entry {
                record: records.len(),
                entry: 0,
                error,
            })
        })?;
        match records.last_mut() {
            Some(last) if last.start_us == start_us && last.user == visitor => {
                last.entries.push(entry)
            }
            _ => records.push(Record {
                start_us,
                user: visitor.to_owned(),
                entries: vec![entry],
            }),
        }
        keys.push(key.to_vec());
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

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase};

    const TABLE: Entries = TableDefinition::new("entries_test");

    fn pending(agent: &str, visitor: &str, start_us: i64, time_us: i64, msg: &str) -> Pending {
        Pending {
            agent: agent.into(),
            visitor: visitor.into(),
            start_us,
            entry: Entry {
                time_us,
                from: visitor.into(),
                to: agent.into(),
                msg: msg.into(),
            },
        }
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
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(TABLE).expect("table");
        let (records, keys) = read_agent(&table, "a@h", usize::MAX).expect("read");
        let got: Vec<(i64, &str, Vec<&str>)> = records
            .iter()
            .map(|r| {
                let msgs = r.entries.iter().map(|e| e.msg.as_str()).collect();
                (r.start_us, r.user.as_str(), msgs)
            })
            .collect();
        assert_eq!(
            got,
            [
                (-7, "w@c", vec!["earlier conversation"]),
                (
                    5,
                    "v@c",
                    vec![
                        "first",
                        "same time, one",
                        "same time, two",
                        "same time, one",
                        "third"
                    ]
                ),
            ]
        );
        assert_eq!(keys.len(), 6);
        let (first_two, _) = read_agent(&table, "a@h", 2).expect("read two");
        assert_eq!(first_two.iter().map(|r| r.entries.len()).sum::<usize>(), 2);
        assert_eq!(first_agent(&table).expect("first").as_deref(), Some("a@h"));
        drop(table);
        drop(txn);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
