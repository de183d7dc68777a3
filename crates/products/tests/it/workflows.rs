//! The built-in User and UserGroup workflows, end to end on the store.

use std::sync::Arc;

use cadre_domain::models;
use cadre_domain::{
    AccountRepository, AuditRepository, DomainError, Lifecycle, Process, ProcessRepository,
    ProcessStatus, Session, Store, SubscriptionRepository, SystemClock,
};
use cadre_engine::{Engine, EngineConfig, EngineError};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::{User, UserGroup};
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::log;

fn engine(store: &SeaStore) -> Engine {
    // The forms are tested on their own (forms.rs); here one page carries the whole input.
    let registry = cadre_products::testing::registry_with_one_page_forms().unwrap();
    let store: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(
        store,
        registry,
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
}

async fn run(engine: &Engine, workflow: &str, input: Value) -> Process {
    let process = engine.start(workflow, &[input], "alice").await.unwrap();
    engine.run_until_idle().await.unwrap();
    engine.store().process(process.id).await.unwrap()
}

fn subscription_id(process: &Process) -> Uuid {
    serde_json::from_value(process.state["subscription_id"].clone()).unwrap()
}

async fn create_group(engine: &Engine, id: &str, name: &str, parents: &[Uuid]) -> UserGroup {
    let process = run(
        engine,
        "create_user_group",
        json!({"product": USER_GROUP_PRODUCT_ID, "user_group_id": id, "user_group_name": name,
               "parent_user_groups": parents}),
    )
    .await;
    assert_eq!(
        process.status,
        ProcessStatus::Completed,
        "{:?}",
        process.failed_reason
    );
    models::from_subscription(engine.store().as_ref(), subscription_id(&process))
        .await
        .unwrap()
}

async fn create_user(engine: &Engine, id: &str, groups: &[Uuid]) -> Process {
    run(
        engine,
        "create_user",
        json!({"product": USER_INTERNAL_PRODUCT_ID, "user_id": id, "username": id,
               "email": format!("{id}@Example.org"), "firstname": "Ada", "lastname": "Lovelace",
               "user_group_ids": groups}),
    )
    .await
}

#[tokio::test]
async fn create_user_group_then_a_user_in_it() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    assert_eq!(group.subscription.lifecycle, Lifecycle::Active);
    assert!(group.subscription.insync);
    assert_eq!(group.subscription.description, "User Group Engineering");

    let process = create_user(&engine, "ada", &[group.subscription.id]).await;
    assert_eq!(
        process.status,
        ProcessStatus::Completed,
        "{:?}",
        process.failed_reason
    );
    let names: Vec<String> = log(&store.process_steps(process.id).await.unwrap())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "Start",
            "Create subscription",
            "Create Process Subscription relation",
            "Initialize subscription",
            "Provision user",
            "Set subscription to 'active'",
            "Unlock subscription",
            "Done"
        ],
        "the seed's step list, with orchestrator-core's step names"
    );
    let user: User = models::from_subscription(&*store, subscription_id(&process))
        .await
        .unwrap();
    assert_eq!(user.subscription.lifecycle, Lifecycle::Active);
    assert!(user.subscription.insync);
    assert_eq!(
        user.subscription.description,
        "User ada from group Engineering (internal)"
    );
    assert_eq!(user.user.email.as_str(), "ada@example.org");
    assert_eq!(
        user.user.groups,
        [group.user_group.reference(group.subscription.id)]
    );
    assert_eq!(
        store.process_subscriptions(process.id).await.unwrap(),
        [user.subscription.id]
    );
}

#[tokio::test]
async fn a_create_with_bad_input_fails_and_writes_nothing_but_the_subscription_shell() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    let process = run(
        &engine,
        "create_user",
        json!({"product": USER_INTERNAL_PRODUCT_ID, "user_id": ".bad", "username": "x",
               "email": "x@example.org", "user_group_ids": [group.subscription.id]}),
    )
    .await;
    assert_eq!(process.status, ProcessStatus::Failed);
    assert_eq!(
        process.next_step.as_deref(),
        Some("initialize_subscription")
    );
    assert!(
        process
            .failed_reason
            .as_deref()
            .unwrap()
            .contains("must not start with '.'")
    );
    let record = store
        .load_subscription(subscription_id(&process))
        .await
        .unwrap();
    assert_eq!(record.subscription.lifecycle, Lifecycle::Initial);

    let wrong_product = engine
        .start(
            "create_user",
            &[json!({"product": USER_GROUP_PRODUCT_ID})],
            "alice",
        )
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    let failed = store.process(wrong_product.id).await.unwrap();
    assert_eq!(failed.status, ProcessStatus::Failed);
    assert!(failed.failed_reason.unwrap().contains("not a User"));
}

