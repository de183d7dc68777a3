//! Recently counted listing totals.
//!
//! Counting every row that matches a filter costs a scan of the matching index entries (100,000
//! rows: milliseconds), far more than reading one page. A store therefore remembers the total
//! of each filter for [`TOTAL_TTL`], and forgets them all whenever a write of subscriptions
//! through this store commits (commits that wrote only process rows, tokens or the like leave
//! them be): a process sees its own writes in totals at once, and another process's writes
//! about a second later. A filter is never counted by many requests at once: when a total
//! expires, one caller counts again while the others keep using the expired total; when there
//! is none (or a write made it stale), callers take turns ([`ListingTotals::counting_turn`]), and
//! one that waited uses the total counted after it arrived. Transactions always count afresh.
//!
//! A total also remembers the snapshot it was counted in: on PostgreSQL the MVCC snapshot
//! (`pg_current_snapshot()`; two equal snapshots see exactly the same committed rows), on
//! SQLite the version of `subscription_changes`, which triggers move with every write of a
//! subscription row, by any process. An expired total whose snapshot is still current is
//! renewed without counting: while nothing commits, a filter is counted once, however long it
//! is listed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cadre_domain::{Lifecycle, ProductType};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// How long a counted total is reused.
pub(crate) const TOTAL_TTL: Duration = Duration::from_secs(1);

/// Filters remembered at most; more clears the memory.
const MAX_ENTRIES: usize = 1024;

/// The filter a total was counted for: product type, lifecycle, established only, lowercased
/// text.
pub(crate) type TotalKey = (Option<ProductType>, Option<Lifecycle>, bool, Option<String>);

/// A counted total and the database snapshot it was counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counted {
    /// The number of matching rows.
    pub total: u64,
    /// The snapshot the count saw.
    pub snapshot: String,
}

struct Entry {
    generation: u64,
    counted_at: Instant,
    counted: Counted,
    /// A caller is counting this filter again.
    refreshing: bool,
}

/// What a store remembers of a filter's total.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Remembered {
    /// Use this total.
    Total(u64),
    /// The total has expired and this caller refreshes it: if its snapshot is still current,
    /// use `total` and [`ListingTotals::renew`] it; otherwise count and [`ListingTotals::put`].
    Expired {
        /// The expired total.
        total: u64,
        /// The snapshot it was counted in.
        snapshot: String,
    },
    /// No total this caller may use: wait for the [`ListingTotals::counting_turn`], look
    /// again, and count (then [`ListingTotals::put`]) if there is still none.
    Unknown,
}

/// The totals a store counted recently.
#[derive(Default)]
pub(crate) struct ListingTotals {
    /// Incremented by every committed write of subscriptions; entries of older generations
    /// are stale.
    generation: AtomicU64,
    entries: Mutex<HashMap<TotalKey, Entry>>,
    /// One lock per filter, held by the caller counting it.
    turns: Mutex<HashMap<TotalKey, std::sync::Arc<TurnLock<()>>>>,
}

impl ListingTotals {
    /// The generation to pass to [`ListingTotals::put`], read before counting.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What is remembered of `key` for a caller that arrived at generation `arrived` (a total
    /// counted since then sees every write the caller could know of): a total within the TTL,
    /// or past it while another caller counts again; an expired total with its snapshot; or
    /// nothing. The caller that gets `Expired` or `Unknown` for a remembered filter is the one
    /// that refreshes it.
    pub(crate) fn get(&self, key: &TotalKey, arrived: u64) -> Remembered {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries
            .get_mut(key)
            .filter(|entry| entry.generation >= arrived)
        else {
            return Remembered::Unknown;
        };
        let age = entry.counted_at.elapsed();
        // A refresh that has not finished in ten TTLs failed; the next caller tries again.
        if age < TOTAL_TTL || (entry.refreshing && age < TOTAL_TTL * 10) {
            return Remembered::Total(entry.counted.total);
        }
        entry.refreshing = true;
        Remembered::Expired {
            total: entry.counted.total,
            snapshot: entry.counted.snapshot.clone(),
        }
    }

