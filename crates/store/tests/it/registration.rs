//! Registration storage: pending users unique by name and email, single-use tokens, purging,
//! credentials and the outbox.

use cadre_domain::{
    DomainError, Email, OutboxBacklog, OutboxKind, OutboxMessage, PURGED_PAYLOAD, PendingUser,
    RegistrationRepository, RegistrationToken, TokenOperation, UserName,
};
use cadre_store::testing::scratch_store;
use chrono::TimeDelta;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{now, provisioned_user};

fn pending(name: &str, email: &str) -> PendingUser {
    PendingUser {
        id: Uuid::now_v7(),
        user_name: UserName::parse(name).unwrap(),
        email: Email::parse(email).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        registered_at: now(),
        email_confirmed_at: None,
        completion_process_id: None,
    }
}

fn token(
    operation: TokenOperation,
    pending_user: Option<Uuid>,
    ttl: TimeDelta,
) -> RegistrationToken {
    RegistrationToken {
        id: Uuid::now_v7(),
        secret_hash: "0".repeat(64),
        operation,
        pending_user_id: pending_user,
        user_id: None,
        group_id: None,
        email: None,
        created_at: now(),
        expires_at: now() + ttl,
    }
}

#[tokio::test]
async fn pending_users_are_unique_by_name_and_by_email_ignoring_case() {
    let store = scratch_store().await;
    let ada = pending("ada", "ada@example.com");
    store.create_pending_user(&ada).await.unwrap();
    assert_eq!(store.pending_user(ada.id).await.unwrap(), ada);
    for clash in [
        pending("ada", "other@example.com"),
        pending("ada2", "ADA@example.com"),
    ] {
        let error = store.create_pending_user(&clash).await.unwrap_err();
        assert!(matches!(error, DomainError::Conflict(_)), "{error}");
    }
    let name = UserName::parse("ada").unwrap();
    let other = Email::parse("nobody@example.com").unwrap();
    assert!(store.pending_user_holds(&name, &other).await.unwrap());
    assert!(
        store
            .pending_user_holds(
                &UserName::parse("bob").unwrap(),
                &Email::parse("Ada@Example.com").unwrap()
            )
            .await
            .unwrap()
    );
    assert_eq!(store.pending_user_by_name(&name).await.unwrap().id, ada.id);
    store.confirm_pending_email(ada.id, now()).await.unwrap();
    assert_eq!(
        store.pending_user(ada.id).await.unwrap().email_confirmed_at,
        Some(now())
    );
}

#[tokio::test]
async fn a_token_is_used_once_and_goes_with_its_pending_user() {
    let store = scratch_store().await;
    let ada = pending("ada", "ada@example.com");
    store.create_pending_user(&ada).await.unwrap();
    let confirm = token(
        TokenOperation::ConfirmEmail,
        Some(ada.id),
        TimeDelta::hours(24),
    );
    let approve = token(
        TokenOperation::ApproveRegistration,
        Some(ada.id),
        TimeDelta::days(7),
    );
    store.create_registration_token(&confirm).await.unwrap();
    store.create_registration_token(&approve).await.unwrap();
    assert_eq!(store.registration_token(confirm.id).await.unwrap(), confirm);
    assert_eq!(store.tokens_of_pending_user(ada.id).await.unwrap().len(), 2);

    store.use_registration_token(confirm.id).await.unwrap();
    let again = store.use_registration_token(confirm.id).await.unwrap_err();
    assert!(matches!(again, DomainError::NotFound { .. }));

    store.delete_pending_user(ada.id).await.unwrap();
    assert!(matches!(
        store.registration_token(approve.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_pending_user(ada.id).await,
        Err(DomainError::NotFound { .. })
    ));
}

#[tokio::test]
async fn purging_drops_expired_tokens_and_the_pending_users_left_without_one() {
    let store = scratch_store().await;
    let stale = pending("stale", "stale@example.com");
    let waiting = pending("waiting", "waiting@example.com");
    for user in [&stale, &waiting] {
        store.create_pending_user(user).await.unwrap();
    }
    store
        .create_registration_token(&token(
            TokenOperation::ConfirmEmail,
            Some(stale.id),
            TimeDelta::hours(1),
        ))
        .await
        .unwrap();
    store
        .create_registration_token(&token(
            TokenOperation::ApproveRegistration,
            Some(waiting.id),
            TimeDelta::days(7),
        ))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(now()).await.unwrap(), 0);
    assert_eq!(
        store
            .purge_expired(now() + TimeDelta::hours(2))
            .await
            .unwrap(),
        1
    );
    let names: Vec<String> = store
        .list_pending_users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.user_name.to_string())
        .collect();
    assert_eq!(names, ["waiting"]);
}

