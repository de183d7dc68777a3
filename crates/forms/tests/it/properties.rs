//! Whatever a client sends as a page, validation answers without panicking, and its errors stay
//! bounded.

use cadre_forms::{AcceptItem, Bounds, Choices, Field, FormPage, ListItem, MAX_ERRORS};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("group-1")),
    ];
    leaf.prop_recursive(3, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("age".to_owned()),
                    Just("groups".to_owned()),
                    Just("tags".to_owned()),
                    Just("people".to_owned()),
                    ".{0,6}"
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A page with a field of each kind a form author uses.
fn page() -> FormPage {
    let groups = Choices::plain("Group", &["group-1", "group-2", "group-3"]);
    FormPage::untitled()
        .field(Field::string("name").length(Some(1), Some(20)))
        .field(Field::integer("age").ge(0).le(150).nullable())
        .field(
            Field::number("ratio")
                .gt(0)
                .lt(1)
                .multiple_of(0.125)
                .nullable(),
        )
        .field(Field::string("code").pattern("^(?!x)[a-z]+$").nullable())
        .field(Field::literal("plan", &["small", "large"]).nullable())
        .field(Field::accept("confirm", &[("Done", AcceptItem::Checkbox)]).nullable())
        .field(Field::read_only("owner", json!(["alice"])))
        .field(
            Field::model(
                "address",
                FormPage::model("Address").field(Field::string("city")),
            )
            .nullable(),
        )
        .field(Field::list("scores", ListItem::Number(Bounds::new().ge(0))).items(None, Some(4)))
        .field(Field::boolean("active").default(json!(true)))
        .field(Field::choice("group", groups.clone()).nullable())
        .field(
            Field::list("groups", ListItem::Choice(groups))
                .items(None, Some(2))
                .unique_items(),
        )
        .field(Field::list("tags", ListItem::Text).items(None, Some(5)))
        .field(
            Field::list(
                "people",
                ListItem::model(FormPage::untitled().field(Field::string("name"))),
            )
            .items(None, Some(3)),
        )
        .field(Field::hidden("kind", json!("person")))
        .field(Field::label("note", "A note"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_answer_is_validated_without_panicking_and_with_bounded_errors(answer in any_json()) {
        if let Err(errors) = page().validate(&answer) {
            prop_assert!(!errors.is_empty());
            prop_assert!(errors.len() <= MAX_ERRORS + 1);
        }
    }
}