#[tokio::test]
async fn modify_user_changes_fields_and_groups_under_the_lock() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let eng = create_group(&engine, "eng", "Engineering", &[]).await;
    let ops = create_group(&engine, "ops", "Operations", &[]).await;
    let user_id = subscription_id(&create_user(&engine, "ada", &[eng.subscription.id]).await);

    let process = run(
        &engine,
        "modify_user",
        json!({"subscription_id": user_id, "email": "ada@ops.example.org", "user_group_ids": [ops.subscription.id]}),
    )
    .await;
    assert_eq!(
        process.status,
        ProcessStatus::Completed,
        "{:?}",
        process.failed_reason
    );
    let names: Vec<String> = log(&store.process_steps(process.id).await.unwrap())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "Start",
            "Create Process Subscription relation",
            "Lock subscription",
            "Modify subscription",
            "Push user",
            "Unlock subscription",
            "Done"
        ]
    );
    let user: User = models::from_subscription(&*store, user_id).await.unwrap();
    assert_eq!(user.user.email.as_str(), "ada@ops.example.org");
    assert_eq!(
        user.user.groups,
        [ops.user_group.reference(ops.subscription.id)]
    );
    assert_eq!(
        user.subscription.description,
        "User ada from group Operations (internal)"
    );
    assert!(user.subscription.insync);

    // A subscription held by another process cannot be picked up by a second modify.
    let mut record = store.load_subscription(user_id).await.unwrap();
    record.subscription.insync = false;
    store.save_subscription(&record).await.unwrap();
    let refused = engine
        .start("modify_user", &[json!({"subscription_id": user_id})], "bob")
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        EngineError::NotStartable(format!(
            "subscription {user_id} already has a running process"
        ))
    );
    // Validation does not need the lock.
    let validated = run(
        &engine,
        "validate_user",
        json!({"subscription_id": user_id}),
    )
    .await;
    assert_eq!(
        validated.status,
        ProcessStatus::Completed,
        "{:?}",
        validated.failed_reason
    );
}

#[tokio::test]
async fn the_lock_step_refuses_a_subscription_taken_after_the_start() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    let process = engine
        .start(
            "modify_user_group",
            &[json!({"subscription_id": group.subscription.id, "user_group_name": "Eng"})],
            "alice",
        )
        .await
        .unwrap();
    let mut record = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    record.subscription.insync = false;
    store.save_subscription(&record).await.unwrap();
    engine.run_until_idle().await.unwrap();
    let process = store.process(process.id).await.unwrap();
    assert_eq!(process.status, ProcessStatus::Failed);
    assert_eq!(process.last_step.as_deref(), Some("Lock subscription"));
    let unchanged: UserGroup = models::from_subscription(&*store, group.subscription.id)
        .await
        .unwrap();
    assert_eq!(unchanged.user_group.name.as_str(), "Engineering");
}

#[tokio::test]
async fn a_group_in_use_cannot_be_terminated_until_its_users_are() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    let user_id = subscription_id(&create_user(&engine, "ada", &[group.subscription.id]).await);

    let blocked = run(
        &engine,
        "terminate_user_group",
        json!({"subscription_id": group.subscription.id}),
    )
    .await;
    assert_eq!(blocked.status, ProcessStatus::Failed);
    assert!(
        blocked
            .failed_reason
            .as_deref()
            .unwrap()
            .contains("used in other subscriptions: User ada"),
        "{:?}",
        blocked.failed_reason
    );
    let still: UserGroup = models::from_subscription(&*store, group.subscription.id)
        .await
        .unwrap();
    assert_eq!(still.subscription.lifecycle, Lifecycle::Active);

    let terminated = run(
        &engine,
        "terminate_user",
        json!({"subscription_id": user_id}),
    )
    .await;
    assert_eq!(
        terminated.status,
        ProcessStatus::Completed,
        "{:?}",
        terminated.failed_reason
    );
    let user = store.load_subscription(user_id).await.unwrap().subscription;
    assert_eq!(user.lifecycle, Lifecycle::Terminated);
    assert!(user.end_date.is_some());

    engine
        .resume(blocked.id, &[json!({})], "bob")
        .await
        .unwrap();
    engine.run_until_idle().await.unwrap();
    assert_eq!(
        store.process(blocked.id).await.unwrap().status,
        ProcessStatus::Completed
    );
    let group = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert_eq!(group.lifecycle, Lifecycle::Terminated);
    assert!(group.insync, "resync unlocked it");

    let again = engine
        .start("modify_user", &[json!({"subscription_id": user_id})], "bob")
        .await
        .unwrap_err();
    assert_eq!(
        again,
        EngineError::NotStartable(format!(
            "subscription {user_id} is terminated; modify_user needs it active"
        ))
    );
    let wrong_type = engine
        .start(
            "modify_user",
            &[json!({"subscription_id": group.id})],
            "bob",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong_type, EngineError::NotStartable(ref reason) if reason.contains("is a UserGroup, not a User"))
    );
}

