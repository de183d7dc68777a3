//! Multi-page forms and the pydantic-forms submission protocol.

use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::{DomainError, FormLookups, InputForm, State};
use serde_json::{Map, Value};

use crate::page::FormPage;
use crate::{FormError, FormNotComplete, FormValidationError};

/// Builds a page from the answers so far (merged into `state`); lookups such as choice lists
/// go through `lookups`.
#[async_trait]
pub trait PageBuilder: Send + Sync {
    /// The page to show.
    async fn build(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
    ) -> Result<FormPage, DomainError>;
}

/// A fixed page.
#[async_trait]
impl PageBuilder for FormPage {
    async fn build(
        &self,
        _: &dyn FormLookups,
        _: &Map<String, Value>,
    ) -> Result<FormPage, DomainError> {
        Ok(self.clone())
    }
}

/// A form: pages shown one after the other, each built from the answers before it.
#[derive(Clone, Default)]
pub struct Form {
    pages: Vec<Arc<dyn PageBuilder>>,
}

impl Form {
    /// A form without pages: it takes one empty answer (`[{}]`), as orchestrator-core's
    /// workflows without a form do.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a page.
    pub fn page(mut self, page: impl PageBuilder + 'static) -> Self {
        self.pages.push(Arc::new(page));
        self
    }

    /// The pydantic-forms protocol: validates the `answers` given so far, page by page, each
    /// against the page built from the answers before it. Returns the merged answers when every
    /// page is answered and valid; otherwise the next page to fill in, the errors of the first
    /// invalid page, or that too many pages were sent.
    pub async fn submit(
        &self,
        lookups: &dyn FormLookups,
        state: &Map<String, Value>,
        answers: &[Value],
    ) -> Result<Map<String, Value>, FormError> {
        let pages: Vec<Arc<dyn PageBuilder>> = if self.pages.is_empty() {
            vec![Arc::new(FormPage::untitled())]
        } else {
            self.pages.clone()
        };
        if answers.len() > pages.len() {
            return Err(FormError::TooManyPages {
                expected: pages.len(),
                submitted: answers.len(),
            });
        }
        let mut merged = state.clone();
        let mut input = Map::new();
        for (index, builder) in pages.iter().enumerate() {
            let page = builder.build(lookups, &merged).await?;
            let Some(answer) = answers.get(index) else {
                let next = FormNotComplete::new(page.schema(), page.meta.clone());
                return Err(FormError::NotComplete(Box::new(next)));
            };
            let values = page.validate(answer).map_err(|errors| {
                FormError::Invalid(Box::new(FormValidationError::new(index, errors)))
            })?;
            for (key, value) in values {
                merged.insert(key.clone(), value.clone());
                input.insert(key, value);
            }
        }
        Ok(input)
    }
}

#[async_trait]
impl InputForm for Form {
    async fn submit(
        &self,
        lookups: &dyn FormLookups,
        state: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        Form::submit(self, lookups, state, pages).await
    }
}
