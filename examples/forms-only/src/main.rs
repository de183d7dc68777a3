//! `cadre-example-forms-only`: cadre's forms without the rest of cadre. Prints the JSON Schema
//! of a sign-up page as pydantic-forms would, then validates the answer given as the first
//! argument (JSON) and prints the values or every error, exiting 1 when it is invalid.
//!
//! `cargo run -p cadre-example-forms-only -- '{"name": "Ada", "age": 36, "plan": "team"}'`

use std::process::ExitCode;

use cadre_forms::{Choices, Field, FormPage};
use serde_json::Value;

/// The page: a name, an optional age of at least 18, and a plan.
fn sign_up_page() -> FormPage {
    FormPage::new("Sign up")
        .field(Field::string("name").length(Some(1), Some(100)))
        .field(Field::integer("age").ge(18).nullable())
        .field(Field::choice(
            "plan",
            Choices::plain("Plan", &["personal", "team"]),
        ))
}

fn main() -> ExitCode {
    let page = sign_up_page();
    println!("{:#}", page.schema());
    let Some(answer) = std::env::args().nth(1) else {
        return ExitCode::SUCCESS;
    };
    let answer: Value = match serde_json::from_str(&answer) {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("the answer is not JSON: {error}");
            return ExitCode::from(2);
        }
    };
    match page.validate(&answer) {
        Ok(values) => {
            println!("{:#}", Value::Object(values));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                println!(
                    "{}: {} ({})",
                    Value::Array(error.loc),
                    error.msg,
                    error.kind
                );
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::sign_up_page;

    #[test]
    fn the_page_takes_a_valid_answer_and_names_each_error_of_a_bad_one() {
        let page = sign_up_page();
        let values = page
            .validate(&json!({"name": "Ada", "plan": "team"}))
            .unwrap();
        assert_eq!(values["age"], json!(null));
        let errors = page
            .validate(&json!({"name": "", "age": 12, "plan": "gold"}))
            .unwrap_err();
        let kinds: Vec<(&str, String)> = errors
            .iter()
            .map(|error| (error.kind.as_str(), error.loc[0].to_string()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("string_too_short", "\"name\"".to_owned()),
                ("greater_than_equal", "\"age\"".to_owned()),
                ("enum", "\"plan\"".to_owned()),
            ]
        );
        assert_eq!(
            page.schema()["properties"]["age"]["anyOf"][0]["minimum"],
            json!(18)
        );
    }
}
