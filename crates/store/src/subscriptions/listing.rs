//! Listing subscriptions: counting what a filter matches in a snapshot, rows to summaries, and
//! text patterns.

use sea_orm::sea_query::{Asterisk, Func};

use super::*;

/// What a count can be checked against later: on PostgreSQL the current MVCC snapshot (equal
/// snapshots see the same committed rows), on SQLite the version of `subscription_changes`
/// (moved by triggers with every write of a subscription row).
pub(super) fn snapshot_expr(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::from(Func::cust("pg_current_snapshot")).cast_as("text"),
        _ => Expr::SubQuery(
            None,
            Box::new(
                Query::select()
                    .expr(Expr::col("version").cast_as("TEXT"))
                    .from("subscription_changes")
                    .take()
                    .into(),
            ),
        ),
    }
}

/// The database's current snapshot, as [`snapshot_expr`] reads it.
pub(super) async fn current_snapshot(conn: &impl ConnectionTrait) -> Result<String> {
    let backend = conn.get_database_backend();
    let query = Query::select()
        .expr_as(snapshot_expr(backend), "snapshot")
        .take();
    conn.query_one_raw(backend.build(&query))
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::Storage("the snapshot query returned no row".to_owned()))?
        .try_get("", "snapshot")
        .map_err(storage_error)
}

/// Counts the rows `select` matches, in the same statement as the snapshot the count saw:
/// `SELECT snapshot, COUNT(*) FROM (SELECT id …) AS matching`.
pub(super) async fn count_matching(
    conn: &impl ConnectionTrait,
    select: &Select<subscriptions::Entity>,
) -> Result<Counted> {
    let backend = conn.get_database_backend();
    let matching = select
        .clone()
        .select_only()
        .column(subscriptions::Column::Id)
        .into_query();
    let query = Query::select()
        .expr_as(snapshot_expr(backend), "snapshot")
        .expr_as(Expr::col(Asterisk).count(), "total")
        .from_subquery(matching, "matching")
        .take();
    let row = conn
        .query_one_raw(backend.build(&query))
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
