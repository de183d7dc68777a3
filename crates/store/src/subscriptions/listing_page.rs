//! A listing's page of subscriptions. On SQLite it is read as one row, the page aggregated into a
//! JSON array by the database: fifty rows read one by one cost sqlx-sqlite more than SQLite takes
//! to find them (each row is copied value by value and handed from the connection's thread to
//! the runtime on its own). PostgreSQL's driver reads rows cheaply and building the JSON would
//! cost the server more than that, so there the rows are read as they are.

use cadre_domain::{DomainError, Result, SubscriptionSummary};
use chrono::{DateTime, FixedOffset};
use sea_orm::sea_query::NullOrdering;
use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, IdenStatic, Order, QueryOrder, QueryTrait, Select,
    Statement,
};
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
    let inner = select.build(backend);
    let statement = Statement::from_sql_and_values(
        backend,
        aggregate_sql(&inner.sql, keys),
        inner.values.map(|values| values.0).unwrap_or_default(),
    );
    let json = PageJson::find_by_statement(statement)
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
/// `keys`. Ids are stored as blobs: they read as hex text.
fn aggregate_sql(inner: &str, keys: &[SortKey]) -> String {
    let order: Vec<String> = keys
        .iter()
        .map(|key| {
            let direction = match key.order {
                Order::Desc => "DESC",
                _ => "ASC",
            };
            let nulls = if key.nulls_last { " NULLS LAST" } else { "" };
            format!("{} {direction}{nulls}", key.column.as_str())
        })
        .collect();
    format!(
        "SELECT json_group_array(json_array(hex(id), hex(product_id), hex(customer_id), \
           description, status, insync, start_date, end_date, note, version) ORDER BY {}) \
           AS page FROM ({inner}) AS page",
        order.join(", "),
    )
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
