//! Pages declared as types with `#[derive(FormPage)]`: the same schema as pydantic-forms and as
//! the builder, answers parsed back into the struct, and choices looked up when built.

use cadre_domain::testing::MemoryLookups;
use cadre_domain::{Lifecycle, ProductType};
use cadre_forms::{
    ACTIVE_USER_GROUPS, Choices, Field, FormChoices, FormModel, FormPage, ListItem, LookedUp,
    ModelPage, PageBuilder,
};
use serde::Deserialize;
use serde_json::{Map, json};
use uuid::Uuid;

use crate::samples::{assert_same_schema, sample};
use crate::standard::subscription;

#[derive(Debug, PartialEq, Deserialize, FormChoices)]
#[serde(rename_all = "lowercase")]
enum Affiliation {
    Internal,
    External,
}

/// Sample 01, declared as a type.
#[derive(Debug, Deserialize, FormPage)]
#[form(title = "Create user")]
struct CreateUserForm {
    #[form(min_length = 3, max_length = 32, pattern = r"^[a-z][a-z0-9_]*$")]
    #[form(extra(layout = {"span": 6}))]
    username: String,
    #[form(ge = 18, le = 120, default = 30)]
    age: i64,
    nickname: Option<String>,
    #[form(default = "internal")]
    affiliation: Affiliation,
    #[form(default = true)]
    send_welcome_mail: bool,
    #[form(format = "long", default = "")]
    remarks: String,
}

#[test]
fn a_derived_page_matches_pydantic_forms() {
    assert_same_schema(
        &CreateUserForm::form_page(&LookedUp::default()).schema(),
        &sample("01_basic_fields"),
    );
}

#[test]
fn a_valid_answer_parses_into_the_struct_with_defaults_and_an_invalid_one_is_refused() {
    let form = CreateUserForm::parse(
        &LookedUp::default(),
        &json!({"username": "ada", "affiliation": "external"}),
    )
    .unwrap();
    assert_eq!(
        (
            form.username.as_str(),
            form.age,
            form.nickname,
            form.affiliation
        ),
        ("ada", 30, None, Affiliation::External)
    );
    assert!(form.send_welcome_mail && form.remarks.is_empty());
    let errors =
        CreateUserForm::parse(&LookedUp::default(), &json!({"username": "Ada", "age": 12}))
            .unwrap_err();
    let kinds: Vec<&str> = errors.iter().map(|error| error.kind.as_str()).collect();
    assert_eq!(kinds, ["string_pattern_mismatch", "greater_than_equal"]);
}

#[derive(Debug, Deserialize, FormChoices)]
#[form(name = "Size")]
enum Size {
    #[form(label = "Small")]
    #[serde(rename = "s")]
    S,
    #[form(label = "Large")]
    #[serde(rename = "l")]
    L,
}

/// Why a change is made.
#[derive(Debug, Deserialize, FormPage)]
struct Reason {
    #[form(ge = 1)]
    code: u32,
    text: String,
}

/// Everything else a derived page knows.
#[derive(Debug, Deserialize, FormPage)]
#[serde(rename_all = "camelCase")]
#[form(check = totals_agree)]
struct Order {
    /// The quantity, in whole units.
    #[form(gt = 0, lt = 100, multiple_of = 5)]
    quantity: u16,
    #[form(gt = 0, le = 1000.5)]
    unit_price: f64,
    size: Size,
    reason: Reason,
    #[form(min_items = 0, max_items = 3)]
    history: Vec<Reason>,
    #[form(unique, min_items = 1)]
    tags: Vec<String>,
    scores: Vec<i32>,
    #[serde(rename = "groups")]
    #[form(lookup = ACTIVE_USER_GROUPS, default = [])]
    user_groups: Vec<Uuid>,
}

fn totals_agree(values: &Map<String, serde_json::Value>) -> Result<(), String> {
    match values["quantity"].as_i64() {
        Some(95) => Err("95 is sold out".to_owned()),
        _ => Ok(()),
    }
}

