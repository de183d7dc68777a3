//! Forms throughput, comparable with the orchestrator-core anchor's pydantic-forms figures:
//! validations per second of the create-User page, schema renderings per second, and complete
//! two-page create-User submissions per second including their lookups (products and active
//! user groups) on a SQLite database. Run: `cargo bench -p cadre-products --bench forms`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cadre_forms::{Choices, Field, FormPage, ListItem};
use cadre_migrations::demo::USER_INTERNAL_PRODUCT_ID;
use serde_json::{Map, json};

/// Runs `work` repeatedly for about `budget` and returns calls per second.
fn rate(budget: Duration, mut work: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < budget {
        for _ in 0..100 {
            work();
        }
        calls += 100;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// The create-User page the anchor validates: a name, a bounded number, a group choice.
fn user_page() -> FormPage {
    let groups = Choices::labelled(
        "UserGroupEnum",
        [(
            "5a4b9c0e-0000-4000-8000-000000000001".to_owned(),
            "User Group Staff".to_owned(),
        )],
    );
    FormPage::new("User internal")
        .field(Field::string("username"))
        .field(Field::integer("age").nullable())
        .field(Field::list("user_group_ids", ListItem::Choice(groups)).items(Some(1), Some(1)))
}

/// One active user group, for the user group selector.
async fn active_group(store: &cadre_store::SeaStore) -> uuid::Uuid {
    let group = cadre_products::testing::active_group(
        store,
        uuid::Uuid::now_v7(),
        "staff",
        "Staff",
        &[],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    group.subscription.id
}

fn main() {
    let budget = Duration::from_secs(2);
    let page = user_page();
    let valid = json!({"username": "alice", "age": 30, "user_group_ids": ["5a4b9c0e-0000-4000-8000-000000000001"]});
    let invalid = json!({"username": 7, "age": "old", "user_group_ids": [], "extra": 1});
    let valid_rate = rate(budget, || {
        black_box(page.validate(black_box(&valid)).unwrap());
    });
    let invalid_rate = rate(budget, || {
        black_box(page.validate(black_box(&invalid)).unwrap_err());
    });
    let schema_rate = rate(budget, || {
        black_box(page.schema());
    });
    println!("cadre-forms create_user page: validations_per_s={valid_rate:.0} (valid input)");
    println!(
        "cadre-forms create_user page: validations_per_s={invalid_rate:.0} (invalid input, 4 errors)"
    );
    println!("cadre-forms create_user page: schemas_per_s={schema_rate:.0}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let path = std::env::temp_dir().join(format!("cadre-forms-bench-{}.db", std::process::id()));
        let conn = cadre_store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        cadre_store::migrate(&conn).await.unwrap();
        let store = cadre_store::SeaStore::new(conn);
        let group = active_group(&store).await;
        let registry = cadre_products::registry().unwrap();
        let form = &registry.get("create_user").unwrap().initial_form;
        let answers = [
            json!({"product": USER_INTERNAL_PRODUCT_ID}),
            json!({"user_id": "alice", "username": "alice", "email": "alice@example.org", "user_group_ids": [group]}),
        ];
        let started = Instant::now();
        let mut calls = 0u64;
        while started.elapsed() < budget {
            black_box(form.submit(&store, &Map::new(), &answers).await.unwrap());
            calls += 1;
        }
        let full_rate = calls as f64 / started.elapsed().as_secs_f64();
        println!("cadre-forms create_user form, both pages with their lookups: post_form_per_s={full_rate:.0}");
        let _ = std::fs::remove_file(&path);
    });
}
