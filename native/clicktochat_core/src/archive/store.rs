//! The boundary between the archive and its stores. [`open`] is the only
//! place that looks at which store is configured; everything else goes
//! through the [`Store`] trait object it returns.

use super::embedded::Embedded;
use super::riak_store::RiakStore;
use super::{ArchiveConfig, ArchiveError, StoreConfig};
use crate::records::{decode_archive, Record};
use redb::{Database, ReadableTable};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// New entries, by agent, then by conversation.
pub(super) type Batch = BTreeMap<String, Vec<Record>>;

/// Where an archive keeps its records. The writer thread saves and pushes;
/// any thread (Erlang's dirty I/O schedulers) reads, concurrently.
pub(super) trait Store: Send + Sync {
    /// Merges `batch` into the stored values in one redb transaction (one
    /// fsync): once this returns, the batch is acknowledged. Returns how many
    /// keys then wait to be pushed on (see [`Store::push_one`]).
    fn save(&self, batch: &Batch) -> Result<u64, ArchiveError>;

    /// The agent's records. Blocking I/O.
    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError>;

    /// How many saved keys wait to be pushed on to where they finally live.
    /// 0 for a store that is itself where they live.
    fn unpushed(&self) -> Result<u64, ArchiveError> {
        Ok(0)
    }

    /// Pushes the first waiting key on. `Ok(None)`: none was waiting;
    /// `Ok(Some(n))`: it was pushed and `n` keys still wait. On an error the
    /// key stays, to be pushed again. Only the writer thread calls this.
    fn push_one(&self) -> Result<Option<u64>, ArchiveError> {
        Ok(None)
    }
}

/// Opens (or creates) the redb file, and the configured store in it.
pub(super) fn open(config: &ArchiveConfig) -> Result<Arc<dyn Store>, ArchiveError> {
    if let Some(dir) = config.path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let db = create_database(&config.path)?;
    Ok(match &config.store {
        StoreConfig::Embedded => Arc::new(Embedded::open(db)?),
        StoreConfig::Riak { config, bucket } => {
            Arc::new(RiakStore::open(db, config.clone(), bucket.clone())?)
        }
    })
}

/// Opens or creates the file. A module restart may open it while a read of
/// the previous instance still holds it for a moment: retry briefly.
fn create_database(path: &Path) -> Result<Database, ArchiveError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return Ok(result?),
        }
    }
}

/// The records stored under `key` (none if it is absent).
pub(super) fn stored_records<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    key: &str,
) -> Result<Vec<Record>, ArchiveError> {
    match table.get(key)? {
        Some(value) => Ok(decode_archive(value.value())?),
        None => Ok(Vec::new()),
    }
}
