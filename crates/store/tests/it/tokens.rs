//! API tokens: stored, listed, revoked.

use cadre_domain::{ApiToken, DomainError, Role, TokenRepository};
use cadre_store::testing::scratch_store;
use chrono::TimeDelta;
use uuid::Uuid;

use crate::fixtures::now;

fn token(name: &str, role: Role) -> ApiToken {
    ApiToken {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        role,
        user_id: None,
        secret_hash: "ab".repeat(32),
        created_by: "test".to_owned(),
        created_at: now(),
        revoked_at: None,
        expires_at: Some(now() + TimeDelta::days(30)),
    }
}

#[tokio::test]
async fn a_token_round_trips_and_lists_oldest_first() {
    let store = scratch_store().await;
    let admin = token("ops", Role::Admin);
    let user = ApiToken {
        created_at: now() + TimeDelta::seconds(1),
        ..token("portal", Role::User)
    };
    store.create_token(&user).await.unwrap();
    store.create_token(&admin).await.unwrap();

    assert_eq!(store.token(admin.id).await.unwrap(), admin);
    assert_eq!(store.list_tokens().await.unwrap(), vec![admin, user]);
}

#[tokio::test]
async fn revoking_keeps_the_first_revocation_time() {
    let store = scratch_store().await;
    let admin = token("ops", Role::Admin);
    store.create_token(&admin).await.unwrap();

    store.revoke_token(admin.id, now()).await.unwrap();
    store
        .revoke_token(admin.id, now() + TimeDelta::hours(1))
        .await
        .unwrap();

    assert_eq!(store.token(admin.id).await.unwrap().revoked_at, Some(now()));
}

#[tokio::test]
async fn an_unknown_token_is_not_found() {
    let store = scratch_store().await;
    let id = Uuid::now_v7();
    assert_eq!(
        store.token(id).await,
        Err(DomainError::not_found("token", id))
    );
    assert_eq!(
        store.revoke_token(id, now()).await,
        Err(DomainError::not_found("token", id))
    );
}
