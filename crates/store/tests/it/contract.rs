//! The domain's `MemoryStore` keeps the rules of this store: each scenario runs on a scratch
//! `SeaStore` and on a `MemoryStore` seeded with the same catalogue and customer, asserts the
//! same outcomes on both, and the transcripts of the two runs (what each step returned, errors
//! as their messages) must be equal.
//!
//! The last tests are the memory store's own: its transactions when others commit in between,
//! which an in-memory SQLite database (one connection, one transaction at a time) cannot show
//! side by side.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use cadre_domain::testing::MemoryStore;
use cadre_domain::{
    ApiToken, BlockInstance, BlockRef, ChunkPart, CustomerRepository, DomainError, Email, FileName,
    FileStatus, GroupFile, GroupId, GroupName, Lease, Lifecycle, LoadChunk, Name, NewProcess,
    NewSubscription, OutboxKind, OutboxMessage, PasswordReset, PendingUser, Process,
    ProcessRepository, ProcessStatus, ProcessUpdate, Product, ProductType, ProvisionedMark,
    ProvisionedSubscription, RegistrationToken, Role, Session, SortOrder, StepRecord, StepStatus,
    Store, Subscription, SubscriptionQuery, SubscriptionRecord, SubscriptionRepository,
    SubscriptionSort, Target, TokenOperation, UserName, WorkflowGroup, Written,
};
use cadre_migrations::demo::DEFAULT_CUSTOMER_ID;
use cadre_products::testing::active_group;
use cadre_store::testing::scratch_store;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::now;

/// A memory store with the catalogue and customers of `real`.
async fn memory_like(real: &dyn Store) -> MemoryStore {
    let memory = MemoryStore::new(
        real.list_products().await.unwrap(),
        real.list_product_blocks().await.unwrap(),
    );
    let default = real
        .customer_by_name(&Name::parse("Default").unwrap())
        .await
        .unwrap();
    memory.create_customer(&default).await.unwrap();
    memory
}

/// Runs `scenario` on a scratch database and on a memory store like it; both transcripts must
/// agree.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let scratch = scratch_store().await;
    let real: Arc<dyn Store> = Arc::new((*scratch).clone());
    let memory: Arc<dyn Store> = Arc::new(memory_like(real.as_ref()).await);
    let on_real = scenario(real).await;
    let on_memory = scenario(memory).await;
    assert_eq!(
        on_memory, on_real,
        "the memory store differs from the real one"
    );
}

/// A fixed id, the same on both stores.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// What a result shows in a transcript: `ok` or the error's message.
fn outcome<T>(result: &Result<T, DomainError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn saves_load_back_and_a_stale_version_is_a_conflict() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let group = active_group(store.as_ref(), id(1), "g1", "Group One", &[], now())
            .await
            .unwrap();
        let loaded = store.load_subscription(id(1)).await.unwrap();
        transcript.push(format!("version {}", loaded.subscription.version));
        assert_eq!(loaded.subscription, group.subscription);

        let mut first = loaded.clone();
        let mut second = loaded.clone();
        first.subscription.description = "first writer".to_owned();
        let saved = store.save_subscription(&first).await.unwrap();
        let mut expected = first.clone();
        expected.subscription.version += 1;
        assert_eq!(saved, expected, "a save returns the record at its new version");
        assert_eq!(store.load_subscription(id(1)).await.unwrap(), saved);

        second.subscription.description = "second writer".to_owned();
        let stale = store.save_subscription(&second).await;
        assert!(
            matches!(stale, Err(DomainError::Conflict(ref message)) if message.contains("changed by someone else")),
            "{stale:?}"
        );
        transcript.push(outcome(&stale));

        let mut illegal = saved.clone();
        illegal.subscription.lifecycle = Lifecycle::Initial;
        transcript.push(outcome(&store.save_subscription(&illegal).await));
        let mut unknown_field = saved.clone();
        unknown_field.blocks[0].set_value("colour", Some("blue"));
        transcript.push(outcome(&store.save_subscription(&unknown_field).await));
        let missing = id(99);
        transcript.push(outcome(&store.load_subscription(missing).await));
        let taken = store
            .create_subscription(NewSubscription {
                id: id(1),
                product_id: saved.subscription.product_id,
                customer_id: saved.subscription.customer_id,
                description: "taken".to_owned(),
            })
            .await;
        assert_eq!(
            taken,
            Err(DomainError::Conflict(
                "a subscription with this id already exists".to_owned()
            ))
        );
        let nobody = store
            .create_subscription(NewSubscription {
                id: id(2),
                product_id: saved.subscription.product_id,
                customer_id: missing,
                description: "nobody's".to_owned(),
            })
            .await;
        assert_eq!(nobody, Err(DomainError::not_found("customer", missing)));

        // A transaction's save is seen only once it commits.
        let txn = store.begin().await.unwrap();
        let mut renamed = txn.load_subscription(id(1)).await.unwrap();
        renamed.subscription.description = "renamed".to_owned();
        txn.save_subscription(&renamed).await.unwrap();
        drop(txn);
        let stored = store.load_subscription(id(1)).await.unwrap();
        assert_eq!(stored.subscription.description, "first writer", "rolled back");
        let txn = store.begin().await.unwrap();
        txn.save_subscription(&renamed).await.unwrap();
        txn.commit().await.unwrap();
        let stored = store.load_subscription(id(1)).await.unwrap();
        transcript.push(format!(
            "{} at version {}",
            stored.subscription.description, stored.subscription.version
        ));
        transcript
    })
    .await;
}

#[tokio::test]
async fn identifying_values_are_unique_among_live_subscriptions() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let first = active_group(store.as_ref(), id(1), "g1", "Group One", &[], now())
            .await
            .unwrap();
        let duplicate = active_group(store.as_ref(), id(2), "g1", "Group Two", &[], now()).await;
        assert!(
            matches!(duplicate, Err(DomainError::Conflict(ref message)) if message == "a live subscription already holds one of these identifying values"),
            "{duplicate:?}"
        );
        transcript.push(outcome(&duplicate));
        // Claimed by their folded key: `G1` is `g1`, and finds it, answered as asked.
        let folded = active_group(store.as_ref(), id(4), "G1", "Group Four", &[], now()).await;
        assert!(matches!(folded, Err(DomainError::Conflict(_))), "{folded:?}");
        transcript.push(outcome(&folded));
        assert_eq!(
            store
                .find_by_unique_values("user_group_id", &["G1".to_owned()])
                .await
                .unwrap(),
            [("G1".to_owned(), id(1))]
        );
        assert_eq!(
            store
                .find_by_unique_values("user_group_id", &["g1".to_owned(), "nope".to_owned()])
                .await
                .unwrap(),
            [("g1".to_owned(), id(1))]
        );
        transcript.push(outcome(
            &store.find_by_unique_values("description", &[]).await,
        ));

        let mut record = store
            .load_subscription(first.subscription.id)
            .await
            .unwrap();
        record
            .subscription
            .change_lifecycle(Lifecycle::Terminated, now())
            .unwrap();
        store.save_subscription(&record).await.unwrap();
        let reused = active_group(store.as_ref(), id(3), "g1", "Group One", &[], now()).await;
        transcript.push(format!("reused after termination: {}", outcome(&reused)));
        assert!(reused.is_ok());
        transcript.push(format!(
            "{:?}",
            store
                .find_by_unique_values("user_group_id", &["g1".to_owned()])
                .await
                .unwrap()
        ));
        transcript
    })
    .await;
}

