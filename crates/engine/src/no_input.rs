//! [`NoInput`]: the form of a workflow or action that takes no input.

use async_trait::async_trait;
use cadre_domain::{
    FormError, FormLookups, FormNotComplete, FormValidationError, InputForm, State, ValidationError,
};
use serde_json::{Value, json};

/// A form without fields: it asks for one empty page and takes `[{}]`, as orchestrator-core's
/// workflows without a form do. Any field in the answer is refused (`extra_forbidden`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInput;

#[async_trait]
impl InputForm for NoInput {
    async fn submit(
        &self,
        _: &dyn FormLookups,
        _: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        let answer = match pages {
            [] => {
                let page = json!({
                    "additionalProperties": false,
                    "properties": {},
                    "title": "unknown",
                    "type": "object"
                });
                return Err(FormError::NotComplete(Box::new(FormNotComplete::new(
                    page, None,
                ))));
            }
            [answer] => answer,
            _ => {
                return Err(FormError::TooManyPages {
                    expected: 1,
                    submitted: pages.len(),
                });
            }
        };
        let errors: Vec<ValidationError> = match answer {
            Value::Object(fields) => fields
                .iter()
                .map(|(name, value)| {
                    ValidationError::new(
                        "extra_forbidden",
                        vec![json!(name)],
                        "Extra inputs are not permitted",
                        value,
                    )
                })
                .collect(),
            other => vec![
                ValidationError::new(
                    "model_type",
                    vec![],
                    "Input should be a valid dictionary or instance of the model",
                    other,
                )
                .with_ctx("class_name", json!("FormPage")),
            ],
        };
        if errors.is_empty() {
            Ok(State::new())
        } else {
            Err(FormError::Invalid(Box::new(FormValidationError::new(
                0, errors,
            ))))
        }
    }
}
