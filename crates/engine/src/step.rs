//! Steps and step lists: what a workflow is made of.
//!
//! A step is an async function over the process state that returns a patch, merged into the
//! state key by key. Its database writes go through the transaction in its [`StepContext`],
//! which also commits the step's log entry: a step's effects and its record land together or
//! not at all.

use std::fmt;
use std::ops::Shr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cadre_domain::outbound::Outbound;
use cadre_domain::{DomainError, State, StoreTransaction};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

/// What a step sees while it runs.
pub struct StepContext<'a> {
    /// The transaction the step's writes and its log entry commit in.
    pub store: &'a dyn StoreTransaction,
    /// Where changes of users and groups go out to the applications (outbound provisioning).
    pub outbound: &'a dyn Outbound,
    /// The process running the step.
    pub process_id: Uuid,
    /// The current time, read once for the step.
    pub now: DateTime<Utc>,
    /// The state before the step.
    pub state: &'a State,
}

impl StepContext<'_> {
    /// Reads `key` from the state as `T`; a missing or ill-typed key is a step error naming it.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, StepError> {
        let value = self
            .state
            .get(key)
            .ok_or_else(|| StepError::new(format!("the process state has no {key:?}")))?;
        serde_json::from_value(value.clone()).map_err(|error| {
            StepError::new(format!("the process state's {key:?} is invalid: {error}"))
        })
    }

    /// Reads `key` from the state as `T`, or `None` when it is absent or null.
    pub fn get_optional<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StepError> {
        match self.state.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.get(key).map(Some),
        }
    }
}

/// A step failure. Plain steps fail the process; retry steps make it wait and retry.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct StepError {
    /// What went wrong, for the process's `failed_reason`.
    pub message: String,
    /// Structured detail for the step log (e.g. the domain error's kind).
    pub detail: Option<Value>,
    /// What kind of failure it is; tasks report some kinds as their own process status.
    pub kind: FailureKind,
}

/// The kind of a step failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailureKind {
    /// Anything else: the process becomes `failed`.
    #[default]
    Failed,
    /// An external API could not be reached: a task becomes `api_unavailable`.
    ApiUnavailable,
    /// The data is inconsistent: a task becomes `inconsistent_data`.
    InconsistentData,
    /// The store failed, not the step (the database unreachable, say): the step's writes roll
    /// back, nothing is recorded, and the process runs again from this step once its lease
    /// expires, as after a failed commit.
    Storage,
}

impl StepError {
    /// A step error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            detail: None,
            kind: FailureKind::Failed,
        }
    }

    /// An external API could not be reached.
    pub fn api_unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::ApiUnavailable,
            ..Self::new(message)
        }
    }

    /// The data the step works on is inconsistent.
    pub fn inconsistent_data(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::InconsistentData,
            ..Self::new(message)
        }
    }
}

impl From<DomainError> for StepError {
    fn from(error: DomainError) -> Self {
        let kind = match &error {
            DomainError::NotFound { .. } => "not_found",
            DomainError::Conflict(_) => "conflict",
            DomainError::LeaseLost { .. } => "lease_lost",
            DomainError::InvalidArgument { .. } => "invalid_argument",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::Gone(_) => "gone",
            DomainError::Lifecycle(_) => "lifecycle",
            DomainError::Storage(_) => "storage",
            DomainError::Internal(_) => {
                // The message is for the operators' log; the process shows that it failed.
                tracing::error!(%error, "a step failed internally");
                return Self {
                    message: "internal error; the server's log has the detail".to_owned(),
                    detail: Some(serde_json::json!({ "class": "internal" })),
                    kind: FailureKind::Failed,
                };
            }
            // A kind this engine does not know yet: its message still says what happened.
            _ => "other",
        };
        Self {
            message: error.to_string(),
            detail: Some(serde_json::json!({ "class": kind })),
            kind: if matches!(error, DomainError::Storage(_)) {
                FailureKind::Storage
            } else {
                FailureKind::Failed
            },
        }
    }
}

