//! The Mailbox migrations keep a history of their own beside cadre's, on SQLite or, with
//! `DATABASE_URL`, PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cadre_example_mailbox::catalogue::MAILBOX_PRODUCT_ID;

#[tokio::test]
async fn product_migrations_run_once_after_cadres_and_keep_their_own_history() {
    let database = cadre_store::testing::scratch_database().await;
    let url = database.url();
    let with_mailbox = cadre_example_mailbox::cadre();
    let engine = with_mailbox.open(url).await.unwrap();
    let product = engine.store().product(MAILBOX_PRODUCT_ID).await.unwrap();
    assert_eq!(product.product_type.as_str(), "Mailbox");
    let blocks: Vec<&str> = product
        .blocks
        .iter()
        .map(|block| block.name.as_str())
        .collect();
    assert_eq!(blocks, ["MailboxBlock"]);
    // Opening again applies nothing twice (the catalogue's fixed ids would collide).
    with_mailbox.open(url).await.unwrap();
    // cadre alone still opens the database: its history holds none of the Mailbox migrations.
    let plain = cadre_server::Cadre::new().open(url).await.unwrap();
    assert!(plain.registry().get("create_mailbox").is_none());
    assert!(plain.store().product(MAILBOX_PRODUCT_ID).await.is_ok());
}
