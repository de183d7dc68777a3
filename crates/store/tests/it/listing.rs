//! Listing subscriptions with filters, sorting and pagination.

use std::sync::{Arc, Mutex};

use cadre_domain::{
    Lifecycle, ProductType, SortOrder, SubscriptionQuery, SubscriptionRepository, SubscriptionSort,
};
use cadre_store::testing::scratch_store;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::fixtures::{
    active_group, initial_group, postgres_or_skip, provisioned_user, sqlite_or_skip,
};

fn ids(page: &cadre_domain::Page<cadre_domain::SubscriptionSummary>) -> Vec<Uuid> {
    page.items.iter().map(|item| item.subscription.id).collect()
}

#[tokio::test]
async fn filters_and_pages_return_exactly_the_expected_rows() {
    let store = scratch_store().await;
    let alpha = active_group(&store, "alpha", "Alpha", &[]).await;
    let beta = active_group(&store, "beta", "Beta 50%_off", &[]).await;
    let draft = initial_group(&store, "Draft group ALPHA").await;
    let ann = provisioned_user(&store, "ann", "ann", "ann@example.org", &[&alpha])
        .await
        .unwrap();
    let bob = provisioned_user(&store, "bob", "bob", "bob@example.org", &[&beta])
        .await
        .unwrap();
    let (alpha, beta, draft, ann, bob) = (
        alpha.subscription.id,
        beta.subscription.id,
        draft.subscription.id,
        ann.subscription.id,
        bob.subscription.id,
    );

    let all = store
        .list_subscriptions(&SubscriptionQuery::default())
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        [alpha, beta, draft, ann, bob],
        "creation order by default"
    );
    assert_eq!(all.total, 5);

    let groups = SubscriptionQuery {
        product_type: Some(ProductType::user_group()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_subscriptions(&groups).await.unwrap()),
        [alpha, beta, draft]
    );

    let active_groups = SubscriptionQuery {
        lifecycle: Some(Lifecycle::Active),
        ..groups.clone()
    };
    let page = store.list_subscriptions(&active_groups).await.unwrap();
    assert_eq!(ids(&page), [alpha, beta]);
    assert_eq!(page.items[0].product_name, "User Group");

    let provisioning_users = SubscriptionQuery {
        product_type: Some(ProductType::user()),
        lifecycle: Some(Lifecycle::Provisioning),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_subscriptions(&provisioning_users).await.unwrap()),
        [ann, bob]
    );

    let text = SubscriptionQuery {
        text: Some("alpha".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_subscriptions(&text).await.unwrap()),
        [alpha, draft],
        "case-insensitive"
    );
    let wildcard = SubscriptionQuery {
        text: Some("50%_".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_subscriptions(&wildcard).await.unwrap()),
        [beta],
        "% and _ are literal"
    );
    let underscore = SubscriptionQuery {
        text: Some("_".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_subscriptions(&underscore).await.unwrap()),
        [beta]
    );

    let second_page = SubscriptionQuery {
        offset: 2,
        limit: Some(2),
        ..Default::default()
    };
    let page = store.list_subscriptions(&second_page).await.unwrap();
    assert_eq!(ids(&page), [draft, ann]);
    assert_eq!(page.total, 5, "total counts every match, not the page");
    let past_the_end = SubscriptionQuery {
        offset: 10,
        limit: Some(2),
        ..Default::default()
    };
    let page = store.list_subscriptions(&past_the_end).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.total, 5);

    let by_description_desc = SubscriptionQuery {
        sort: SubscriptionSort::Description,
        order: SortOrder::Desc,
        ..groups
    };
    assert_eq!(
        ids(&store
            .list_subscriptions(&by_description_desc)
            .await
            .unwrap()),
        [beta, alpha, draft],
        "'User Group Beta…' > 'User Group Alpha' > 'Draft…'"
    );

    let by_start = SubscriptionQuery {
        sort: SubscriptionSort::StartDate,
        ..Default::default()
    };
    let page = store.list_subscriptions(&by_start).await.unwrap();
    assert_eq!(
        &ids(&page)[..2],
        [alpha, beta],
        "started ones first, never-started last"
    );
}

