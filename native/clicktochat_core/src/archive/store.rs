//! The boundary between the archive and its stores. [`open`] is the only
//! place that looks at which store is configured; everything else goes
//! through the [`Store`] trait object it returns.

use super::embedded::{Embedded, Layout};
use super::entries::Pending;
use super::riak_store::RiakStore;
use super::{ArchiveConfig, ArchiveError, StoreConfig};
use crate::records::Record;
use redb::Database;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an archive keeps its records. The writer thread saves and pushes;
/// any thread (Erlang's dirty I/O schedulers) reads, concurrently.
pub(super) trait Store: Send + Sync {
    /// Adds `batch` (in the order it was recorded) in one redb transaction
    /// (one fsync): once this returns, the batch is acknowledged. Returns how
    /// many entries then wait to be pushed on (see [`Store::push_one`]).
    fn save(&self, batch: &[Pending]) -> Result<u64, ArchiveError>;

    /// The agent's records. Blocking I/O.
    fn read(&self, agent: &str) -> Result<Vec<Record>, ArchiveError>;

    /// How many saved entries wait to be pushed on to where they finally
    /// live. 0 for a store that is itself where they live.
    fn unpushed(&self) -> Result<u64, ArchiveError> {
        Ok(0)
    }

    /// Pushes on the entries of the first agent that has some waiting (a
    /// bounded number of them). `Ok(None)`: none was waiting; `Ok(Some(n))`:
    /// they were pushed and `n` entries still wait. On an error they stay,
    /// to be pushed again. Only the writer thread calls this.
    fn push_one(&self) -> Result<Option<u64>, ArchiveError> {
        Ok(None)
    }

    /// Requests the pushes have sent to where entries finally live.
    fn push_requests(&self) -> u64 {
        0
    }

    /// The shortest time between two rounds of pushes: entries saved
    /// meanwhile wait, so that one push carries many of an agent's entries.
    fn push_interval(&self) -> Duration {
        Duration::ZERO
    }
}

/// Opens (or creates) the redb file, and the configured store in it.
pub(super) fn open(config: &ArchiveConfig) -> Result<Arc<dyn Store>, ArchiveError> {
    let db = create_database(&config.path)?;
    Ok(match &config.store {
        StoreConfig::Embedded => Arc::new(Embedded::open(db, Layout::Commits)?),
        StoreConfig::Riak(riak) => Arc::new(RiakStore::open(db, riak.clone())?),
    })
}

/// An embedded store writing the layout before `commits`: only to measure
/// the current one against it.
pub(super) fn open_previous_layout(path: &Path) -> Result<Arc<dyn Store>, ArchiveError> {
    let db = create_database(path)?;
    Ok(Arc::new(Embedded::open(db, Layout::ConversationAndCommit)?))
}

/// Opens or creates the file (and its directory). A module restart may
/// open it while a read of the previous instance still holds it for a
/// moment: retry briefly.
fn create_database(path: &Path) -> Result<Database, ArchiveError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
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
