//! Forms declared in Rust that produce the JSON Schema pydantic-forms emits and validate
//! submitted pages the way pydantic does, with the same error shapes.
//!
//! A [`FormPage`] is built field by field ([`Field::string`], [`Field::integer`], …); it renders
//! its schema ([`FormPage::schema`]) and validates an answer ([`FormPage::validate`]) into the
//! submitted values, or every error at once. A [`Form`] is a sequence of pages where each page
//! may depend on the answers before it and on lookups through the domain's [`FormLookups`];
//! [`Form::submit`] follows the pydantic-forms protocol (next page, or errors, or the merged
//! answers), and a `Form` is the engine's [`cadre_domain::InputForm`]. The error shapes of
//! pydantic-forms ([`FormError`], [`ValidationError`], …) are the domain's own, re-exported here.
//! [`standard`] has the pages orchestrator-core's workflows start with.
//!
//! A page can also be declared as a struct, as with serde or clap: `#[derive(FormPage)]`
//! makes its fields the page's fields and parses a validated answer back into it
//! ([`FormModel`]); `#[derive(FormChoices)]` makes an enum a choice; [`ModelPage`] builds a
//! derived page in a [`Form`], looking up its dynamic choices ([`ChoiceLookup`]).
//!
//! This crate depends on `cadre-domain` only: no database, no HTTP.

mod components;
mod constraints;
mod form;
mod model;
mod page;
pub mod standard;
mod validate;

pub use cadre_domain::forms::{
    FormError, FormLookups, FormNotComplete, FormValidationError, ValidationError,
};
pub use cadre_forms_derive::{FormChoices, FormPage};
pub use components::{AcceptItem, Timestamp, contact_person};
pub use constraints::{Bounds, Limit, Pattern};
pub use form::{Form, PageBuilder};
pub use model::{
    ACTIVE_USER_GROUPS, ActiveSubscriptions, ChoiceLookup, FormChoices, FormModel, FormValue,
    LookedUp, ModelPage,
};
pub use page::{
    Check, Choice, Choices, Field, FieldKind, FormPage, ListItem, MAX_EXPECTED, PageCheck,
    title_from_name,
};
pub use validate::MAX_ERRORS;

/// What the derive macros' output refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json::json;
}
