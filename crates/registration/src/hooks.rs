//! Webhooks on users: when a process creates or terminates a User subscription, the
//! configured webhooks for that action are recorded in the outbox, in the transaction that
//! completes the process.

use async_trait::async_trait;
use cadre_domain::models::{DomainModel, UserInactive};
use cadre_domain::{DomainError, ProductType, State, StoreTransaction, Target};
use cadre_engine::{CompletionHook, Workflow};
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::delivery::{Webhook, WebhookAction, webhook_message};
use crate::workflows::COMPLETE_REGISTRATION;

/// Calls `create_user` webhooks when a process creates a user (a create workflow, or a
/// completed registration) and `delete_user` webhooks when one terminates a user.
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
        let action = if workflow.target == Target::Create || workflow.name == COMPLETE_REGISTRATION
        {
            WebhookAction::CreateUser
        } else if workflow.target == Target::Terminate {
            WebhookAction::DeleteUser
        } else {
            return Ok(());
        };
        let webhooks: Vec<&Webhook> = self
            .webhooks
            .iter()
            .filter(|webhook| webhook.action == action)
            .collect();
        let subscription = state
            .get("subscription_id")
            .and_then(|id| serde_json::from_value::<Uuid>(id.clone()).ok());
        let (Some(subscription), false) = (subscription, webhooks.is_empty()) else {
            return Ok(());
        };
        let user = UserInactive::from_record(txn.load_subscription(subscription).await?)?.user;
        let body = json!({
            "action": action,
            "subscription_id": subscription,
            "user_id": user.user_id.as_ref().map(|id| id.as_str()),
            "user_name": user.username.as_ref().map(|name| name.as_str()),
            "email": user.email.as_ref().map(|email| email.as_str()),
        });
        for webhook in webhooks {
            txn.enqueue(&webhook_message(&webhook.call(body.clone()), now))
                .await?;
        }
        Ok(())
    }
}
