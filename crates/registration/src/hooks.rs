//! Webhooks on users: when a process creates or terminates a User subscription, the
//! configured webhooks for that action and the `update_user_status` ones, and when a modify
//! workflow changes a user's lifecycle (`disable_user`, `enable_user`), the
//! `update_user_status` ones, are recorded in the outbox, in the transaction that completes the
//! process.

use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use cadre_domain::{DomainError, Lifecycle, ProductType, State, StoreTransaction, Target};
use cadre_engine::{CompletionHook, Workflow};
use cadre_products::models::UserInactive;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::delivery::{Webhook, WebhookAction, webhook_message};
use crate::workflows::COMPLETE_REGISTRATION;

/// Calls `create_user` webhooks when a process creates a user (a create workflow, or a
/// completed registration), `delete_user` webhooks when one terminates a user, and
/// `update_user_status` webhooks (with the new lifecycle) on both and when a modify workflow
/// leaves a user in a lifecycle it does not start in (`disable_user`, `enable_user`).
pub struct UserWebhooks {
    webhooks: Vec<Webhook>,
}

impl UserWebhooks {
    /// The hook for `webhooks`.
    pub fn new(webhooks: Vec<Webhook>) -> Self {
        Self { webhooks }
    }
}

#[async_trait]
impl CompletionHook for UserWebhooks {
    async fn completed(
        &self,
        txn: &dyn StoreTransaction,
        workflow: &Workflow,
        state: &State,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if !workflow.product_types.contains(&ProductType::user()) {
            return Ok(());
        }
        // The lifecycle is known for creates and terminations; a modify workflow's is read.
        let (action, known_status) =
            if workflow.target == Target::Create || workflow.name == COMPLETE_REGISTRATION {
                (WebhookAction::CreateUser, Some(Lifecycle::Active))
            } else if workflow.target == Target::Terminate {
                (WebhookAction::DeleteUser, Some(Lifecycle::Terminated))
            } else if workflow.target == Target::Modify {
                (WebhookAction::UpdateUserStatus, None)
            } else {
                return Ok(());
            };
        let webhooks: Vec<&Webhook> = self
            .webhooks
            .iter()
            .filter(|webhook| [action, WebhookAction::UpdateUserStatus].contains(&webhook.action))
            .collect();
        let subscription = state
            .get("subscription_id")
            .and_then(|id| serde_json::from_value::<Uuid>(id.clone()).ok());
        let (Some(subscription), false) = (subscription, webhooks.is_empty()) else {
            return Ok(());
        };
        let record = txn.load_subscription(subscription).await?;
        let status = match known_status {
            Some(status) => status,
            // A modify workflow starts in one of the lifecycles it is usable in; one that ends
            // in another changed the lifecycle.
            None if workflow
                .usable_when
                .contains(&record.subscription.lifecycle) =>
            {
                return Ok(());
            }
            None => record.subscription.lifecycle,
        };
        let user = UserInactive::from_record(record)?.user;
        let body = |action: WebhookAction| {
            json!({
                "action": action,
                "subscription_id": subscription,
                "user_id": user.user_id.as_ref().map(|id| id.as_str()),
                "user_name": user.username.as_ref().map(|name| name.as_str()),
                "email": user.email.as_ref().map(|email| email.as_str()),
                "status": status,
            })
        };
        for webhook in webhooks {
            let call = webhook.call(body(webhook.action));
            txn.enqueue(&webhook_message(&call, now)).await?;
        }
        Ok(())
    }
}
