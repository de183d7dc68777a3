//! The forms a workflow asks for: its initial form and the forms of its input steps.
//!
//! The engine needs only this small trait; `cadre-forms` implements it for declared form pages.
//! Submitting follows the pydantic-forms protocol: the caller sends every page answered so far,
//! and gets back the merged input, the next page to fill in, or every validation error.

use async_trait::async_trait;
use cadre_domain::{DomainError, Repositories, State};
use serde_json::{Value, json};

/// Why submitted pages did not produce input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormError {
    /// More pages are needed; `form` is the JSON Schema of the next page.
    #[error("form not complete")]
    NotComplete {
        /// The next page's schema.
        form: Value,
        /// Page metadata (buttons, hasNext), if any.
        meta: Option<Value>,
    },
    /// A page did not validate; `errors` are pydantic-style error details.
    #[error("form not valid")]
    Invalid {
        /// Zero-based index of the page that failed.
        page: usize,
        /// The error details: `{type, loc, msg, input, ctx}` objects.
        errors: Vec<Value>,
    },
    /// More pages were submitted than the form has.
    #[error("the form has {expected} pages but {submitted} were submitted")]
    TooManyPages {
        /// Pages the form has (for the answers given).
        expected: usize,
        /// Pages submitted.
        submitted: usize,
    },
    /// Building the form failed (e.g. a lookup for its choices).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// A form: turns submitted pages into input for the process state.
#[async_trait]
pub trait InputForm: Send + Sync {
    /// Validates `pages` (every page answered so far) against `state` and returns the input to
    /// merge into the state, or why not. `repositories` serves lookups such as choice lists.
    async fn submit(
        &self,
        repositories: &dyn Repositories,
        state: &State,
        pages: &[Value],
    ) -> Result<State, FormError>;
}

/// A form with one empty page, for workflows and input steps that ask nothing: `[]` yields the
/// empty page, `[{}]` submits it (orchestrator-core's convention).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyForm;

#[async_trait]
impl InputForm for EmptyForm {
    async fn submit(
        &self,
        _repositories: &dyn Repositories,
        _state: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        match pages {
            [] => Err(FormError::NotComplete {
                form: json!({
                    "additionalProperties": false,
                    "properties": {},
                    "title": "unknown",
                    "type": "object"
                }),
                meta: None,
            }),
            [Value::Object(page)] if page.is_empty() => Ok(State::new()),
            [page] => Err(FormError::Invalid {
                page: 0,
                errors: vec![json!({
                    "type": "extra_forbidden",
                    "loc": [],
                    "msg": "This form takes no input",
                    "input": page,
                })],
            }),
            _ => Err(FormError::TooManyPages {
                expected: 1,
                submitted: pages.len(),
            }),
        }
    }
}
