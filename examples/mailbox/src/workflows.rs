//! The Mailbox workflows (create, modify, terminate), each declared once with its form, built
//! from cadre's standard steps and pages as the built-in products' are.

use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use cadre_domain::{BlockRef, Email, Lifecycle, ProductType, Target};
use cadre_engine::standard::{
    create_workflow, load_subscription, modify_workflow, subscription_patch, terminate_workflow,
};
use cadre_engine::{Patch, StepContext, StepError, StepFn, StepList, Workflow, step};
use cadre_forms::standard::{ProductPage, subscription_page};
use cadre_forms::{ActiveSubscriptions, Field, Form, FormPage, ListItem, ModelPage};
use cadre_products::models::User;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::PRODUCT_TYPE;
use crate::model::{MAX_QUOTA_MB, Mailbox, MailboxInactive, mailbox_description};

/// The create, modify and terminate workflows of mailboxes.
pub fn workflows() -> Vec<Workflow> {
    let mailbox = || vec![ProductType::new(PRODUCT_TYPE)];
    vec![
        Workflow::new(
            "create_mailbox",
            "Create a mailbox",
            Target::Create,
            mailbox(),
            Arc::new(
                Form::new()
                    .page(ProductPage(ProductType::new(PRODUCT_TYPE)))
                    .page(ModelPage::<MailboxPage>::new()),
            ),
            create_workflow(
                ProductType::new(PRODUCT_TYPE),
                step(
                    "initialize_subscription",
                    "Initialize subscription",
                    Initialize,
                )
                .into(),
            ),
        ),
        Workflow::new(
            "modify_mailbox",
            "Modify a mailbox",
            Target::Modify,
            mailbox(),
            Arc::new(Form::new().page(subscription_page()).page(modify_page())),
            modify_workflow(step("modify_mailbox", "Modify mailbox", Modify).into()),
        ),
        Workflow::new(
            "terminate_mailbox",
            "Terminate a mailbox",
            Target::Terminate,
            mailbox(),
            Arc::new(
                Form::new()
                    .page(subscription_page())
                    .page(FormPage::untitled().field(Field::label(
                        "are_you_sure",
                        "Are you sure you want to terminate this mailbox?",
                    ))),
            ),
            terminate_workflow(StepList::default()),
        ),
    ]
}

fn email(value: &Value) -> Result<(), String> {
    Email::parse(value.as_str().unwrap_or_default())
        .map(|_| ())
        .map_err(|error| error.to_string())
}

fn quota_field() -> Field {
    Field::integer("quota_mb").ge(1).le(i64::from(MAX_QUOTA_MB))
}

/// The active users, offered as `UserEnum`: a lookup of this crate's own.
static ACTIVE_USERS: ActiveSubscriptions = ActiveSubscriptions {
    product_type: ProductType::USER,
    enum_name: "UserEnum",
};

/// The second page of `create_mailbox`, declared as a type.
#[derive(Debug, Deserialize, FormPage)]
#[form(title = "Mailbox")]
pub struct MailboxPage {
    /// The user the mailbox belongs to.
    #[form(lookup = ACTIVE_USERS)]
    pub owner: Uuid,
    /// The mailbox's address.
    #[form(format = "email", check = email)]
    pub address: String,
    /// The mailbox's size.
    #[form(ge = 1, le = MAX_QUOTA_MB, default = 1024)]
    pub quota_mb: u32,
    /// Other addresses that deliver to it.
    #[form(max_items = 10, unique, default = [])]
    pub aliases: Vec<String>,
}

/// The second page of `modify_mailbox` (fields left empty stay as they are).
fn modify_page() -> FormPage {
    FormPage::new("Modify mailbox")
        .field(quota_field().nullable())
        .field(
            Field::list("aliases", ListItem::Text)
                .items(None, Some(10))
                .unique_items()
                .nullable(),
        )
}

/// The aliases in state key `aliases`, if given.
fn aliases(ctx: &StepContext<'_>) -> Result<Option<Vec<Email>>, StepError> {
    let Some(aliases) = ctx.get_optional::<Vec<String>>("aliases")? else {
        return Ok(None);
    };
    let parsed: Result<Vec<Email>, _> = aliases.iter().map(|alias| Email::parse(alias)).collect();
    Ok(Some(parsed?))
}

struct Initialize;

#[async_trait]
impl StepFn for Initialize {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut mailbox = MailboxInactive::from_record(load_subscription(ctx).await?)?;
        let owner_id: Uuid = ctx.get("owner")?;
        let owner = User::from_record(ctx.store.load_subscription(owner_id).await?)?;
        if owner.subscription.lifecycle != Lifecycle::Active {
            return Err(StepError::new(format!(
                "owner {} is {}, not active",
                owner.subscription.description, owner.subscription.lifecycle
            )));
        }
        let address = Email::parse(&ctx.get::<String>("address")?)?;
        mailbox.subscription.description = mailbox_description(&address);
        mailbox.address = Some(address);
        mailbox.quota_mb = Some(ctx.get("quota_mb")?);
        mailbox.aliases = aliases(ctx)?.unwrap_or_default();
        mailbox.owner = Some(BlockRef {
            instance_id: owner.user.instance_id,
            owner_subscription_id: owner.subscription.id,
        });
        let mailbox = mailbox.into_provisioning(ctx.now)?;
        subscription_patch(&ctx.store.save_subscription(&mailbox.into_record()).await?)
    }
}

struct Modify;

#[async_trait]
impl StepFn for Modify {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut mailbox = Mailbox::from_record(load_subscription(ctx).await?)?;
        mailbox.change(ctx.get_optional("quota_mb")?, aliases(ctx)?)?;
        subscription_patch(&ctx.store.save_subscription(&mailbox.into_record()).await?)
    }
}
