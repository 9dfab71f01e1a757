//! The embedded store: the records themselves in the redb file, one key per
//! conversation, so that a new message rewrites its own conversation and
//! not the agent's whole history.

use super::store::{stored_records, Batch, Store};
use super::ArchiveError;
use crate::records::{decode_archive, encode_archive, merge, Record};
use redb::{Database, ReadableDatabase, TableDefinition};

const CONVERSATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversations");

pub(super) struct Embedded {
    db: Database,
}

impl Embedded {
    pub(super) fn open(db: Database) -> Result<Embedded, ArchiveError> {
        let txn = db.begin_write()?;
        txn.open_table(CONVERSATIONS)?;
        txn.commit()?;
        Ok(Embedded { db })
    }
}

impl Store for Embedded {
    fn save(&self, batch: &Batch) -> Result<u64, ArchiveError> {
        let txn = self.db.begin_write()?;
        {
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
        Ok(0)
    }

    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CONVERSATIONS)?;
        let prefix = agent_prefix(agent);
        let mut records = Vec::new();
        for item in table.range(prefix.as_str()..)? {
            let (key, value) = item?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            merge(&mut records, decode_archive(value.value())?);
        }
        Ok(records)
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
