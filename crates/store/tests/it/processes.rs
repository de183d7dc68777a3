//! Processes through the store's own statements, on both backends: creation (on PostgreSQL one
//! statement of chained inserts, on SQLite three inserts), claiming, fenced step commits (on
//! PostgreSQL one statement of a fenced update and a list of log rows, on SQLite an update then
//! a multi-row insert) and operator transitions.

use cadre_domain::{
    DomainError, Lease, NewProcess, ProcessRepository, ProcessStatus, ProcessUpdate, State,
    StepRecord, StepStatus, Target,
};
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{initial_group, now};

fn state(value: serde_json::Value) -> State {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn new_process(subscription_id: Option<Uuid>, at: DateTime<Utc>) -> NewProcess {
    NewProcess {
        id: Uuid::now_v7(),
        workflow_name: "modify_note".to_owned(),
        workflow_version: 3,
        target: if subscription_id.is_some() {
            Target::Modify
        } else {
            Target::System
        },
        created_by: "alice".to_owned(),
        state: state(json!({"note": "it's \"quoted\"", "n": 1})),
        input: json!([{"note": "it's \"quoted\""}]),
        first_step: "init".to_owned(),
        subscription_id,
        now: at,
    }
}

fn step(
    key: &str,
    status: StepStatus,
    error: Option<serde_json::Value>,
    at: DateTime<Utc>,
) -> StepRecord {
    StepRecord {
        step_key: key.to_owned(),
        name: format!("Step {key}"),
        status,
        state: state(json!({"after": key})),
        error,
        created_by: "alice".to_owned(),
        started_at: at,
        completed_at: at,
    }
}

fn update(status: ProcessStatus, next: Option<&str>, at: DateTime<Utc>) -> ProcessUpdate {
    ProcessUpdate {
        status,
        last_step: Some("Step last".to_owned()),
        next_step: next.map(str::to_owned),
        state: state(json!({"done": next.is_none()})),
        failed_reason: None,
        traceback: None,
        run_at: at,
        attempt: 0,
        now: at,
    }
}

/// The rows of `table` whose `process_id` is `id`, read around the store's ports.
async fn rows_of(store: &SeaStore, table: &str, id: Uuid) -> i64 {
    let conn = store.connection();
    let query = Query::select()
        .expr_as(Expr::col(Asterisk).count(), "n")
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("process_id")).eq(id))
        .take();
    let row = conn
        .query_one_raw(conn.get_database_backend().build(&query))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn claim(store: &SeaStore, owner: &str, at: DateTime<Utc>) -> Option<Lease> {
    store
        .claim_process(owner, at, at + TimeDelta::seconds(5))
        .await
        .unwrap()
        .map(|(_, lease)| lease)
}

#[tokio::test]
async fn a_new_process_is_stored_with_its_input_and_its_link() {
    let store = scratch_store().await;
    let group = initial_group(&store, "Linked").await;
    for subscription_id in [Some(group.subscription.id), None] {
        let new = new_process(subscription_id, now());
        let created = store.create_process(&new).await.unwrap();
        let stored = store.process(new.id).await.unwrap();
        assert_eq!(stored, created);
        assert_eq!(stored.status, ProcessStatus::Created);
        assert_eq!(stored.next_step.as_deref(), Some("init"));
        assert_eq!(stored.state, new.state);
        assert_eq!(stored.workflow_version, 3);
        assert_eq!(stored.is_task, subscription_id.is_none());
        assert_eq!((stored.started_at, stored.run_at), (now(), now()));
        assert_eq!(
            store.process_subscriptions(new.id).await.unwrap(),
            subscription_id.into_iter().collect::<Vec<_>>()
        );
        assert_eq!(rows_of(&store, "input_states", new.id).await, 1);
    }
}

