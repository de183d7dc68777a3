//! Test support (feature `testing`): in-memory implementations of the ports, so that forms,
//! the engine and the layers over them are tested without a database.
//!
//! [`MemoryLookups`] answers the two lookups a form makes, over rows added by hand.
//! [`MemoryStore`] is a whole [`Store`]: every repository over plain collections, with the
//! rules the real store (`cadre-store`) keeps by code and by its schema. Each repository lives
//! in a file of its own; this module holds the store, its transactions and the one place
//! state is read and written.

mod accounts;
mod audit;
mod catalogue;
mod customers;
mod groups;
mod lookups;
mod processes;
mod provisioning;
mod registration;
mod subscriptions;
mod targets;
mod tokens;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::{Product, ProductBlock};
use crate::error::{DomainError, Result};
use crate::ports::{IdSource, Store, StoreTransaction, UuidV7Source};

use catalogue::Catalogue;
pub use lookups::MemoryLookups;

/// Locks `mutex`, also after a panic elsewhere: every write is applied to a copy first, so a
/// panic never leaves half a change behind.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The message of a write the real store's schema refuses by a foreign key.
const MISSING_REFERENCE: &str =
    "the change refers to something that does not exist, or removes something still in use";

/// The message of a write the real store's schema refuses by a unique index it has no message
/// of its own for.
const DUPLICATE: &str = "the change collides with an existing record";

/// Everything a memory store holds but the catalogue, one table per repository. A table is
/// shared between copies until one of them writes to it (`Arc::make_mut`), so that copying the
/// whole state, for a transaction or for one write, costs a few reference counts.
#[derive(Debug, Clone, Default)]
struct Tables {
    customers: Arc<customers::Customers>,
    subscriptions: Arc<subscriptions::Subscriptions>,
    processes: Arc<processes::Processes>,
    tokens: Arc<tokens::Tokens>,
    groups: Arc<groups::Groups>,
    provisioning: Arc<provisioning::Provisioning>,
    registration: Arc<registration::Registration>,
    accounts: Arc<accounts::Accounts>,
    audit: Arc<audit::Audit>,
    targets: Arc<targets::Targets>,
}

/// The committed state and how many commits made it.
#[derive(Debug, Default)]
struct Committed {
    tables: Tables,
    commits: u64,
}

/// What a store and its transactions share.
#[derive(Clone)]
struct Core {
    catalogue: Arc<Catalogue>,
    ids: Arc<dyn IdSource>,
    committed: Arc<Mutex<Committed>>,
}

/// A write a transaction made, to be applied again to the state committed since it began.
type Replay = Box<dyn Fn(&mut Tables, &Catalogue) -> Result<()> + Send + Sync>;

/// How the repositories reach the state: directly ([`MemoryStore`]) or through a transaction's
/// own copy ([`MemoryTransaction`]). Every repository is implemented once, over this.
trait Access: Send + Sync {
    /// The catalogue, the id source and the committed state.
    fn core(&self) -> &Core;

    /// Reads the state this handle sees.
    fn read<R>(&self, read: impl FnOnce(&Tables, &Catalogue) -> R) -> R;

    /// Applies `write` to the state this handle sees, atomically: on an error nothing changes.
    /// `write` must be deterministic (ids are drawn before it), since a transaction applies it
    /// again at commit.
    fn write<R>(
        &self,
        write: impl Fn(&mut Tables, &Catalogue) -> Result<R> + Send + Sync + 'static,
    ) -> Result<R>
    where
        R: Clone + PartialEq + Send + Sync + 'static;

    /// A fresh id from the store's id source.
    fn new_id(&self) -> Uuid {
        self.core().ids.new_id()
    }
}

/// Every repository of the domain in memory: a [`Store`] for tests that need no database.
///
/// Start it with the catalogue ([`MemoryStore::new`]); everything else (customers,
/// subscriptions, processes, …) is added through the ports, as on a migrated database. Clones
/// share one state, like clones of the real store share one database.
///
/// # What it keeps, as the real store does
///
/// - Subscriptions: a save compares and sets the version (a stale one is a conflict), checks
///   the lifecycle change, the product, the blocks and fields against the catalogue, that
///   references name existing instances of blocks the referring block may use and owned by the
///   subscription they name, that no instance another subscription uses is dropped, and that
///   identifying values (resource types marked unique) are free among live subscriptions (a
///   terminated subscription keeps its values but releases them). Loads return what was saved,
///   ordered as the real store orders it.
/// - The schema's rules: unique names and ids, and references between rows (a process linked
///   to a missing subscription, a group owned by one, …) are conflicts with the real store's
///   messages; deletes cascade where its foreign keys do.
/// - Processes: claims with leases and fencing tokens, [`DomainError::LeaseLost`] when a step
///   commit presents a lease that was taken over or revoked, operator transitions that check
///   the status.
/// - Listings: the same filters, sort keys (with the id as the last key), pages and totals.
///
/// # Where it differs
///
/// - Text search folds the case of ASCII letters only, as SQLite does (PostgreSQL folds every
///   letter its locale knows), and descriptions sort by their bytes, as on SQLite.
/// - Listing totals are always exact: nothing is remembered between calls.
/// - Instants are kept to the nanosecond (PostgreSQL keeps microseconds).
/// - Transactions: see [`MemoryTransaction`] for their isolation.
/// - It is made for tests, not for volume: a write copies the tables it changes (so that a
///   refused write leaves nothing behind), and checks scan the rows they concern.
#[derive(Clone)]
pub struct MemoryStore {
    core: Core,
}

