//! The initial forms of the built-in workflows, following orchestrator-core's conventions: a
//! create workflow starts with the product page, the others with the subscription page; the
//! product modules pair each with its workflow.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cadre_domain::{
    DomainError, Email, ExternalId, FormLookups, InputForm, Lifecycle, Name, ProductType,
    SubscriptionQuery,
};
use cadre_forms::{Choices, Field, Form, FormPage, PageBuilder};
use serde_json::{Map, Value, json};

/// Choices of the active subscriptions of `product_type`: value = subscription id, label =
/// description. This is the seed's user group selector for `UserGroup`.
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

/// The first page of a create workflow: which product of `product_type`.
struct ProductPage(ProductType);

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

/// The first page of a modify, terminate or validate workflow: which subscription, and
/// optionally the version the caller saw (optimistic locking is done by the store on save).
fn subscription_page() -> FormPage {
    FormPage::untitled()
        .field(Field::uuid("subscription_id").format("subscriptionId"))
        .field(Field::integer("version").nullable())
}

fn external_id(value: &Value) -> Result<(), String> {
    let text = value.as_str().unwrap_or_default();
    ExternalId::parse(text)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn name(value: &Value) -> Result<(), String> {
    Name::parse(value.as_str().unwrap_or_default())
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn email(value: &Value) -> Result<(), String> {
    Email::parse(value.as_str().unwrap_or_default())
        .map(|_| ())
        .map_err(|error| error.to_string())
}

const EXTERNAL_ID_PATTERN: &str = r"^(?!\.)[.A-Za-z0-9_-]{1,255}$";

/// How long the active user groups offered as choices are reused before they are looked up
/// again. Choices only guide the person filling in the form: the workflow's steps check again
/// that every chosen group is active when they run.
pub const CHOICES_TTL: Duration = Duration::from_secs(1);

/// A page that offers the active user groups as choices: `page` builds it from them. The groups
/// are looked up at most once per [`CHOICES_TTL`] for the same form.
struct WithGroups {
    page: fn(Choices) -> FormPage,
    recent: Mutex<Option<(Instant, Choices)>>,
}

impl WithGroups {
    fn new(page: fn(Choices) -> FormPage) -> Self {
        Self {
            page,
            recent: Mutex::new(None),
        }
    }

    fn recent_groups(&self) -> Option<Choices> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CHOICES_TTL)
            .map(|(_, groups)| groups.clone())
    }
}

#[async_trait]
impl PageBuilder for WithGroups {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        _: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let groups = match self.recent_groups() {
            Some(groups) => groups,
            None => {
                let groups =
                    active_subscriptions(lookups, ProductType::user_group(), "UserGroupEnum")
                        .await?;
                let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                *recent = Some((Instant::now(), groups.clone()));
                groups
            }
        };
        Ok((self.page)(groups))
    }
}

/// An external id field, checked by the domain's `ExternalId`.
fn external_id_field(field: &str) -> Field {
    Field::string(field)
        .length(Some(1), Some(255))
        .pattern(EXTERNAL_ID_PATTERN)
        .check(external_id)
}

/// A name field, checked by the domain's `Name`.
fn name_field(field: &str) -> Field {
    Field::string(field).length(Some(1), Some(255)).check(name)
}

/// The second page of `create_user_group`.
pub(crate) fn user_group_page(groups: Choices) -> FormPage {
    FormPage::new("User Group")
        .field(external_id_field("user_group_id"))
        .field(name_field("user_group_name"))
        .field(
            Field::choice_list("parent_user_groups", groups, 0, None)
                .unique_items()
                .default(json!([])),
        )
        .field(Field::boolean("discoverable").default(json!(false)))
        .field(Field::string("terms").format("long").nullable())
}

/// The second page of `create_user`: the seed's form, with the identity fields of cadre's User.
pub(crate) fn user_page(groups: Choices) -> FormPage {
    FormPage::new("User")
        .field(external_id_field("user_id"))
        .field(name_field("username"))
        .field(Field::string("firstname").nullable())
        .field(Field::string("lastname").nullable())
        .field(Field::string("email").format("email").check(email))
        .field(Field::string("auth_id").nullable())
        .field(Field::choice_list("user_group_ids", groups, 1, Some(1)))
}

/// The second page of `modify_user_group`: what to change (fields left empty stay as they are).
pub(crate) fn modify_user_group_page(groups: Choices) -> FormPage {
    FormPage::new("Modify user group")
        .field(Field::string("user_group_name").nullable())
        .field(
            Field::choice_list("parent_user_groups", groups, 0, None)
                .unique_items()
                .nullable(),
        )
        .field(Field::boolean("discoverable").nullable())
        .field(Field::string("terms").format("long").nullable())
}

/// The second page of `modify_user` (fields left empty stay as they are).
pub(crate) fn modify_user_page(groups: Choices) -> FormPage {
    FormPage::new("Modify user")
        .field(Field::string("username").nullable())
        .field(Field::string("firstname").nullable())
        .field(Field::string("lastname").nullable())
        .field(Field::string("email").format("email").nullable())
        .field(Field::string("auth_id").nullable())
        .field(Field::choice_list("user_group_ids", groups, 1, Some(1)).nullable())
}

/// The confirmation page of a terminate workflow.
fn terminate_page(what: &str) -> FormPage {
    FormPage::untitled().field(Field::label(
        "are_you_sure",
        &format!("Are you sure you want to terminate this {what}?"),
    ))
}

/// The form of a create workflow for `product_type`: which product, then `page` with the
/// active user groups as choices.
pub(crate) fn create(
    product_type: ProductType,
    page: fn(Choices) -> FormPage,
) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(ProductPage(product_type))
            .page(WithGroups::new(page)),
    )
}

/// The form of a modify workflow: which subscription, then `page` with the active user groups
/// as choices.
pub(crate) fn modify(page: fn(Choices) -> FormPage) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(WithGroups::new(page)),
    )
}

/// The form of a terminate workflow: which subscription, then a confirmation about `what`.
pub(crate) fn terminate(what: &str) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(terminate_page(what)),
    )
}

/// The form of a validate workflow: which subscription.
pub(crate) fn validate() -> Arc<dyn InputForm> {
    Arc::new(Form::new().page(subscription_page()))
}