/// The patch a step returns, merged into the state key by key.
pub type Patch = State;

/// The body of a plain step.
#[async_trait]
pub trait StepFn: Send + Sync {
    /// Runs the step and returns its patch.
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError>;
}

/// A predicate over the state, for conditional steps.
pub type Condition = Arc<dyn Fn(&State) -> bool + Send + Sync>;

/// How a retry step retries: exponential backoff from `initial`, multiplied by `factor` per
/// attempt and capped at `max_delay`, for at most `max_attempts` attempts in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; the last failure fails the process.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Growth of the delay per attempt.
    pub factor: f64,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1 for the first failure).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial.as_secs_f64() * self.factor.powi(exponent);
        Duration::from_secs_f64(seconds.min(self.max_delay.as_secs_f64()))
    }
}

/// What a step is.
#[derive(Clone)]
#[non_exhaustive]
pub enum StepKind {
    /// Runs a function; failure fails the process.
    Plain(Arc<dyn StepFn>),
    /// Runs a function; failure makes the process wait and retry per the policy.
    Retry(Arc<dyn StepFn>, RetryPolicy),
    /// Suspends the process until an operator resumes it with input for `form`.
    Input(Arc<dyn crate::InputForm>),
    /// Runs the inner step when the condition holds, else is logged as skipped.
    Conditional(Condition, Box<Step>),
    /// Runs several plain steps as one, in one transaction, logged once.
    Group(Vec<Step>),
    /// Runs a function again and again, each run in its own transaction and logged on its own
    /// under the name `label` gives for the state before it, while the condition holds on the
    /// state; the process moves on once it does not (at once when it never held).
    Repeat {
        /// The body of each run.
        body: Arc<dyn StepFn>,
        /// Whether (another) run is due.
        again: Condition,
        /// The log name of the run about to happen.
        label: Arc<dyn Fn(&State) -> String + Send + Sync>,
    },
    /// Does nothing (the first step, `init`); logged with the next step's transaction.
    Pure,
    /// The last step: completes the process.
    Done,
}

/// One step of a workflow: a stable key (what a process records to know where it is), a display
/// name (what the step log shows), and what it does.
#[derive(Clone)]
pub struct Step {
    /// Stable key, unique within the workflow; never reuse a key for another meaning.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Behaviour.
    pub kind: StepKind,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("key", &self.key)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A plain step.
pub fn step(key: &str, name: &str, body: impl StepFn + 'static) -> Step {
    Step {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: StepKind::Plain(Arc::new(body)),
    }
}

/// A retry step: on failure the process waits and the step is retried per `policy`.
pub fn retry_step(key: &str, name: &str, policy: RetryPolicy, body: impl StepFn + 'static) -> Step {
    Step {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: StepKind::Retry(Arc::new(body), policy),
    }
}

/// An input step: the process suspends with `form` until input that validates arrives.
pub fn input_step(key: &str, name: &str, form: impl crate::InputForm + 'static) -> Step {
    Step {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: StepKind::Input(Arc::new(form)),
    }
}

/// Runs `inner` only when `condition` holds on the state; otherwise it is logged as skipped.
pub fn conditional(
    condition: impl Fn(&State) -> bool + Send + Sync + 'static,
    inner: Step,
) -> Step {
    Step {
        key: inner.key.clone(),
        name: inner.name.clone(),
        kind: StepKind::Conditional(Arc::new(condition), Box::new(inner)),
    }
}

/// A step that runs `body` while `again` holds on the state, each run in its own transaction
/// and logged under `label(state)`: for work split into parts, such as the batches of a load,
/// so that a crash resumes at the next part. `name` names the step where no run is meant.
pub fn repeat_while(
    key: &str,
    name: &str,
    again: impl Fn(&State) -> bool + Send + Sync + 'static,
    label: impl Fn(&State) -> String + Send + Sync + 'static,
    body: impl StepFn + 'static,
) -> Step {
    Step {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: StepKind::Repeat {
            body: Arc::new(body),
            again: Arc::new(again),
            label: Arc::new(label),
        },
    }
}

/// Runs `steps` (plain or conditional steps) as one logical step in one transaction.
pub fn step_group(key: &str, name: &str, steps: StepList) -> Step {
    Step {
        key: key.to_owned(),
        name: name.to_owned(),
        kind: StepKind::Group(steps.0),
    }
}

/// The first step of every workflow ("Start").
pub fn init() -> StepList {
    StepList(vec![Step {
        key: "init".to_owned(),
        name: "Start".to_owned(),
        kind: StepKind::Pure,
    }])
}

/// The last step of every workflow ("Done").
pub fn done() -> Step {
    Step {
        key: "done".to_owned(),
        name: "Done".to_owned(),
        kind: StepKind::Done,
    }
}

/// An ordered list of steps, composed with `>>`.
#[derive(Debug, Clone, Default)]
pub struct StepList(pub Vec<Step>);

impl StepList {
    /// The steps in order.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The step with `key` and its position.
    pub fn find(&self, key: &str) -> Option<(usize, &Step)> {
        self.0.iter().enumerate().find(|(_, step)| step.key == key)
    }
}

impl Shr<Step> for StepList {
    type Output = StepList;

