//! Recently counted listing totals.
//!
//! Counting every row that matches a filter costs a scan of the matching index entries (100,000
//! rows: milliseconds), far more than reading one page. A store therefore remembers the total
//! of each filter for [`TOTAL_TTL`], and forgets them all whenever a write through this store
//! commits: a process sees its own writes in totals at once, and another process's writes
//! about a second later. When a total expires, one caller counts again while the others keep
//! using the expired total, so a busy filter is never counted by many requests at once.
//! Transactions always count afresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cadre_domain::{Lifecycle, ProductType};

/// How long a counted total is reused.
pub(crate) const TOTAL_TTL: Duration = Duration::from_secs(1);

/// Filters remembered at most; more clears the memory.
const MAX_ENTRIES: usize = 1024;

/// The filter a total was counted for: product type, lifecycle, lowercased text.
pub(crate) type TotalKey = (Option<ProductType>, Option<Lifecycle>, Option<String>);

struct Entry {
    generation: u64,
    counted_at: Instant,
    total: u64,
    /// A caller is counting this filter again.
    refreshing: bool,
}

/// The totals a store counted recently.
#[derive(Default)]
pub(crate) struct ListingTotals {
    /// Incremented by every committed write; entries of older generations are stale.
    generation: AtomicU64,
    entries: Mutex<HashMap<TotalKey, Entry>>,
}

impl ListingTotals {
    /// The generation to pass to [`ListingTotals::put`], read before counting.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The remembered total for `key`, if counted since the last write: within the TTL, or
    /// past it while another caller counts again. `None` means: count, then [`Self::put`].
    pub(crate) fn get(&self, key: &TotalKey) -> Option<u64> {
        let generation = self.generation();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries
            .get_mut(key)
            .filter(|entry| entry.generation == generation)?;
        let age = entry.counted_at.elapsed();
        // A refresh that has not finished in ten TTLs failed; the next caller tries again.
        if age < TOTAL_TTL || (entry.refreshing && age < TOTAL_TTL * 10) {
            return Some(entry.total);
        }
        entry.refreshing = true;
        None
    }

    /// Remembers `total` for `key`, counted at `generation`.
    pub(crate) fn put(&self, key: TotalKey, generation: u64, total: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                counted_at: Instant::now(),
                total,
                refreshing: false,
            },
        );
    }

    /// Forgets every total: a write committed.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_is_reused_until_a_write_commits() {
        let totals = ListingTotals::default();
        let key: TotalKey = (Some(ProductType::user()), Some(Lifecycle::Active), None);
        assert_eq!(totals.get(&key), None);
        totals.put(key.clone(), totals.generation(), 7);
        assert_eq!(totals.get(&key), Some(7));
        totals.invalidate();
        assert_eq!(totals.get(&key), None);
    }

    #[test]
    fn an_expired_total_is_counted_again_by_one_caller_at_a_time() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, Some(Lifecycle::Active), None);
        totals.put(key.clone(), totals.generation(), 5);
        if let Some(entry) = totals
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&key)
        {
            entry.counted_at -= TOTAL_TTL;
        }
        assert_eq!(totals.get(&key), None, "the first caller counts again");
        assert_eq!(
            totals.get(&key),
            Some(5),
            "the others reuse the total meanwhile"
        );
        totals.put(key.clone(), totals.generation(), 6);
        assert_eq!(totals.get(&key), Some(6));
    }

    #[test]
    fn a_total_counted_while_a_write_committed_is_not_reused() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, None, Some("ada".to_owned()));
        let before = totals.generation();
        totals.invalidate();
        totals.put(key.clone(), before, 3);
        assert_eq!(totals.get(&key), None);
    }
}
