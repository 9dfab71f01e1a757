//! The Riak store: each batch is first committed to an outbox table of the
//! redb file (one key per agent, as in Riak), then pushed with
//! get-merge-put. A failed push leaves the key in the outbox, to be pushed
//! again: merge is a union, so a retried push cannot duplicate anything.

use super::store::{stored_records, Batch, Store};
use super::ArchiveError;
use crate::records::{decode_archive, encode_archive, merge, Record};
use crate::riak::{Fetched, RiakClient, RiakConfig};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

/// The content type the seed's Erlang riakc users read and write.
pub const CONTENT_TYPE: &str = "application/x-erlang-binary";

const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("riak_outbox");

pub(super) struct RiakStore {
    db: Database,
    config: RiakConfig,
    bucket: Vec<u8>,
    /// The writer thread's connection, for pushes. Reads run on other
    /// threads, concurrently, and make their own; so this lock is never
    /// contended.
    pusher: Mutex<RiakClient>,
}

impl RiakStore {
    pub(super) fn open(
        db: Database,
        config: RiakConfig,
        bucket: Vec<u8>,
    ) -> Result<RiakStore, ArchiveError> {
        let pusher = Mutex::new(RiakClient::new(config.clone())?);
        let txn = db.begin_write()?;
        txn.open_table(OUTBOX)?;
        txn.commit()?;
        Ok(RiakStore {
            db,
            config,
            bucket,
            pusher,
        })
    }
}

impl Store for RiakStore {
    fn save(&self, batch: &Batch) -> Result<u64, ArchiveError> {
        let txn = self.db.begin_write()?;
        let waiting = {
            let mut table = txn.open_table(OUTBOX)?;
            for (agent, new_records) in batch {
                let mut records = stored_records(&table, agent)?;
                merge(&mut records, new_records.clone());
                table.insert(agent.as_str(), encode_archive(&records).as_slice())?;
            }
            table.len()?
        };
        txn.commit()?;
        Ok(waiting)
    }

    /// What Riak holds (siblings merged) plus what still waits in the outbox.
    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let mut records = {
            let txn = self.db.begin_read()?;
            stored_records(&txn.open_table(OUTBOX)?, agent)?
        };
        let fetched = RiakClient::new(self.config.clone())?.get(&self.bucket, agent.as_bytes())?;
        merge_siblings(&mut records, fetched)?;
        Ok(records)
    }

    fn unpushed(&self) -> Result<u64, ArchiveError> {
        Ok(self.db.begin_read()?.open_table(OUTBOX)?.len()?)
    }

    /// get, merge the siblings and the pending records, put with the
    /// vclock, then drop the key from the outbox.
    fn push_one(&self) -> Result<Option<u64>, ArchiveError> {
        let (key, mut records) = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(OUTBOX)?;
            let Some((key, value)) = table.first()? else {
                return Ok(None);
            };
            (key.value().to_owned(), decode_archive(value.value())?)
        };
        let mut client = self.pusher.lock();
        let fetched = client.get(&self.bucket, key.as_bytes())?;
        let vclock = fetched.vclock.clone();
        // A sibling we cannot read is not ours to overwrite: fail (and
        // retry later) rather than lose it.
        merge_siblings(&mut records, fetched)?;
        client.put(
            &self.bucket,
            key.as_bytes(),
            vclock.as_deref(),
            &encode_archive(&records),
            CONTENT_TYPE,
        )?;
        // Only the writer thread writes the outbox, so the key holds exactly
        // what was pushed.
        let txn = self.db.begin_write()?;
        let left = {
            let mut table = txn.open_table(OUTBOX)?;
            table.remove(key.as_str())?;
            table.len()?
        };
        txn.commit()?;
        Ok(Some(left))
    }
}

/// Adds the records of every sibling Riak returned.
fn merge_siblings(records: &mut Vec<Record>, fetched: Fetched) -> Result<(), ArchiveError> {
    for sibling in fetched.siblings {
        merge(records, decode_archive(&sibling.value)?);
    }
    Ok(())
}