    /// Waits for the turn to count `key`, so that one caller at a time counts a filter; the
    /// turn lasts as long as the guard.
    pub(crate) async fn counting_turn(&self, key: &TotalKey) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            if turns.len() >= MAX_ENTRIES && !turns.contains_key(key) {
                turns.clear();
            }
            std::sync::Arc::clone(turns.entry(key.clone()).or_default())
        };
        turn.lock_owned().await
    }

    /// Remembers `counted` for `key`, counted at `generation`.
    pub(crate) fn put(&self, key: TotalKey, generation: u64, counted: Counted) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries
            .get(&key)
            .is_some_and(|entry| entry.generation > generation)
        {
            // A count that started after this one's has landed first: keep it.
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                counted_at: Instant::now(),
                counted,
                refreshing: false,
            },
        );
    }

    /// Restarts the TTL of `key`'s total if it is still the one counted in `snapshot`, found
    /// current with the store at `generation`: nothing committed since that count, so the
    /// total stands for that generation too.
    pub(crate) fn renew(&self, key: &TotalKey, snapshot: &str, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries
            .get_mut(key)
            .filter(|entry| entry.counted.snapshot == snapshot)
        {
            entry.generation = entry.generation.max(generation);
            entry.counted_at = Instant::now();
            entry.refreshing = false;
        }
    }

    /// Forgets every total: a write of subscriptions committed.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(total: u64, snapshot: &str) -> Counted {
        Counted {
            total,
            snapshot: snapshot.to_owned(),
        }
    }

    fn expire(totals: &ListingTotals, key: &TotalKey) {
        if let Some(entry) = totals
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            entry.counted_at -= TOTAL_TTL;
        }
    }

    #[test]
    fn a_total_is_reused_until_a_write_commits() {
        let totals = ListingTotals::default();
        let key: TotalKey = (
            Some(ProductType::user()),
            Some(Lifecycle::Active),
            false,
            None,
        );
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Unknown);
        totals.put(key.clone(), totals.generation(), counted(7, "1:1:"));
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Total(7));
        totals.invalidate();
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Unknown);
    }

    #[test]
    fn an_expired_total_is_counted_again_by_one_caller_at_a_time() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, Some(Lifecycle::Active), false, None);
        totals.put(key.clone(), totals.generation(), counted(5, "5"));
        expire(&totals, &key);
        assert_eq!(
            totals.get(&key, totals.generation()),
            Remembered::Expired {
                total: 5,
                snapshot: "5".to_owned()
            },
            "the first caller counts"
        );
        assert_eq!(
            totals.get(&key, totals.generation()),
            Remembered::Total(5),
            "the others reuse the total meanwhile"
        );
        totals.put(key.clone(), totals.generation(), counted(6, "6"));
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Total(6));
    }

    #[test]
    fn an_expired_total_whose_snapshot_is_current_is_renewed() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, None, false, None);
        totals.put(key.clone(), totals.generation(), counted(9, "10:12:10"));
        expire(&totals, &key);
        assert_eq!(
            totals.get(&key, totals.generation()),
            Remembered::Expired {
                total: 9,
                snapshot: "10:12:10".to_owned()
            }
        );
        assert_eq!(
            totals.get(&key, totals.generation()),
            Remembered::Total(9),
            "meanwhile"
        );
        totals.renew(&key, "10:12:10", totals.generation());
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Total(9));
        expire(&totals, &key);
        assert!(matches!(
            totals.get(&key, totals.generation()),
            Remembered::Expired { .. }
        ));
    }

    #[test]
    fn a_total_counted_or_renewed_while_a_write_committed_is_not_reused() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, None, false, Some("ada".to_owned()));
        let before = totals.generation();
        totals.invalidate();
        totals.put(key.clone(), before, counted(3, "0:0:"));
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Unknown);

        totals.put(key.clone(), totals.generation(), counted(3, "1:1:"));
        expire(&totals, &key);
        let checked_at = totals.generation();
        assert!(matches!(
            totals.get(&key, totals.generation()),
            Remembered::Expired { .. }
        ));
        totals.invalidate();
        totals.renew(&key, "1:1:", checked_at);
        assert_eq!(totals.get(&key, totals.generation()), Remembered::Unknown);
    }

    #[test]
    fn a_caller_uses_a_total_counted_after_it_arrived_though_a_write_came_between() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, Some(Lifecycle::Active), false, None);
        let arrived = totals.generation();
        totals.invalidate();
        totals.put(key.clone(), totals.generation(), counted(4, "7"));
        assert_eq!(totals.get(&key, arrived), Remembered::Total(4));
        totals.invalidate();
        assert_eq!(
            totals.get(&key, totals.generation()),
            Remembered::Unknown,
            "a caller arriving after the next write needs a newer count"
        );
        assert_eq!(totals.get(&key, arrived), Remembered::Total(4));
    }

    #[tokio::test]
    async fn callers_take_turns_counting_a_filter() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, None, false, None);
        let other: TotalKey = (None, Some(Lifecycle::Active), false, None);
        let first = totals.counting_turn(&key).await;
        let wait = Duration::from_millis(20);
        assert!(
            tokio::time::timeout(wait, totals.counting_turn(&key))
                .await
                .is_err(),
            "a second caller waits for the first"
        );
        let _other = tokio::time::timeout(wait, totals.counting_turn(&other))
            .await
            .expect("another filter has its own turn");
        drop(first);
        tokio::time::timeout(wait, totals.counting_turn(&key))
            .await
            .expect("the turn passes on");
    }

    #[test]
    fn only_the_count_whose_snapshot_was_checked_is_renewed_and_a_late_older_count_is_dropped() {
        let totals = ListingTotals::default();
        let key: TotalKey = (None, Some(Lifecycle::Active), false, None);
        let slow_count_from = totals.generation();
        totals.put(key.clone(), slow_count_from, counted(3, "1:1:"));
        expire(&totals, &key);
        let checked_at = totals.generation();
        assert!(matches!(
            totals.get(&key, checked_at),
            Remembered::Expired { .. }
        ));
        totals.invalidate();
        let after_write = totals.generation();
        totals.put(key.clone(), after_write, counted(4, "2:2:"));
        totals.put(key.clone(), slow_count_from, counted(2, "1:1:"));
        assert_eq!(
            totals.get(&key, after_write),
            Remembered::Total(4),
            "a count that started before the write does not replace one that started after"
        );
        expire(&totals, &key);
        totals.renew(&key, "1:1:", checked_at);
        assert!(
            matches!(totals.get(&key, after_write), Remembered::Expired { .. }),
            "the check was of another count's snapshot: nothing is renewed"
        );
    }
}