#[tokio::test]
async fn references_are_checked_and_a_used_block_stays() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let parent = active_group(store.as_ref(), id(1), "staff", "Staff", &[], now())
            .await
            .unwrap();
        let reference = parent.user_group.reference(parent.subscription.id);
        active_group(
            store.as_ref(),
            id(2),
            "eng",
            "Engineering",
            &[reference],
            now(),
        )
        .await
        .unwrap();
        let users = store
            .subscriptions_using(reference.instance_id)
            .await
            .unwrap();
        transcript.push(format!(
            "{:?}",
            users
                .iter()
                .map(|user| user.subscription.id)
                .collect::<Vec<_>>()
        ));

        let wrong_owner = BlockRef {
            instance_id: reference.instance_id,
            owner_subscription_id: id(2),
        };
        let refused =
            active_group(store.as_ref(), id(3), "ops", "Ops", &[wrong_owner], now()).await;
        transcript.push(outcome(&refused).replace(&reference.instance_id.to_string(), "<parent>"));
        let missing = BlockRef {
            instance_id: id(77),
            owner_subscription_id: id(1),
        };
        let refused = active_group(store.as_ref(), id(4), "qa", "QA", &[missing], now()).await;
        transcript.push(outcome(&refused));

        let mut emptied = store.load_subscription(id(1)).await.unwrap();
        emptied.blocks.clear();
        let refused = store.save_subscription(&emptied).await;
        assert!(
            matches!(refused, Err(DomainError::Conflict(_))),
            "{refused:?}"
        );
        transcript.push(outcome(&refused));
        let snapshots = store.load_snapshots(&[id(2), id(1), id(99)]).await.unwrap();
        let records = store.load_subscriptions(&[id(1), id(2)]).await.unwrap();
        assert_eq!(snapshots.len(), 2);
        for (snapshot, record) in snapshots.iter().zip(&records) {
            assert_eq!(snapshot.id, record.subscription.id);
            assert_eq!(snapshot.version, record.subscription.version);
            assert_eq!(snapshot.blocks, record.blocks);
        }
        transcript
    })
    .await;
}

#[tokio::test]
async fn listings_filter_sort_and_page_alike() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        // Names of one case: descriptions sort by bytes here and on SQLite, by the locale on
        // PostgreSQL.
        for (n, name) in [(1, "Beta"), (2, "Alpha"), (3, "Gamma"), (4, "Alphabet")] {
            active_group(store.as_ref(), id(n), &format!("g{n}"), name, &[], now())
                .await
                .unwrap();
        }
        let mut draft = store.load_subscription(id(3)).await.unwrap();
        draft
            .subscription
            .change_lifecycle(Lifecycle::Disabled, now())
            .unwrap();
        store.save_subscription(&draft).await.unwrap();
        let mut ended = store.load_subscription(id(4)).await.unwrap();
        ended
            .subscription
            .change_lifecycle(Lifecycle::Terminated, now())
            .unwrap();
        store.save_subscription(&ended).await.unwrap();
        // Established ones only, walked by a cursor: the total is the whole listing's.
        let walked = store
            .list_subscriptions(&SubscriptionQuery {
                established: true,
                after: Some(id(1)),
                limit: Some(1),
                ..SubscriptionQuery::default()
            })
            .await
            .unwrap();
        let walked_ids: Vec<Uuid> = walked
            .items
            .iter()
            .map(|item| item.subscription.id)
            .collect();
        assert_eq!((walked_ids, walked.total), (vec![id(2)], 3));
        let rest = store
            .list_subscriptions(&SubscriptionQuery {
                established: true,
                after: Some(id(2)),
                ..SubscriptionQuery::default()
            })
            .await
            .unwrap();
        let rest_ids: Vec<Uuid> = rest.items.iter().map(|item| item.subscription.id).collect();
        assert_eq!(
            (rest_ids, rest.total),
            (vec![id(3)], 3),
            "the terminated one is left out"
        );
        let queries = [
            SubscriptionQuery::default(),
            SubscriptionQuery {
                text: Some("ALPHA".to_owned()),
                ..SubscriptionQuery::default()
            },
            SubscriptionQuery {
                lifecycle: Some(Lifecycle::Active),
                sort: SubscriptionSort::Description,
                order: SortOrder::Desc,
                ..SubscriptionQuery::default()
            },
            SubscriptionQuery {
                product_type: Some(ProductType::user_group()),
                sort: SubscriptionSort::StartDate,
                offset: 1,
                limit: Some(2),
                ..SubscriptionQuery::default()
            },
            SubscriptionQuery {
                product_type: Some(ProductType::user()),
                ..SubscriptionQuery::default()
            },
            SubscriptionQuery {
                text: Some("100%_".to_owned()),
                ..SubscriptionQuery::default()
            },
        ];
        for query in queries {
            let page = store.list_subscriptions(&query).await.unwrap();
            let ids: Vec<String> = page
                .items
                .iter()
                .map(|item| {
                    format!(
                        "{} {} ({})",
                        item.subscription.id, item.subscription.description, item.product_name
                    )
                })
                .collect();
            transcript.push(format!("{ids:?} of {}", page.total));
        }
        transcript
    })
    .await;
}

fn new_process(n: u128, at: DateTime<Utc>) -> NewProcess {
    NewProcess {
        id: id(n),
        workflow_name: "contract".to_owned(),
        workflow_version: 1,
        target: Target::System,
        created_by: "alice".to_owned(),
        state: serde_json::Map::new(),
        input: json!([{}]),
        first_step: "init".to_owned(),
        subscription_id: None,
        now: at,
    }
}

