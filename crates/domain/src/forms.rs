//! The port a workflow's forms meet the engine at: [`InputForm`], what it may look up
//! ([`FormLookups`]), and the pydantic-forms outcomes of a submission ([`FormError`]: the 400
//! and 510 bodies and their validation errors).
//!
//! `cadre-forms` implements [`InputForm`] for its `Form`; the engine needs only this module.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::catalogue::Product;
use crate::error::{DomainError, Result};
use crate::ports::{CatalogueRepository, Page, SubscriptionQuery, SubscriptionRepository};
use crate::process::State;
use crate::subscription::{SubscriptionRecord, SubscriptionSummary};

/// One validation error, as pydantic reports it (`url` is left out: it points at pydantic's
/// documentation, not cadre's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationError {
    /// The error type, e.g. `missing`, `string_too_short`, `value_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: the field name (and list index); `__root__` for the whole page.
    pub loc: Vec<Value>,
    /// The message a person reads.
    pub msg: String,
    /// The offending input.
    pub input: Value,
    /// The error's parameters, e.g. `{"ge": 18}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Map<String, Value>>,
}

impl ValidationError {
    /// An error of type `kind` at `loc` about `input`.
    pub fn new(kind: &str, loc: Vec<Value>, msg: impl Into<String>, input: &Value) -> Self {
        Self {
            kind: kind.to_owned(),
            loc,
            msg: msg.into(),
            input: input.clone(),
            ctx: None,
        }
    }

    /// Adds a parameter of the error to `ctx`.
    pub fn with_ctx(mut self, key: &str, value: Value) -> Self {
        self.ctx
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value);
        self
    }
}

/// The HTTP 400 body: a page did not validate. cadre adds `page`, the zero-based index of that
/// page (pydantic-forms leaves the client to guess).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormValidationError {
    /// Always `FormValidationError`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `Form not valid`.
    pub title: &'static str,
    /// Always 400.
    pub status: u16,
    /// The page that failed.
    pub page: usize,
    /// Every error of that page.
    pub validation_errors: Vec<ValidationError>,
}

impl FormValidationError {
    /// The body for `errors` on page `page`.
    pub fn new(page: usize, validation_errors: Vec<ValidationError>) -> Self {
        Self {
            kind: "FormValidationError",
            title: "Form not valid",
            status: 400,
            page,
            validation_errors,
        }
    }
}

/// The HTTP 510 body: more pages are needed; `form` is the next page's schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormNotComplete {
    /// Always `FormNotCompleteError`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `Form not complete`.
    pub title: &'static str,
    /// Always 510.
    pub status: u16,
    /// The next page's JSON Schema.
    pub form: Value,
    /// Page metadata, e.g. `{"hasNext": true}`.
    pub meta: Option<Value>,
}

impl FormNotComplete {
    /// The body asking for the page with schema `form` and metadata `meta`.
    pub fn new(form: Value, meta: Option<Value>) -> Self {
        Self {
            kind: "FormNotCompleteError",
            title: "Form not complete",
            status: 510,
            form,
            meta,
        }
    }
}

/// Why submitted pages produced no input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// More pages are needed.
    #[error("form not complete")]
    NotComplete(Box<FormNotComplete>),
    /// A page did not validate.
    #[error("form not valid: {} error(s) on page {}", .0.validation_errors.len(), .0.page)]
    Invalid(Box<FormValidationError>),
    /// More pages were submitted than the form has.
    #[error("the form has {expected} pages but {submitted} were submitted")]
    TooManyPages {
        /// Pages the form has for these answers.
        expected: usize,
        /// Pages submitted.
        submitted: usize,
    },
    /// A lookup for a page failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// What a form may look up while it builds its pages: the products of the catalogue and the
/// subscriptions (for choice lists). Every store has these; a form needs nothing else.
#[async_trait]
pub trait FormLookups: Send + Sync {
    /// Every product (as [`CatalogueRepository::list_products`]).
    async fn products(&self) -> Result<Vec<Product>>;
    /// One page of the subscriptions matching `query` (as
    /// [`SubscriptionRepository::list_subscriptions`]).
    async fn subscriptions(&self, query: &SubscriptionQuery) -> Result<Page<SubscriptionSummary>>;
    /// One subscription with its product and blocks (as
    /// [`SubscriptionRepository::load_subscription`]), for a page that depends on it.
    async fn subscription(&self, id: Uuid) -> Result<SubscriptionRecord>;
    /// The live subscriptions whose blocks use block instance `instance_id` (as
    /// [`SubscriptionRepository::subscriptions_using`]), e.g. to refuse terminating what is
    /// still in use.
    async fn dependents(&self, instance_id: Uuid) -> Result<Vec<SubscriptionSummary>>;
}

#[async_trait]
impl<T> FormLookups for T
where
    T: CatalogueRepository + SubscriptionRepository + ?Sized,
{
    async fn products(&self) -> Result<Vec<Product>> {
        self.list_products().await
    }

    async fn subscriptions(&self, query: &SubscriptionQuery) -> Result<Page<SubscriptionSummary>> {
        self.list_subscriptions(query).await
    }

    async fn subscription(&self, id: Uuid) -> Result<SubscriptionRecord> {
        self.load_subscription(id).await
    }

    async fn dependents(&self, instance_id: Uuid) -> Result<Vec<SubscriptionSummary>> {
        self.subscriptions_using(instance_id).await
    }
}

/// A form: turns submitted pages into input for the process state.
///
/// Submitting follows the pydantic-forms protocol: the caller sends every page answered so far
/// and gets back the merged input, the next page to fill in, or every validation error.
#[async_trait]
pub trait InputForm: Send + Sync {
    /// Validates `pages` (every page answered so far) against `state` and returns the input to
    /// merge into the state, or why not. `lookups` serves choice lists and the like.
    async fn submit(
        &self,
        lookups: &dyn FormLookups,
        state: &State,
        pages: &[Value],
    ) -> std::result::Result<State, FormError>;
}
