//! Running processes: steps commit one by one, failures roll back, retries back off.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use cadre_domain::{ProcessRepository, ProcessStatus, SubscriptionRepository};
use cadre_engine::{
    RetryPolicy, conditional, done, init, repeat_while, retry_step, step, step_group,
};
use chrono::TimeDelta;
use serde_json::json;

use crate::fixtures::{
    ManualClock, Touch, TouchThenFail, active_group, engine, expected, log, page, store,
    touch_twice, workflow,
};

#[tokio::test]
async fn a_process_runs_every_step_once_and_completes() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let version = group.subscription.version;
    let clock = ManualClock::new();
    let engine = engine(&store, vec![touch_twice()], clock.clone());

    let process = engine
        .start("touch_twice", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    let due = process.run_at;
    assert_eq!(process.status, ProcessStatus::Created);
    assert_eq!(process.next_step.as_deref(), Some("init"));
    assert_eq!(process.state["reporter"], json!("alice"));
    assert_eq!(process.state["workflow_target"], json!("SYSTEM"));

    clock.advance(TimeDelta::seconds(5));
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(process.next_step, None);
    assert_eq!(process.last_step.as_deref(), Some("Done"));
    assert_eq!(
        (process.run_at, process.last_modified_at),
        (due, due + TimeDelta::seconds(5)),
        "step commits leave the due time alone (an indexed column: rows update in place)"
    );
    assert_eq!(process.state["touched_a"], json!(true));
    assert_eq!(process.state["touched_b"], json!(true));
    assert_eq!(
        log(&store.process_steps(process.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Touch A", "success"),
            ("Touch B", "success"),
            ("Done", "complete")
        ])
    );
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(
        subscription.version,
        version + 2,
        "each step's save committed once"
    );
    assert_eq!(subscription.note.as_deref(), Some("ab"));
    assert_eq!(
        store.process_subscriptions(process.id).await.unwrap(),
        [group.subscription.id]
    );
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "a completed process is not run again"
    );
}

#[tokio::test]
async fn a_failed_step_rolls_back_its_writes_and_runs_again_on_resume() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let version = group.subscription.version;
    let failures = Arc::new(AtomicU32::new(1));
    let flow = workflow(
        "flaky",
        init()
            >> step("touch_a", "Touch A", Touch("a"))
            >> step(
                "flaky",
                "Flaky step",
                TouchThenFail {
                    tag: "f",
                    failures: failures.clone(),
                },
            )
            >> done(),
    );
    let engine = engine(&store, vec![flow], ManualClock::new());
    let process = engine
        .start("flaky", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();

    let failed = store.process(process.id).await.unwrap();
    assert_eq!(failed.status, ProcessStatus::Failed);
    assert_eq!(
        failed.failed_reason.as_deref(),
        Some("external system unavailable")
    );
    assert_eq!(failed.next_step.as_deref(), Some("flaky"));
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(
        subscription.version,
        version + 1,
        "the failed step's save rolled back"
    );
    assert_eq!(subscription.note.as_deref(), Some("a"));
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "a failed process waits for an operator"
    );

    let resumed = engine
        .resume(process.id, &[json!({})], "bob")
        .await
        .unwrap();
    assert_eq!(resumed.status, ProcessStatus::Resumed);
    engine.run_until_idle().await.unwrap();
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(process.failed_reason, None);
    let steps = store.process_steps(process.id).await.unwrap();
    assert_eq!(
        log(&steps),
        expected(&[
            ("Start", "success"),
            ("Touch A", "success"),
            ("Flaky step", "failed"),
            ("Flaky step", "success"),
            ("Done", "complete")
        ])
    );
    assert_eq!(
        steps[2].error.as_ref().unwrap()["error"],
        json!("external system unavailable")
    );
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(subscription.version, version + 2);
    assert_eq!(subscription.note.as_deref(), Some("af"));
}

