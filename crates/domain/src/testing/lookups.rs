//! [`MemoryLookups`]: the lookups of forms, over products and subscription summaries added by
//! hand (no blocks: a subscription's record is not found, and nothing uses anything).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::catalogue::Product;
use crate::error::{DomainError, Result};
use crate::forms::FormLookups;
use crate::ports::{Page, SortOrder, SubscriptionQuery};
use crate::subscription::{SubscriptionRecord, SubscriptionSummary};

use super::lock;

/// Products and subscriptions held in memory, answering [`FormLookups`] as a store would:
/// filtered by product type, lifecycle and description text (ASCII case folded), in the order
/// they were added (reversed for [`SortOrder::Desc`]), paged by offset and limit.
#[derive(Default)]
pub struct MemoryLookups {
    products: Mutex<Vec<Product>>,
    subscriptions: Mutex<Vec<SubscriptionSummary>>,
}

impl MemoryLookups {
    /// Lookups with nothing in them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `product` to the catalogue.
    pub fn add_product(&self, product: Product) {
        lock(&self.products).push(product);
    }

    /// Adds `subscription`.
    pub fn add_subscription(&self, subscription: SubscriptionSummary) {
        lock(&self.subscriptions).push(subscription);
    }
}

#[async_trait]
impl FormLookups for MemoryLookups {
    async fn subscription(&self, id: uuid::Uuid) -> Result<SubscriptionRecord> {
        Err(DomainError::not_found("subscription", id))
    }

    async fn dependents(&self, _instance_id: uuid::Uuid) -> Result<Vec<SubscriptionSummary>> {
        Ok(Vec::new())
    }

    async fn products(&self) -> Result<Vec<Product>> {
        Ok(lock(&self.products).clone())
    }

    async fn subscriptions(&self, query: &SubscriptionQuery) -> Result<Page<SubscriptionSummary>> {
        let text = query.text.as_deref().map(str::to_ascii_lowercase);
        let mut matching: Vec<SubscriptionSummary> = lock(&self.subscriptions)
            .iter()
            .filter(|summary| {
                query
                    .ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&summary.subscription.id))
                    && query
                        .product_type
                        .as_ref()
                        .is_none_or(|product_type| &summary.product_type == product_type)
                    && query
                        .lifecycle
                        .is_none_or(|lifecycle| summary.subscription.lifecycle == lifecycle)
                    && text.as_deref().is_none_or(|text| {
                        summary
                            .subscription
                            .description
                            .to_ascii_lowercase()
                            .contains(text)
                    })
            })
            .cloned()
            .collect();
        if query.order == SortOrder::Desc {
            matching.reverse();
        }
        let total = matching.len() as u64;
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = query.limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        });
        let items = matching.into_iter().skip(offset).take(limit).collect();
        Ok(Page { items, total })
    }
}