#[tokio::test]
async fn a_process_for_a_missing_subscription_is_refused_whole() {
    let store = scratch_store().await;
    let new = new_process(Some(Uuid::now_v7()), now());
    store.create_process(&new).await.unwrap_err();
    assert!(matches!(
        store.process(new.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(rows_of(&store, "input_states", new.id).await, 0);
}

#[tokio::test]
async fn steps_commit_only_under_the_current_lease() {
    let store = scratch_store().await;
    let new = new_process(None, now());
    store.create_process(&new).await.unwrap();
    let first = claim(&store, "a", now()).await.unwrap();
    assert!(claim(&store, "b", now()).await.is_none(), "held by a");

    // Several log rows at once, with and without an error.
    let at = now() + TimeDelta::seconds(1);
    let steps = [
        step("init", StepStatus::Success, None, at),
        step("one", StepStatus::Skipped, None, at + TimeDelta::seconds(1)),
        step(
            "two",
            StepStatus::Waiting,
            Some(json!({"reason": "it's down", "code": 503})),
            at + TimeDelta::seconds(2),
        ),
    ];
    let renewed = store
        .commit_steps(
            &first,
            &steps,
            &update(ProcessStatus::Waiting, Some("two"), at),
            Some(at + TimeDelta::seconds(30)),
        )
        .await
        .unwrap();
    assert_eq!(renewed.token, first.token);
    assert_eq!(renewed.expires_at, at + TimeDelta::seconds(30));
    let logged = store.process_steps(new.id).await.unwrap();
    assert_eq!(logged.len(), 3);
    for (logged, step) in logged.iter().zip(&steps) {
        assert_eq!(logged.process_id, new.id);
        assert_eq!(
            (&logged.step_key, &logged.name, logged.status),
            (&step.step_key, &step.name, step.status)
        );
        assert_eq!((&logged.state, &logged.error), (&step.state, &step.error));
        assert_eq!(
            (logged.started_at, logged.completed_at),
            (step.started_at, step.completed_at)
        );
    }
    let process = store.process(new.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Waiting);
    assert_eq!(process.next_step.as_deref(), Some("two"));
    assert_eq!(process.state, state(json!({"done": false})));

    // The lease lapses and another worker takes over: the first one's commit writes nothing.
    let later = at + TimeDelta::seconds(31);
    let second = claim(&store, "b", later).await.unwrap();
    assert!(second.token > first.token);
    let lost = store
        .commit_steps(
            &first,
            &[step("late", StepStatus::Success, None, later)],
            &update(ProcessStatus::Completed, None, later),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(lost, DomainError::LeaseLost { .. }), "{lost:?}");
    assert_eq!(store.process_steps(new.id).await.unwrap().len(), 3);
    assert_eq!(
        store.process(new.id).await.unwrap().status,
        ProcessStatus::Running
    );

    // A commit without log rows is fenced the same way, and releases the lease.
    store
        .commit_steps(
            &second,
            &[],
            &update(ProcessStatus::Completed, None, later),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.process(new.id).await.unwrap().status,
        ProcessStatus::Completed
    );
    assert!(
        store
            .commit_steps(
                &first,
                &[],
                &update(ProcessStatus::Running, None, later),
                None
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_transition_needs_an_allowed_status_and_revokes_the_lease() {
    let store = scratch_store().await;
    let new = new_process(None, now());
    store.create_process(&new).await.unwrap();
    let lease = claim(&store, "a", now()).await.unwrap();

    let refused = store
        .transition_process(
            new.id,
            ProcessStatus::RESUMABLE,
            None,
            &update(ProcessStatus::Resumed, Some("init"), now()),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, DomainError::Conflict(_)), "{refused:?}");

    let aborted = store
        .transition_process(
            new.id,
            &[ProcessStatus::Running],
            Some(&step("abort", StepStatus::Abort, None, now())),
            &update(ProcessStatus::Aborted, None, now()),
        )
        .await
        .unwrap();
    assert_eq!(aborted.status, ProcessStatus::Aborted);
    assert_eq!(store.process_steps(new.id).await.unwrap().len(), 1);
    let revoked = store
        .commit_steps(
            &lease,
            &[step("late", StepStatus::Success, None, now())],
            &update(ProcessStatus::Completed, None, now()),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(revoked, DomainError::LeaseLost { .. }),
        "{revoked:?}"
    );
    assert_eq!(store.process_steps(new.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn pruning_empties_the_step_states_of_ended_processes_only() {
    let store = scratch_store().await;
    let at = now() + TimeDelta::seconds(1);
    let mut ids = Vec::new();
    for status in [ProcessStatus::Completed, ProcessStatus::Waiting] {
        let new = new_process(None, now());
        store.create_process(&new).await.unwrap();
        let lease = claim(&store, "a", now()).await.unwrap();
        let steps = [
            step("init", StepStatus::Success, None, at),
            step("one", StepStatus::Success, None, at),
        ];
        let next = (status == ProcessStatus::Waiting).then_some("two");
        store
            .commit_steps(&lease, &steps, &update(status, next, at), None)
            .await
            .unwrap();
        ids.push(new.id);
    }
    let [ended, waiting] = [ids[0], ids[1]];

    assert_eq!(
        store.prune_step_states(at).await.unwrap(),
        0,
        "not before it ended"
    );
    let later = at + TimeDelta::days(1);
    assert_eq!(store.prune_step_states(later).await.unwrap(), 2);
    assert_eq!(store.prune_step_states(later).await.unwrap(), 0, "once");

    let logged = store.process_steps(ended).await.unwrap();
    let keys: Vec<&str> = logged.iter().map(|step| step.step_key.as_str()).collect();
    assert_eq!(keys, ["init", "one"], "the log lines stay");
    assert!(logged.iter().all(|step| step.state.is_empty()));
    assert_eq!(
        store.process(ended).await.unwrap().state,
        state(json!({"done": true})),
        "the final state stays"
    );
    let kept = store.process_steps(waiting).await.unwrap();
    assert!(kept.iter().all(|step| !step.state.is_empty()), "{kept:?}");
}

#[tokio::test]
async fn counts_tell_processes_by_status_and_the_claimable_ones() {
    use cadre_domain::ProcessCounts;
    let store = scratch_store().await;
    assert_eq!(
        store.process_counts(now()).await.unwrap(),
        ProcessCounts::default()
    );
    // One completed, one held under a lease until now + 5 s, one due a second from now.
    store
        .create_process(&new_process(None, now()))
        .await
        .unwrap();
    let done = claim(&store, "a", now()).await.unwrap();
    store
        .commit_steps(
            &done,
            &[],
            &update(ProcessStatus::Completed, None, now()),
            None,
        )
        .await
        .unwrap();
    store
        .create_process(&new_process(None, now()))
        .await
        .unwrap();
    claim(&store, "a", now()).await.unwrap();
    let later = now() + TimeDelta::seconds(1);
    store
        .create_process(&new_process(None, later))
        .await
        .unwrap();

    let counts = store
        .process_counts(now() + TimeDelta::seconds(2))
        .await
        .unwrap();
    let mut by_status = counts.by_status.clone();
    by_status.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(
        by_status,
        [
            (ProcessStatus::Completed, 1),
            (ProcessStatus::Created, 1),
            (ProcessStatus::Running, 1)
        ]
    );
    assert_eq!((counts.runnable, counts.oldest_runnable), (1, Some(later)));
    assert_eq!(
        store.process_counts(now()).await.unwrap().runnable,
        0,
        "not yet due"
    );
    let expired = store
        .process_counts(now() + TimeDelta::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        (expired.runnable, expired.oldest_runnable),
        (2, Some(now())),
        "the lease expired"
    );
}
