//! Registration hardened (issue #18): what a pending registration needs to be left alone and
//! to limit its resends, and identifying values unique ignoring case.
//!
//! `pending_users` gains `completion_process_id` (the `complete_registration` process started
//! by using its link: the purge never touches such a registration), `resends` and
//! `resends_since` (confirmation links resent in the current hour, counted in the database so
//! that the limit holds across restarts and nodes).
//!
//! `registration_notices` counts, per address and hour, the mails a submission sends to an
//! address without being asked by its owner (someone tried to register with it, or a name it
//! asked for is taken), so that submissions cannot flood an address with them.
//!
//! `subscription_instance_values.unique_value` becomes a key instead of a copy of the value:
//! NFKC, then lower case, then NFKC again (the domain's `identity_key`, copied here so that this
//! migration keeps doing what it did when it shipped), so that `Zed` and `zed` can no longer
//! both be live user names. Existing values that would collide make the migration fail,
//! changing nothing, with a message naming each colliding value and its subscription: which of
//! two live identities keeps a name is a decision for a person (terminate or rename one, then
//! migrate again), not for a migration. `down` puts the exact values back as keys.

use std::collections::HashMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PendingUsers {
    Table,
    CompletionProcessId,
    Resends,
    ResendsSince,
}

#[derive(DeriveIden)]
enum RegistrationNotices {
    Table,
    Address,
    Sent,
    Since,
}

#[derive(DeriveIden)]
enum SubscriptionInstanceValues {
    Table,
    Id,
    UniqueValue,
    Value,
}

/// The new columns, each its own statement (SQLite alters one column at a time).
fn columns() -> [ColumnDef; 3] {
    [
        uuid_null(PendingUsers::CompletionProcessId),
        big_integer(PendingUsers::Resends).default(0).take(),
        timestamp_with_time_zone_null(PendingUsers::ResendsSince),
    ]
}

/// The uniqueness key of an identifying value as this migration computes it.
fn key(value: &str) -> String {
    let lower: String = value.nfkc().flat_map(char::to_lowercase).collect();
    lower.nfkc().collect()
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: Uuid,
    resource_type_id: Uuid,
    subscription_id: Uuid,
    unique_value: String,
}

/// Rewrites every claimed identifying value's key, or fails naming the collisions.
async fn fold_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let txn = db.begin().await?;
    let rows = Row::find_by_statement(Statement::from_string(
        backend,
        "SELECT v.id, v.resource_type_id, i.subscription_id, v.unique_value \
         FROM subscription_instance_values v \
         JOIN subscription_instances i ON i.id = v.subscription_instance_id \
         WHERE v.unique_value IS NOT NULL \
         ORDER BY v.id",
    ))
    .all(&txn)
    .await?;
    let mut holders: HashMap<(_, String), &Row> = HashMap::new();
    let mut collisions = Vec::new();
    for row in &rows {
        if let Some(first) = holders.insert((row.resource_type_id, key(&row.unique_value)), row) {
            collisions.push(format!(
                "{:?} (subscription {}) and {:?} (subscription {})",
                first.unique_value, first.subscription_id, row.unique_value, row.subscription_id
            ));
        }
    }
    if !collisions.is_empty() {
        return Err(DbErr::Migration(format!(
            "identifying values become unique ignoring case, and these live subscriptions hold \
             values that differ only in case or compatibility form: {}; terminate or rename one \
             of each pair, then migrate again",
            collisions.join("; ")
        )));
    }
    for row in &rows {
        let folded = key(&row.unique_value);
        if folded != row.unique_value {
            let update = Query::update()
                .table(SubscriptionInstanceValues::Table)
                .value(SubscriptionInstanceValues::UniqueValue, folded)
                .and_where(Expr::col(SubscriptionInstanceValues::Id).eq(row.id))
                .take();
            txn.execute(&update).await?;
        }
    }
    txn.commit().await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        fold_keys(manager).await?;
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(PendingUsers::Table)
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RegistrationNotices::Table)
                    .col(string_len(RegistrationNotices::Address, 254).primary_key())
                    .col(big_integer(RegistrationNotices::Sent))
                    .col(timestamp_with_time_zone(RegistrationNotices::Since))
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RegistrationNotices::Table).take())
            .await?;
        for column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(PendingUsers::Table)
                        .drop_column(column.get_column_name())
                        .take(),
                )
                .await?;
        }
        let restore = Query::update()
            .table(SubscriptionInstanceValues::Table)
            .value(
                SubscriptionInstanceValues::UniqueValue,
                Expr::col(SubscriptionInstanceValues::Value),
            )
            .and_where(Expr::col(SubscriptionInstanceValues::UniqueValue).is_not_null())
            .take();
        manager.exec_stmt(restore).await
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn keys_fold_case_and_compatibility_forms() {
        assert_eq!(key("Zed"), "zed");
        assert_eq!(key("ZED"), key("zed"));
        assert_eq!(key("\u{FF3A}ed"), "zed", "a fullwidth Z");
        assert_eq!(key("Jose\u{301}"), "jos\u{e9}");
        assert_eq!(key("user_1"), "user_1");
    }
}
