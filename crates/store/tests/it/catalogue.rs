//! The demo catalogue installed by the migrations.

use cadre_domain::{
    CatalogueRepository, CustomerRepository, Name, ProductStatus, ProductType, SubscriptionQuery,
    SubscriptionRepository, TokenRepository,
};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_store::testing::scratch_store;

#[tokio::test]
async fn the_demo_products_are_installed_with_their_blocks() {
    let store = scratch_store().await;
    let products = store.list_products().await.unwrap();
    let summary: Vec<(&str, &str, &str)> = products
        .iter()
        .map(|product| {
            (
                product.name.as_str(),
                product.product_type.as_str(),
                product.tag.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("User Group", "UserGroup", "GROUP"),
            ("User external", "User", "USER_EXT"),
            ("User internal", "User", "USER_INT")
        ]
    );
    assert!(
        products
            .iter()
            .all(|product| product.status == ProductStatus::Active)
    );

    let user = store.product(USER_INTERNAL_PRODUCT_ID).await.unwrap();
    assert_eq!(user.fixed_input("affiliation"), Some("internal"));
    assert_eq!(user.product_type, ProductType::user());
    let block = user.block("UserBlock").unwrap();
    let fields: Vec<(&str, bool)> = block
        .resource_types
        .iter()
        .map(|field| (field.resource_type.as_str(), field.unique))
        .collect();
    assert_eq!(
        fields,
        [
            ("auth_id", false),
            ("cost_center", false),
            ("department", false),
            ("division", false),
            ("email", true),
            ("employee_number", false),
            ("firstname", false),
            ("lastname", false),
            ("manager", false),
            ("organization", false),
            ("user_id", true),
            ("username", true)
        ],
        "with migration 17's employment"
    );
    assert_eq!(block.depends_on, ["UserGroupBlock"]);

    let blocks = store.list_product_blocks().await.unwrap();
    let group_block = blocks
        .iter()
        .find(|block| block.name == "UserGroupBlock")
        .unwrap();
    assert_eq!(group_block.depends_on, ["UserGroupBlock"], "groups nest");

    let customer = store.customer(DEFAULT_CUSTOMER_ID).await.unwrap();
    assert_eq!(customer.name.as_str(), "Default");
    let by_name = store
        .customer_by_name(&Name::parse("Default").unwrap())
        .await
        .unwrap();
    assert_eq!(by_name, customer);
    assert!(store.product_by_name("No such product").await.is_err());
}

/// No account ships with cadre (ASVS 5.0 6.3.2): a fresh database holds products and the
/// default customer, but no user, no credential and no API token.
#[tokio::test]
async fn a_fresh_database_has_no_account_and_no_token() {
    let store = scratch_store().await;
    let page = store
        .list_subscriptions(&SubscriptionQuery::default())
        .await
        .unwrap();
    assert_eq!(page.total, 0, "{page:?}");
    assert!(store.list_tokens().await.unwrap().is_empty());
}

/// A transaction that reads the catalogue first while a read outside it waits for a
/// connection (SQLite's pool has one, which the transaction holds): neither waits for the
/// other. (Before, the outside read claimed the first read of the catalogue, and the
/// transaction waited for it for as long as the pool's acquire timeout.) On PostgreSQL the pool
/// has room for both, and the same order passes as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_catalogue_is_read_by_a_transaction_and_a_pooled_read_without_a_deadlock() {
    use cadre_domain::Store;
    use std::time::Duration;
    let database = cadre_store::testing::scratch_database().await;
    let store = cadre_store::testing::store_at(database.url()).await;
    let txn = store.begin().await.unwrap();
    let outside = tokio::spawn({
        let store = store.clone();
        async move { store.list_products().await.map(|products| products.len()) }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let inside = tokio::time::timeout(Duration::from_secs(5), txn.list_products())
        .await
        .expect("the transaction read the catalogue without waiting")
        .unwrap();
    txn.commit().await.unwrap();
    let outside = tokio::time::timeout(Duration::from_secs(5), outside)
        .await
        .expect("the outside read went on once the transaction ended")
        .unwrap()
        .unwrap();
    assert_eq!((inside.len(), outside), (3, 3));
}
