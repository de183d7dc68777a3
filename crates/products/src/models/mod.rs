//! The typed models of the built-in products, one type per lifecycle family (see
//! [`cadre_domain::models`]): `UserInactive` and `User`, `UserGroupInactive` and `UserGroup`.

mod user;
mod user_group;

pub use user::{
    Affiliation, Employment, User, UserBlock, UserBlockInactive, UserInactive, user_description,
};
pub use user_group::{
    UserGroup, UserGroupBlock, UserGroupBlockInactive, UserGroupInactive, user_group_description,
};

use cadre_domain::SubscriptionRepository;
use cadre_domain::models::DomainModel;
use cadre_domain::{DomainError, Lifecycle, ProductType, Result, SubscriptionRecord};
use uuid::Uuid;

/// The typed domain model of `record` as JSON, as the API shows it: the `*Inactive` model of its
/// product type (which covers every lifecycle), or the generic record for a product type
/// without a typed model.
pub fn to_json(record: SubscriptionRecord) -> Result<serde_json::Value> {
    fn render<M: DomainModel + serde::Serialize>(
        record: SubscriptionRecord,
    ) -> Result<serde_json::Value> {
        let model = M::from_record(record)?;
        serde_json::to_value(model)
            .map_err(|error| DomainError::invalid("subscription", error.to_string()))
    }
    match record.product.product_type.as_str() {
        ProductType::USER => render::<UserInactive>(record),
        ProductType::USER_GROUP => render::<UserGroupInactive>(record),
        _ => serde_json::to_value(record)
            .map_err(|error| DomainError::invalid("subscription", error.to_string())),
    }
}

/// Whether subscription `id` is a User in the `active` lifecycle: the test for a person who may
/// act (hold a token for themselves, belong to a workflow group). A missing id is not one.
pub async fn is_active_user(
    repository: &(impl SubscriptionRepository + ?Sized),
    id: Uuid,
) -> Result<bool> {
    match repository.load_subscription(id).await {
        Ok(record) => Ok(record.product.product_type.as_str() == ProductType::USER
            && record.subscription.lifecycle == Lifecycle::Active),
        Err(DomainError::NotFound { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}
