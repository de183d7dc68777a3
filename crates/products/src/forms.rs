//! The initial forms of the built-in workflows, following orchestrator-core's conventions: a
//! create workflow starts with the product page, the others with the subscription page; the
//! product modules pair each with its workflow.

use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::{DomainError, Email, ExternalId, FormLookups, InputForm, Name, ProductType};
use cadre_forms::standard::{AtVersion, ProductPage, WithActive, subscription_page};
use cadre_forms::{Choices, Field, Form, FormPage, PageBuilder};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The page `page` builds with the active user groups as choices.
fn with_groups(page: fn(Choices) -> FormPage) -> WithActive {
    WithActive::new(ProductType::user_group(), "UserGroupEnum", page)
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
            .page(with_groups(page)),
    )
}

/// The form of a modify workflow: which subscription, then `page` with the active user groups
/// as choices.
pub(crate) fn modify(page: fn(Choices) -> FormPage) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(AtVersion(with_groups(page))),
    )
}

/// The form of a terminate workflow: which subscription, then a confirmation about `what`.
pub(crate) fn terminate(what: &str) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(AtVersion(terminate_page(what))),
    )
}

/// The form of `terminate_user_group`: which group, then the confirmation; refused at once,
/// naming them, while other subscriptions use the group (its deprovision step checks again, for
/// a user added in between).
pub(crate) fn terminate_user_group() -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(AtVersion(Unused(terminate_page("user group")))),
    )
}

/// A page built only while the subscription chosen before it is used by no other.
struct Unused(FormPage);

#[async_trait]
impl PageBuilder for Unused {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let chosen = state
            .get("subscription_id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<Uuid>().ok());
        if let Some(id) = chosen {
            let record = lookups.subscription(id).await?;
            let mut users = Vec::new();
            for block in &record.blocks {
                users.extend(lookups.dependents(block.id).await?);
            }
            if !users.is_empty() {
                let names: Vec<&str> = users
                    .iter()
                    .map(|user| user.subscription.description.as_str())
                    .collect();
                return Err(DomainError::Conflict(format!(
                    "this subscription can not be terminated as it is used in other subscriptions: {}",
                    names.join(", ")
                )));
            }
        }
        Ok(self.0.clone())
    }
}

/// The form of a lifecycle change such as `disable_user`: which subscription, then a page titled
/// `title` with an optional `reason`, which the process keeps in its state.
pub(crate) fn change_lifecycle(title: &str) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new().page(subscription_page()).page(AtVersion(
            FormPage::new(title).field(
                Field::string("reason")
                    .format("long")
                    .length(None, Some(1000))
                    .nullable(),
            ),
        )),
    )
}

/// The form of a validate workflow: which subscription.
pub(crate) fn validate() -> Arc<dyn InputForm> {
    Arc::new(Form::new().page(subscription_page()))
}