#[tokio::test]
async fn a_paged_total_counts_writes_of_this_store_at_once() {
    let store = scratch_store().await;
    let query = SubscriptionQuery {
        product_type: Some(ProductType::user_group()),
        limit: Some(1),
        ..SubscriptionQuery::default()
    };
    active_group(&store, "alpha", "Alpha", &[]).await;
    assert_eq!(store.list_subscriptions(&query).await.unwrap().total, 1);

    // Written outside a transaction, and inside one: both count at once.
    initial_group(&store, "Draft").await;
    assert_eq!(store.list_subscriptions(&query).await.unwrap().total, 2);
    let txn = cadre_domain::Store::begin(&*store).await.unwrap();
    txn.create_subscription(cadre_domain::NewSubscription {
        id: Uuid::now_v7(),
        product_id: cadre_migrations::demo::USER_GROUP_PRODUCT_ID,
        customer_id: cadre_migrations::demo::DEFAULT_CUSTOMER_ID,
        description: "In a transaction".to_owned(),
    })
    .await
    .unwrap();
    assert_eq!(
        txn.list_subscriptions(&query).await.unwrap().total,
        3,
        "a transaction counts its own writes"
    );
    txn.commit().await.unwrap();
    assert_eq!(store.list_subscriptions(&query).await.unwrap().total, 3);
}

/// A store over `url` that records the statements it runs.
async fn recording_store_at(url: &str) -> (cadre_store::SeaStore, Arc<Mutex<Vec<Statement>>>) {
    let mut conn = cadre_store::connect(url).await.unwrap();
    cadre_store::migrate(&conn).await.unwrap();
    let statements = Arc::new(Mutex::new(Vec::<Statement>::new()));
    let seen = Arc::clone(&statements);
    conn.set_metric_callback(move |info| seen.lock().unwrap().push(info.statement.clone()));
    (cadre_store::SeaStore::new(conn), statements)
}

/// How many of `statements` counted rows, forgetting them.
fn counts_run(statements: &Mutex<Vec<Statement>>) -> usize {
    std::mem::take(&mut *statements.lock().unwrap())
        .iter()
        .filter(|statement| statement.sql.contains("COUNT(*)"))
        .count()
}

#[tokio::test]
async fn a_paged_total_is_renewed_while_nothing_changes_and_sees_another_stores_writes_within_a_second()
 {
    let database = cadre_store::testing::scratch_database().await;
    let (here, statements) = recording_store_at(database.url()).await;
    let elsewhere = cadre_store::testing::store_at(database.url()).await;
    let query = SubscriptionQuery {
        product_type: Some(ProductType::user_group()),
        limit: Some(1),
        ..SubscriptionQuery::default()
    };
    let alpha = active_group(&here, "alpha", "Alpha", &[]).await;
    let total = || async { here.list_subscriptions(&query).await.unwrap().total };
    assert_eq!(total().await, 1);
    assert_eq!(counts_run(&statements), 1);

    // Nothing commits for longer than a remembered total lives: its snapshot is still current,
    // so it is renewed without counting. (On PostgreSQL the snapshot is the whole server's, and
    // the tests running beside this one on other databases move it: there it may count.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(total().await, 1);
    let counted = counts_run(&statements);
    if cadre_store::testing::postgres_url().is_none() {
        assert_eq!(counted, 0, "renewed, not counted");
    }

    // Another store (another process) writes: this one sees it within a second.
    initial_group(&elsewhere, "Draft").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(total().await, 2, "an expired total is counted again");
    assert_eq!(counts_run(&statements), 1);

    // So is a change of lifecycle made by anything else that writes the database.
    let active = SubscriptionQuery {
        lifecycle: Some(Lifecycle::Active),
        ..query.clone()
    };
    assert_eq!(here.list_subscriptions(&active).await.unwrap().total, 1);
    let backend = elsewhere.connection().get_database_backend();
    elsewhere
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => {
                    "UPDATE subscriptions SET status = 'terminated' WHERE id = $1"
                }
                _ => "UPDATE subscriptions SET status = 'terminated' WHERE id = ?",
            },
            [alpha.subscription.id.into()],
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(here.list_subscriptions(&active).await.unwrap().total, 0);
}

/// On PostgreSQL a text search's total, the costly part of a search, is answered from the
/// trigram index over descriptions rather than by reading every row: the statement the store
/// runs is planned with that index once scans are ruled out (on a table this small the planner
/// would otherwise rightly scan).
#[tokio::test]
async fn a_text_search_total_can_use_the_description_index_on_postgres() {
    use sea_orm::TransactionTrait;

    if postgres_or_skip("a_text_search_total_can_use_the_description_index_on_postgres").is_none() {
        return;
    }
    let database = cadre_store::testing::scratch_database().await;
    let (store, statements) = recording_store_at(database.url()).await;
    let alpha = active_group(&store, "alpha", "Alpha 50%", &[]).await;
    active_group(&store, "beta", "Beta", &[]).await;
    statements.lock().unwrap().clear();

    let search = SubscriptionQuery {
        text: Some("PHA 50%".to_owned()),
        limit: Some(10),
        ..SubscriptionQuery::default()
    };
    let page = store.list_subscriptions(&search).await.unwrap();
    assert_eq!(ids(&page), [alpha.subscription.id]);
    assert_eq!(page.total, 1);

    let count = statements
        .lock()
        .unwrap()
        .iter()
        .find(|statement| statement.sql.contains("COUNT(*)") && statement.sql.contains("LIKE"))
        .cloned()
        .expect("the search counted its total");
    let txn = store.connection().begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = txn
        .query_all_raw(Statement {
            sql: format!("EXPLAIN {}", count.sql),
            ..count
        })
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect();
    assert!(
        plan.iter()
            .any(|line| line.contains("ix_subscriptions_description_trgm")),
        "{plan:#?}"
    );
}

