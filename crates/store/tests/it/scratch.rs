//! The scratch databases of `cadre_store::testing` are removed when dropped: at the end of a
//! test, inside or outside a runtime, when the test panics, and (PostgreSQL) while connections
//! to them are still open.

use std::path::PathBuf;

use cadre_domain::Store;
use cadre_store::testing::{
    fresh_database_on, postgres_url, scratch_database, scratch_store, store_at,
};

use crate::fixtures::postgres_or_skip;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

/// The last path segment of `url`: the database's name, or the SQLite file's path.
fn database_part(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// The SQLite file of a `sqlite://PATH?mode=rwc` URL.
fn sqlite_file(url: &str) -> PathBuf {
    let path = url.strip_prefix("sqlite://").unwrap();
    PathBuf::from(path.split('?').next().unwrap())
}

/// Whether the database of `url` exists: a file, or a database on the PostgreSQL server.
async fn exists(url: &str) -> bool {
    match postgres_url() {
        None => sqlite_file(url).exists(),
        Some(server) => postgres_database_exists(&server, database_part(url)).await,
    }
}

/// Whether database `name` exists on `server`.
async fn postgres_database_exists(server: &str, name: &str) -> bool {
    let admin = cadre_store::connect(server).await.unwrap();
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let count: i64 = row.try_get("", "n").unwrap();
    admin.close().await.unwrap();
    count == 1
}

#[test]
fn a_scratch_database_dropped_outside_a_runtime_is_removed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (database, url) = runtime.block_on(async {
        let database = scratch_database().await;
        let url = database.url().to_owned();
        let store = store_at(&url).await;
        store.ping().await.unwrap();
        assert!(exists(&url).await, "{url} was created");
        (database, url)
    });
    drop(runtime);
    drop(database);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(!runtime.block_on(exists(&url)), "{url} is still there");
    if postgres_url().is_none() {
        for suffix in ["-wal", "-shm"] {
            let mut file = sqlite_file(&url).into_os_string();
            file.push(suffix);
            assert!(!PathBuf::from(&file).exists(), "{file:?} is still there");
        }
    }
}

#[tokio::test]
async fn a_scratch_database_is_removed_when_its_test_panics() {
    let (sender, created) = tokio::sync::oneshot::channel();
    let failing_test = tokio::spawn(async move {
        let database = scratch_database().await;
        let store = store_at(database.url()).await;
        store.ping().await.unwrap();
        sender.send(database.url().to_owned()).unwrap();
        panic!("a failing assertion");
    });
    let outcome = failing_test.await.unwrap_err();
    assert!(outcome.is_panic(), "{outcome:?}");
    let url = created.await.unwrap();
    assert!(!exists(&url).await, "{url} is still there");
}

#[tokio::test]
async fn postgres_scratch_stores_drop_their_database_even_with_a_transaction_open() {
    let Some(server) = postgres_or_skip(
        "postgres_scratch_stores_drop_their_database_even_with_a_transaction_open",
    ) else {
        return;
    };
    let store = scratch_store().await;
    let name = database_part(store.database().url()).to_owned();
    assert!(name.starts_with("cadre_test_"), "{name}");
    assert!(postgres_database_exists(&server, &name).await);
    // A connection busy in a transaction: `DROP DATABASE` alone would wait for it, or fail.
    let transaction = store.begin().await.unwrap();
    transaction
        .customer(cadre_migrations::demo::DEFAULT_CUSTOMER_ID)
        .await
        .unwrap();
    drop(store);
    assert!(
        !postgres_database_exists(&server, &name).await,
        "{name} is still there"
    );
    drop(transaction);
}

/// A benchmark's database is a guard too: removed when dropped, unless kept on purpose.
#[tokio::test]
async fn a_bench_database_is_removed_unless_kept() {
    let server = postgres_url();
    let removed = fresh_database_on(server.as_deref(), "cadre_test_bench").await;
    let url = removed.url().to_owned();
    assert!(
        database_part(&url).starts_with("cadre_test_bench_"),
        "{url}"
    );
    store_at(&url).await.ping().await.unwrap();
    assert!(exists(&url).await);
    drop(removed);
    assert!(!exists(&url).await, "{url} is still there");

    let kept = fresh_database_on(server.as_deref(), "cadre_test_bench").await;
    store_at(kept.url()).await.ping().await.unwrap();
    let url = kept.keep();
    assert!(exists(&url).await, "{url} was not kept");
    // Removed by hand, as whoever kept it would.
    match &server {
        Some(server) => {
            let admin = cadre_store::connect(server).await.unwrap();
            admin
                .execute_unprepared(&format!(
                    "DROP DATABASE \"{}\" WITH (FORCE)",
                    database_part(&url)
                ))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
        None => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = sqlite_file(&url).into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
    assert!(!exists(&url).await, "{url} is still there");
}
