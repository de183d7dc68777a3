//! A listing's page of subscriptions. On SQLite it is read as one row, the page aggregated into a
//! JSON array by the database: fifty rows read one by one cost sqlx-sqlite more than SQLite takes
//! to find them (each row is copied value by value and handed from the connection's thread to
//! the runtime on its own). PostgreSQL's driver reads rows cheaply and building the JSON would
//! cost the server more than that, so there the rows are read as they are.

use cadre_domain::{DomainError, Result, SubscriptionSummary};
use chrono::{DateTime, FixedOffset};
use sea_orm::sea_query::{Expr, Func, NullOrdering, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Order, QueryOrder, QueryTrait, Select};
use uuid::Uuid;

use super::summary;
use crate::catalogue::Catalogue;
use crate::entities::subscriptions;
use crate::storage_error;

/// One key of a page's order: a column, its direction, and whether nulls come last.
pub(crate) struct SortKey {
    /// The column.
    pub column: subscriptions::Column,
    /// Ascending or descending.
    pub order: Order,
    /// Nulls after every value (only for nullable columns).
    pub nulls_last: bool,
}

/// A subscription as SQLite's page query aggregates it: id, product id and customer id (hex),
/// description, status, in sync (0 or 1), start and end date (RFC 3339), note, version.
type PageRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// The single row of SQLite's page query.
#[derive(Debug, FromQueryResult)]
struct PageJson {
    page: String,
}

/// The rows `select` (filtered, limited and offset) finds in the order `keys`, with their
/// products from `catalogue`.
pub(crate) async fn read_page(
    conn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    mut select: Select<subscriptions::Entity>,
    keys: &[SortKey],
) -> Result<Vec<SubscriptionSummary>> {
    for key in keys {
        select = if key.nulls_last {
            select.order_by_with_nulls(key.column, key.order.clone(), NullOrdering::Last)
        } else {
            select.order_by(key.column, key.order.clone())
        };
    }
    let backend = conn.get_database_backend();
    if backend == DbBackend::Postgres {
        let rows = select.all(conn).await.map_err(storage_error)?;
        return rows
            .into_iter()
            .map(|row| summary(catalogue, row))
            .collect();
    }
    let json = PageJson::find_by_statement(backend.build(&aggregate_query(select, keys)))
        .one(conn)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| malformed("the page query returned no row"))?
        .page;
    let rows: Vec<PageRow> = serde_json::from_str(&json).map_err(malformed)?;
    rows.into_iter()
        .map(|row| summary(catalogue, to_model(row)?))
        .collect()
}

/// The SQLite statement aggregating the rows of `inner` into one JSON array, in the order
/// `keys`: `SELECT json_group_array(json_array(…) ORDER BY …) AS page FROM (inner) AS page`.
/// Ids are stored as blobs: they read as hex text. sea-query has no ordered aggregate, so the
/// call is a custom expression around sea-query's arguments and order keys; its `?`
/// placeholders are SQLite's.
fn aggregate_query(inner: Select<subscriptions::Entity>, keys: &[SortKey]) -> SelectStatement {
    use subscriptions::Column;
    let hex = |column: Column| Expr::from(Func::cust("hex").arg(Expr::col(column)));
    let entry = Func::cust("json_array").args([
        hex(Column::Id),
        hex(Column::ProductId),
        hex(Column::CustomerId),
        Expr::col(Column::Description),
        Expr::col(Column::Status),
        Expr::col(Column::Insync),
        Expr::col(Column::StartDate),
        Expr::col(Column::EndDate),
        Expr::col(Column::Note),
        Expr::col(Column::Version),
    ]);
    let order = keys.iter().map(|key| {
        let direction = match key.order {
            Order::Desc => "DESC",
            _ => "ASC",
        };
        let nulls = if key.nulls_last { " NULLS LAST" } else { "" };
        Expr::cust_with_expr(format!("? {direction}{nulls}"), Expr::col(key.column))
    });
    let aggregate = if keys.is_empty() {
        Expr::from(Func::cust("json_group_array").arg(entry))
    } else {
        Expr::cust_with_exprs(
            format!(
                "json_group_array(? ORDER BY {})",
                vec!["?"; keys.len()].join(", ")
            ),
            std::iter::once(entry.into()).chain(order),
        )
    };
    Query::select()
        .expr_as(aggregate, "page")
        .from_subquery(inner.into_query(), "page")
        .take()
}

fn malformed(error: impl std::fmt::Display) -> DomainError {
    DomainError::Storage(format!("malformed page of subscriptions: {error}"))
}

fn parse_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(malformed)
}

fn parse_date(text: Option<String>) -> Result<Option<DateTime<FixedOffset>>> {
    text.map(|text| DateTime::parse_from_rfc3339(&text).map_err(malformed))
        .transpose()
}

/// The subscription row an aggregated entry stands for.
fn to_model(row: PageRow) -> Result<subscriptions::Model> {
    let (id, product_id, customer_id, description, status, insync, start, end, note, version) = row;
    Ok(subscriptions::Model {
        id: parse_id(&id)?,
        product_id: parse_id(&product_id)?,
        customer_id: parse_id(&customer_id)?,
        description,
        status,
        insync: insync != 0,
        start_date: parse_date(start)?,
        end_date: parse_date(end)?,
        note,
        version,
    })
}

#[cfg(test)]
mod tests {
    //! The shape of SQLite's page statement: one row, the page aggregated in its order.

    use sea_orm::EntityTrait;

    use super::*;

    #[test]
    fn a_page_is_one_ordered_aggregate_over_the_page_query() {
        let keys = [
            SortKey {
                column: subscriptions::Column::StartDate,
                order: Order::Desc,
                nulls_last: true,
            },
            SortKey {
                column: subscriptions::Column::Id,
                order: Order::Desc,
                nulls_last: false,
            },
        ];
        let statement =
            DbBackend::Sqlite.build(&aggregate_query(subscriptions::Entity::find(), &keys));
        assert_eq!(
            statement.sql,
            r#"SELECT json_group_array(json_array(hex("id"), hex("product_id"), hex("customer_id"), "description", "status", "insync", "start_date", "end_date", "note", "version") ORDER BY "start_date" DESC NULLS LAST, "id" DESC) AS "page" FROM (SELECT "subscriptions"."id", "subscriptions"."product_id", "subscriptions"."customer_id", "subscriptions"."description", "subscriptions"."status", "subscriptions"."insync", "subscriptions"."start_date", "subscriptions"."end_date", "subscriptions"."note", "subscriptions"."version" FROM "subscriptions") AS "page""#
        );
    }
}
