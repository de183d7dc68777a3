//! The pages orchestrator-core's workflows start with, and choices filled from the store: a
//! create workflow asks for the product ([`ProductPage`]), the others for the subscription
//! ([`subscription_page`]); a create form's next page is titled with the chosen product
//! ([`ProductTitled`]); dropdowns offer the active subscriptions of a product type
//! ([`active_subscriptions`], [`WithActive`]).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cadre_domain::{DomainError, FormLookups, Lifecycle, ProductType, SubscriptionQuery};
use serde_json::{Map, Value};

use crate::form::PageBuilder;
use crate::page::{Choices, Field, FormPage};

/// Choices of the active subscriptions of `product_type`: value = subscription id, label =
/// description, in an enum named `name`. For `UserGroup` this is the seed's user group selector.
pub async fn active_subscriptions(
    lookups: &dyn FormLookups,
    product_type: ProductType,
    name: &str,
) -> Result<Choices, DomainError> {
    let page = lookups
        .subscriptions(&SubscriptionQuery {
            product_type: Some(product_type),
            lifecycle: Some(Lifecycle::Active),
            limit: None,
            ..SubscriptionQuery::default()
        })
        .await?;
    Ok(Choices::labelled(
        name,
        page.items.into_iter().map(|summary| {
            (
                summary.subscription.id.to_string(),
                summary.subscription.description,
            )
        }),
    ))
}

/// The first page of a create workflow: which product of the product type it holds.
pub struct ProductPage(pub ProductType);

#[async_trait]
impl PageBuilder for ProductPage {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        _: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let products = lookups.products().await?;
        let choices = Choices::labelled(
            "ProductChoice",
            products
                .into_iter()
                .filter(|product| product.product_type == self.0)
                .map(|product| (product.id.to_string(), product.name)),
        );
        Ok(FormPage::untitled().field(Field::choice("product", choices).format("productId")))
    }
}

/// The page `B` builds, titled with the name of the product the first page chose (`product`),
/// as orchestrator-core titles a create form's second page.
pub struct ProductTitled<B>(pub B);

#[async_trait]
impl<B: PageBuilder> PageBuilder for ProductTitled<B> {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let mut page = self.0.build(lookups, state).await?;
        let chosen = state.get("product").and_then(Value::as_str);
        if let Some(chosen) = chosen {
            let products = lookups.products().await?;
            let product = products
                .into_iter()
                .find(|product| product.id.to_string() == chosen);
            if let Some(product) = product {
                page.title = Some(product.name);
            }
        }
        Ok(page)
    }
}

/// The subscription an earlier page chose (`subscription_id`), if any.
pub fn chosen_subscription(state: &Map<String, Value>) -> Option<uuid::Uuid> {
    state
        .get("subscription_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
}

/// The first page of a modify, terminate or validate workflow: which subscription, and
/// optionally the version the caller saw (optimistic locking is done by the store on save).
pub fn subscription_page() -> FormPage {
    FormPage::untitled()
        .field(Field::uuid("subscription_id").format("subscriptionId"))
        .field(Field::integer("version").nullable())
}

/// How long the active subscriptions offered as choices are reused before they are looked up
/// again. Choices only guide the person filling in the form: a workflow's steps check again
/// that what was chosen is active when they run.
pub const CHOICES_TTL: Duration = Duration::from_secs(1);

/// The page `B` builds, once the subscription the form chose (`subscription_id`) is still at
/// the `version` the form was filled in at, when the form gave one: a subscription changed in
/// the meantime is a conflict, so that nobody overwrites a change they have not seen.
pub struct AtVersion<B>(pub B);

#[async_trait]
impl<B: PageBuilder> PageBuilder for AtVersion<B> {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let version = state.get("version").and_then(Value::as_i64);
        if let (Some(id), Some(version)) = (chosen_subscription(state), version) {
            let current = lookups.subscription(id).await?.subscription.version;
            if current != version {
                return Err(DomainError::Conflict(format!(
                    "subscription {id} changed since the form was filled in: it is at version \
                     {current}, not {version}; reload it and try again"
                )));
            }
        }
        self.0.build(lookups, state).await
    }
}

/// A page that offers the active subscriptions of a product type as choices: `page` builds it
/// from them. They are looked up at most once per [`CHOICES_TTL`] for the same form.
pub struct WithActive {
    product_type: ProductType,
    choices_name: &'static str,
    page: fn(Choices) -> FormPage,
    recent: Recent<Choices>,
}

impl WithActive {
    /// The page `page` builds from the active subscriptions of `product_type`, offered as the
    /// enum `choices_name` (e.g. `UserGroupEnum`).
    pub fn new(
        product_type: ProductType,
        choices_name: &'static str,
        page: fn(Choices) -> FormPage,
    ) -> Self {
        Self {
            product_type,
            choices_name,
            page,
            recent: Recent::new(),
        }
    }
}

/// A value looked up at most once per [`CHOICES_TTL`].
pub(crate) struct Recent<T>(Mutex<Option<(Instant, T)>>);

impl<T: Clone> Recent<T> {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The value, if it was looked up less than [`CHOICES_TTL`] ago.
    fn get(&self) -> Option<T> {
        let recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CHOICES_TTL)
            .map(|(_, value)| value.clone())
    }

    /// The value, or the one `look_up` finds now, kept for next time.
    pub(crate) async fn get_or_look_up<E>(
        &self,
        look_up: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        let value = look_up.await?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[async_trait]
impl PageBuilder for WithActive {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        _: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let look_up = active_subscriptions(lookups, self.product_type.clone(), self.choices_name);
        let choices = self.recent.get_or_look_up(look_up).await?;
        Ok((self.page)(choices))
    }
}
