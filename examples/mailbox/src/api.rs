//! A route of this crate's own beside cadre's API: `GET /api/mailboxes`, the live mailboxes
//! (admins only), documented in the same OpenAPI document.

use axum::Json;
use axum::extract::State;
use cadre_domain::models::DomainModel;
use cadre_domain::{Lifecycle, ProductType, SubscriptionQuery};
use cadre_server::auth::Admin;
use cadre_server::{ApiError, AppState, Problem};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::Mailbox;
use crate::catalogue::PRODUCT_TYPE;

/// A live mailbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxSchema {
    /// The subscription id.
    pub subscription_id: Uuid,
    /// The address.
    pub address: String,
    /// Storage quota in MiB.
    pub quota_mb: u32,
    /// Further addresses delivered to it.
    pub aliases: Vec<String>,
    /// The owner's User subscription.
    pub owner_subscription_id: Uuid,
}

/// The most mailboxes one listing returns.
pub const MAX_LISTED: u64 = 1000;

/// The active mailboxes, oldest first, at most [`MAX_LISTED`].
#[utoipa::path(get, path = "/api/mailboxes", tag = "mailboxes", security(("bearer" = [])),
    responses(
        (status = 200, description = "The active mailboxes, at most 1000", body = Vec<MailboxSchema>),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin token", body = Problem),
    ))]
pub async fn list_mailboxes(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<MailboxSchema>>, ApiError> {
    let store = state.engine.store();
    let page = store
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::new(PRODUCT_TYPE)),
            lifecycle: Some(Lifecycle::Active),
            limit: Some(MAX_LISTED),
            ..SubscriptionQuery::default()
        })
        .await?;
    let ids: Vec<Uuid> = page.items.iter().map(|item| item.subscription.id).collect();
    let mut mailboxes = Vec::with_capacity(ids.len());
    for record in store.load_subscriptions(&ids).await? {
        let mailbox = Mailbox::from_record(record)?;
        mailboxes.push(MailboxSchema {
            subscription_id: mailbox.subscription.id,
            address: mailbox.address.to_string(),
            quota_mb: mailbox.quota_mb,
            aliases: mailbox.aliases.iter().map(ToString::to_string).collect(),
            owner_subscription_id: mailbox.owner.owner_subscription_id,
        });
    }
    Ok(Json(mailboxes))
}

/// This crate's routes, for `cadre_server::Cadre::routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_mailboxes))
}
