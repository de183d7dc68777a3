//! cadre's durable workflow engine.
//!
//! A [`Workflow`] is a named, versioned list of [`Step`]s composed with `>>`
//! (`init() >> create_subscription(…) >> … >> done()`), with an initial [`InputForm`].
//! [`Engine::start`] validates the submitted form pages and stores a process; workers
//! ([`Engine::run_worker`], [`Engine::run_until_idle`]) claim processes from the database with a
//! lease and run them one committed step at a time. Operators resume, skip or abort processes.
//!
//! The engine depends on `cadre-domain` alone: it talks to storage only through the domain's
//! ports, so it runs on any [`cadre_domain::Store`], and it knows forms only as the domain's
//! [`InputForm`] (what `cadre-forms` implements). Products bring their workflows from outside
//! (the built-in User and UserGroup ones are in `cadre-products`).

mod engine;
mod no_input;
pub mod standard;
mod step;
#[cfg(feature = "testing")]
pub mod testing;
mod workflow;

pub use cadre_domain::forms::{FormError, InputForm};
pub use engine::{CompletionHook, Engine, EngineConfig, EngineError, StepObserver};
pub use no_input::NoInput;
pub use step::{
    Condition, FailureKind, Patch, RetryPolicy, Step, StepContext, StepError, StepFn, StepKind,
    StepList, conditional, done, init, input_step, merge, repeat_while, retry_step, step,
    step_group,
};
pub use workflow::{DefinitionError, Registry, Workflow};
