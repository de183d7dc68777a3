//! Test helpers (feature `testing`): a freshly migrated scratch database per test, removed when
//! the test ends.
//!
//! Without `DATABASE_URL`, or with a SQLite one, each store is a private in-memory SQLite
//! database, and each shared database ([`scratch_database`]) a SQLite file in the temp dir.
//! With `DATABASE_URL=postgres://…`, each gets a new database `cadre_test_<uuid>` on that
//! server, so tests run in parallel without seeing each other.
//!
//! A scratch database is a guard: dropping it (at the end of a test, also when the test panics)
//! deletes the SQLite file with its WAL and shared-memory files, or drops the PostgreSQL
//! database with `DROP DATABASE … WITH (FORCE)`, closing connections still open to it.

#![allow(clippy::expect_used)]

use std::io::Write;
use std::ops::Deref;
use std::path::PathBuf;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::{SeaStore, connect, migrate};

/// Which backend the tests run on, from `DATABASE_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
}

/// A scratch database, removed when dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    url: String,
    place: Place,
}

/// Where a scratch database lives, and so what removing it takes.
#[derive(Debug)]
enum Place {
    /// A private in-memory SQLite database: it goes with its last connection.
    Memory,
    /// A SQLite file (and its `-wal` and `-shm` files).
    File(PathBuf),
    /// Database `name` on the PostgreSQL server at `server`.
    Postgres { server: String, name: String },
    /// Kept on purpose ([`ScratchDatabase::keep`]): left where it is.
    Kept,
}

impl ScratchDatabase {
    /// The database's URL, for [`store_at`], [`connect`] or another process.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Keeps the database when this guard goes (to look at it afterwards); returns its URL.
    pub fn keep(mut self) -> String {
        self.place = Place::Kept;
        std::mem::take(&mut self.url)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        match &self.place {
            Place::Memory | Place::Kept => {}
            Place::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    match std::fs::remove_file(&file) {
                        Ok(()) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => report(&format!(
                            "cannot remove scratch file {}: {error}",
                            file.display()
                        )),
                    }
                }
            }
            Place::Postgres { server, name } => {
                if let Err(error) = drop_postgres_database(server, name) {
                    report(&format!("cannot drop scratch database {name}: {error}"));
                }
            }
        }
    }
}

/// Writes `problem` to stderr itself, past the test harness's capture of `eprintln!`, so that
/// a database left behind shows even when its test passed.
fn report(problem: &str) {
    let _ = writeln!(std::io::stderr(), "{problem}");
}

/// Drops database `name` on `server` from a thread of its own (sea-query has no statement for
/// creating or dropping a database: this one and `CREATE DATABASE` stay raw SQL, on
/// PostgreSQL only, with `name` a generated `{prefix}_{uuid}`) with a runtime of its own, so
/// that it works inside a runtime (even a single-threaded one, which a blocked thread would
/// stall) and outside one, and also while a panic unwinds.
fn drop_postgres_database(server: &str, name: &str) -> Result<(), String> {
    let server = server.to_owned();
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let dropping = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        runtime.block_on(async {
            let admin = connect(&server).await.map_err(|error| error.to_string())?;
            let dropped = admin.execute_unprepared(&statement).await;
            let _ = admin.close().await;
            dropped.map(|_| ()).map_err(|error| error.to_string())
        })
    });
    dropping
        .join()
        .map_err(|_| "the thread dropping it panicked".to_owned())?
}

/// A migrated store over a scratch database that goes with it: derefs to the [`SeaStore`]
/// (clone that for an `Arc<dyn Store>`; the database lives as long as this value).
pub struct ScratchStore {
    // Fields drop in order: the store's connections first, then the database.
    store: SeaStore,
    database: ScratchDatabase,
}

impl ScratchStore {
    /// The database the store is over.
    pub fn database(&self) -> &ScratchDatabase {
        &self.database
    }
}

impl Deref for ScratchStore {
    type Target = SeaStore;

    fn deref(&self) -> &SeaStore {
        &self.store
    }
}

/// A new, empty, unmigrated scratch database with a connection to it (the connection first:
/// it must be dropped before the database).
pub async fn scratch_connection() -> (DatabaseConnection, ScratchDatabase) {
    let database = match postgres_url() {
        Some(server) => postgres_database(&server, "cadre_test").await,
        None => ScratchDatabase {
            url: "sqlite::memory:".to_owned(),
            place: Place::Memory,
        },
    };
    let conn = connect(database.url())
        .await
        .expect("connect to scratch database");
    (conn, database)
}

/// A new, empty, unmigrated scratch database that several connections (or processes) can
/// share: a fresh PostgreSQL database, or a fresh SQLite file in the temp dir.
pub async fn scratch_database() -> ScratchDatabase {
    match postgres_url() {
        Some(server) => postgres_database(&server, "cadre_test").await,
        None => {
            let path = std::env::temp_dir().join(format!("cadre_test_{}.db", unique()));
            ScratchDatabase {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                place: Place::File(path),
            }
        }
    }
}

/// A new database `{prefix}_{uuid}` on the PostgreSQL server at `server`.
async fn postgres_database(server: &str, prefix: &str) -> ScratchDatabase {
    let name = format!("{prefix}_{}", unique());
    ScratchDatabase {
        url: create_postgres_database(server, &name).await,
        place: Place::Postgres {
            server: server.to_owned(),
            name,
        },
    }
}

/// Creates database `name` on the PostgreSQL server at `server`; returns its URL.
async fn create_postgres_database(server: &str, name: &str) -> String {
    let admin = connect(server)
        .await
        .expect("connect to the PostgreSQL server");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create a fresh database");
    admin.close().await.expect("close admin connection");
    with_database(server, name)
}

/// A name no other scratch database has.
fn unique() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A new, empty database named `{prefix}_{uuid}` for a benchmark: on the PostgreSQL server
/// `server` names, or as a SQLite file in the temp dir when there is none. A guard like
/// [`scratch_database`]'s, removed when dropped unless [`ScratchDatabase::keep`] keeps it to be
/// looked at afterwards; tests take a [`scratch_database`].
pub async fn fresh_database_on(server: Option<&str>, prefix: &str) -> ScratchDatabase {
    match server {
        Some(server) => postgres_database(server, prefix).await,
        None => {
            let path = std::env::temp_dir().join(format!("{prefix}_{}.db", unique()));
            ScratchDatabase {
                url: format!("sqlite://{}?mode=rwc", path.display()),
                place: Place::File(path),
            }
        }
    }
}

/// A store over the scratch database at `url` (from [`scratch_database`]), migrated.
pub async fn store_at(url: &str) -> SeaStore {
    let conn = connect(url).await.expect("connect to scratch database");
    migrate(&conn).await.expect("migrate scratch database");
    SeaStore::new(conn)
}

/// A store over a new scratch database with every migration applied, removed when dropped.
pub async fn scratch_store() -> ScratchStore {
    let (conn, database) = scratch_connection().await;
    migrate(&conn).await.expect("migrate scratch database");
    ScratchStore {
        store: SeaStore::new(conn),
        database,
    }
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