impl MemoryStore {
    /// An empty store over the catalogue made of `products` and `blocks` (the blocks of the
    /// products are taken in too), with UUID v7 ids. The catalogue is ordered as the real store
    /// reads it: products, blocks, fixed inputs and resource types by name.
    pub fn new(products: Vec<Product>, blocks: Vec<ProductBlock>) -> Self {
        Self {
            core: Core {
                catalogue: Arc::new(Catalogue::new(products, blocks)),
                ids: Arc::new(UuidV7Source),
                committed: Arc::default(),
            },
        }
    }

    /// This store drawing new internal ids (block instances, log rows) from `ids`.
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.core.ids = ids;
        self
    }

    /// The raw inputs recorded for process `id` (`initial_state`, `user_input`), oldest first,
    /// with the instant each was recorded: what the real store keeps for audit and no port
    /// reads back.
    pub fn process_inputs(&self, id: Uuid) -> Vec<(String, Value, DateTime<Utc>)> {
        self.read(|tables, _| tables.processes.inputs_of(id))
    }
}

impl Access for MemoryStore {
    fn core(&self) -> &Core {
        &self.core
    }

    fn read<R>(&self, read: impl FnOnce(&Tables, &Catalogue) -> R) -> R {
        let committed = lock(&self.core.committed);
        read(&committed.tables, &self.core.catalogue)
    }

    fn write<R>(
        &self,
        write: impl Fn(&mut Tables, &Catalogue) -> Result<R> + Send + Sync + 'static,
    ) -> Result<R>
    where
        R: Clone + PartialEq + Send + Sync + 'static,
    {
        let mut committed = lock(&self.core.committed);
        let mut tables = committed.tables.clone();
        let result = write(&mut tables, &self.core.catalogue)?;
        committed.tables = tables;
        committed.commits += 1;
        Ok(result)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<()> {
        drop(lock(&self.core.committed));
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn StoreTransaction>> {
        let committed = lock(&self.core.committed);
        Ok(Box::new(MemoryTransaction {
            core: self.core.clone(),
            work: Mutex::new(Work {
                tables: committed.tables.clone(),
                began_after: committed.commits,
                journal: Vec::new(),
            }),
        }))
    }
}

/// What a transaction has seen and done so far.
struct Work {
    /// The state as this transaction sees it: the committed state when it began, with its own
    /// writes.
    tables: Tables,
    /// The number of commits when it began.
    began_after: u64,
    /// Its writes, in order.
    journal: Vec<Replay>,
}

/// A transaction of a [`MemoryStore`]: the repositories over a private copy of the state.
///
/// # Isolation
///
/// It reads the state committed when it began, with its own writes; nobody else sees them
/// until it commits, and dropping it without commit discards them. Commit installs its copy
/// when nothing committed in between. Otherwise it applies its writes again, in order, to the
/// state committed meanwhile, each with the checks the real store's statement would make then
/// (the version of a saved subscription, the lease token of a step commit, free unique values,
/// existing references, …): the first that fails fails the commit with its error (a
/// [`DomainError::Conflict`], [`DomainError::LeaseLost`], …), and a write that would now return
/// something else than it returned in the transaction (a claim that would take another
/// process, say) fails it with a conflict. Nothing is applied unless every write is.
///
/// So, as on the real store, a load followed by a save loses to a save committed in between,
/// a step commit loses to a claim or operator action committed in between, and transactions
/// over different rows both commit. Unlike SQLite, transactions never wait for each other; unlike
/// PostgreSQL, a claim does not skip a process another open transaction holds (the later
/// commit fails instead). Reads are not checked again: what a transaction only read may have
/// changed when it commits, as under PostgreSQL's read committed.
pub struct MemoryTransaction {
    core: Core,
    work: Mutex<Work>,
}

impl Access for MemoryTransaction {
    fn core(&self) -> &Core {
        &self.core
    }

    fn read<R>(&self, read: impl FnOnce(&Tables, &Catalogue) -> R) -> R {
        let work = lock(&self.work);
        read(&work.tables, &self.core.catalogue)
    }

    fn write<R>(
        &self,
        write: impl Fn(&mut Tables, &Catalogue) -> Result<R> + Send + Sync + 'static,
    ) -> Result<R>
    where
        R: Clone + PartialEq + Send + Sync + 'static,
    {
        let mut work = lock(&self.work);
        let mut tables = work.tables.clone();
        let result = write(&mut tables, &self.core.catalogue)?;
        work.tables = tables;
        let returned = result.clone();
        work.journal.push(Box::new(move |tables, catalogue| {
            if write(tables, catalogue)? == returned {
                Ok(())
            } else {
                Err(DomainError::Conflict(
                    "the transaction's changes collide with changes committed since it began; \
                     run it again"
                        .to_owned(),
                ))
            }
        }));
        Ok(result)
    }
}

#[async_trait]
impl StoreTransaction for MemoryTransaction {
    async fn commit(self: Box<Self>) -> Result<()> {
        let work = self
            .work
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if work.journal.is_empty() {
            return Ok(());
        }
        let mut committed = lock(&self.core.committed);
        if committed.commits == work.began_after {
            committed.tables = work.tables;
        } else {
            let mut tables = committed.tables.clone();
            for replay in &work.journal {
                replay(&mut tables, &self.core.catalogue)?;
            }
            committed.tables = tables;
        }
        committed.commits += 1;
        Ok(())
    }
}
