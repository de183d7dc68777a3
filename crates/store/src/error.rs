//! Translation of database errors into domain errors: constraint violations become conflicts
//! with a message a person can act on; anything else is a storage failure, logged here.

use cadre_domain::DomainError;
use sea_orm::{DbErr, SqlErr};

/// Turns a sea-orm error into a [`DomainError`], never leaking SQL to callers.
pub(crate) fn storage_error(error: DbErr) -> DomainError {
    // SQLite reports some foreign key failures with an extended code sea-orm does not map.
    let sql_err = error.sql_err().or_else(|| {
        error
            .to_string()
            .contains("FOREIGN KEY constraint failed")
            .then(|| SqlErr::ForeignKeyConstraintViolation(error.to_string()))
    });
    match sql_err {
        Some(SqlErr::UniqueConstraintViolation(detail)) => {
            DomainError::Conflict(unique_message(&detail).to_owned())
        }
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => DomainError::Conflict(
            "the change refers to something that does not exist, or removes something still in use"
                .to_owned(),
        ),
        _ => {
            tracing::error!(%error, "database error");
            DomainError::Storage("the database failed to complete the operation".to_owned())
        }
    }
}

/// A human message for a unique index, recognised by its name (PostgreSQL) or columns (SQLite).
fn unique_message(detail: &str) -> &'static str {
    const KNOWN: &[(&[&str], &str)] = &[
        (
            &[
                "uq_subscription_instance_values_unique_value",
                "unique_value",
            ],
            "a live subscription already holds one of these identifying values",
        ),
        (
            &["outbound_targets_name_key_key", "outbound_targets.name_key"],
            "a target with this name already exists",
        ),
        (
            &["uq_customers_name", "customers.name"],
            "a customer with this name already exists",
        ),
        (
            &["uq_products_name", "products.name"],
            "a product with this name already exists",
        ),
        (
            &[
                "uq_workflow_groups_workflow_name_key",
                "workflow_groups.name_key",
            ],
            "a group with this name already exists in this workflow",
        ),
        (
            &["workflow_groups_pkey", "workflow_groups.id"],
            "a workflow group with this identifier already exists",
        ),
        (
            &["subscriptions_pkey", "subscriptions.id"],
            "a subscription with this id already exists",
        ),
    ];
    KNOWN
        .iter()
        .find(|(needles, _)| needles.iter().any(|needle| detail.contains(needle)))
        .map(|(_, message)| *message)
        .unwrap_or("the change collides with an existing record")
}