#[tokio::test]
async fn purging_leaves_registrations_whose_completion_started() {
    let store = scratch_store().await;
    let completing = pending("completing", "completing@example.com");
    store.create_pending_user(&completing).await.unwrap();
    let process = Uuid::now_v7();
    store
        .begin_completion(completing.id, process)
        .await
        .unwrap();
    // Its confirmation link was used: it has no token left.
    assert_eq!(
        store
            .purge_expired(now() + TimeDelta::days(30))
            .await
            .unwrap(),
        0
    );
    let kept = store.pending_user(completing.id).await.unwrap();
    assert_eq!(kept.completion_process_id, Some(process));
    assert!(matches!(
        store.begin_completion(Uuid::now_v7(), process).await,
        Err(DomainError::NotFound { .. })
    ));
    // Its process is gone (no such row): an admin may remove it, once.
    store
        .delete_pending_user_unless_completing(completing.id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .delete_pending_user_unless_completing(completing.id)
            .await,
        Err(DomainError::NotFound { .. })
    ));
}

#[tokio::test]
async fn resends_are_counted_per_registration_and_window() {
    let store = scratch_store().await;
    let ada = pending("ada", "ada@example.com");
    store.create_pending_user(&ada).await.unwrap();
    let hour = TimeDelta::hours(1);
    let at = |minutes: i64| now() + TimeDelta::minutes(minutes);
    let mut counted = Vec::new();
    for minute in 0..4 {
        counted.push(
            store
                .count_resend(ada.id, at(minute), at(minute) - hour, 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(counted, [true, true, true, false], "three an hour");
    assert!(
        !store
            .count_resend(ada.id, at(59), at(59) - hour, 3)
            .await
            .unwrap(),
        "the window started with the first"
    );
    assert!(
        store
            .count_resend(ada.id, at(61), at(61) - hour, 3)
            .await
            .unwrap(),
        "a new window after an hour"
    );
    assert!(
        !store
            .count_resend(Uuid::now_v7(), at(0), at(0) - hour, 3)
            .await
            .unwrap(),
        "nobody to count"
    );

    let first = token(TokenOperation::ConfirmEmail, Some(ada.id), hour);
    let second = token(TokenOperation::ConfirmEmail, Some(ada.id), hour);
    let approve = token(TokenOperation::ApproveRegistration, Some(ada.id), hour);
    for token in [&first, &second, &approve] {
        store.create_registration_token(token).await.unwrap();
    }
    store
        .delete_pending_tokens(ada.id, TokenOperation::ConfirmEmail)
        .await
        .unwrap();
    assert_eq!(
        store.tokens_of_pending_user(ada.id).await.unwrap(),
        [approve]
    );
}

#[tokio::test]
async fn notices_are_counted_per_address_and_window() {
    let store = scratch_store().await;
    let victim = Email::parse("victim@example.org").unwrap();
    let other = Email::parse("other@example.org").unwrap();
    let hour = TimeDelta::hours(1);
    let at = |minutes: i64| now() + TimeDelta::minutes(minutes);
    let mut counted = Vec::new();
    for minute in 0..4 {
        counted.push(
            store
                .count_notice(&victim, at(minute), at(minute) - hour, 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(counted, [true, true, true, false], "three an hour");
    assert!(
        store
            .count_notice(&other, at(5), at(5) - hour, 3)
            .await
            .unwrap(),
        "per address"
    );
    assert!(
        !store
            .count_notice(&victim, at(59), at(59) - hour, 3)
            .await
            .unwrap()
    );
    assert!(
        store
            .count_notice(&victim, at(61), at(61) - hour, 3)
            .await
            .unwrap(),
        "a new window after an hour"
    );
    assert!(
        store
            .count_notice(&victim, at(62), at(62) - hour, 3)
            .await
            .unwrap(),
        "the new window counts from one"
    );
}

#[tokio::test]
async fn terms_tokens_are_found_and_cleared_per_user_and_group() {
    let store = scratch_store().await;
    let user = provisioned_user(&store, "u1", "u1", "u1@example.com", &[])
        .await
        .unwrap();
    let group = crate::fixtures::active_group(&store, "g1", "G1", &[]).await;
    let mut terms = token(TokenOperation::AcceptGroupTerms, None, TimeDelta::days(7));
    terms.user_id = Some(user.subscription.id);
    terms.group_id = Some(group.subscription.id);
    store.create_registration_token(&terms).await.unwrap();
    assert_eq!(
        store
            .terms_tokens_of_user(user.subscription.id)
            .await
            .unwrap(),
        [terms]
    );
    store
        .delete_terms_tokens(user.subscription.id, group.subscription.id)
        .await
        .unwrap();
    assert!(
        store
            .terms_tokens_of_user(user.subscription.id)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .store_credentials(user.subscription.id, "hash-1", now())
        .await
        .unwrap();
    store
        .store_credentials(user.subscription.id, "hash-2", now())
        .await
        .unwrap();
    assert_eq!(
        store
            .credentials(user.subscription.id)
            .await
            .unwrap()
            .as_deref(),
        Some("hash-2"),
        "a second store replaces the hash"
    );
}

#[tokio::test]
async fn outbox_messages_are_due_until_delivered_or_given_up() {
    let store = scratch_store().await;
    let message = OutboxMessage {
        id: Uuid::now_v7(),
        kind: OutboxKind::Mail,
        payload: json!({"to": "ada@example.com", "subject": "Hello"}),
        created_at: now(),
        attempts: 0,
        next_attempt_at: Some(now()),
        delivered_at: None,
        last_error: None,
    };
    store.enqueue(&message).await.unwrap();
    assert!(
        store
            .due_messages(now() - TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.due_messages(now(), 10).await.unwrap(),
        vec![message.clone()]
    );

    let later = now() + TimeDelta::seconds(30);
    store
        .record_attempt(message.id, now(), Some("connection refused"), Some(later))
        .await
        .unwrap();
    assert!(store.due_messages(now(), 10).await.unwrap().is_empty());
    let due = store.due_messages(later, 10).await.unwrap();
    assert_eq!(
        (due[0].attempts, due[0].last_error.as_deref()),
        (1, Some("connection refused"))
    );

    let given_up = OutboxMessage {
        id: Uuid::now_v7(),
        ..message.clone()
    };
    store.enqueue(&given_up).await.unwrap();
    store
        .record_attempt(given_up.id, now(), Some("no such host"), None)
        .await
        .unwrap();
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            waiting: 1,
            failed: 1
        },
        "one message is due again later, one was given up on"
    );

    store
        .record_attempt(message.id, later, None, None)
        .await
        .unwrap();
    let stored = store.list_messages().await.unwrap();
    assert_eq!(stored[0].delivered_at, Some(later));
    assert_eq!(stored[0].attempts, 2);
    assert!(
        store
            .due_messages(later + TimeDelta::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            waiting: 0,
            failed: 1
        },
        "a delivered message is no backlog"
    );

    // Past their retention, done messages (delivered or given up) lose their bodies; a
    // message still to be delivered keeps its own.
    let waiting = OutboxMessage {
        id: Uuid::now_v7(),
        ..message.clone()
    };
    store.enqueue(&waiting).await.unwrap();
    assert_eq!(
        store.forget_done_messages(now()).await.unwrap(),
        0,
        "none older yet"
    );
    let after = now() + TimeDelta::seconds(1);
    assert_eq!(store.forget_done_messages(after).await.unwrap(), 2);
    assert_eq!(store.forget_done_messages(after).await.unwrap(), 0, "once");
    let purged: serde_json::Value = serde_json::from_str(PURGED_PAYLOAD).unwrap();
    for stored in store.list_messages().await.unwrap() {
        if stored.id == waiting.id {
            assert_eq!(stored.payload, message.payload);
        } else {
            assert_eq!(stored.payload, purged, "{stored:?}");
        }
    }
}
