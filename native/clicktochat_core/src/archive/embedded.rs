//! The embedded store: the archive itself in the redb file, a commit's
//! entries one key per agent (see `commits`), so that archiving a message
//! costs the same whatever the length of its conversation.
//!
//! Files written by earlier versions keep their records where those put
//! them, read as they are, beside the `commits` table, and never written
//! again: the `entries` table (one key per entry, then per conversation and
//! commit: see `entries`), and before it the `conversations` table (one key
//! per conversation, the seed's `[{record, [Record]}]` as its value).

use super::commits::{self, Commits, Gathered};
use super::entries::{self, Entries, Pending};
use super::store::Store;
use super::ArchiveError;
use crate::records::{decode_archive, merge, Record};
use redb::{Database, ReadableDatabase, TableDefinition, TableError};

const COMMITS: Commits = TableDefinition::new("commits");
const ENTRIES_BEFORE_COMMITS: Entries = TableDefinition::new("entries");
const CONVERSATIONS_BEFORE_ENTRIES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("conversations");

/// The layout a store writes in: `commits`, or (only to be measured against
/// it) the one before, one key per conversation and commit in `entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Commits,
    ConversationAndCommit,
}

pub(super) struct Embedded {
    db: Database,
    layout: Layout,
}

impl Embedded {
    pub(super) fn open(db: Database, layout: Layout) -> Result<Embedded, ArchiveError> {
        let txn = db.begin_write()?;
        txn.open_table(COMMITS)?;
        if layout == Layout::ConversationAndCommit {
            txn.open_table(ENTRIES_BEFORE_COMMITS)?;
        }
        txn.commit()?;
        Ok(Embedded { db, layout })
    }
}

impl Store for Embedded {
    fn save(&self, batch: &[Pending]) -> Result<u64, ArchiveError> {
        let txn = self.db.begin_write()?;
        {
            match self.layout {
                Layout::Commits => commits::insert_commit(&mut txn.open_table(COMMITS)?, batch)?,
                Layout::ConversationAndCommit => {
                    entries::insert_grouped(&mut txn.open_table(ENTRIES_BEFORE_COMMITS)?, batch)?
                }
            }
        }
        txn.commit()?;
        Ok(0)
    }

    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let txn = self.db.begin_read()?;
        // Layouts oldest first: a conversation's entries gathered in the
        // order they were written.
        let mut gathered = Gathered::default();
        if let Some(table) = existing(txn.open_table(ENTRIES_BEFORE_COMMITS))? {
            gathered.add_records(entries::read_agent(&table, agent, usize::MAX)?.0);
        }
        commits::read_agent(&txn.open_table(COMMITS)?, agent, &mut gathered)?;
        let mut records = gathered.into_records();
        let Some(older) = existing(txn.open_table(CONVERSATIONS_BEFORE_ENTRIES))? else {
            return Ok(records);
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

/// The table, or `None` if the file has never had it.
fn existing<T>(table: Result<T, TableError>) -> Result<Option<T>, ArchiveError> {
    match table {
        Ok(table) => Ok(Some(table)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
