//! What a connector remembers of its last listing of a target, so that the next one asks only
//! for what changed since (a SCIM target's `meta.lastModified`) rather than for everything.
//!
//! A remembered listing is brought up to date with the resources modified since its latest
//! modification time (asked for with `ge`, so that one modified in that same instant is not
//! missed), and then only trusted when the target's count of resources equals its own: a
//! resource deleted since is not among the changes, so a count that differs means the target is
//! listed in full again. So is one whose full listing is older than [`LIST_IN_FULL_AFTER`]: a
//! target that stamps a change a moment before others can see it could otherwise hide that
//! change from every later listing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::connector::Remote;

/// How long a full listing is built on before the target is listed in full again.
pub(crate) const LIST_IN_FULL_AFTER: Duration = Duration::from_secs(60 * 60);

/// One resource as a listing read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed<T> {
    /// The target's id of it.
    pub id: String,
    /// When the target last changed it, if it says.
    pub modified: Option<DateTime<Utc>>,
    /// What cadre's mapping reads of it; `None` for a resource that is not cadre's (it has no
    /// external id), which is still counted.
    pub entry: Option<T>,
}

/// Every resource of one kind on a target, as of its latest modification time.
#[derive(Debug)]
pub(crate) struct Listing<T> {
    resources: BTreeMap<String, Option<T>>,
    /// The latest modification time among the resources; `None` when one had none, and then
    /// there is nothing to ask from: the listing is not remembered.
    since: Option<DateTime<Utc>>,
    /// When the target was last listed in full.
    listed_at: Instant,
}

impl<T: Clone> Listing<T> {
    /// A full listing of `listed`.
    pub fn full(listed: Vec<Listed<T>>) -> Self {
        let mut listing = Self {
            resources: BTreeMap::new(),
            since: None,
            listed_at: Instant::now(),
        };
        listing.since = listing.apply(listed);
        listing
    }

    /// The time the changes to ask for start at, unless the listing is too old to build on.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since_at(Instant::now())
    }

    /// [`Listing::since`] at `now`.
    fn since_at(&self, now: Instant) -> Option<DateTime<Utc>> {
        self.since
            .filter(|_| now.saturating_duration_since(self.listed_at) < LIST_IN_FULL_AFTER)
    }

    /// This listing with `changed` (every resource modified since [`Listing::since`]) applied,
    /// when `total`, the target's count of resources now, confirms that none went; `None` when
    /// it does not, or a changed resource has no modification time.
    /// No change at all is not trusted either: the resource last changed is always among them
    /// (they are asked from its time on) unless it went, so a target that answers none does not
    /// filter as asked.
    pub fn update(mut self, changed: Vec<Listed<T>>, total: u64) -> Option<Self> {
        if changed.is_empty() {
            return None;
        }
        self.since = Some(self.apply(changed)?);
        (u64::try_from(self.resources.len()) == Ok(total)).then_some(self)
    }

    /// Puts `listed` in; the latest modification time among them and [`Listing::since`], or
    /// `None` when one of them has none.
    fn apply(&mut self, listed: Vec<Listed<T>>) -> Option<DateTime<Utc>> {
        let mut since = self.since;
        let mut every_one_dated = true;
        for resource in listed {
            every_one_dated &= resource.modified.is_some();
            since = since.max(resource.modified);
            self.resources.insert(resource.id, resource.entry);
        }
        since.filter(|_| every_one_dated)
    }

    /// The resources that are cadre's, by id.
    pub fn remotes(&self) -> Vec<Remote<T>> {
        self.resources
            .iter()
            .filter_map(|(id, entry)| {
                Some(Remote {
                    id: id.clone(),
                    entry: entry.clone()?,
                })
            })
            .collect()
    }
}

/// A connector's remembered listing of one kind: taken while a listing runs (a listing at the
/// same time lists in full), put back when it is done unless it was forgotten meanwhile.
pub(crate) struct Remembered<T>(Mutex<Slot<T>>);

/// The listing, and how many times it was forgotten (so that one taken before is not put
/// back after).
struct Slot<T> {
    listing: Option<Listing<T>>,
    forgotten: u64,
}

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Self(Mutex::new(Slot {
            listing: None,
            forgotten: 0,
        }))
    }
}

impl<T: Clone> Remembered<T> {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered listing, if there is one, and a ticket to put one back with; none is
    /// left meanwhile.
    pub fn take(&self) -> (Option<Listing<T>>, u64) {
        let mut slot = self.slot();
        (slot.listing.take(), slot.forgotten)
    }

    /// Remembers `listing` if there is something to ask from and nothing was forgotten since
    /// `ticket` was taken.
    pub fn put(&self, listing: Listing<T>, ticket: u64) {
        let mut slot = self.slot();
        if listing.since.is_some() && slot.forgotten == ticket {
            slot.listing = Some(listing);
        }
    }

    /// Forgets the resource `id`, which cadre deleted.
    pub fn forget(&self, id: &str) {
        let mut slot = self.slot();
        slot.forgotten += 1;
        if let Some(listing) = slot.listing.as_mut() {
            listing.resources.remove(id);
        }
    }

