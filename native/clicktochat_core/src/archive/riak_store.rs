//! The Riak store. Each batch is first committed to an outbox table of the
//! redb file (the entry-per-key layout of `entries`), then pushed with
//! get-merge-put; a failed push leaves its entries in the outbox, to be
//! pushed again: merge is a union, so a retried push cannot duplicate
//! anything.
//!
//! An agent's archive is split into bounded values, each in the seed's
//! structure `[{record, [Record]}]`, so that a push costs the same whatever
//! the size of the agent's history:
//! - the agent's key (its bare JID, the seed's key) holds the newest part;
//! - when a push would take it past `max_value_bytes`, the older part is
//!   sealed under `Agent/1`, `Agent/2`, ... (a bare JID cannot contain `/`,
//!   so these never clash with another agent's key) and never written
//!   again, except by a writer racing on the same number, which makes
//!   siblings like any other race.
//!
//! A reader gets the agent's key, then `Agent/1`, `Agent/2`, ... until one
//! is not found, and merges everything (a conversation may run across two
//! values; merge puts it back together).

use super::entries::{self, Entries, Pending};
use super::store::Store;
use super::{ArchiveError, RiakStoreConfig};
use crate::records::{decode_archive, encode_archive, merge, split_bounded, Record};
use crate::riak::{Fetched, RiakClient};
use parking_lot::Mutex;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use std::time::Duration;

/// The content type the seed's Erlang riakc users read and write.
pub const CONTENT_TYPE: &str = "application/x-erlang-binary";

const OUTBOX: Entries = TableDefinition::new("riak_outbox_entries");
/// The outbox of files written before the entry-per-key layout: one key per
/// agent, the seed's structure as value. Moved into `OUTBOX` on open.
const OUTBOX_BEFORE_ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("riak_outbox");
/// Agent -> the highest sealed value number this node knows exists (values
/// are never removed, so it is a lower bound where to look for the next).
const SEALED: TableDefinition<&str, u64> = TableDefinition::new("riak_sealed");

/// Most outbox entries one push takes (the rest goes in the next push).
const PUSH_MAX_ENTRIES: usize = 4096;

pub(super) struct RiakStore {
    db: Database,
    riak: RiakStoreConfig,
    /// The writer thread's connection, for pushes. Reads run on other
    /// threads, concurrently, and make their own; so this lock is never
    /// contended.
    pusher: Mutex<RiakClient>,
}

impl RiakStore {
    pub(super) fn open(db: Database, riak: RiakStoreConfig) -> Result<RiakStore, ArchiveError> {
        let pusher = Mutex::new(RiakClient::new(riak.config.clone())?);
        let txn = db.begin_write()?;
        txn.open_table(OUTBOX)?;
        txn.open_table(SEALED)?;
        move_old_outbox(&txn)?;
        txn.commit()?;
        Ok(RiakStore { db, riak, pusher })
    }

    fn sealed_key(agent: &str, number: u64) -> Vec<u8> {
        format!("{agent}/{number}").into_bytes()
    }

    fn exists(&self, client: &mut RiakClient, key: &[u8]) -> Result<bool, ArchiveError> {
        Ok(!client.get(&self.riak.bucket, key)?.siblings.is_empty())
    }

    /// The first sealed value number not in Riak: from this node's hint,
    /// doubling steps until one is missing, then halving back (a few gets
    /// at most, one when the hint is up to date).
    fn next_sealed_number(
        &self,
        client: &mut RiakClient,
        agent: &str,
    ) -> Result<u64, ArchiveError> {
        let hint = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SEALED)?;
            table.get(agent)?.map_or(0, |n| n.value())
        };
        let (mut present, mut step) = (hint, 1);
        let mut missing = loop {
            let probe = present + step;
            if !self.exists(client, &Self::sealed_key(agent, probe))? {
                break probe;
            }
            present = probe;
            step *= 2;
        };
        while missing - present > 1 {
            let middle = present + (missing - present) / 2;
            if self.exists(client, &Self::sealed_key(agent, middle))? {
                present = middle;
            } else {
                missing = middle;
            }
        }
        Ok(present + 1)
    }
}

