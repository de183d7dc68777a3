//! Page validations per second, comparable with the orchestrator-core anchor's pydantic-forms
//! figure (its `bench_forms`: `CreateUserForm.model_validate` of `username: str`, `age: int` and
//! a `user_group` choice, restated in `pydantic_forms_pages.py` beside this file): the same page
//! declared with the builder and with `#[derive(FormPage)]`, validated, and for the derived one
//! also parsed into its struct (what `model_validate` gives).
//! Run: `cargo bench -p cadre-forms --bench pages`.
//!
//! With `PYDANTIC_FORMS_PYTHON` naming a Python that has pydantic-forms 2.9.0, the same command
//! runs the anchor's page in pydantic-forms (`pydantic_forms_pages.py`) before and after, and
//! reports cadre's figure against the better of the two.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cadre_domain::{DomainError, FormLookups};
use cadre_forms::{ChoiceLookup, Choices, Field, FormModel, FormPage, LookedUp};
use serde::Deserialize;
use serde_json::{Value, json};

const GROUP: &str = "5a4b9c0e-0000-4000-8000-000000000001";

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

fn groups() -> Choices {
    Choices::labelled(
        "UserGroupEnum",
        [(GROUP.to_owned(), "User Group Staff".to_owned())],
    )
}

/// The anchor's page, declared with the builder.
fn built() -> FormPage {
    FormPage::new("User internal")
        .field(Field::string("username"))
        .field(Field::integer("age"))
        .field(Field::choice("user_group", groups()))
}

/// The user groups; the bench passes them in (`LookedUp`) rather than looking them up.
struct UserGroups;

#[async_trait]
impl ChoiceLookup for UserGroups {
    async fn choices(&self, _: &dyn FormLookups) -> Result<Choices, DomainError> {
        Ok(groups())
    }
}

/// The anchor's page, declared as a type.
#[derive(Deserialize, cadre_forms::FormPage)]
#[form(title = "User internal")]
struct CreateUserForm {
    username: String,
    age: i64,
    #[form(lookup = UserGroups)]
    user_group: String,
}

/// pydantic-forms' validations per second of the same page, when `PYDANTIC_FORMS_PYTHON` says
/// which Python to run it with.
fn pydantic_forms_rate() -> Option<f64> {
    let python = std::env::var_os("PYDANTIC_FORMS_PYTHON")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/pydantic_forms_pages.py"
    );
    let output = std::process::Command::new(python)
        .arg(script)
        .output()
        .expect("run the pydantic-forms side");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap(),
    )
}

fn main() {
    let pydantic_before = pydantic_forms_rate();
    let budget = Duration::from_secs(1);
    let builder = built();
    let choices = LookedUp::default().with("user_group", groups());
    let derived = CreateUserForm::form_page(&choices);
    assert_eq!(
        builder.schema(),
        derived.schema(),
        "the same page both ways"
    );
    let answers: Vec<Value> = (0..50)
        .map(|i| json!({"username": format!("user{i}"), "age": 20 + i, "user_group": GROUP}))
        .collect();
    let mut next = answers.iter().cycle();
    // Three rounds, each running the three in turn, keeping each one's best: on a noisy machine
    // this compares them under the same conditions.
    let (mut builder_rate, mut derived_rate, mut parsed_rate) = (0f64, 0f64, 0f64);
    for _ in 0..3 {
        builder_rate = builder_rate.max(rate(budget, || {
            black_box(builder.validate(black_box(next.next().unwrap())).unwrap());
        }));
        derived_rate = derived_rate.max(rate(budget, || {
            black_box(derived.validate(black_box(next.next().unwrap())).unwrap());
        }));
        parsed_rate = parsed_rate.max(rate(budget, || {
            let form: CreateUserForm = derived.parse(black_box(next.next().unwrap())).unwrap();
            black_box((form.username, form.age, form.user_group));
        }));
    }
    println!("cadre-forms create_user page, builder: validations_per_s={builder_rate:.0}");
    println!("cadre-forms create_user page, derived: validations_per_s={derived_rate:.0}");
    println!(
        "cadre-forms create_user page, derived, parsed into its struct: validations_per_s={parsed_rate:.0}"
    );
    println!(
        "derived / builder: {:.2}x (validated), {:.2}x (parsed)",
        derived_rate / builder_rate,
        parsed_rate / builder_rate
    );
    // A catalogue as large as the load benchmark's largest: a choice among 100,000 groups,
    // answered with the last; and a page built from them, as `WithActive` and `ModelPage` build
    // one from their cached choices on every start.
    let many = Choices::labelled(
        "UserGroupEnum",
        (0..100_000).map(|n| (format!("group-{n:06}"), format!("Group {n}"))),
    );
    let large = FormPage::untitled().field(Field::choice("user_group", many.clone()));
    let last = json!({"user_group": "group-099999"});
    let large_rate = rate(budget, || {
        black_box(large.validate(black_box(&last)).unwrap());
    });
    let build_rate = rate(budget, || {
        black_box(
            FormPage::untitled().field(Field::choice("user_group", black_box(&many).clone())),
        );
    });
    println!("a choice among 100,000: validations_per_s={large_rate:.0}");
    println!("a choice among 100,000: pages_built_per_s={build_rate:.0}");
    match (pydantic_before, pydantic_forms_rate()) {
        (Some(before), Some(after)) => {
            let best = before.max(after);
            println!(
                "pydantic-forms 2.9 same page: validations_per_s={before:.0} before, {after:.0} after"
            );
            println!(
                "cadre / pydantic-forms (best run): {:.1}x builder, {:.1}x derived, {:.1}x derived and parsed",
                builder_rate / best,
                derived_rate / best,
                parsed_rate / best
            );
        }
        _ => println!(
            "pydantic-forms not measured: set PYDANTIC_FORMS_PYTHON to a Python with \
             pydantic-forms==2.9.0 and structlog to compare back to back"
        ),
    }
}