#[tokio::test]
async fn aborting_a_failed_terminate_releases_the_group_it_locked() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    create_user(&engine, "ada", &[group.subscription.id]).await;
    let blocked = run(
        &engine,
        "terminate_user_group",
        json!({"subscription_id": group.subscription.id}),
    )
    .await;
    assert_eq!(blocked.status, ProcessStatus::Failed);
    let locked = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert!(!locked.insync, "the failed terminate holds the group");

    engine.abort(blocked.id, "bob").await.unwrap();
    let released = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap()
        .subscription;
    assert!(released.insync, "the abort released it");
    assert_eq!(released.lifecycle, Lifecycle::Active);
    let events = store
        .list_audit(&cadre_domain::AuditQuery {
            action: Some(cadre_domain::AuditAction::ProcessAborted),
            limit: 10,
            ..cadre_domain::AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        events.items[0]
            .detail
            .as_deref()
            .unwrap()
            .contains(&format!("was failed; released {}", group.subscription.id)),
        "{:?}",
        events.items[0].detail
    );

    // The next workflow takes the group.
    let renamed = run(
        &engine,
        "modify_user_group",
        json!({"subscription_id": group.subscription.id, "user_group_name": "Eng"}),
    )
    .await;
    assert_eq!(
        renamed.status,
        ProcessStatus::Completed,
        "{:?}",
        renamed.failed_reason
    );
}

#[tokio::test]
async fn group_nesting_refuses_cycles() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let top = create_group(&engine, "top", "Top", &[]).await;
    let middle = create_group(&engine, "middle", "Middle", &[top.subscription.id]).await;
    assert_eq!(
        middle.user_group.parent_groups,
        [top.user_group.reference(top.subscription.id)]
    );

    let cycle = run(
        &engine,
        "modify_user_group",
        json!({"subscription_id": top.subscription.id, "parent_user_groups": [middle.subscription.id]}),
    )
    .await;
    assert_eq!(cycle.status, ProcessStatus::Failed);
    assert!(
        cycle.failed_reason.as_deref().unwrap().contains("cycle"),
        "{:?}",
        cycle.failed_reason
    );
    let validated = run(
        &engine,
        "validate_user_group",
        json!({"subscription_id": middle.subscription.id}),
    )
    .await;
    assert_eq!(
        validated.status,
        ProcessStatus::Completed,
        "{:?}",
        validated.failed_reason
    );
}

/// A session of `user_id`, as signing in stores it.
async fn session_of(store: &SeaStore, user_id: Uuid) -> Session {
    let now = chrono::Utc::now();
    let session = Session {
        id: Uuid::now_v7(),
        secret_hash: "0".repeat(64),
        user_id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + chrono::TimeDelta::hours(1),
    };
    store.create_session(&session).await.unwrap();
    session
}