fn step_and_update(process: &Process, at: DateTime<Utc>) -> (StepRecord, ProcessUpdate) {
    let step = StepRecord {
        step_key: "init".to_owned(),
        name: "Start".to_owned(),
        status: StepStatus::Success,
        state: process.state.clone(),
        error: None,
        created_by: "alice".to_owned(),
        started_at: at,
        completed_at: at,
    };
    let update = ProcessUpdate {
        status: ProcessStatus::Running,
        last_step: Some("Start".to_owned()),
        next_step: Some("done".to_owned()),
        state: process.state.clone(),
        failed_reason: None,
        traceback: None,
        run_at: at,
        attempt: 0,
        now: at,
    };
    (step, update)
}

#[tokio::test]
async fn claims_hold_until_they_lapse_and_a_lost_lease_fences_the_old_worker() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let start = now();
        store.create_process(&new_process(1, start)).await.unwrap();
        store
            .create_process(&new_process(2, start + TimeDelta::seconds(1)))
            .await
            .unwrap();
        let lease = |claimed: Option<(Process, Lease)>| claimed.map(|(process, lease)| (process.id, lease.token));
        let expires = start + TimeDelta::seconds(30);
        let first = store.claim_process("a", start, expires).await.unwrap();
        transcript.push(format!("a: {:?}", lease(first.clone())));
        let (process, first) = first.unwrap();
        assert_eq!(process.status, ProcessStatus::Running);
        transcript.push(format!(
            "b: {:?}",
            lease(store.claim_process("b", start, expires).await.unwrap())
        ));
        let later = start + TimeDelta::seconds(31);
        let both_due = store
            .claim_process("b", later, later + TimeDelta::seconds(30))
            .await
            .unwrap();
        transcript.push(format!("b later: {:?}", lease(both_due.clone())));
        let (_, taken_over) = both_due.unwrap();
        let (taken, second) = store
            .claim_process("c", later, later + TimeDelta::seconds(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.id, id(2));
        transcript.push(format!("c later: {:?}", (taken.id, second.token)));

        let (step, update) = step_and_update(&process, later);
        let lost = store
            .commit_steps(&first, std::slice::from_ref(&step), &update, None)
            .await;
        assert!(
            matches!(lost, Err(DomainError::LeaseLost { process, ref owner }) if process == id(1) && owner == "a"),
            "{lost:?}"
        );
        transcript.push(outcome(&lost));
        let renewed = store
            .commit_steps(
                &taken_over,
                std::slice::from_ref(&step),
                &update,
                Some(later + TimeDelta::seconds(60)),
            )
            .await
            .unwrap();
        transcript.push(format!("renewed until {}", renewed.expires_at));
        let aborted = store
            .transition_process(id(1), &[ProcessStatus::Running], None, &update)
            .await
            .unwrap();
        transcript.push(format!("{:?}", aborted.status));
        transcript.push(outcome(
            &store
                .commit_steps(&renewed, std::slice::from_ref(&step), &update, None)
                .await,
        ));
        transcript.push(outcome(
            &store
                .transition_process(id(1), &[ProcessStatus::Failed], None, &update)
                .await,
        ));
        transcript.push(outcome(&store.process(id(99)).await));
        let steps = store.process_steps(id(1)).await.unwrap();
        transcript.push(format!(
            "{:?}",
            steps
                .iter()
                .map(|step| (step.name.as_str(), step.status))
                .collect::<Vec<_>>()
        ));
        let page = store
            .list_processes(&cadre_domain::ProcessQuery {
                status: Some(ProcessStatus::Running),
                ..Default::default()
            })
            .await
            .unwrap();
        transcript.push(format!(
            "{:?} of {}",
            page.items.iter().map(|process| process.id).collect::<Vec<_>>(),
            page.total
        ));
        let mut linked = new_process(3, start);
        linked.subscription_id = Some(id(98));
        transcript.push(outcome(&store.create_process(&linked).await));
        transcript
    })
    .await;
}