#[tokio::test]
async fn retry_steps_wait_with_backoff_until_their_attempts_run_out() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let clock = ManualClock::new();
    let policy = RetryPolicy {
        max_attempts: 3,
        initial: Duration::from_secs(10),
        factor: 2.0,
        max_delay: Duration::from_secs(3600),
    };
    let failures = Arc::new(AtomicU32::new(u32::MAX));
    let flow = workflow(
        "retrying",
        init()
            >> retry_step(
                "call",
                "Call API",
                policy,
                TouchThenFail { tag: "r", failures },
            )
            >> done(),
    );
    let engine = engine(&store, vec![flow], clock.clone());
    let process = engine
        .start("retrying", &page(group.subscription.id), "alice")
        .await
        .unwrap();

    engine.run_until_idle().await.unwrap();
    let waiting = store.process(process.id).await.unwrap();
    assert_eq!(waiting.status, ProcessStatus::Waiting);
    assert_eq!(waiting.attempt, 1);
    assert_eq!(
        waiting.run_at - waiting.last_modified_at,
        TimeDelta::seconds(10)
    );
    assert_eq!(engine.run_until_idle().await.unwrap(), 0, "not due yet");

    clock.advance(TimeDelta::seconds(10));
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let waiting = store.process(process.id).await.unwrap();
    assert_eq!(
        (waiting.status, waiting.attempt),
        (ProcessStatus::Waiting, 2)
    );
    assert_eq!(
        waiting.run_at - waiting.last_modified_at,
        TimeDelta::seconds(20)
    );

    clock.advance(TimeDelta::seconds(19));
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    let failed = store.process(process.id).await.unwrap();
    assert_eq!((failed.status, failed.attempt), (ProcessStatus::Failed, 3));
    assert_eq!(
        log(&store.process_steps(process.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Call API", "waiting"),
            ("Call API", "waiting"),
            ("Call API", "failed")
        ])
    );
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(
        subscription.version, group.subscription.version,
        "no attempt's writes survived"
    );
}

#[tokio::test]
async fn conditional_steps_skip_and_groups_commit_as_one_step() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let flow = workflow(
        "shaped",
        init()
            >> conditional(
                |state| state.contains_key("never"),
                step("never", "Never", Touch("n")),
            )
            >> step_group(
                "pair",
                "Touch pair",
                init_free(step("touch_a", "Touch A", Touch("a")))
                    >> conditional(
                        |state| state.contains_key("touched_a"),
                        step("touch_b", "Touch B", Touch("b")),
                    ),
            )
            >> done(),
    );
    let engine = engine(&store, vec![flow], ManualClock::new());
    let process = engine
        .start("shaped", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(
        log(&store.process_steps(process.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Never", "skipped"),
            ("Touch pair", "success"),
            ("Done", "complete")
        ])
    );
    assert!(!process.state.contains_key("touched_n"));
    assert_eq!(
        process.state["touched_b"],
        json!(true),
        "later members see earlier members' patches"
    );
    let subscription = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(subscription.note.as_deref(), Some("ab"));
}

/// Counts its runs in the state's `runs`, touching the subscription each time.
struct CountRun;

#[async_trait::async_trait]
impl cadre_engine::StepFn for CountRun {
    async fn run(
        &self,
        ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        let runs = ctx.get_optional::<u64>("runs")?.unwrap_or(0) + 1;
        Touch("r").run(ctx).await?;
        let mut patch = cadre_engine::Patch::new();
        patch.insert("runs".to_owned(), json!(runs));
        Ok(patch)
    }
}