/// The names of the steps `process` logged.
async fn step_names(store: &SeaStore, process: &Process) -> Vec<String> {
    log(&store.process_steps(process.id).await.unwrap())
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test]
async fn disable_user_and_enable_user_move_a_user_between_active_and_disabled() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    let user_id = subscription_id(&create_user(&engine, "ada", &[group.subscription.id]).await);
    let other_id = subscription_id(&create_user(&engine, "grace", &[group.subscription.id]).await);
    let created = store.load_subscription(user_id).await.unwrap().subscription;
    let first = session_of(&store, user_id).await;
    let second = session_of(&store, user_id).await;
    let others = session_of(&store, other_id).await;

    // Only a disabled user can be enabled.
    let refused = engine
        .start("enable_user", &[json!({"subscription_id": user_id})], "bob")
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        EngineError::NotStartable(format!(
            "subscription {user_id} is active; enable_user needs it disabled"
        ))
    );

    let disabled = run(
        &engine,
        "disable_user",
        json!({"subscription_id": user_id, "reason": "on leave"}),
    )
    .await;
    assert_eq!(
        disabled.status,
        ProcessStatus::Completed,
        "{:?}",
        disabled.failed_reason
    );
    assert_eq!(
        step_names(&store, &disabled).await,
        [
            "Start",
            "Create Process Subscription relation",
            "Lock subscription",
            "Set subscription to 'disabled'",
            "End user sessions",
            "Push user",
            "Unlock subscription",
            "Done"
        ]
    );
    assert_eq!(disabled.state["reason"], json!("on leave"));
    assert_eq!(disabled.state["sessions_ended"], json!(2));
    assert_eq!(
        store.process_subscriptions(disabled.id).await.unwrap(),
        [user_id]
    );
    let user: User = models::from_subscription(&*store, user_id).await.unwrap();
    assert_eq!(user.subscription.lifecycle, Lifecycle::Disabled);
    assert!(user.subscription.insync, "resync unlocked it");
    assert_eq!(user.subscription.start_date, created.start_date);
    assert_eq!(user.subscription.end_date, None, "disabled is not ended");
    assert_eq!(user.subscription.description, created.description);
    assert_eq!(user.user.username.as_str(), "ada");
    for session in [first.id, second.id] {
        assert!(
            matches!(
                store.session(session).await,
                Err(DomainError::NotFound { .. })
            ),
            "ended"
        );
    }
    assert_eq!(
        store.session(others.id).await.unwrap().user_id,
        other_id,
        "another user's session stays"
    );

    // A disabled user is neither disabled again nor modified nor validated.
    for workflow in ["disable_user", "modify_user", "validate_user"] {
        let refused = engine
            .start(workflow, &[json!({"subscription_id": user_id})], "bob")
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            EngineError::NotStartable(format!(
                "subscription {user_id} is disabled; {workflow} needs it active"
            ))
        );
    }
    // Like other modify workflows, enable_user refuses a subscription another process holds.
    let mut record = store.load_subscription(user_id).await.unwrap();
    record.subscription.insync = false;
    store.save_subscription(&record).await.unwrap();
    let refused = engine
        .start("enable_user", &[json!({"subscription_id": user_id})], "bob")
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        EngineError::NotStartable(format!(
            "subscription {user_id} already has a running process"
        ))
    );
    let mut record = store.load_subscription(user_id).await.unwrap();
    record.subscription.insync = true;
    store.save_subscription(&record).await.unwrap();

    let enabled = run(&engine, "enable_user", json!({"subscription_id": user_id})).await;
    assert_eq!(
        enabled.status,
        ProcessStatus::Completed,
        "{:?}",
        enabled.failed_reason
    );
    assert_eq!(
        step_names(&store, &enabled).await,
        [
            "Start",
            "Create Process Subscription relation",
            "Lock subscription",
            "Set subscription to 'active'",
            "Push user",
            "Unlock subscription",
            "Done"
        ]
    );
    let user: User = models::from_subscription(&*store, user_id).await.unwrap();
    assert_eq!(user.subscription.lifecycle, Lifecycle::Active);
    assert!(user.subscription.insync);
    assert_eq!(
        user.subscription.start_date, created.start_date,
        "the first activation's date stays"
    );
    assert_eq!(user.subscription.end_date, None);
    let modified = run(
        &engine,
        "modify_user",
        json!({"subscription_id": user_id, "firstname": "Augusta"}),
    )
    .await;
    assert_eq!(
        modified.status,
        ProcessStatus::Completed,
        "{:?}",
        modified.failed_reason
    );
}

#[tokio::test]
async fn a_disabled_user_can_be_terminated() {
    let store = scratch_store().await;
    let engine = engine(&store);
    let group = create_group(&engine, "eng", "Engineering", &[]).await;
    let user_id = subscription_id(&create_user(&engine, "ada", &[group.subscription.id]).await);
    let disabled = run(&engine, "disable_user", json!({"subscription_id": user_id})).await;
    assert_eq!(
        disabled.status,
        ProcessStatus::Completed,
        "{:?}",
        disabled.failed_reason
    );
    assert_eq!(disabled.state["sessions_ended"], json!(0));

    let terminated = run(
        &engine,
        "terminate_user",
        json!({"subscription_id": user_id}),
    )
    .await;
    assert_eq!(
        terminated.status,
        ProcessStatus::Completed,
        "{:?}",
        terminated.failed_reason
    );
    let user = store.load_subscription(user_id).await.unwrap().subscription;
    assert_eq!(user.lifecycle, Lifecycle::Terminated);
    assert!(user.end_date.is_some());
    let refused = engine
        .start("enable_user", &[json!({"subscription_id": user_id})], "bob")
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        EngineError::NotStartable(format!(
            "subscription {user_id} is terminated; enable_user needs it disabled"
        ))
    );
}