#[tokio::test]
async fn tokens_are_found_by_id_and_used_once() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let token = |n: u128, name: &str, at: DateTime<Utc>| ApiToken {
            id: id(n),
            name: name.to_owned(),
            role: Role::User,
            user_id: None,
            secret_hash: "ab".repeat(32),
            created_by: "test".to_owned(),
            created_at: at,
            revoked_at: None,
            expires_at: (n == 2).then(|| at + TimeDelta::days(1)),
        };
        store
            .create_token(&token(2, "late", now() + TimeDelta::seconds(1)))
            .await
            .unwrap();
        store.create_token(&token(1, "early", now())).await.unwrap();
        transcript.push(outcome(
            &store.create_token(&token(1, "again", now())).await,
        ));
        assert_eq!(store.token(id(1)).await.unwrap(), token(1, "early", now()));
        store.revoke_token(id(2), now()).await.unwrap();
        store
            .revoke_token(id(2), now() + TimeDelta::hours(1))
            .await
            .unwrap();
        transcript.push(format!(
            "{:?}",
            store
                .list_tokens()
                .await
                .unwrap()
                .iter()
                .map(|token| (token.name.clone(), token.revoked_at))
                .collect::<Vec<_>>()
        ));
        transcript.push(outcome(&store.token(id(9)).await));
        transcript.push(outcome(&store.revoke_token(id(9), now()).await));
        // A user's tokens, oldest first; the others' are not theirs.
        let owner = id(40);
        for (n, at) in [(4, now() + TimeDelta::seconds(2)), (3, now())] {
            store
                .create_token(&ApiToken {
                    user_id: Some(owner),
                    ..token(n, "owned", at)
                })
                .await
                .unwrap();
        }
        let owned: Vec<Uuid> = store
            .tokens_of(owner)
            .await
            .unwrap()
            .iter()
            .map(|token| token.id)
            .collect();
        assert_eq!(owned, [id(3), id(4)]);
        assert!(store.tokens_of(id(41)).await.unwrap().is_empty());

        let pending = PendingUser {
            id: id(10),
            user_name: UserName::parse("ada").unwrap(),
            email: Email::parse("ada@example.org").unwrap(),
            password_hash: "hash".to_owned(),
            registered_at: now(),
            email_confirmed_at: None,
            completion_process_id: None,
        };
        store.create_pending_user(&pending).await.unwrap();
        let twin = PendingUser {
            id: id(11),
            user_name: UserName::parse("ada2").unwrap(),
            ..pending.clone()
        };
        transcript.push(outcome(&store.create_pending_user(&twin).await));
        let confirm = RegistrationToken {
            id: id(12),
            secret_hash: "cd".repeat(32),
            operation: TokenOperation::ConfirmEmail,
            pending_user_id: Some(id(10)),
            user_id: None,
            group_id: None,
            email: None,
            created_at: now(),
            expires_at: now() + TimeDelta::hours(1),
        };
        store.create_registration_token(&confirm).await.unwrap();
        assert_eq!(store.registration_token(id(12)).await.unwrap(), confirm);
        let orphan = RegistrationToken {
            id: id(13),
            pending_user_id: Some(id(14)),
            ..confirm.clone()
        };
        transcript.push(outcome(&store.create_registration_token(&orphan).await));
        transcript.push(outcome(&store.use_registration_token(id(12)).await));
        transcript.push(outcome(&store.use_registration_token(id(12)).await));
        transcript.push(format!(
            "purged {}",
            store.purge_expired(now()).await.unwrap()
        ));
        transcript.push(outcome(&store.pending_user(id(10)).await));

        // Tokens about a subscription: an email change carries its address, and a user's
        // tokens of one operation go together, leaving the others.
        active_group(store.as_ref(), id(30), "g30", "Group Thirty", &[], now())
            .await
            .unwrap();
        let change = |n: u128, operation: TokenOperation| RegistrationToken {
            id: id(n),
            operation,
            pending_user_id: None,
            user_id: Some(id(30)),
            email: Some(Email::parse("Ada.New@Example.org").unwrap()),
            ..confirm.clone()
        };
        for (n, operation) in [
            (31, TokenOperation::ConfirmEmailChange),
            (32, TokenOperation::ConfirmEmailChange),
            (33, TokenOperation::AcceptGroupTerms),
        ] {
            store
                .create_registration_token(&change(n, operation))
                .await
                .unwrap();
        }
        assert_eq!(
            store.registration_token(id(31)).await.unwrap(),
            change(31, TokenOperation::ConfirmEmailChange)
        );
        store
            .delete_user_tokens(id(30), TokenOperation::ConfirmEmailChange)
            .await
            .unwrap();
        let mut left = Vec::new();
        for n in [31, 32, 33] {
            left.push(store.registration_token(id(n)).await.is_ok());
        }
        assert_eq!(
            left,
            [false, false, true],
            "only the other operation's token stays"
        );

        let message = OutboxMessage {
            id: id(20),
            kind: OutboxKind::Mail,
            payload: json!({"to": "ada@example.org"}),
            created_at: now(),
            attempts: 0,
            next_attempt_at: Some(now()),
            delivered_at: None,
            last_error: None,
        };
        store.enqueue(&message).await.unwrap();
        let until = now() + TimeDelta::minutes(1);
        transcript.push(format!(
            "claimed {} then {}",
            store.claim_message(id(20), now(), until).await.unwrap(),
            store.claim_message(id(20), now(), until).await.unwrap()
        ));
        store
            .record_attempt(id(20), until, Some("refused"), Some(until))
            .await
            .unwrap();
        transcript.push(format!(
            "{:?}",
            store.due_messages(until, 10).await.unwrap()
        ));
        transcript
    })
    .await;
}

/// A new group record with instance `instance`, external id and name `name`, referencing
/// `parents`, in `lifecycle`.
fn group_record(
    product: &Product,
    n: u128,
    instance: u128,
    name: &str,
    parents: &[BlockRef],
    lifecycle: Lifecycle,
) -> SubscriptionRecord {
    let mut block = BlockInstance::new(id(instance), "UserGroupBlock");
    block.set_value("user_group_id", Some(name));
    block.set_value("user_group_name", Some(name));
    block.set_references("parent_groups", parents);
    SubscriptionRecord {
        subscription: Subscription {
            id: id(n),
            product_id: product.id,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: format!("User Group {name}"),
            lifecycle,
            insync: true,
            start_date: Some(now()),
            end_date: None,
            note: None,
            version: 1,
        },
        product: product.clone(),
        blocks: vec![block],
    }
}

#[tokio::test]
async fn batch_inserts_are_checked_like_saves_and_all_or_nothing() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let product = store.product_by_name("User Group").await.unwrap();
        let record = |n, instance, name: &str, parents: &[BlockRef]| {
            group_record(&product, n, instance, name, parents, Lifecycle::Active)
        };
        let parent = record(1, 101, "staff", &[]);
        let parent_ref = BlockRef {
            instance_id: id(101),
            owner_subscription_id: id(1),
        };
        let child = record(2, 102, "eng", &[parent_ref]);
        store
            .insert_subscriptions(&[parent.clone(), child.clone()])
            .await
            .unwrap();
        let loaded = store.load_subscriptions(&[id(2), id(1)]).await.unwrap();
        assert_eq!(loaded, [parent.clone(), child.clone()]);

        let refused: Vec<Vec<SubscriptionRecord>> = vec![
            vec![record(3, 103, "staff", &[])],
            vec![record(4, 104, "ops", &[]), record(5, 105, "ops", &[])],
            vec![record(
                6,
                106,
                "qa",
                &[BlockRef {
                    instance_id: id(999),
                    owner_subscription_id: id(1),
                }],
            )],
            vec![record(1, 107, "dup", &[])],
            vec![record(8, 101, "twin", &[])],
            vec![SubscriptionRecord {
                subscription: Subscription {
                    customer_id: id(500),
                    ..record(9, 109, "nobody", &[]).subscription
                },
                ..record(9, 109, "nobody", &[])
            }],
            vec![{
                let mut odd = record(10, 110, "odd", &[]);
                odd.blocks[0].set_value("colour", Some("red"));
                odd
            }],
            vec![{
                let mut odd = record(11, 111, "odd", &[]);
                odd.blocks[0].block = "NoSuchBlock".to_owned();
                odd
            }],
        ];
        for batch in refused {
            let result = store.insert_subscriptions(&batch).await;
            assert!(result.is_err(), "{batch:?}");
            transcript.push(outcome(&result));
        }
        let stored = store
            .list_subscriptions(&SubscriptionQuery::default())
            .await
            .unwrap();
        assert_eq!(stored.total, 2, "a refused batch writes nothing");

        let terminated = group_record(&product, 12, 112, "staff", &[], Lifecycle::Terminated);
        transcript.push(outcome(&store.insert_subscriptions(&[terminated]).await));
        transcript
    })
    .await;
}

