//! Listing subscriptions: counting what a filter matches in a snapshot, rows to summaries, and
//! text patterns.

use super::*;

/// What a count can be checked against later: on PostgreSQL the current MVCC snapshot (equal
/// snapshots see the same committed rows), on SQLite the version of `subscription_changes`
/// (moved by triggers with every write of a subscription row).
pub(super) fn snapshot_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "pg_current_snapshot()::text",
        _ => "(SELECT CAST(version AS TEXT) FROM subscription_changes)",
    }
}

/// The database's current snapshot, as [`snapshot_sql`] reads it.
pub(super) async fn current_snapshot(conn: &impl ConnectionTrait) -> Result<String> {
    let backend = conn.get_database_backend();
    let statement = Statement::from_string(
        backend,
        format!("SELECT {} AS snapshot", snapshot_sql(backend)),
    );
    conn.query_one_raw(statement)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::Storage("the snapshot query returned no row".to_owned()))?
        .try_get("", "snapshot")
        .map_err(storage_error)
}

/// Counts the rows `select` matches, in the same statement as the snapshot the count saw.
pub(super) async fn count_matching(
    conn: &impl ConnectionTrait,
    select: &Select<subscriptions::Entity>,
) -> Result<Counted> {
    let backend = conn.get_database_backend();
    let inner = select
        .clone()
        .select_only()
        .column(subscriptions::Column::Id)
        .build(backend);
    let statement = Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT {} AS snapshot, COUNT(*) AS total FROM ({}) AS matching",
            snapshot_sql(backend),
            inner.sql
        ),
        inner.values.map(|values| values.0).unwrap_or_default(),
    );
    let row = conn
        .query_one_raw(statement)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::Storage("a count returned no row".to_owned()))?;
    let total: i64 = row.try_get("", "total").map_err(storage_error)?;
    Ok(Counted {
        total: u64::try_from(total).unwrap_or_default(),
        snapshot: row.try_get("", "snapshot").map_err(storage_error)?,
    })
}

pub(crate) fn summary(
    catalogue: &Catalogue,
    row: subscriptions::Model,
) -> Result<SubscriptionSummary> {
    let product = catalogue.product(row.product_id)?;
    Ok(SubscriptionSummary {
        product_name: product.name.clone(),
        product_type: product.product_type.clone(),
        subscription: to_subscription(row)?,
    })
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
pub(super) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
