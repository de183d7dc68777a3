//! Test support (feature `testing`): a clock moved by hand, a one-page form, and steps whose
//! database effects can be counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cadre_domain::{
    Clock, FormLookups, FormNotComplete, FormValidationError, State, ValidationError,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{FormError, InputForm, Patch, StepContext, StepError, StepFn};

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock at 2026-11-24 12:00 UTC.
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
        )))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A form of one page whose object is taken as the input, optionally requiring a string field.
pub struct OnePage {
    /// A string field the page must have.
    pub required: Option<&'static str>,
}

#[async_trait]
impl InputForm for OnePage {
    async fn submit(
        &self,
        _: &dyn FormLookups,
        _: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        match pages {
            [] => Err(FormError::NotComplete(Box::new(FormNotComplete::new(
                json!({
                    "type": "object", "properties": {}, "title": "unknown"
                }),
                None,
            )))),
            [Value::Object(page)] => match self.required {
                Some(field) if !page.get(field).is_some_and(Value::is_string) => {
                    let error = ValidationError::new(
                        "string_type",
                        vec![json!(field)],
                        "Input should be a valid string",
                        &Value::Object(page.clone()),
                    );
                    Err(FormError::Invalid(Box::new(FormValidationError::new(
                        0,
                        vec![error],
                    ))))
                }
                _ => Ok(page.clone()),
            },
            _ => Err(FormError::TooManyPages {
                expected: 1,
                submitted: pages.len(),
            }),
        }
    }
}

/// Saves the state's subscription once, appending `tag` to its note: the subscription's
/// version counts how often a step's writes were committed.
pub struct Touch(pub &'static str);

#[async_trait]
impl StepFn for Touch {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let id: Uuid = ctx.get("subscription_id")?;
        let mut record = ctx.store.load_subscription(id).await?;
        let note = record.subscription.note.take().unwrap_or_default();
        record.subscription.note = Some(format!("{note}{}", self.0));
        ctx.store.save_subscription(&record).await?;
        let mut patch = Patch::new();
        patch.insert(format!("touched_{}", self.0), json!(true));
        Ok(patch)
    }
}

/// Like [`Touch`], then fails while `failures` is above zero (counting down): the failed
/// attempt's save must roll back.
pub struct TouchThenFail {
    /// What to append to the note.
    pub tag: &'static str,
    /// Failures left.
    pub failures: Arc<AtomicU32>,
}

#[async_trait]
impl StepFn for TouchThenFail {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let patch = Touch(self.tag).run(ctx).await?;
        let remaining = self.failures.load(Ordering::SeqCst);
        if remaining > 0 {
            self.failures.store(remaining - 1, Ordering::SeqCst);
            return Err(StepError::new("external system unavailable"));
        }
        Ok(patch)
    }
}
