//! The forms a workflow asks for: its initial form and the forms of its input steps.
//!
//! The engine needs only the [`InputForm`] trait; `cadre-forms` forms implement it. Submitting
//! follows the pydantic-forms protocol: the caller sends every page answered so far and gets
//! back the merged input, the next page to fill in, or every validation error.

use async_trait::async_trait;
use cadre_domain::{Repositories, State};
use serde_json::Value;

/// Why submitted pages did not produce input: the pydantic-forms outcomes of `cadre-forms`.
pub use cadre_forms::SubmitError as FormError;

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

#[async_trait]
impl InputForm for cadre_forms::Form {
    async fn submit(
        &self,
        repositories: &dyn Repositories,
        state: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        cadre_forms::Form::submit(self, repositories, state, pages).await
    }
}