fn runs(state: &cadre_domain::State) -> u64 {
    state
        .get("runs")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn repeated_steps_run_while_their_condition_holds_each_run_logged_and_committed_apart() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let repeating = |name: &str, wanted: u64| {
        workflow(
            name,
            init()
                >> repeat_while(
                    "count",
                    "Count",
                    move |state| runs(state) < wanted,
                    move |state| format!("Count {} of {wanted}", runs(state) + 1),
                    CountRun,
                )
                >> done(),
        )
    };
    let engine = engine(
        &store,
        vec![repeating("three", 3), repeating("none", 0)],
        ManualClock::new(),
    );
    let three = engine
        .start("three", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    let none = engine
        .start("none", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();

    let process = store.process(three.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(
        log(&store.process_steps(three.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Count 1 of 3", "success"),
            ("Count 2 of 3", "success"),
            ("Count 3 of 3", "success"),
            ("Done", "complete")
        ])
    );
    assert_eq!(process.state["runs"], json!(3));
    let note = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription
        .note;
    assert_eq!(
        note.as_deref(),
        Some("rrr"),
        "each run's write committed once"
    );
    assert_eq!(
        log(&store.process_steps(none.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Count", "skipped"),
            ("Done", "complete")
        ])
    );
}

fn init_free(step: cadre_engine::Step) -> cadre_engine::StepList {
    cadre_engine::StepList::from(step)
}

/// Fails with the error `make` builds.
struct FailWith(fn() -> cadre_engine::StepError);

#[async_trait::async_trait]
impl cadre_engine::StepFn for FailWith {
    async fn run(
        &self,
        _ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        Err((self.0)())
    }
}

#[tokio::test]
async fn tasks_report_unavailable_apis_and_inconsistent_data_as_their_own_statuses() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let api = workflow(
        "api_task",
        init()
            >> step(
                "call",
                "Call API",
                FailWith(|| cadre_engine::StepError::api_unavailable("API down")),
            )
            >> done(),
    );
    let data = workflow(
        "data_task",
        init()
            >> step(
                "check",
                "Check data",
                FailWith(|| cadre_engine::StepError::inconsistent_data("mismatch")),
            )
            >> done(),
    );
    let engine = engine(&store, vec![api, data], ManualClock::new());
    let api = engine
        .start("api_task", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    let data = engine
        .start("data_task", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let api = store.process(api.id).await.unwrap();
    assert!(api.is_task);
    assert_eq!(api.status, ProcessStatus::ApiUnavailable);
    assert_eq!(api.failed_reason.as_deref(), Some("API down"));
    assert_eq!(
        store.process(data.id).await.unwrap().status,
        ProcessStatus::InconsistentData
    );
    let resumed = engine.resume(api.id, &[json!({})], "bob").await.unwrap();
    assert_eq!(
        resumed.status,
        ProcessStatus::Resumed,
        "both statuses are resumable"
    );
}

#[tokio::test]
async fn a_process_resumes_by_step_key_and_fails_clearly_when_a_new_version_dropped_its_step() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let failures = Arc::new(AtomicU32::new(1));
    let version_one = workflow(
        "evolving",
        init()
            >> step("touch_a", "Touch A", Touch("a"))
            >> step("flaky", "Flaky step", TouchThenFail { tag: "f", failures })
            >> done(),
    );
    let old = engine(&store, vec![version_one], ManualClock::new());
    let process = old
        .start("evolving", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    old.run_until_idle().await.unwrap();
    assert_eq!(
        store
            .process(process.id)
            .await
            .unwrap()
            .next_step
            .as_deref(),
        Some("flaky")
    );

    // Version 2 inserts a step before the failed one and renames the failed one's key.
    let mut version_two = workflow(
        "evolving",
        init()
            >> step("touch_z", "Touch Z", Touch("z"))
            >> step("touch_a", "Touch A", Touch("a"))
            >> step("flaky_renamed", "Flaky step", Touch("f"))
            >> done(),
    );
    version_two.version = 2;
    let new = engine(&store, vec![version_two], ManualClock::new());
    new.resume(process.id, &[json!({})], "bob").await.unwrap();
    new.run_until_idle().await.unwrap();
    let failed = store.process(process.id).await.unwrap();
    assert_eq!(failed.status, ProcessStatus::Failed);
    assert_eq!(
        failed.failed_reason.as_deref(),
        Some(
            "workflow evolving version 2 has no step \"flaky\" (the process started on version 1)"
        )
    );
    let note = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription
        .note;
    assert_eq!(
        note.as_deref(),
        Some("a"),
        "no step ran by position: touch_z and touch_a did not run again"
    );
}

#[tokio::test]
async fn a_process_started_in_a_transaction_exists_only_if_it_commits() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let clock = ManualClock::new();
    let engine = engine(&store, vec![touch_twice()], clock.clone());
    let query = cadre_domain::ProcessQuery::default();

    let txn = cadre_domain::Store::begin(&store).await.unwrap();
    let dropped = engine
        .start_in(
            txn.as_ref(),
            "touch_twice",
            &page(group.subscription.id),
            "alice",
        )
        .await
        .unwrap();
    drop(txn);
    assert!(matches!(
        store.process(dropped.id).await,
        Err(cadre_domain::DomainError::NotFound { .. })
    ));
    assert_eq!(store.list_processes(&query).await.unwrap().total, 0);
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);

    let txn = cadre_domain::Store::begin(&store).await.unwrap();
    let started = engine
        .start_in(
            txn.as_ref(),
            "touch_twice",
            &page(group.subscription.id),
            "alice",
        )
        .await
        .unwrap();
    txn.commit().await.unwrap();
    engine.wake_workers();
    assert_eq!(started.status, ProcessStatus::Created);
    assert_eq!(engine.run_until_idle().await.unwrap(), 1);
    assert_eq!(
        store.process(started.id).await.unwrap().status,
        ProcessStatus::Completed
    );
}