    /// Forgets the listing: the next one is in full.
    pub fn clear(&self) {
        let mut slot = self.slot();
        slot.forgotten += 1;
        slot.listing = None;
    }
}

impl<T> fmt::Debug for Remembered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Remembered")
            .field(
                "resources",
                &guard
                    .listing
                    .as_ref()
                    .map(|listing| listing.resources.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(second), 0)
    }

    fn listed(id: &str, second: u32, entry: Option<&str>) -> Listed<String> {
        Listed {
            id: id.to_owned(),
            modified: at(second),
            entry: entry.map(str::to_owned),
        }
    }

    fn remotes(listing: &Listing<String>) -> Vec<(String, String)> {
        listing
            .remotes()
            .into_iter()
            .map(|remote| (remote.id, remote.entry))
            .collect()
    }

    #[test]
    fn a_full_listing_asks_from_its_latest_change_and_counts_foreign_resources() {
        let listing = Listing::full(vec![
            listed("2", 5, Some("b")),
            listed("1", 9, Some("a")),
            listed("3", 7, None),
        ]);
        assert_eq!(listing.since(), at(9));
        assert_eq!(
            remotes(&listing),
            [("1".into(), "a".into()), ("2".into(), "b".into())]
        );
        let updated = listing
            .update(vec![listed("1", 9, Some("a"))], 3)
            .expect("three resources, as before");
        assert_eq!(updated.since(), at(9));
    }

    #[test]
    fn changes_replace_and_add_resources_and_move_the_start_on() {
        let listing = Listing::full(vec![listed("1", 1, Some("a")), listed("2", 2, Some("b"))]);
        let updated = listing
            .update(vec![listed("2", 8, Some("B")), listed("3", 9, None)], 3)
            .expect("the count agrees");
        assert_eq!(updated.since(), at(9));
        assert_eq!(
            remotes(&updated),
            [("1".into(), "a".into()), ("2".into(), "B".into())]
        );
        // A resource changed again in the instant it was asked from moves nothing back.
        let updated = updated.update(vec![listed("3", 9, Some("c"))], 3).unwrap();
        assert_eq!(updated.since(), at(9));
        assert_eq!(remotes(&updated).len(), 3);
    }

    #[test]
    fn a_count_that_differs_is_not_trusted() {
        let listing = || Listing::full(vec![listed("1", 1, Some("a")), listed("2", 2, Some("b"))]);
        // One went (and another came): the changes cannot say which.
        assert!(listing().update(vec![listed("3", 3, None)], 2).is_none());
        // One came that the changes did not show.
        assert!(listing().update(Vec::new(), 3).is_none());
        // One went.
        assert!(
            listing()
                .update(vec![listed("2", 2, Some("b"))], 1)
                .is_none()
        );
        // No change at all, not even the last one asked from: the target does not filter.
        assert!(listing().update(Vec::new(), 2).is_none());
    }

    #[test]
    fn resources_without_a_modification_time_leave_nothing_to_ask_from() {
        let undated = Listed {
            id: "2".to_owned(),
            modified: None,
            entry: Some("b".to_owned()),
        };
        let listing = Listing::full(vec![listed("1", 1, Some("a")), undated.clone()]);
        assert_eq!(listing.since(), None);
        let remembered = Remembered::default();
        let (_, ticket) = remembered.take();
        remembered.put(listing, ticket);
        assert!(remembered.take().0.is_none(), "not remembered");

        let listing = Listing::full(vec![listed("1", 1, Some("a"))]);
        assert!(listing.update(vec![undated], 2).is_none());
    }

    #[test]
    fn a_listing_too_old_to_build_on_asks_from_nothing() {
        let listing = Listing::full(vec![listed("1", 1, Some("a"))]);
        let almost = listing.listed_at + LIST_IN_FULL_AFTER - Duration::from_secs(1);
        assert_eq!(listing.since_at(almost), at(1));
        assert_eq!(
            listing.since_at(listing.listed_at + LIST_IN_FULL_AFTER),
            None
        );
    }

    #[test]
    fn remembered_listings_forget_what_cadre_deleted() {
        let remembered = Remembered::default();
        let (_, ticket) = remembered.take();
        remembered.put(
            Listing::full(vec![listed("1", 1, Some("a")), listed("2", 2, Some("b"))]),
            ticket,
        );
        remembered.forget("1");
        let (listing, ticket) = remembered.take();
        let listing = listing.expect("remembered");
        assert_eq!(remotes(&listing), [("2".into(), "b".into())]);
        assert!(remembered.take().0.is_none(), "taken");
        remembered.put(listing, ticket);
        let (listing, _) = remembered.take();
        remembered.clear();
        assert!(remembered.take().0.is_none(), "cleared");
        // Taken before it was cleared: not put back.
        remembered.put(listing.expect("put back"), ticket);
        assert!(
            remembered.take().0.is_none(),
            "a listing taken before a clear stays out"
        );
    }
}
