//! Migrations are reversible: down then up restores an identical schema.

use cadre_migrations::{Migrator, MigratorTrait};
use cadre_store::testing::scratch_connection;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// A textual dump of every table, column, index and constraint.
async fn schema(conn: &DatabaseConnection) -> Vec<String> {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') AS line FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        }
        _ => {
            "SELECT line FROM ( \
               SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || \
                      is_nullable || ' ' || COALESCE(column_default, '') AS line \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
               UNION ALL \
               SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes \
                WHERE schemaname = current_schema() \
               UNION ALL \
               SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
                WHERE connamespace = current_schema()::regnamespace \
             ) AS schema ORDER BY line"
        }
    };
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "line").unwrap())
        .collect()
}

async fn row_count(conn: &DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

#[tokio::test]
async fn down_then_up_restores_an_identical_schema_and_catalogue() {
    let (conn, _database) = scratch_connection().await;
    Migrator::up(&conn, None).await.unwrap();
    let migrated = schema(&conn).await;
    assert!(
        migrated
            .iter()
            .any(|line| line.contains("uq_subscription_instance_values_unique_value"))
    );
    assert_eq!(row_count(&conn, "products").await, 3);

    let applied = Migrator::get_applied_migrations(&conn).await.unwrap().len();
    assert_eq!(applied, Migrator::migrations().len());
    Migrator::down(&conn, None).await.unwrap();
    let emptied = schema(&conn).await;
    assert!(
        emptied.iter().all(|line| line.contains("seaql_migrations")),
        "only the migration table remains: {emptied:?}"
    );

    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(schema(&conn).await, migrated);
    assert_eq!(row_count(&conn, "products").await, 3);
    assert_eq!(row_count(&conn, "resource_types").await, 17);
    // The last migration adds the push states' table, the one before it the targets'; the two
    // before those the groups' external id and the users' employment. Their downs take them
    // away again.
    let has_table = |table: &'static str| {
        let conn = &conn;
        async move {
            cadre_migrations::SchemaManager::new(conn)
                .has_table(table)
                .await
                .unwrap()
        }
    };
    Migrator::down(&conn, Some(1)).await.unwrap();
    assert!(!has_table("push_states").await);
    assert!(has_table("outbound_targets").await);
    Migrator::down(&conn, Some(1)).await.unwrap();
    assert!(!has_table("outbound_targets").await);
    assert_eq!(row_count(&conn, "resource_types").await, 17);
    Migrator::down(&conn, Some(1)).await.unwrap();
    assert_eq!(row_count(&conn, "resource_types").await, 11);
    Migrator::down(&conn, Some(1)).await.unwrap();
    assert_eq!(row_count(&conn, "resource_types").await, 10);
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(schema(&conn).await, migrated);
}

/// The number of products, or zero before the catalogue tables exist.
async fn product_count(conn: &DatabaseConnection) -> i64 {
    let has_products = cadre_migrations::SchemaManager::new(conn)
        .has_table("products")
        .await
        .unwrap();
    if has_products {
        row_count(conn, "products").await
    } else {
        0
    }
}

#[tokio::test]
async fn each_migration_reverts_on_its_own() {
    let (conn, _database) = scratch_connection().await;
    Migrator::install(&conn).await.unwrap();
    // The schema and catalogue size after 0, 1, …, all migrations, going up one at a time.
    let mut states = vec![(schema(&conn).await, product_count(&conn).await)];
    for _ in Migrator::migrations() {
        Migrator::up(&conn, Some(1)).await.unwrap();
        states.push((schema(&conn).await, product_count(&conn).await));
    }
    assert_eq!(
        states[2].1, 3,
        "the second migration installs the demo catalogue"
    );
    // Going down one at a time passes through the same states in reverse.
    for expected in states.iter().rev().skip(1) {
        Migrator::down(&conn, Some(1)).await.unwrap();
        assert_eq!(&(schema(&conn).await, product_count(&conn).await), expected);
    }
}

/// The claims (`unique_value`) of live user names, sorted.
async fn username_claims(conn: &DatabaseConnection) -> Vec<String> {
    let sql = "SELECT v.unique_value AS line FROM subscription_instance_values v \
               JOIN resource_types r ON r.id = v.resource_type_id \
               WHERE r.resource_type = 'username' AND v.unique_value IS NOT NULL \
               ORDER BY v.unique_value";
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "line").unwrap())
        .collect()
}

#[tokio::test]
async fn migration_13_folds_identifying_values_and_refuses_collisions() {
    let (conn, _database) = scratch_connection().await;
    // Migration 13 and those after it, undone together to get back to the schema before it.
    let from_13 = u32::try_from(Migrator::migrations().len() - 12).unwrap();
    Migrator::up(&conn, None).await.unwrap();
    let store = cadre_store::SeaStore::new(conn.clone());
    let group = crate::fixtures::active_group(&store, "g1", "Group One", &[]).await;
    crate::fixtures::provisioned_user(&store, "zed", "Zed", "zed@example.org", &[&group])
        .await
        .unwrap();
    assert_eq!(username_claims(&conn).await, ["zed"]);

    // Down (through 13) restores the exact values as claims; up folds them again.
    Migrator::down(&conn, Some(from_13)).await.unwrap();
    assert_eq!(username_claims(&conn).await, ["Zed"]);
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(username_claims(&conn).await, ["zed"]);

    // Before the migration `Zed` and `zed` could both be claimed; the migration refuses to
    // choose between them and changes nothing.
    Migrator::down(&conn, Some(from_13)).await.unwrap();
    let store = cadre_store::SeaStore::new(conn.clone());
    crate::fixtures::provisioned_user(&store, "zed2", "zed", "zed2@example.org", &[&group])
        .await
        .unwrap();
    assert_eq!(username_claims(&conn).await, ["Zed", "zed"]);
    let error = Migrator::up(&conn, None).await.unwrap_err().to_string();
    assert!(
        error.contains("\"Zed\" (subscription") && error.contains("\"zed\" (subscription"),
        "{error}"
    );
    assert_eq!(username_claims(&conn).await, ["Zed", "zed"]);
}
