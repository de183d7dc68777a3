//! What a caller may see. Admins see everything; anyone else sees their own User subscription,
//! the groups it belongs to and the discoverable groups, and the processes that concern their
//! own user. Whatever a caller may not see answers exactly as a missing one does.

use cadre_domain::DomainError;
use cadre_domain::models::DomainModel;
use cadre_products::models::User;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The subscriptions `caller` may see: `None` for all (admins).
pub async fn visible_subscriptions(
    state: &AppState,
    caller: &Caller,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    if caller.is_admin() {
        return Ok(None);
    }
    let mut visible = state.registration.discoverable_group_ids().await?;
    if let Some(user_id) = caller.user_id() {
        visible.push(user_id);
        match state.engine.store().load_subscription(user_id).await {
            Ok(record) => {
                if let Ok(user) = User::from_record(record) {
                    visible.extend(
                        user.user
                            .groups
                            .iter()
                            .map(|group| group.owner_subscription_id),
                    );
                }
            }
            Err(DomainError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    visible.sort_unstable();
    visible.dedup();
    Ok(Some(visible))
}

/// Refuses subscription `id` to a caller who may not see it, as if it did not exist.
pub async fn require_visible_subscription(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(), ApiError> {
    match visible_subscriptions(state, caller).await? {
        Some(visible) if !visible.contains(&id) => {
            Err(DomainError::not_found("subscription", id).into())
        }
        _ => Ok(()),
    }
}

/// Refuses process `id` to a caller who may not see it (a non-admin sees the processes that
/// concern their own user), as if it did not exist.
pub async fn require_visible_process(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    let concerned = state.engine.store().process_subscriptions(id).await?;
    let own = caller.user_id();
    if own.is_some_and(|own| concerned.contains(&own)) {
        Ok(())
    } else {
        Err(DomainError::not_found("process", id).into())
    }
}