#[test]
fn a_derived_page_is_the_page_the_builder_declares() {
    let groups = Choices::labelled("UserGroupEnum", [("g".to_owned(), "Group".to_owned())]);
    let reason = FormPage::model("Reason")
        .field(Field::integer("code").ge(0).ge(1))
        .field(Field::string("text"));
    let built = FormPage::untitled()
        .field(
            Field::integer("quantity")
                .ge(0)
                .gt(0)
                .lt(100)
                .multiple_of(5)
                .description("The quantity, in whole units."),
        )
        .field(Field::number("unitPrice").gt(0).le(1000.5))
        .field(Field::choice("size", Size::choices()))
        .field(Field::model("reason", reason.clone()))
        .field(Field::list("history", ListItem::model(reason)).items(Some(0), Some(3)))
        .field(
            Field::list("tags", ListItem::Text)
                .items(Some(1), None)
                .unique_items(),
        )
        .field(Field::list("scores", ListItem::Integer(Default::default())))
        .field(Field::list("groups", ListItem::Choice(groups.clone())).default(json!([])));
    let derived = Order::form_page(&LookedUp::default().with("groups", groups));
    assert_eq!(derived.schema(), built.schema());
    assert_eq!(
        derived.schema()["$defs"]["Size"],
        json!({"enum": ["s", "l"], "options": {"s": "Small", "l": "Large"}, "title": "Size", "type": "string"})
    );
    assert_eq!(
        derived.schema()["properties"]["history"]["minItems"],
        json!(0)
    );

    let order = Order::parse(
        &LookedUp::default(),
        &json!({"quantity": "15", "unitPrice": 3, "size": "l", "reason": {"code": 1, "text": "x"},
                "history": [], "tags": ["a"], "scores": [1, "2"]}),
    )
    .unwrap();
    assert_eq!(
        (order.quantity, order.unit_price, order.scores),
        (15, 3.0, vec![1, 2])
    );
    assert!(matches!(order.size, Size::L) && order.user_groups.is_empty());
    assert_eq!(
        (
            order.reason.code,
            order.reason.text,
            order.history.len(),
            order.tags
        ),
        (1, "x".to_owned(), 0, vec!["a".to_owned()])
    );

    let errors = Order::parse(
        &LookedUp::default(),
        &json!({"quantity": 95, "unitPrice": 1, "size": "s", "reason": {"code": 0, "text": "x"},
                "history": [], "tags": ["a"], "scores": []}),
    )
    .unwrap_err();
    let located: Vec<(String, &str)> = errors
        .iter()
        .map(|error| (json!(error.loc).to_string(), error.kind.as_str()))
        .collect();
    assert_eq!(
        located,
        [(r#"["reason","code"]"#.to_owned(), "greater_than_equal")]
    );
    let errors = Order::parse(
        &LookedUp::default(),
        &json!({"quantity": 95, "unitPrice": 1, "size": "s", "reason": {"code": 1, "text": "x"},
                "history": [], "tags": ["a"], "scores": []}),
    )
    .unwrap_err();
    assert_eq!(
        errors[0].msg, "95 is sold out",
        "the struct's check runs across fields"
    );
}

#[tokio::test]
async fn a_model_page_offers_what_its_lookup_finds_when_built() {
    let lookups = MemoryLookups::new();
    lookups.add_subscription(subscription(
        0x21,
        "Staff",
        ProductType::USER_GROUP,
        Lifecycle::Active,
    ));
    lookups.add_subscription(subscription(
        0x22,
        "Gone",
        ProductType::USER_GROUP,
        Lifecycle::Terminated,
    ));
    let page = ModelPage::<Order>::new()
        .build(&lookups, &Map::new())
        .await
        .unwrap();
    assert_eq!(
        page.schema()["$defs"]["UserGroupEnum"]["options"],
        json!({Uuid::from_u128(0x21).to_string(): "Staff"})
    );
}