/// A page is read as one aggregated row: every field of every item must come back exactly as
/// the subscription loads on its own, whatever its text holds (quotes, backslashes, newlines,
/// non-ASCII) and with sub-second dates, on both backends.
#[tokio::test]
async fn a_page_carries_every_field_as_a_load_reads_it() {
    let store = scratch_store().await;
    let plain = active_group(&store, "plain", "Plain", &[]).await;
    let mut odd = initial_group(&store, "Gruppe \"Zürich\" \\ 東京\nline two").await;
    odd.subscription.note = Some("a note with 'quotes', \"doubles\" and tabs\t".to_owned());
    odd.subscription.start_date = Some(
        chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00.123456+02:00")
            .unwrap()
            .to_utc(),
    );
    odd.subscription.end_date = Some(
        chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00.5Z")
            .unwrap()
            .to_utc(),
    );
    odd.subscription.insync = true;
    let odd = cadre_domain::models::save(&*store, odd).await.unwrap();

    for order in [SortOrder::Asc, SortOrder::Desc] {
        let query = SubscriptionQuery {
            sort: SubscriptionSort::StartDate,
            order,
            limit: Some(10),
            ..SubscriptionQuery::default()
        };
        let page = store.list_subscriptions(&query).await.unwrap();
        assert_eq!(page.total, 2);
        let loaded = [
            store.load_subscription(odd.subscription.id).await.unwrap(),
            store
                .load_subscription(plain.subscription.id)
                .await
                .unwrap(),
        ];
        // Start dates: the odd group's (2026-11-24 10:00 UTC) before the plain one's (12:00),
        // reversed when descending.
        let expected: Vec<_> = match order {
            SortOrder::Asc => loaded.iter().collect(),
            SortOrder::Desc => loaded.iter().rev().collect(),
        };
        assert_eq!(page.items.len(), expected.len());
        for (item, record) in page.items.iter().zip(expected) {
            assert_eq!(item.subscription, record.subscription);
            assert_eq!(item.product_name, record.product.name);
            assert_eq!(item.product_type, record.product.product_type);
        }
    }
}

/// The bundled SQLite is built with the query planner stability guarantee (`.cargo/config.toml`):
/// without it, SQLite 3.51 plans every statement with a bound LIMIT or OFFSET again each time
/// it runs, because sqlx binds the parameters anew on every run.
#[tokio::test]
async fn sqlite_plans_statements_once() {
    if !sqlite_or_skip("sqlite_plans_statements_once") {
        return;
    }
    let store = scratch_store().await;
    let options: Vec<String> = store
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA compile_options",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert!(
        options.iter().any(|option| option == "ENABLE_QPSG"),
        "{options:?}"
    );
}

/// Text search ignores case on both sides of the comparison: ASCII letters on SQLite (its LIKE),
/// on PostgreSQL every letter its `lower` folds, applied to the description and the pattern alike.
#[tokio::test]
async fn text_search_ignores_case_of_description_and_pattern_alike() {
    let store = scratch_store().await;
    let group = initial_group(&store, "Gruppe Zürich").await;
    let search = |text: &str| {
        let store = &store;
        let query = SubscriptionQuery {
            text: Some(text.to_owned()),
            limit: Some(10),
            ..SubscriptionQuery::default()
        };
        async move { ids(&store.list_subscriptions(&query).await.unwrap()) }
    };
    assert_eq!(search("gRUPPE zü").await, [group.subscription.id]);
    let unicode_upper = search("ZÜRICH").await;
    if cadre_store::testing::postgres_url().is_some() {
        // PostgreSQL's `lower` folds what the database's locale knows (C.UTF-8 and the
        // language locales fold Ü; the plain C locale does not): the pattern is folded alike.
        let folds: bool = store
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT lower('ZÜRICH') = 'zürich' AS folds",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "folds")
            .unwrap();
        assert_eq!(unicode_upper.is_empty(), !folds);
    } else {
        assert!(unicode_upper.is_empty(), "SQLite folds ASCII letters only");
    }
}
