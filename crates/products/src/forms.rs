//! The initial forms of the built-in workflows, following orchestrator-core's conventions: a
//! create workflow starts with the product page, the others with the subscription page; the
//! product modules pair each with its workflow. The create pages are types
//! ([`UserPage`], [`UserGroupPage`]), which a validated answer parses into.

use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::{
    BlockRef, DomainError, Email, ExternalId, FormLookups, InputForm, Name, ProductType,
    SubscriptionRecord,
};
use cadre_forms::standard::{
    AtVersion, ProductPage, ProductTitled, active_subscriptions, chosen_subscription,
    subscription_page,
};
use cadre_forms::{
    ACTIVE_USER_GROUPS, Choices, Field, Form, FormModel, FormPage, ListItem, ModelPage, PageBuilder,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use cadre_domain::models::DomainModel;

use crate::models::{Employment, UserGroupInactive, UserInactive};

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

fn employment_part(value: &Value) -> Result<(), String> {
    Employment::check_part("part", value.as_str().unwrap_or_default())
        .map_err(|error| error.to_string())
}

const EXTERNAL_ID_PATTERN: &str = r"^(?!\.)[.A-Za-z0-9_-]{1,255}$";

/// The second page of `create_user_group`. Its doc comments are the fields' descriptions.
#[derive(Debug, Deserialize, FormPage)]
#[form(title = "User Group")]
pub struct UserGroupPage {
    /// The group's id in the systems cadre provisions.
    #[form(min_length = 1, max_length = 255, pattern = EXTERNAL_ID_PATTERN, check = external_id)]
    pub user_group_id: String,
    /// The group's name, as people see it.
    #[form(min_length = 1, max_length = 255, check = name)]
    pub user_group_name: String,
    /// The groups this group is nested in.
    #[form(lookup = ACTIVE_USER_GROUPS, unique, default = [])]
    pub parent_user_groups: Vec<Uuid>,
    /// Whether people may find the group and ask to join it.
    #[form(default = false)]
    pub discoverable: bool,
    /// Terms a person accepts to join.
    #[form(format = "long")]
    pub terms: Option<String>,
    /// The group's id at the identity provider that feeds cadre, if one does (SCIM's
    /// `externalId`).
    #[form(max_length = 255)]
    pub external_id: Option<String>,
}

/// The second page of `create_user`: the seed's form, with the identity fields of cadre's User.
/// Its doc comments are the fields' descriptions.
#[derive(Debug, Deserialize, FormPage)]
#[form(title = "User")]
pub struct UserPage {
    /// The user's id in the systems cadre provisions.
    #[form(min_length = 1, max_length = 255, pattern = EXTERNAL_ID_PATTERN, check = external_id)]
    pub user_id: String,
    /// The name the user signs in with.
    #[form(min_length = 1, max_length = 255, check = name)]
    pub username: String,
    /// Given name.
    pub firstname: Option<String>,
    /// Family name.
    pub lastname: Option<String>,
    /// Where mail to the user goes.
    #[form(format = "email", check = email)]
    pub email: String,
    /// The user's identity at the authentication provider.
    pub auth_id: Option<String>,
    /// The groups the user belongs to (none, for a user that joins groups later).
    #[form(lookup = ACTIVE_USER_GROUPS, unique, default = [])]
    pub user_group_ids: Vec<Uuid>,
    /// The number the employer knows the user by.
    #[form(max_length = 255, check = employment_part)]
    pub employee_number: Option<String>,
    /// The user's cost center.
    #[form(max_length = 255, check = employment_part)]
    pub cost_center: Option<String>,
    /// The user's organization.
    #[form(max_length = 255, check = employment_part)]
    pub organization: Option<String>,
    /// The user's division.
    #[form(max_length = 255, check = employment_part)]
    pub division: Option<String>,
    /// The user's department.
    #[form(max_length = 255, check = employment_part)]
    pub department: Option<String>,
    /// The user's manager: normally their user's subscription id.
    #[form(max_length = 255, check = employment_part)]
    pub manager: Option<String>,
}

/// The groups a subscription's block refers to, as a group choice's values (their
/// subscription ids).
fn chosen_groups(groups: &[BlockRef]) -> Value {
    let ids: Vec<String> = groups
        .iter()
        .map(|group| group.owner_subscription_id.to_string())
        .collect();
    json!(ids)
}

/// The second page of `modify_user_group`: the group's id read-only, and what can change,
/// pre-filled with its current values (a field sent null stays as it is; an external id sent
/// empty is cleared).
pub(crate) fn modify_user_group_page(
    groups: Choices,
    record: SubscriptionRecord,
) -> Result<FormPage, DomainError> {
    let group = UserGroupInactive::from_record(record)?.user_group;
    let parents = chosen_groups(&group.parent_groups);
    Ok(FormPage::new("Modify user group")
        .field(Field::read_only(
            "user_group_id",
            json!(group.user_group_id),
        ))
        .field(
            Field::string("user_group_name")
                .nullable()
                .default(json!(group.name)),
        )
        .field(
            Field::list("parent_user_groups", ListItem::Choice(groups))
                .unique_items()
                .nullable()
                .default(parents),
        )
        .field(
            Field::boolean("discoverable")
                .nullable()
                .default(json!(group.discoverable)),
        )
        .field(
            Field::string("terms")
                .format("long")
                .nullable()
                .default(json!(group.terms)),
        )
        .field(
            Field::string("external_id")
                .length(None, Some(255))
                .nullable()
                .default(json!(group.external_id)),
        ))
}

/// The second page of `modify_user`: the user's id read-only, and what can change, pre-filled
/// with the current values and the current groups chosen (a field sent null stays as it is; a
/// name or an employment part sent empty is cleared).
pub(crate) fn modify_user_page(
    groups: Choices,
    record: SubscriptionRecord,
) -> Result<FormPage, DomainError> {
    let user = UserInactive::from_record(record)?.user;
    let current_groups = chosen_groups(&user.groups);
    let text = |name: &str, value: Value| Field::string(name).nullable().default(value);
    let page = FormPage::new("Modify user")
        .field(Field::read_only("user_id", json!(user.user_id)))
        .field(text("username", json!(user.username)))
        .field(text("firstname", json!(user.firstname)))
        .field(text("lastname", json!(user.lastname)))
        .field(text("email", json!(user.email)).format("email"))
        .field(text("auth_id", json!(user.auth_id)))
        .field(
            Field::list("user_group_ids", ListItem::Choice(groups))
                .unique_items()
                .nullable()
                .default(current_groups),
        );
    Ok(user
        .employment
        .parts()
        .into_iter()
        .fold(page, |page, (name, value)| {
            page.field(text(name, json!(value)).length(None, Some(255)))
        }))
}

/// The confirmation page of a terminate workflow.
fn terminate_page(what: &str) -> FormPage {
    FormPage::untitled().field(Field::label(
        "are_you_sure",
        &format!("Are you sure you want to terminate this {what}?"),
    ))
}

/// The form of a create workflow for `product_type`: which product, then the page of `T`
/// (its choices looked up as it says), titled with the product's name.
pub(crate) fn create<T: FormModel + 'static>(product_type: ProductType) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(ProductPage(product_type))
            .page(ProductTitled(ModelPage::<T>::new())),
    )
}

/// Builds a modify page from the active user groups and the chosen subscription as it is.
type ModifyPage = fn(Choices, SubscriptionRecord) -> Result<FormPage, DomainError>;

/// The form of a modify workflow: which subscription, then the page `page` builds from the
/// active user groups and the subscription's current values.
pub(crate) fn modify(page: ModifyPage) -> Arc<dyn InputForm> {
    Arc::new(
        Form::new()
            .page(subscription_page())
            .page(AtVersion(Prefilled(page))),
    )
}

/// A modify page, built from the subscription chosen before it as it is now. The groups are
/// looked up each time: a modify form is shown seldom, and must show what is there.
struct Prefilled(ModifyPage);

#[async_trait]
impl PageBuilder for Prefilled {
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        let id = chosen_subscription(state).ok_or_else(|| {
            DomainError::invalid("subscription_id", "a modify form changes a subscription")
        })?;
        let record = lookups.subscription(id).await?;
        let groups =
            active_subscriptions(lookups, ProductType::user_group(), "UserGroupEnum").await?;
        (self.0)(groups, record)
    }
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
        if let Some(id) = chosen_subscription(state) {
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
