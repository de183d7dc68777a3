//! Durability: worker processes killed with SIGKILL at many points; restarted workers finish
//! every process, and no step's database effects are applied twice.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cadre_domain::{
    ProcessQuery, ProcessRepository, ProcessStatus, ProductType, SubscriptionQuery,
    SubscriptionRepository, SystemClock,
};
use cadre_engine::{Engine, EngineConfig};
use cadre_migrations::demo::USER_GROUP_PRODUCT_ID;
use cadre_store::testing::{scratch_database, store_at};
use serde_json::json;

const PROCESSES: u64 = 60;

/// Kill delays in milliseconds: a fixed, varied sequence (some before the lease of the previous
/// victim expires, most after), so every run exercises many interruption points.
fn delays() -> impl Iterator<Item = u64> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    std::iter::from_fn(move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Some(40 + seed % 700)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_resume_every_process_without_applying_a_step_twice() {
    let database = scratch_database().await;
    let url = database.url();
    let store = store_at(url).await;
    let starter = Engine::new(
        Arc::new(store.clone()),
        cadre_tests::registry(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    for _ in 0..PROCESSES {
        starter
            .start(
                cadre_tests::CRASH_WORKFLOW,
                &[json!({"product": USER_GROUP_PRODUCT_ID})],
                "test",
            )
            .await
            .unwrap();
    }

    let mut kills = 0;
    let mut interrupted_steps = BTreeSet::new();
    for delay in delays() {
        let mut worker = Command::new(env!("CARGO_BIN_EXE_crash-worker"))
            .env("CADRE_CRASH_DB", url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker");
        tokio::time::sleep(Duration::from_millis(delay)).await;
        worker.kill().expect("SIGKILL the worker");
        worker.wait().expect("reap the worker");
        kills += 1;

        let running = store
            .list_processes(&ProcessQuery {
                status: Some(ProcessStatus::Running),
                ..Default::default()
            })
            .await
            .unwrap();
        interrupted_steps.extend(
            running
                .items
                .iter()
                .filter_map(|process| process.next_step.clone()),
        );
        let completed = store
            .list_processes(&ProcessQuery {
                status: Some(ProcessStatus::Completed),
                limit: Some(0),
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if completed == PROCESSES {
            break;
        }
        assert!(
            kills < 400,
            "only {completed} of {PROCESSES} processes completed after {kills} kills"
        );
    }
    eprintln!("{kills} kills interrupted steps {interrupted_steps:?}");
    assert!(kills >= 5, "the workers were killed only {kills} times");
    assert!(
        interrupted_steps.len() >= 3,
        "kills interrupted too few distinct steps: {interrupted_steps:?}"
    );

    let processes = store
        .list_processes(&ProcessQuery::default())
        .await
        .unwrap();
    for process in &processes.items {
        assert_eq!(process.status, ProcessStatus::Completed);
        let steps = store.process_steps(process.id).await.unwrap();
        let keys: Vec<&str> = steps.iter().map(|step| step.step_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "init",
                "create_subscription",
                "touch_a",
                "touch_b",
                "touch_c",
                "done"
            ],
            "process {} logged a step twice or skipped one",
            process.id
        );
    }
    let groups = store
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::user_group()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        groups.total, PROCESSES,
        "create_subscription committed exactly once per process"
    );
    for group in &groups.items {
        assert_eq!(
            group.subscription.version, 4,
            "created once and touched three times"
        );
        assert_eq!(group.subscription.note.as_deref(), Some("abc"));
    }
}

const LOAD_USERS: usize = 3000;
const LOAD_BATCH: usize = 50;

/// A load interrupted by SIGKILL at many points resumes at its next unapplied batch: every
/// batch is applied and logged exactly once, and every user is created exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_load_resumes_at_its_next_batch_and_applies_each_batch_once() {
    use cadre_domain::{Email, ExternalId};
    use cadre_provisioning::{LoadSettings, Mode, Provisioner, Rows, UserRow};

    let database = scratch_database().await;
    let url = database.url();
    let store = store_at(url).await;
    let starter = Engine::new(
        Arc::new(store.clone()),
        cadre_tests::registry(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let rows: Vec<UserRow> = (0..LOAD_USERS)
        .map(|n| UserRow {
            row: n as u64 + 2,
            user_id: ExternalId::parse(&format!("user{n}")).unwrap(),
            firstname: None,
            lastname: None,
            email: Some(Email::parse(&format!("user{n}@example.com")).unwrap()),
            auth_id: None,
            user_groups: vec![ExternalId::parse("everyone").unwrap()],
            active: true,
            username: None,
            employment: None,
            disabled: false,
        })
        .collect();
    let mut settings = LoadSettings::new(Mode::Full);
    settings.batch_size = LOAD_BATCH;
    let provisioner = Provisioner::new(starter);
    let load = provisioner
        .start(&Rows::Users(rows), settings, "test")
        .await
        .unwrap();
    let batches = (LOAD_USERS + 1).div_ceil(LOAD_BATCH) as u64;

    let mut kills = 0;
    let mut interrupted_batches = BTreeSet::new();
    for delay in delays() {
        let mut worker = Command::new(env!("CARGO_BIN_EXE_crash-worker"))
            .env("CADRE_CRASH_DB", url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker");
        tokio::time::sleep(Duration::from_millis(delay)).await;
        worker.kill().expect("SIGKILL the worker");
        worker.wait().expect("reap the worker");
        kills += 1;
        let process = store.process(load.id).await.unwrap();
        if process.status == ProcessStatus::Completed {
            break;
        }
        let applied = process.state.get("applied").and_then(|n| n.as_u64());
        if let Some(applied) = applied.filter(|applied| (1..batches).contains(applied)) {
            interrupted_batches.insert(applied);
        }
        assert!(kills < 400, "the load did not complete after {kills} kills");
    }
    eprintln!("{kills} kills interrupted the load after batches {interrupted_batches:?}");
    assert!(
        !interrupted_batches.is_empty(),
        "no kill landed between batches ({kills} kills)"
    );

    let steps = store.process_steps(load.id).await.unwrap();
    let applied: Vec<String> = steps
        .iter()
        .filter(|step| step.step_key == "apply_batch")
        .map(|step| step.name.clone())
        .collect();
    let expected: Vec<String> = (1..=batches)
        .map(|k| format!("Apply batch {k} of {batches}"))
        .collect();
    assert_eq!(applied, expected, "a batch was applied twice or skipped");
    let report = provisioner.report(load.id).await.unwrap();
    assert_eq!(report.counts.created, LOAD_USERS as u64 + 1);
    let users = store
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::user()),
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(users.total, LOAD_USERS as u64, "each user created once");
}

/// A worker killed with SIGKILL while a step runs for several of its leases (renewing it): the
/// process is taken over once the last renewal expires, and the step's effect appears once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_a_long_step_is_replaced_and_the_step_applies_once() {
    let database = scratch_database().await;
    let url = database.url();
    let store = store_at(url).await;
    let starter = Engine::new(
        Arc::new(store.clone()),
        cadre_tests::registry(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    let process = starter
        .start(
            cadre_tests::LONG_STEP_WORKFLOW,
            &[json!({"product": USER_GROUP_PRODUCT_ID})],
            "test",
        )
        .await
        .unwrap();
    let worker = || {
        Command::new(env!("CARGO_BIN_EXE_crash-worker"))
            .env("CADRE_CRASH_DB", url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker")
    };

    // Kill the first worker two of its leases (250 ms) into the long step.
    let mut first = worker();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store
        .process(process.id)
        .await
        .unwrap()
        .next_step
        .as_deref()
        != Some("touch_long")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the long step never began"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().expect("SIGKILL the worker");
    first.wait().expect("reap the worker");
    let interrupted = store.process(process.id).await.unwrap();
    assert_eq!(interrupted.status, ProcessStatus::Running);
    assert_eq!(interrupted.next_step.as_deref(), Some("touch_long"));

    let mut second = worker();
    while store.process(process.id).await.unwrap().status != ProcessStatus::Completed {
        assert!(
            std::time::Instant::now() < deadline,
            "the process never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().expect("SIGKILL the second worker");
    second.wait().expect("reap the second worker");

    let steps = store.process_steps(process.id).await.unwrap();
    let keys: Vec<&str> = steps.iter().map(|step| step.step_key.as_str()).collect();
    assert_eq!(keys, ["init", "create_subscription", "touch_long", "done"]);
    let group = store
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::user_group()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(group.total, 1);
    assert_eq!(
        group.items[0].subscription.version, 2,
        "created, touched once"
    );
    assert_eq!(group.items[0].subscription.note.as_deref(), Some("long"));
}
