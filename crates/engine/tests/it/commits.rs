//! What fails while a step commits: a broken constraint fails the step with its message; only a
//! lost lease stops the worker quietly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cadre_domain::testing::MemoryStore;
use cadre_domain::{
    DomainError, ProcessRepository, ProcessStatus, State, StoreTransaction, SubscriptionRepository,
};
use cadre_engine::{
    CompletionHook, Patch, RetryPolicy, StepContext, StepError, StepFn, Workflow, done, init,
    retry_step, step,
};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::fixtures::{
    ManualClock, Touch, active_group, engine, expected, log, page, store, workflow,
};

/// Saves the completed process's subscription at the version before the last save: a
/// concurrent-save conflict raised in the transaction that completes the process.
struct StaleSave;

#[async_trait]
impl CompletionHook for StaleSave {
    async fn completed(
        &self,
        txn: &dyn StoreTransaction,
        _workflow: &Workflow,
        state: &State,
        _now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let id: Uuid = serde_json::from_value(state["subscription_id"].clone()).unwrap();
        let mut record = txn.load_subscription(id).await?;
        record.subscription.version -= 1;
        txn.save_subscription(&record).await.map(drop)
    }
}

/// `init >> touch a >> touch b (retried by `policy`, if any) >> done`.
fn touch_then(policy: Option<RetryPolicy>) -> Workflow {
    let last = match policy {
        Some(policy) => retry_step("touch_b", "Touch B", policy, Touch("b")),
        None => step("touch_b", "Touch B", Touch("b")),
    };
    workflow(
        "touch_then",
        init() >> step("touch_a", "Touch A", Touch("a")) >> last >> done(),
    )
}

#[tokio::test]
async fn a_conflict_while_a_step_commits_fails_the_step_with_its_message() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let engine = engine(&store, vec![touch_then(None)], ManualClock::new())
        .with_completion_hook(Arc::new(StaleSave));
    let process = engine
        .start("touch_then", &page(group.subscription.id), "alice")
        .await
        .unwrap();

    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let failed = store.process(process.id).await.unwrap();
    assert_eq!(failed.status, ProcessStatus::Failed);
    let reason = failed.failed_reason.unwrap_or_default();
    assert!(
        reason.starts_with("conflict: ") && reason.contains("was changed by someone else"),
        "{reason}"
    );
    assert_eq!(failed.next_step.as_deref(), Some("touch_b"));
    assert_eq!(
        failed.state.get("touched_b"),
        None,
        "the state is the one the step started from"
    );
    let steps = store.process_steps(process.id).await.unwrap();
    assert_eq!(
        log(&steps),
        expected(&[
            ("Start", "success"),
            ("Touch A", "success"),
            ("Touch B", "failed")
        ])
    );
    assert_eq!(
        steps[2].error.as_ref().unwrap()["detail"]["class"],
        "conflict"
    );
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(
        (subscription.version, subscription.note.as_deref()),
        (group.subscription.version + 1, Some("a")),
        "touch b's save rolled back"
    );
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "nothing is claimed"
    );
}

#[tokio::test]
async fn a_conflict_while_a_retry_step_commits_waits_for_a_retry() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let policy = RetryPolicy {
        max_attempts: 2,
        initial: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    let engine = engine(&store, vec![touch_then(Some(policy))], ManualClock::new())
        .with_completion_hook(Arc::new(StaleSave));
    let process = engine
        .start("touch_then", &page(group.subscription.id), "alice")
        .await
        .unwrap();

    engine.run_until_idle().await.unwrap();
    let waiting = store.process(process.id).await.unwrap();
    assert_eq!(
        (waiting.status, waiting.attempt),
        (ProcessStatus::Waiting, 1)
    );
    assert_eq!(
        waiting.run_at - waiting.last_modified_at,
        TimeDelta::seconds(10)
    );
    assert_eq!(
        log(&store.process_steps(process.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Touch A", "success"),
            ("Touch B", "waiting")
        ])
    );
}

/// Touches the subscription, then, the first time only, claims its own process as another
/// worker would once the lease expired: the step's commit then finds the lease gone.
struct TouchThenLoseLease {
    stolen: AtomicBool,
}

#[async_trait]
impl StepFn for TouchThenLoseLease {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let patch = Touch("x").run(ctx).await?;
        if !self.stolen.swap(true, Ordering::SeqCst) {
            let later = ctx.now + TimeDelta::hours(1);
            let (taken, _) = ctx
                .store
                .claim_process("other", later, later + TimeDelta::seconds(30))
                .await?
                .unwrap();
            assert_eq!(taken.id, ctx.process_id);
        }
        Ok(patch)
    }
}

async fn version(store: &MemoryStore, id: Uuid) -> i64 {
    store
        .load_subscription(id)
        .await
        .unwrap()
        .subscription
        .version
}

/// Runs a one-step workflow whose step is `body`, which the first time writes and then is
/// interrupted (`first_run` is what the worker's run returns then): nothing is recorded, the
/// write rolls back and the process stays claimed; once the lease expires, the step runs again
/// and commits once.
async fn interrupted_once_then_run_again(
    body: impl StepFn + 'static,
    first_run: impl FnOnce(Result<usize, DomainError>),
) {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let clock = ManualClock::new();
    let flow = workflow(
        "interrupted",
        init() >> step("touch", "Touch", body) >> done(),
    );
    let engine = engine(&store, vec![flow], clock.clone());
    let process = engine
        .start("interrupted", &page(group.subscription.id), "alice")
        .await
        .unwrap();

    first_run(engine.run_until_idle().await);
    let running = store.process(process.id).await.unwrap();
    assert_eq!(running.status, ProcessStatus::Running, "still claimed");
    assert_eq!(running.failed_reason, None);
    assert!(store.process_steps(process.id).await.unwrap().is_empty());
    assert_eq!(
        version(&store, group.subscription.id).await,
        group.subscription.version,
        "the step rolled back"
    );

    // Once the lease expires, the step runs again and commits once.
    clock.advance(TimeDelta::minutes(1));
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let completed = store.process(process.id).await.unwrap();
    assert_eq!(completed.status, ProcessStatus::Completed);
    assert_eq!(
        version(&store, group.subscription.id).await,
        group.subscription.version + 1
    );
}

#[tokio::test]
async fn a_lost_lease_stops_the_worker_without_recording_anything() {
    let body = TouchThenLoseLease {
        stolen: AtomicBool::new(false),
    };
    interrupted_once_then_run_again(body, |run| {
        assert_eq!(run.unwrap(), 1, "no error");
    })
    .await;
}

/// Touches the subscription, then, the first time only, fails as a step does when the database
/// went away under it.
struct TouchThenLoseTheDatabase {
    lost: AtomicBool,
}

#[async_trait]
impl StepFn for TouchThenLoseTheDatabase {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let patch = Touch("x").run(ctx).await?;
        if !self.lost.swap(true, Ordering::SeqCst) {
            return Err(DomainError::Storage("the connection was reset".to_owned()).into());
        }
        Ok(patch)
    }
}

#[tokio::test]
async fn a_store_failure_inside_a_step_is_no_step_failure_and_the_step_runs_again() {
    let body = TouchThenLoseTheDatabase {
        lost: AtomicBool::new(false),
    };
    interrupted_once_then_run_again(body, |run| {
        let error = run.unwrap_err();
        assert!(matches!(error, DomainError::Storage(_)), "{error:?}");
    })
    .await;
}