fn workflow_group(group_id: &str, name: &str, owner: Uuid, at: DateTime<Utc>) -> WorkflowGroup {
    WorkflowGroup {
        id: GroupId::parse(group_id).unwrap(),
        workflow: "wf".to_owned(),
        name: GroupName::parse(name).unwrap(),
        owner,
        members: BTreeSet::from([owner]),
        parameters: json!({}),
        workflow_spec: json!({"name": "wf"}),
        engine_config: None,
        created_at: at,
    }
}

fn group_file(n: u128, group_id: &str, status: FileStatus, at: DateTime<Utc>) -> GroupFile {
    GroupFile {
        id: id(n),
        group_id: GroupId::parse(group_id).unwrap(),
        name: FileName::parse("data.csv").unwrap(),
        key: format!("key{n}"),
        mime_type: None,
        size: 0,
        status,
        created_at: at,
    }
}

#[tokio::test]
async fn workflow_groups_keep_names_unique_per_workflow_and_take_their_files_along() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        active_group(store.as_ref(), id(1), "g1", "Group One", &[], now())
            .await
            .unwrap();
        active_group(store.as_ref(), id(2), "g2", "Group Two", &[], now())
            .await
            .unwrap();
        let team = workflow_group("team_a", "Team A", id(1), now());
        store.create_group(&team).await.unwrap();
        assert_eq!(store.group(&team.id).await.unwrap(), team);
        let later = now() + TimeDelta::seconds(1);
        for refused in [
            workflow_group("team_a", "Other", id(1), later),
            workflow_group("team_b", "  team   a ", id(1), later),
            workflow_group("team_c", "Team C", id(77), later),
        ] {
            transcript.push(outcome(&store.create_group(&refused).await));
        }
        let mut elsewhere = workflow_group("team_d", "Team A", id(2), later);
        elsewhere.workflow = "other".to_owned();
        store.create_group(&elsewhere).await.unwrap();
        let mut second = workflow_group("team_e", "Team E", id(2), later);
        second.members.insert(id(1));
        store.create_group(&second).await.unwrap();
        let listed = |groups: Vec<WorkflowGroup>| {
            groups
                .iter()
                .map(|group| group.id.to_string())
                .collect::<Vec<_>>()
        };
        transcript.push(format!(
            "{:?} {:?} {:?}",
            listed(store.list_groups(None, None).await.unwrap()),
            listed(store.list_groups(Some("wf"), Some(id(1))).await.unwrap()),
            listed(store.list_groups(None, Some(id(2))).await.unwrap()),
        ));

        let mut renamed = second.clone();
        renamed.name = GroupName::parse("TEAM A").unwrap();
        transcript.push(outcome(&store.update_group(&renamed).await));
        renamed.name = GroupName::parse("Team Renamed").unwrap();
        renamed.members = BTreeSet::from([id(2)]);
        renamed.parameters = json!({"ignored": true});
        store.update_group(&renamed).await.unwrap();
        let stored = store.group(&renamed.id).await.unwrap();
        assert_eq!(
            stored.parameters,
            json!({}),
            "an update saves name and members only"
        );
        transcript.push(format!("{} {:?}", stored.name, stored.members));
        let missing = workflow_group("nobody", "Nobody", id(1), now());
        transcript.push(outcome(&store.update_group(&missing).await));

        store
            .insert_file(&group_file(10, "team_a", FileStatus::Uploading, now()))
            .await
            .unwrap();
        store
            .insert_file(&group_file(11, "team_a", FileStatus::Stored, later))
            .await
            .unwrap();
        transcript.push(outcome(
            &store
                .insert_file(&group_file(12, "nobody", FileStatus::Stored, later))
                .await,
        ));
        let mut done = group_file(10, "team_a", FileStatus::Stored, now());
        done.size = 42;
        done.mime_type = Some("text/csv".to_owned());
        store.update_file(&done).await.unwrap();
        transcript.push(outcome(
            &store
                .update_file(&group_file(13, "team_a", FileStatus::Stored, now()))
                .await,
        ));
        let files = |files: Vec<GroupFile>| {
            files
                .iter()
                .map(|file| (file.id, file.status, file.size))
                .collect::<Vec<_>>()
        };
        transcript.push(format!(
            "{:?} {:?} {:?}",
            files(store.group_files(&team.id, None).await.unwrap()),
            files(
                store
                    .group_files(&team.id, Some(FileStatus::Uploading))
                    .await
                    .unwrap()
            ),
            files(
                store
                    .files_in_status(FileStatus::Stored, later)
                    .await
                    .unwrap()
            ),
        ));
        transcript.push(outcome(&store.group_file(&second.id, id(10)).await));
        store.delete_group(&team.id).await.unwrap();
        transcript.push(outcome(&store.group_file(&team.id, id(11)).await));
        transcript.push(outcome(&store.delete_group(&team.id).await));
        transcript.push(outcome(&store.delete_file(id(11)).await));
        transcript
    })
    .await;
}

#[tokio::test]
async fn loads_keep_their_chunks_and_marks_trust_only_an_unchanged_version() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let load = id(50);
        let chunks: Vec<LoadChunk> = (0..3)
            .map(|seq| LoadChunk {
                seq,
                content: json!([seq]),
                report: None,
            })
            .collect();
        store
            .add_load_chunks(load, ChunkPart::Batch, &chunks, now())
            .await
            .unwrap();
        transcript.push(outcome(
            &store
                .add_load_chunks(load, ChunkPart::Batch, &chunks[2..], now())
                .await,
        ));
        store
            .add_load_chunks(load, ChunkPart::Input, &chunks[..1], now())
            .await
            .unwrap();
        store
            .report_chunk(load, ChunkPart::Batch, 0, &json!({"done": true}))
            .await
            .unwrap();
        transcript.push(format!(
            "{:?} {:?}",
            store
                .next_unreported_chunk(load, ChunkPart::Batch)
                .await
                .unwrap(),
            store.load_chunks(load, ChunkPart::Batch).await.unwrap(),
        ));
        transcript.push(outcome(
            &store
                .report_chunk(load, ChunkPart::Input, 5, &json!({}))
                .await,
        ));

        let group = active_group(store.as_ref(), id(1), "g1", "Group One", &[], now())
            .await
            .unwrap();
        let written = Written {
            external_id: "g1".to_owned(),
            fingerprint: "f1".to_owned(),
        };
        let mark = |version| ProvisionedMark {
            subscription_id: id(1),
            version,
            written: Some(written.clone()),
        };
        store
            .mark_provisioned(&[mark(group.subscription.version)], now())
            .await
            .unwrap();
        let marks = |found: Vec<ProvisionedSubscription>| format!("{found:?}");
        transcript.push(marks(
            store
                .provisioned_subscriptions(&ProductType::user_group())
                .await
                .unwrap(),
        ));
        let record = store.load_subscription(id(1)).await.unwrap();
        let saved = store.save_subscription(&record).await.unwrap();
        transcript.push(marks(
            store
                .provisioned_subscriptions(&ProductType::user_group())
                .await
                .unwrap(),
        ));
        store
            .mark_provisioned(&[mark(1), mark(saved.subscription.version)], now())
            .await
            .unwrap();
        transcript.push(marks(
            store
                .provisioned_subscriptions(&ProductType::user_group())
                .await
                .unwrap(),
        ));
        transcript.push(marks(
            store
                .provisioned_subscriptions(&ProductType::user())
                .await
                .unwrap(),
        ));
        let missing = ProvisionedMark {
            subscription_id: id(99),
            ..mark(1)
        };
        transcript.push(outcome(&store.mark_provisioned(&[missing], now()).await));
        transcript
    })
    .await;
}

