//! The standard pages over in-memory lookups: the product page offers the products of its type
//! only, and `WithActive` the active subscriptions of its type only.

use cadre_domain::testing::MemoryLookups;
use cadre_domain::{
    Lifecycle, Product, ProductStatus, ProductType, Subscription, SubscriptionSummary,
};
use cadre_forms::standard::{ProductPage, WithActive};
use cadre_forms::{Choices, Field, FormPage, PageBuilder};
use chrono::DateTime;
use serde_json::{Map, json};
use uuid::Uuid;

fn product(n: u128, name: &str, product_type: &str) -> Product {
    Product {
        id: Uuid::from_u128(n),
        name: name.to_owned(),
        description: name.to_owned(),
        product_type: ProductType::new(product_type),
        tag: name.to_uppercase(),
        status: ProductStatus::Active,
        fixed_inputs: Vec::new(),
        blocks: Vec::new(),
        created_at: DateTime::UNIX_EPOCH,
        end_date: None,
    }
}

pub(crate) fn subscription(
    n: u128,
    description: &str,
    product_type: &str,
    lifecycle: Lifecycle,
) -> SubscriptionSummary {
    SubscriptionSummary {
        subscription: Subscription {
            id: Uuid::from_u128(n),
            product_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            description: description.to_owned(),
            lifecycle,
            insync: true,
            start_date: None,
            end_date: None,
            note: None,
            version: 1,
        },
        product_name: product_type.to_owned(),
        product_type: ProductType::new(product_type),
    }
}

fn owners(choices: Choices) -> FormPage {
    FormPage::new("Owner").field(Field::choice("owner", choices))
}

#[tokio::test]
async fn standard_pages_offer_only_what_their_product_type_has_live() {
    let lookups = MemoryLookups::new();
    lookups.add_product(product(0x10, "Mailbox", "Mailbox"));
    lookups.add_product(product(0x11, "User internal", "User"));
    lookups.add_subscription(subscription(0x20, "User ada", "User", Lifecycle::Active));
    lookups.add_subscription(subscription(
        0x21,
        "User bob",
        "User",
        Lifecycle::Terminated,
    ));
    lookups.add_subscription(subscription(
        0x22,
        "Mailbox ada",
        "Mailbox",
        Lifecycle::Active,
    ));

    let page = ProductPage(ProductType::new("Mailbox"))
        .build(&lookups, &Map::new())
        .await
        .unwrap();
    assert_eq!(
        page.schema()["$defs"]["ProductChoice"]["options"],
        json!({Uuid::from_u128(0x10).to_string(): "Mailbox"})
    );

    let page = WithActive::new(ProductType::user(), "UserEnum", owners)
        .build(&lookups, &Map::new())
        .await
        .unwrap();
    assert_eq!(
        page.schema()["$defs"]["UserEnum"]["options"],
        json!({Uuid::from_u128(0x20).to_string(): "User ada"})
    );
}
