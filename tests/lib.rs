//! Support for the workspace-wide integration tests in `it/`: the workflows that the durability
//! tests run in killable worker processes (`bin/crash_worker.rs`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cadre_domain::ProductType;
use cadre_engine::standard::create_subscription;
use cadre_engine::testing::{OnePage, Touch};
use cadre_engine::{
    Patch, Registry, StepContext, StepError, StepFn, StepKind, Workflow, done, init, step,
};

/// The name of the durability workflow.
pub const CRASH_WORKFLOW: &str = "crash_test";

/// Runs a step after a pause inside its transaction, widening the window in which a kill lands
/// mid-step.
struct Slow(Arc<dyn StepFn>, Duration);

#[async_trait]
impl StepFn for Slow {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        tokio::time::sleep(self.1).await;
        self.0.run(ctx).await
    }
}

/// The name of the workflow whose one touching step runs for [`LONG_STEP`], several leases of
/// the crash worker.
pub const LONG_STEP_WORKFLOW: &str = "long_step_test";

/// How long the long step of [`LONG_STEP_WORKFLOW`] runs.
pub const LONG_STEP: Duration = Duration::from_millis(1500);

/// `init >> create_subscription >> touch a >> touch b >> touch c >> done`: every step but `init`
/// and `done` writes to the database, so a step applied twice shows in the subscription count or
/// its version. The registry also holds [`LONG_STEP_WORKFLOW`] and the provisioning loads.
pub fn registry() -> Registry {
    let pause = Duration::from_millis(20);
    let mut slow_create = create_subscription(ProductType::user_group());
    if let StepKind::Plain(body) = slow_create.kind {
        slow_create.kind = StepKind::Plain(Arc::new(Slow(body, pause)));
    }
    let mut registry = Registry::new();
    let workflow = Workflow {
        name: CRASH_WORKFLOW.to_owned(),
        description: "durability test: creates a group and touches it three times".to_owned(),
        target: cadre_domain::Target::Create,
        product_types: vec![ProductType::user_group()],
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(OnePage { required: None }),
        steps: init()
            >> slow_create
            >> step("touch_a", "Touch A", Slow(Arc::new(Touch("a")), pause))
            >> step("touch_b", "Touch B", Slow(Arc::new(Touch("b")), pause))
            >> step("touch_c", "Touch C", Slow(Arc::new(Touch("c")), pause))
            >> done(),
    };
    let long = Workflow {
        name: LONG_STEP_WORKFLOW.to_owned(),
        description: "durability test: creates a group and touches it in one long step".to_owned(),
        target: cadre_domain::Target::Create,
        product_types: vec![ProductType::user_group()],
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(OnePage { required: None }),
        steps: init()
            >> create_subscription(ProductType::user_group())
            >> step(
                "touch_long",
                "Touch long",
                Slow(Arc::new(Touch("long")), LONG_STEP),
            )
            >> done(),
    };
    for workflow in [workflow, long]
        .into_iter()
        .chain(cadre_provisioning::workflows())
    {
        if let Err(error) = registry.register(workflow) {
            unreachable!("the durability workflows are well formed: {error}");
        }
    }
    registry
}