/// A group made and activated in memory.
async fn memory_with_group() -> MemoryStore {
    let scratch = scratch_store().await;
    let memory = memory_like(&*scratch).await;
    active_group(&memory, id(1), "g1", "Group One", &[], now())
        .await
        .unwrap();
    memory
}

#[tokio::test]
async fn memory_transactions_lose_to_a_save_committed_in_between() {
    let store = memory_with_group().await;
    let txn = store.begin().await.unwrap();
    let mut record = txn.load_subscription(id(1)).await.unwrap();
    record.subscription.note = Some("in the transaction".to_owned());
    txn.save_subscription(&record).await.unwrap();

    let mut outside = store.load_subscription(id(1)).await.unwrap();
    outside.subscription.note = Some("outside".to_owned());
    store.save_subscription(&outside).await.unwrap();

    let error = txn.commit().await.unwrap_err();
    assert!(
        matches!(error, DomainError::Conflict(ref message) if message.contains("changed by someone else")),
        "{error}"
    );
    let stored = store.load_subscription(id(1)).await.unwrap();
    assert_eq!(stored.subscription.note.as_deref(), Some("outside"));
}

#[tokio::test]
async fn memory_transactions_over_other_rows_both_commit() {
    let store = memory_with_group().await;
    let txn = store.begin().await.unwrap();
    let mut record = txn.load_subscription(id(1)).await.unwrap();
    record.subscription.note = Some("in the transaction".to_owned());
    txn.save_subscription(&record).await.unwrap();
    txn.create_process(&new_process(5, now())).await.unwrap();
    assert!(
        store.process(id(5)).await.is_err(),
        "not seen before the commit"
    );

    active_group(&store, id(2), "g2", "Group Two", &[], now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        store
            .load_subscription(id(1))
            .await
            .unwrap()
            .subscription
            .note
            .as_deref(),
        Some("in the transaction")
    );
    assert!(store.load_subscription(id(2)).await.is_ok());
    assert_eq!(
        store.process(id(5)).await.unwrap().status,
        ProcessStatus::Created
    );
}

