//! The embedded store: the archive itself in the redb file, a commit's
//! entries one key per conversation (see `entries`), so that archiving a
//! message costs the same whatever the length of its conversation.
//!
//! Files written before that layout keep their records in the
//! `conversations` table (one key per conversation, the seed's
//! `[{record, [Record]}]` as its value): it is read as it is, beside the new
//! table, and never written again.

use super::entries::{self, Entries, Pending};
use super::store::Store;
use super::ArchiveError;
use crate::records::{decode_archive, merge, Record};
use redb::{Database, ReadableDatabase, TableDefinition, TableError};

const ENTRIES: Entries = TableDefinition::new("entries");
const CONVERSATIONS_BEFORE_ENTRIES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("conversations");

pub(super) struct Embedded {
    db: Database,
}

impl Embedded {
    pub(super) fn open(db: Database) -> Result<Embedded, ArchiveError> {
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.commit()?;
        Ok(Embedded { db })
    }
}

impl Store for Embedded {
    fn save(&self, batch: &[Pending]) -> Result<u64, ArchiveError> {
        let txn = self.db.begin_write()?;
        {
            entries::insert_grouped(&mut txn.open_table(ENTRIES)?, batch)?;
        }
        txn.commit()?;
        Ok(0)
    }

    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let txn = self.db.begin_read()?;
        let (mut records, _) = entries::read_agent(&txn.open_table(ENTRIES)?, agent, usize::MAX)?;
        let older = match txn.open_table(CONVERSATIONS_BEFORE_ENTRIES) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(records),
            Err(e) => return Err(e.into()),
        };
        // Text keys, beginning as the entries' do (entries::agent_prefix).
        let prefix = format!("{agent}\0");
        for item in older.range(prefix.as_str()..)? {
            let (key, value) = item?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            merge(&mut records, decode_archive(value.value())?);
        }
        Ok(records)
    }
}
