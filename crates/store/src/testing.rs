//! Test helpers (feature `testing`): a freshly migrated scratch database per test.
//!
//! Without `DATABASE_URL`, or with a SQLite one, each store is a private in-memory SQLite
//! database. With `DATABASE_URL=postgres://…`, each store gets a new database
//! `cadre_test_<uuid>` on that server, so tests run in parallel without seeing each other.

#![allow(clippy::expect_used)]

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::{SeaStore, connect, migrate};

/// Which backend the tests run on, from `DATABASE_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
}

/// A new, empty, unmigrated scratch database.
pub async fn scratch_connection() -> DatabaseConnection {
    match postgres_url() {
        Some(_) => connect(&scratch_url().await)
            .await
            .expect("connect to scratch database"),
        None => connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite"),
    }
}

/// The URL of a new, empty, unmigrated scratch database that several connections (or
/// processes) can share: a fresh PostgreSQL database, or a fresh SQLite file in the temp dir.
pub async fn scratch_url() -> String {
    fresh_database_on(postgres_url().as_deref(), "cadre_test").await
}

/// The URL of a new, empty database named `{prefix}_{uuid}`: on the PostgreSQL server `server`
/// names, or as a SQLite file in the temp dir when there is none.
pub async fn fresh_database_on(server: Option<&str>, prefix: &str) -> String {
    let name = format!("{prefix}_{}", Uuid::new_v4().simple());
    match server {
        Some(server) => {
            let admin = connect(server)
                .await
                .expect("connect to the PostgreSQL server");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create a fresh database");
            admin.close().await.expect("close admin connection");
            with_database(server, &name)
        }
        None => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    }
}

/// A store over the scratch database at `url` (from [`scratch_url`]), migrated.
pub async fn store_at(url: &str) -> SeaStore {
    let conn = connect(url).await.expect("connect to scratch database");
    migrate(&conn).await.expect("migrate scratch database");
    SeaStore::new(conn)
}

/// A store over a new scratch database with every migration applied.
pub async fn scratch_store() -> SeaStore {
    let conn = scratch_connection().await;
    migrate(&conn).await.expect("migrate scratch database");
    SeaStore::new(conn)
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced_or_added() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5433/postgres", "t1"),
            "postgres://u:p@127.0.0.1:5433/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "t1"),
            "postgres://u@h:1/t1?sslmode=disable"
        );
    }
}
