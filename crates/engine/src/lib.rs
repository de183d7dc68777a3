//! cadre's durable workflow engine.
//!
//! A [`Workflow`] is a named, versioned list of [`Step`]s composed with `>>`
//! (`init() >> create_subscription(…) >> … >> done()`), with an initial [`InputForm`].
//! [`Engine::start`] validates the submitted form pages and stores a process; workers
//! ([`Engine::run_worker`], [`Engine::run_until_idle`]) claim processes from the database with a
//! lease and run them one committed step at a time. Operators resume, skip or abort processes.
//!
//! The engine talks to storage only through the `cadre-domain` ports, so it runs on any
//! [`cadre_domain::Store`].

mod engine;
mod form;
mod step;
pub mod steps;
#[cfg(feature = "testing")]
pub mod testing;
mod workflow;
pub mod workflows;

pub use engine::{CompletionHook, Engine, EngineConfig, EngineError};
pub use form::{FormError, InputForm};
pub use step::{
    Condition, FailureKind, Patch, RetryPolicy, Step, StepContext, StepError, StepFn, StepKind,
    StepList, conditional, done, init, input_step, merge, repeat_while, retry_step, step,
    step_group,
};
pub use workflow::{DefinitionError, Registry, Workflow};