#[tokio::test]
async fn memory_step_commits_lose_to_a_claim_committed_in_between() {
    let store = memory_with_group().await;
    store.create_process(&new_process(5, now())).await.unwrap();
    let (process, lease) = store
        .claim_process("a", now(), now() + TimeDelta::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let txn = store.begin().await.unwrap();
    let (step, update) = step_and_update(&process, now());
    txn.commit_steps(&lease, std::slice::from_ref(&step), &update, None)
        .await
        .unwrap();

    let later = now() + TimeDelta::minutes(1);
    store
        .claim_process("b", later, later + TimeDelta::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let error = txn.commit().await.unwrap_err();
    assert_eq!(
        error,
        DomainError::LeaseLost {
            process: id(5),
            owner: "a".to_owned()
        }
    );
    assert!(store.process_steps(id(5)).await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_claims_in_a_transaction_conflict_when_another_claim_committed_first() {
    let store = memory_with_group().await;
    store.create_process(&new_process(5, now())).await.unwrap();
    let txn = store.begin().await.unwrap();
    let claimed = txn
        .claim_process("a", now(), now() + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(claimed.is_some());
    store
        .claim_process("b", now(), now() + TimeDelta::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let error = txn.commit().await.unwrap_err();
    assert!(matches!(error, DomainError::Conflict(_)), "{error}");
    assert_eq!(
        store.process(id(5)).await.unwrap().status,
        ProcessStatus::Running
    );
    assert_eq!(
        store.process_inputs(id(5)),
        [("initial_state".to_owned(), json!([{}]), now())]
    );
}

#[tokio::test]
async fn sessions_failures_resets_and_roles_belong_to_a_subscription() {
    on_both(|store| async move {
        let mut transcript = Vec::new();
        active_group(store.as_ref(), id(1), "g1", "Group One", &[], now())
            .await
            .unwrap();
        let session = |n: u128, user: Uuid, seen: DateTime<Utc>| Session {
            id: id(n),
            secret_hash: "cd".repeat(32),
            user_id: user,
            created_at: now(),
            last_seen_at: seen,
            expires_at: now() + TimeDelta::hours(12),
        };
        transcript.push(outcome(
            &store.create_session(&session(10, id(99), now())).await,
        ));
        for n in [11, 12, 13] {
            store
                .create_session(&session(n, id(1), now()))
                .await
                .unwrap();
        }
        transcript.push(outcome(
            &store.create_session(&session(11, id(1), now())).await,
        ));
        store
            .touch_session(id(12), now() + TimeDelta::minutes(20))
            .await
            .unwrap();
        assert_eq!(
            store.session(id(12)).await.unwrap().last_seen_at,
            now() + TimeDelta::minutes(20)
        );
        let idle_since = now() + TimeDelta::minutes(10);
        let purged = store
            .delete_expired_sessions(now() + TimeDelta::minutes(30), idle_since)
            .await
            .unwrap();
        transcript.push(format!("purged {purged}"));
        transcript.push(outcome(&store.session(id(11)).await));
        store
            .create_session(&session(14, id(1), now()))
            .await
            .unwrap();
        let ended = store.delete_sessions_of(id(1), Some(id(14))).await.unwrap();
        transcript.push(format!("ended {ended}"));
        store.session(id(14)).await.unwrap();
        active_group(store.as_ref(), id(2), "g2", "Group Two", &[], now())
            .await
            .unwrap();
        store
            .create_session(&session(16, id(2), now()))
            .await
            .unwrap();
        store
            .create_session(&session(15, id(1), now() + TimeDelta::minutes(1)))
            .await
            .unwrap();
        let of_one: Vec<Uuid> = store
            .sessions_of(id(1))
            .await
            .unwrap()
            .iter()
            .map(|session| session.id)
            .collect();
        assert_eq!(of_one, [id(14), id(15)], "oldest first, only the user's");
        assert_eq!(store.delete_all_sessions().await.unwrap(), 3);
        assert!(store.sessions_of(id(2)).await.unwrap().is_empty());
        store
            .create_session(&session(14, id(1), now()))
            .await
            .unwrap();

        let mut counts = Vec::new();
        for _ in 0..4 {
            counts.push(store.reserve_login_attempt(id(1), now(), 3).await.unwrap());
        }
        transcript.push(format!("{counts:?}"));
        assert_eq!(counts, [Some(1), Some(2), Some(3), None]);
        store.clear_login_failures(id(1)).await.unwrap();
        store.reserve_login_attempt(id(1), now(), 3).await.unwrap();
        store
            .lock_login(id(1), now() + TimeDelta::seconds(5))
            .await
            .unwrap();
        transcript.push(format!(
            "{:?} {:?}",
            store.reserve_login_attempt(id(1), now(), 3).await.unwrap(),
            store
                .reserve_login_attempt(id(1), now() + TimeDelta::seconds(5), 3)
                .await
                .unwrap()
        ));
        transcript.push(outcome(
            &store.reserve_login_attempt(id(99), now(), 3).await,
        ));

        let reset = |n: u128| PasswordReset {
            id: id(n),
            secret_hash: "ef".repeat(32),
            user_id: id(1),
            created_at: now(),
            expires_at: now() + TimeDelta::hours(1),
        };
        store.create_password_reset(&reset(20)).await.unwrap();
        store.create_password_reset(&reset(21)).await.unwrap();
        transcript.push(outcome(&store.password_reset(id(20)).await));
        transcript.push(outcome(&store.use_password_reset(id(21)).await));
        transcript.push(outcome(&store.use_password_reset(id(21)).await));

        store
            .set_roles(id(1), &[Role::User, Role::Admin, Role::Admin])
            .await
            .unwrap();
        transcript.push(format!("{:?}", store.roles(id(1)).await.unwrap()));
        let admins = store.holders_of(Role::Admin).await.unwrap();
        assert_eq!(admins, [id(1)]);
        transcript.push(format!("{admins:?}"));
        store.set_roles(id(1), &[]).await.unwrap();
        assert!(store.holders_of(Role::Admin).await.unwrap().is_empty());
        transcript.push(format!("{:?}", store.roles(id(1)).await.unwrap()));
        transcript.push(outcome(&store.set_roles(id(99), &[Role::Admin]).await));
        transcript
    })
    .await;
}

#[tokio::test]
async fn audit_events_are_appended_listed_newest_first_by_cursor_and_purged_by_age() {
    use cadre_domain::{AuditAction, AuditEvent, AuditQuery};
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let event = |n: u128, minutes: i64, action: AuditAction, actor: &str| {
            AuditEvent::new(id(n), now() + TimeDelta::minutes(minutes), action, actor)
        };
        let events = [
            event(1, 0, AuditAction::SignIn, "alice")
                .by_user(Some(id(100)))
                .from_addr(Some(std::net::Ipv4Addr::LOCALHOST.into()))
                .on(id(100)),
            event(2, 1, AuditAction::SignInFailed, "mallory").failed("unknown user"),
            event(3, 2, AuditAction::ProcessStarted, "alice").on(id(200)),
            event(4, 3, AuditAction::ProcessAborted, "bob")
                .on(id(200))
                .detail("by hand"),
            event(5, 4, AuditAction::SignIn, "bob"),
        ];
        for event in &events {
            store.record_audit(event).await.unwrap();
        }
        transcript.push(outcome(&store.record_audit(&events[0]).await));
        let all = store.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(all.next, None);
        let mut newest_first = events.to_vec();
        newest_first.reverse();
        assert_eq!(
            all.items, newest_first,
            "events come back whole, newest first"
        );

        // Pages of two, by cursor.
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_audit(&AuditQuery {
                    after,
                    limit: 2,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            pages.push(page.items.iter().map(|e| e.id).collect::<Vec<_>>());
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            pages,
            vec![vec![id(5), id(4)], vec![id(3), id(2)], vec![id(1)]]
        );

        // Filters.
        let ids = |page: cadre_domain::AuditPage| {
            page.items
                .iter()
                .map(|e| e.id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        for query in [
            AuditQuery {
                action: Some(AuditAction::SignIn),
                ..AuditQuery::default()
            },
            AuditQuery {
                actor: Some("alice".to_owned()),
                ..AuditQuery::default()
            },
            AuditQuery {
                target: Some(id(200).to_string()),
                ..AuditQuery::default()
            },
            AuditQuery {
                since: Some(now() + TimeDelta::minutes(1)),
                until: Some(now() + TimeDelta::minutes(3)),
                ..AuditQuery::default()
            },
            AuditQuery {
                action: Some(AuditAction::SignIn),
                limit: 1,
                ..AuditQuery::default()
            },
        ] {
            transcript.push(ids(store.list_audit(&query).await.unwrap()));
        }

        // Retention.
        let purged = store
            .purge_audit_before(now() + TimeDelta::minutes(2))
            .await
            .unwrap();
        assert_eq!(purged, 2);
        transcript.push(ids(store.list_audit(&AuditQuery::default()).await.unwrap()));
        transcript
    })
    .await;
}

#[tokio::test]
async fn targets_keep_their_settings_and_sealed_secret_and_names_unique_without_case() {
    use cadre_domain::outbound::default_mapping;
    use cadre_domain::{Connection, Deprovision, OutboundTarget, TargetMode};
    on_both(|store| async move {
        let mut transcript = Vec::new();
        let target = |n: u128, name: &str| OutboundTarget {
            id: id(n),
            name: Name::parse(name).unwrap(),
            connection: Connection::Scim {
                base_url: "https://app.example.org/scim/v2".to_owned(),
                username: None,
                bulk: true,
            },
            mapping: default_mapping("scim"),
            mode: TargetMode::Enabled,
            deprovision: Deprovision::Delete,
            sealed_secret: vec![0, 1, 2, 255],
            created_by: "admin".to_owned(),
            created_at: now(),
            updated_at: now(),
        };
        transcript.push(outcome(&store.create_target(&target(1, "App")).await));
        transcript.push(outcome(&store.create_target(&target(2, "app")).await));
        transcript.push(outcome(&store.create_target(&target(2, "Directory")).await));
        let mut directory = store.target(id(2)).await.unwrap();
        assert_eq!(directory, target(2, "Directory"), "read back as written");
        directory.mode = TargetMode::Paused;
        directory.deprovision = Deprovision::Disable;
        directory.connection = Connection::Ldap {
            url: "ldaps://ldap.example.org".to_owned(),
            start_tls: false,
            bind_dn: "cn=cadre,dc=example,dc=org".to_owned(),
            people_dn: "ou=people,dc=example,dc=org".to_owned(),
            groups_dn: "ou=groups,dc=example,dc=org".to_owned(),
            user_class: "inetOrgPerson".to_owned(),
            group_class: "groupOfNames".to_owned(),
        };
        transcript.push(outcome(&store.save_target(&directory).await));
        assert_eq!(store.target(id(2)).await.unwrap(), directory);
        directory.name = Name::parse("APP").unwrap();
        transcript.push(outcome(&store.save_target(&directory).await));
        transcript.push(outcome(&store.save_target(&target(3, "Nowhere")).await));
        let names: Vec<String> = store
            .list_targets()
            .await
            .unwrap()
            .iter()
            .map(|target| format!("{} {:?}", target.name, target.mode))
            .collect();
        transcript.push(names.join(", "));
        transcript.push(outcome(&store.delete_target(id(1)).await));
        transcript.push(outcome(&store.delete_target(id(1)).await));
        transcript.push(outcome(&store.target(id(1)).await));
        let taken = "conflict: a target with this name already exists";
        assert_eq!(transcript[..4], ["ok", taken, "ok", "ok"]);
        assert_eq!(transcript[4], taken, "renamed onto another name");
        assert_ne!(transcript[5], "ok", "saving what is not stored");
        assert_eq!(transcript[6], "App Enabled, Directory Paused");
        assert_eq!(transcript[7], "ok");
        assert_ne!(transcript[8], "ok", "deleted twice");
        assert_ne!(transcript[9], "ok", "gone");
        transcript
    })
    .await;
}

#[tokio::test]
async fn push_states_are_kept_per_target_and_subscription_and_go_with_their_target() {
    use cadre_domain::outbound::{PushState, default_mapping};
    use cadre_domain::{Connection, Deprovision, OutboundTarget, TargetMode};
    on_both(|store| async move {
        let mut transcript = Vec::new();
        for (n, name) in [(1, "App"), (2, "Other")] {
            store
                .create_target(&OutboundTarget {
                    id: id(n),
                    name: Name::parse(name).unwrap(),
                    connection: Connection::Scim {
                        base_url: "https://app.example.org/scim/v2".to_owned(),
                        username: None,
                        bulk: false,
                    },
                    mapping: default_mapping("scim"),
                    mode: TargetMode::Enabled,
                    deprovision: Deprovision::Delete,
                    sealed_secret: vec![1],
                    created_by: "admin".to_owned(),
                    created_at: now(),
                    updated_at: now(),
                })
                .await
                .unwrap();
        }
        let state = |target: u128, subscription: u128, remote: &str| PushState {
            target_id: id(target),
            subscription_id: id(subscription),
            remote_id: Some(remote.to_owned()),
            fingerprint: Some(format!("{remote}-print")),
            pushed_at: Some(now()),
            last_error: None,
            failed_at: None,
        };
        let show = |mut states: Vec<PushState>| {
            states.sort_by_key(|state| (state.target_id, state.subscription_id));
            states
                .iter()
                .map(|state| {
                    format!(
                        "{}/{}={}:{}",
                        state.target_id.as_u128() & 0xff,
                        state.subscription_id.as_u128() & 0xff,
                        state.remote_id.as_deref().unwrap_or("-"),
                        state.last_error.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let batch = [(1, 10, "a"), (1, 11, "b"), (2, 10, "c")]
            .map(|(target, subscription, remote)| state(target, subscription, remote));
        store.save_push_states(&batch).await.unwrap();
        // Saved again: replaced, not added.
        let failed = PushState {
            last_error: Some("down".to_owned()),
            failed_at: Some(now()),
            ..state(1, 11, "b2")
        };
        store.save_push_state(&failed).await.unwrap();
        let read = store.push_states_on(id(1), &[id(11)]).await.unwrap();
        assert_eq!(read, [failed], "read back as written");
        transcript.push(show(store.push_states_of(id(10)).await.unwrap()));
        transcript.push(show(
            store
                .push_states_on(id(1), &[id(10), id(11), id(12)])
                .await
                .unwrap(),
        ));
        transcript.push(show(store.target_push_states(id(1)).await.unwrap()));
        transcript.push(outcome(&store.save_push_state(&state(9, 10, "x")).await));
        let one_unknown = [state(1, 12, "y"), state(9, 12, "z")];
        assert!(
            store.save_push_states(&one_unknown).await.is_err(),
            "a batch naming an unknown target"
        );
        store.delete_push_state(id(1), id(10)).await.unwrap();
        store.delete_push_state(id(1), id(10)).await.unwrap();
        transcript.push(show(store.target_push_states(id(1)).await.unwrap()));
        store.delete_target(id(2)).await.unwrap();
        transcript.push(show(store.push_states_of(id(10)).await.unwrap()));
        assert_eq!(transcript[0], "1/10=a:- 2/10=c:-");
        assert_eq!(transcript[1], "1/10=a:- 1/11=b2:down");
        assert_eq!(transcript[2], "1/10=a:- 1/11=b2:down");
        assert!(transcript[3].starts_with("conflict"), "{}", transcript[3]);
        assert_eq!(transcript[4], "1/11=b2:down");
        assert_eq!(transcript[5], "", "gone with their target");
        // A failure changes the error only, and makes a state that did not exist.
        store
            .record_push_failure(id(1), &[id(11), id(13)], "late", now())
            .await
            .unwrap();
        let after = store
            .push_states_on(id(1), &[id(11), id(13)])
            .await
            .unwrap();
        let kept = after.iter().find(|state| state.subscription_id == id(11));
        assert_eq!(kept.unwrap().fingerprint.as_deref(), Some("b2-print"));
        transcript.push(show(after));
        assert_eq!(transcript[6], "1/11=b2:late 1/13=-:late");
        let unknown = store
            .record_push_failure(id(9), &[id(11)], "x", now())
            .await;
        assert!(unknown.is_err(), "an unknown target");
        transcript
    })
    .await;
}
