//! Operator actions: input for suspended processes, skip, abort; and the lease fence.

use cadre_domain::{
    DomainError, ProcessRepository, ProcessStatus, ProcessUpdate, StepRecord, StepStatus,
};
use cadre_engine::{EngineError, FormError, done, init, input_step, step};
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use crate::fixtures::{
    ManualClock, OnePage, Touch, TouchThenFail, active_group, engine, expected, log, page, store,
    touch_twice, workflow,
};

#[tokio::test]
async fn an_input_step_suspends_until_valid_input_arrives() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let flow = workflow(
        "approval",
        init()
            >> input_step(
                "approve",
                "Approve",
                // Input steps use the same form protocol as starting a workflow.
                OnePage {
                    required: Some("approved_by"),
                },
            )
            >> step("touch_a", "Touch A", Touch("a"))
            >> done(),
    );
    let engine = engine(&store, vec![flow], ManualClock::new());
    let process = engine
        .start("approval", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let suspended = store.process(process.id).await.unwrap();
    assert_eq!(suspended.status, ProcessStatus::Suspended);
    assert!(engine.pending_form(&suspended).await.unwrap().is_some());
    assert_eq!(engine.run_until_idle().await.unwrap(), 0);

    let invalid = engine
        .resume(process.id, &[json!({"approved_by": 7})], "bob")
        .await
        .unwrap_err();
    assert!(
        matches!(
            invalid,
            EngineError::Form(FormError::Invalid(ref body)) if body.page == 0
        ),
        "{invalid:?}"
    );
    let missing = engine.resume(process.id, &[], "bob").await.unwrap_err();
    assert!(
        matches!(missing, EngineError::Form(FormError::NotComplete(_))),
        "{missing:?}"
    );
    assert_eq!(
        store.process(process.id).await.unwrap().status,
        ProcessStatus::Suspended
    );

    engine
        .resume(process.id, &[json!({"approved_by": "bob"})], "bob")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(process.state["approved_by"], json!("bob"));
    let steps = store.process_steps(process.id).await.unwrap();
    assert_eq!(
        log(&steps),
        expected(&[
            ("Start", "success"),
            ("Approve", "suspend"),
            ("Approve", "success"),
            ("Touch A", "success"),
            ("Done", "complete")
        ])
    );
    assert_eq!(
        steps[2].created_by, "bob",
        "the input is logged as the operator's"
    );
}

#[tokio::test]
async fn a_failed_step_can_be_skipped() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let flow = workflow(
        "skippable",
        init()
            >> step(
                "broken",
                "Broken",
                TouchThenFail {
                    tag: "x",
                    failures: Arc::new(AtomicU32::new(u32::MAX)),
                },
            )
            >> step("touch_a", "Touch A", Touch("a"))
            >> done(),
    );
    let engine = engine(&store, vec![flow], ManualClock::new());
    let process = engine
        .start("skippable", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        store.process(process.id).await.unwrap().status,
        ProcessStatus::Failed
    );

    let skipped = engine.skip_step(process.id, "bob").await.unwrap();
    assert_eq!(skipped.next_step.as_deref(), Some("touch_a"));
    engine.run_until_idle().await.unwrap();
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Completed);
    assert_eq!(
        log(&store.process_steps(process.id).await.unwrap()),
        expected(&[
            ("Start", "success"),
            ("Broken", "failed"),
            ("Broken", "skipped"),
            ("Touch A", "success"),
            ("Done", "complete")
        ])
    );
    let skip_again = engine.skip_step(process.id, "bob").await.unwrap_err();
    assert!(
        matches!(skip_again, EngineError::Domain(DomainError::Conflict(_))),
        "{skip_again:?}"
    );
}

#[tokio::test]
async fn unfinished_processes_can_be_aborted_and_final_ones_cannot_change() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let flow = workflow(
        "approval",
        init() >> input_step("approve", "Approve", OnePage { required: None }) >> done(),
    );
    let engine = engine(&store, vec![flow, touch_twice()], ManualClock::new());
    let suspended = engine
        .start("approval", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    let created = engine
        .start("touch_twice", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_next().await.unwrap();

    let aborted = engine.abort(suspended.id, "bob").await.unwrap();
    assert_eq!(aborted.status, ProcessStatus::Aborted);
    assert_eq!(aborted.last_step.as_deref(), Some("User Aborted"));
    let resume = engine
        .resume(suspended.id, &[json!({})], "bob")
        .await
        .unwrap_err();
    assert!(
        matches!(resume, EngineError::Domain(DomainError::Conflict(ref message)) if message.contains("is aborted")),
        "{resume:?}"
    );
    assert_eq!(
        log(&store.process_steps(suspended.id).await.unwrap())
            .last()
            .cloned(),
        Some(("User Aborted".to_owned(), "abort".to_owned()))
    );

    engine.abort(created.id, "bob").await.unwrap();
    assert_eq!(
        engine.run_until_idle().await.unwrap(),
        0,
        "aborted processes are not picked up"
    );
    let completed = engine
        .start("touch_twice", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let error = engine.abort(completed.id, "bob").await.unwrap_err();
    assert!(
        matches!(error, EngineError::Domain(DomainError::Conflict(_))),
        "{error:?}"
    );
    assert_eq!(
        store.process(completed.id).await.unwrap().status,
        ProcessStatus::Completed
    );
}

#[tokio::test]
async fn a_lease_taken_over_or_revoked_fences_out_the_old_worker() {
    let store = store().await;
    let group = active_group(&store, "g1").await;
    let clock = ManualClock::new();
    let engine = engine(&store, vec![touch_twice()], clock.clone());
    let process = engine
        .start("touch_twice", &page(group.subscription.id), "alice")
        .await
        .unwrap();
    let now = cadre_domain::Clock::now(clock.as_ref());

    let (_, first) = store
        .claim_process("a", now, now + TimeDelta::seconds(5))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .claim_process("b", now, now + TimeDelta::seconds(5))
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    let later = now + TimeDelta::seconds(6);
    let (claimed, second) = store
        .claim_process("b", later, later + TimeDelta::seconds(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.status, ProcessStatus::Running);
    assert!(second.token > first.token);

    let step = StepRecord {
        step_key: "init".to_owned(),
        name: "Start".to_owned(),
        status: StepStatus::Success,
        state: claimed.state.clone(),
        error: None,
        created_by: "alice".to_owned(),
        started_at: later,
        completed_at: later,
    };
    let update = ProcessUpdate {
        status: ProcessStatus::Running,
        last_step: Some("Start".to_owned()),
        next_step: Some("touch_a".to_owned()),
        state: claimed.state.clone(),
        failed_reason: None,
        traceback: None,
        run_at: later,
        attempt: 0,
        now: later,
    };
    let stale = store
        .commit_steps(&first, std::slice::from_ref(&step), &update, None)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, DomainError::LeaseLost { process: id, ref owner } if id == process.id && owner == "a"),
        "{stale:?}"
    );
    store
        .commit_steps(
            &second,
            std::slice::from_ref(&step),
            &update,
            Some(later + TimeDelta::seconds(5)),
        )
        .await
        .unwrap();

    engine.abort(process.id, "bob").await.unwrap();
    let revoked = store
        .commit_steps(&second, std::slice::from_ref(&step), &update, None)
        .await
        .unwrap_err();
    assert!(
        matches!(revoked, DomainError::LeaseLost { .. }),
        "an abort revokes the lease: {revoked:?}"
    );
    assert_eq!(
        store.process_steps(process.id).await.unwrap().len(),
        2,
        "Start and User Aborted only"
    );
}