    fn shr(mut self, step: Step) -> StepList {
        self.0.push(step);
        self
    }
}

impl Shr<StepList> for StepList {
    type Output = StepList;

    fn shr(mut self, steps: StepList) -> StepList {
        self.0.extend(steps.0);
        self
    }
}

impl From<Step> for StepList {
    fn from(step: Step) -> Self {
        StepList(vec![step])
    }
}

/// Merges `patch` into `state`, key by key (a shallow merge, as orchestrator-core does).
pub fn merge(state: &mut State, patch: Patch) {
    for (key, value) in patch {
        state.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step that changes nothing.
    struct Nothing;

    #[async_trait]
    impl StepFn for Nothing {
        async fn run(&self, _ctx: &StepContext<'_>) -> Result<Patch, StepError> {
            Ok(Patch::new())
        }
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial: Duration::from_secs(2),
            factor: 3.0,
            max_delay: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=6)
            .map(|attempt| policy.delay(attempt).as_secs())
            .collect();
        assert_eq!(delays, [2, 6, 18, 54, 60, 60]);
    }

    #[test]
    fn step_lists_compose_in_order_and_find_by_key() {
        let list = init()
            >> step("a", "A", Nothing)
            >> (StepList::from(step("b", "B", Nothing)) >> done());
        let keys: Vec<&str> = list.steps().iter().map(|step| step.key.as_str()).collect();
        assert_eq!(keys, ["init", "a", "b", "done"]);
        assert_eq!(
            list.find("b")
                .map(|(index, step)| (index, step.name.as_str())),
            Some((2, "B"))
        );
        assert!(list.find("missing").is_none());
    }

    #[test]
    fn a_domain_error_fails_a_step_with_its_message_but_an_internal_one_without() {
        let conflict = StepError::from(DomainError::Conflict("taken".to_owned()));
        assert_eq!(conflict.message, "conflict: taken");
        assert_eq!(
            conflict.detail,
            Some(serde_json::json!({"class": "conflict"}))
        );
        let internal = StepError::from(DomainError::Internal("no entropy".to_owned()));
        assert!(!internal.message.contains("no entropy"), "{internal:?}");
        assert_eq!(
            internal.detail,
            Some(serde_json::json!({"class": "internal"}))
        );
    }

    #[test]
    fn merge_is_shallow_and_key_by_key() {
        let mut state: State =
            serde_json::from_value(serde_json::json!({"a": 1, "nested": {"x": 1}})).unwrap();
        let patch: Patch =
            serde_json::from_value(serde_json::json!({"b": 2, "nested": {"y": 2}})).unwrap();
        merge(&mut state, patch);
        assert_eq!(
            Value::Object(state),
            serde_json::json!({"a": 1, "b": 2, "nested": {"y": 2}})
        );
    }
}