/// Files written before the entry-per-key layout may hold records waiting
/// to be pushed in the old outbox: they become entries of the new one.
fn move_old_outbox(txn: &WriteTransaction) -> Result<(), ArchiveError> {
    {
        let old = txn.open_table(OUTBOX_BEFORE_ENTRIES)?;
        let mut outbox = txn.open_table(OUTBOX)?;
        for item in old.iter()? {
            let (agent, value) = item?;
            for record in decode_archive(value.value())? {
                for entry in record.entries {
                    entries::insert(
                        &mut outbox,
                        &Pending::of_entry(agent.value(), &record.user, record.start_us, &entry),
                    )?;
                }
            }
        }
    }
    txn.delete_table(OUTBOX_BEFORE_ENTRIES)?;
    Ok(())
}

impl Store for RiakStore {
    fn save(&self, batch: &[Pending]) -> Result<u64, ArchiveError> {
        let txn = self.db.begin_write()?;
        let waiting = {
            let mut table = txn.open_table(OUTBOX)?;
            for pending in batch {
                entries::insert(&mut table, pending)?;
            }
            table.len()?
        };
        txn.commit()?;
        Ok(waiting)
    }

    /// What Riak holds (every value of the agent, siblings merged) plus what
    /// still waits in the outbox.
    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError> {
        let (mut records, _) = {
            let txn = self.db.begin_read()?;
            entries::read_agent(&txn.open_table(OUTBOX)?, agent, usize::MAX)?
        };
        let mut client = RiakClient::new(self.riak.config.clone())?;
        merge_siblings(
            &mut records,
            client.get(&self.riak.bucket, agent.as_bytes())?,
        )?;
        for number in 1.. {
            let sealed = client.get(&self.riak.bucket, &Self::sealed_key(agent, number))?;
            if sealed.siblings.is_empty() {
                break;
            }
            merge_siblings(&mut records, sealed)?;
        }
        Ok(records)
    }

    fn unpushed(&self) -> Result<u64, ArchiveError> {
        Ok(self.db.begin_read()?.open_table(OUTBOX)?.len()?)
    }

    /// get the agent's value, merge its siblings and the waiting entries,
    /// seal what goes past the bound, put the rest with the vclock, then
    /// drop the entries from the outbox.
    fn push_one(&self) -> Result<Option<u64>, ArchiveError> {
        let (agent, mut records, keys) = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(OUTBOX)?;
            let Some(agent) = entries::first_agent(&table)? else {
                return Ok(None);
            };
            let (records, keys) = entries::read_agent(&table, &agent, PUSH_MAX_ENTRIES)?;
            (agent, records, keys)
        };
        let bucket = &self.riak.bucket;
        let mut client = self.pusher.lock();
        let fetched = client.get(bucket, agent.as_bytes())?;
        let vclock = fetched.vclock.clone();
        // A sibling we cannot read is not ours to overwrite: fail (and
        // retry later) rather than lose it.
        merge_siblings(&mut records, fetched)?;
        let mut values = split_bounded(records, self.riak.max_value_bytes);
        let newest = values.pop().unwrap_or_default();
        let mut last_sealed = None;
        if !values.is_empty() {
            let first = self.next_sealed_number(&mut client, &agent)?;
            for (number, value) in (first..).zip(&values) {
                let key = Self::sealed_key(&agent, number);
                client.put(bucket, &key, None, &encode_archive(value), CONTENT_TYPE)?;
                last_sealed = Some(number);
            }
        }
        client.put(
            bucket,
            agent.as_bytes(),
            vclock.as_deref(),
            &encode_archive(&newest),
            CONTENT_TYPE,
        )?;
        // Only the writer thread removes from the outbox, so the keys hold
        // exactly what was pushed.
        let txn = self.db.begin_write()?;
        let left = {
            let mut table = txn.open_table(OUTBOX)?;
            for key in &keys {
                table.remove(key.as_slice())?;
            }
            if let Some(number) = last_sealed {
                txn.open_table(SEALED)?.insert(agent.as_str(), number)?;
            }
            table.len()?
        };
        txn.commit()?;
        Ok(Some(left))
    }

    fn push_requests(&self) -> u64 {
        self.pusher.lock().requests()
    }

    fn push_interval(&self) -> Duration {
        self.riak.push_interval
    }
}

/// Adds the records of every sibling Riak returned.
fn merge_siblings(records: &mut Vec<Record>, fetched: Fetched) -> Result<(), ArchiveError> {
    for sibling in fetched.siblings {
        merge(records, decode_archive(&sibling.value)?);
    }
    Ok(())
}
