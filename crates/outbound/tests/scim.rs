//! The SCIM connector against a real scim2-server (skipped where it is not installed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cadre_domain::outbound::default_mapping;
use cadre_outbound::connector::{Connector, ConnectorError, GroupEntry, Remote, UserEntry};
use cadre_outbound::scim::{ScimConnector, ScimSettings};
use cadre_outbound::testing::ScimServer;

/// Settings for `server` with the default SCIM mapping, using `/Bulk` when `bulk`.
fn settings(server: &ScimServer, bulk: bool) -> ScimSettings {
    ScimSettings {
        base_url: server.base_url(),
        username: None,
        secret: server.token().to_owned(),
        bulk,
        id_attribute: "externalId".to_owned(),
        attributes: default_mapping("scim").into_keys().collect(),
    }
}

/// A connector to `server` with the default SCIM mapping, using `/Bulk` when `bulk`.
fn connector(server: &ScimServer, bulk: bool) -> ScimConnector {
    ScimConnector::new(settings(server, bulk)).unwrap()
}

/// A user as cadre maps it by default: every default attribute set.
fn user(n: usize) -> UserEntry {
    let attributes: BTreeMap<String, String> = [
        ("externalId", format!("0190a5c2-0000-7000-8000-{n:012}")),
        ("userName", format!("user{n}")),
        ("name.givenName", format!("Given{n}")),
        ("name.familyName", format!("Family{n}")),
        ("emails", format!("user{n}@example.com")),
    ]
    .into_iter()
    .map(|(attribute, value)| (attribute.to_owned(), value))
    .collect();
    UserEntry {
        external_id: attributes["externalId"].clone(),
        attributes,
        active: true,
    }
}

/// The group "Staff" with `members` (remote ids).
fn staff(members: &[String]) -> GroupEntry {
    let mut members = members.to_vec();
    members.sort();
    GroupEntry {
        external_id: "0190a5c2-0000-7000-8000-00000000000g".to_owned(),
        name: "Staff".to_owned(),
        members,
    }
}

/// The users on the target, by remote id.
async fn users(connector: &ScimConnector) -> BTreeMap<String, UserEntry> {
    connector
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|Remote { id, entry }| (id, entry))
        .collect()
}

#[tokio::test]
async fn a_created_user_reads_back_field_for_field() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let alice = user(1);
    let id = connector.create_user(&alice).await.unwrap();
    assert_eq!(users(&connector).await, BTreeMap::from([(id, alice)]));
}

#[tokio::test]
async fn users_are_found_by_external_id() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let alice = user(1);
    let id = connector.create_user(&alice).await.unwrap();
    connector.create_user(&user(2)).await.unwrap();
    assert_eq!(
        connector.find_user(&alice.external_id).await.unwrap(),
        Some(id)
    );
    assert_eq!(connector.find_user("unknown").await.unwrap(), None);
    assert_eq!(connector.find_user(r#"quo"te\"#).await.unwrap(), None);
}

#[tokio::test]
async fn creating_a_taken_user_name_is_refused() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    connector.create_user(&user(1)).await.unwrap();
    let mut twin = user(2);
    twin.attributes
        .insert("userName".to_owned(), "user1".to_owned());
    let error = connector.create_user(&twin).await.unwrap_err();
    assert!(matches!(error, ConnectorError::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn replacing_changes_and_removes_attributes() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let id = connector.create_user(&user(1)).await.unwrap();
    let mut changed = user(1);
    changed
        .attributes
        .insert("name.givenName".to_owned(), "Renamed".to_owned());
    changed.attributes.remove("emails");
    assert_eq!(connector.replace_user(&id, &changed).await.unwrap(), id);
    assert_eq!(users(&connector).await, BTreeMap::from([(id, changed)]));
}

#[tokio::test]
async fn replacing_a_user_that_is_gone_is_refused_as_not_found() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let error = connector
        .replace_user("0123456789abcdef", &user(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Refused(message) if message.contains("not found")),
        "{error:?}"
    );
}

#[tokio::test]
async fn inactive_users_round_trip() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let mut inactive = user(1);
    inactive.active = false;
    let id = connector.create_user(&inactive).await.unwrap();
    assert_eq!(
        users(&connector).await,
        BTreeMap::from([(id.clone(), inactive)])
    );
    let active = user(1);
    connector.replace_user(&id, &active).await.unwrap();
    assert_eq!(users(&connector).await, BTreeMap::from([(id, active)]));
}

#[tokio::test]
async fn deleting_twice_is_no_error() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let id = connector.create_user(&user(1)).await.unwrap();
    connector.delete_user(&id).await.unwrap();
    connector.delete_user(&id).await.unwrap();
    assert!(users(&connector).await.is_empty());
    assert_eq!(
        connector.find_user(&user(1).external_id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn groups_are_created_replaced_listed_and_deleted() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(connector.create_user(&user(n)).await.unwrap());
    }
    let mut staff = staff(&ids[..2]);
    assert_eq!(connector.find_group(&staff).await.unwrap(), None);
    let id = connector.create_group(&staff).await.unwrap();
    assert_eq!(
        connector.find_group(&staff).await.unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        connector.list_groups().await.unwrap(),
        vec![Remote {
            id: id.clone(),
            entry: staff.clone(),
        }]
    );

    staff.name = "Everyone".to_owned();
    staff.members = vec![ids[1].clone(), ids[2].clone()];
    staff.members.sort();
    assert_eq!(connector.replace_group(&id, &staff).await.unwrap(), id);
    assert_eq!(
        connector.list_groups().await.unwrap(),
        vec![Remote {
            id: id.clone(),
            entry: staff.clone(),
        }]
    );

    staff.members.clear();
    connector.replace_group(&id, &staff).await.unwrap();
    assert_eq!(
        connector.list_groups().await.unwrap(),
        vec![Remote {
            id: id.clone(),
            entry: staff.clone(),
        }]
    );

    connector.delete_group(&id).await.unwrap();
    connector.delete_group(&id).await.unwrap();
    assert!(connector.list_groups().await.unwrap().is_empty());
    assert_eq!(connector.find_group(&staff).await.unwrap(), None);
}

/// Creates 50 users with `create_users` and checks each one's id, and a failure in place.
async fn creates_many_users(bulk: bool) {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, bulk);
    let mut many: Vec<UserEntry> = (0..50).map(user).collect();
    // The last one takes a user name already taken: it alone fails.
    let mut twin = user(50);
    twin.attributes
        .insert("userName".to_owned(), "user7".to_owned());
    many.push(twin);
    let created = connector.create_users(&many).await.unwrap();
    assert_eq!(created.len(), many.len());
    let (last, created) = created.split_last().unwrap();
    assert!(matches!(last, Err(ConnectorError::Refused(_))), "{last:?}");
    let expected: BTreeMap<String, UserEntry> = created
        .iter()
        .zip(&many)
        .map(|(id, user)| (id.clone().unwrap(), user.clone()))
        .collect();
    assert_eq!(expected.len(), 50);
    assert_eq!(users(&connector).await, expected);
}

#[tokio::test]
async fn create_users_in_bulk() {
    creates_many_users(true).await;
}

#[tokio::test]
async fn create_users_one_by_one() {
    creates_many_users(false).await;
}

#[tokio::test]
async fn listing_reads_every_page() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, true);
    let many: Vec<UserEntry> = (0..1200).map(user).collect();
    let created = connector.create_users(&many).await.unwrap();
    assert!(created.iter().all(Result::is_ok));
    let listed = users(&connector).await;
    assert_eq!(listed.len(), 1200);
    for (id, user) in created.into_iter().zip(&many) {
        assert_eq!(listed.get(&id.unwrap()), Some(user));
    }
}

#[tokio::test]
async fn listings_after_the_first_ask_only_for_what_changed() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    // Someone else at the application, and a fresh look at what it has.
    let other = self::connector(&server, false);
    let truth = || async { users(&self::connector(&server, false)).await };
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(connector.create_user(&user(n)).await.unwrap());
    }
    assert_eq!(users(&connector).await, truth().await);
    assert_eq!(connector.full_listings(), 1);

    // Changed and added elsewhere: seen, without listing in full.
    let mut renamed = user(1);
    renamed
        .attributes
        .insert("name.givenName".to_owned(), "Renamed".to_owned());
    other.replace_user(&ids[1], &renamed).await.unwrap();
    other.create_user(&user(9)).await.unwrap();
    let listed = users(&connector).await;
    assert_eq!(listed.get(&ids[1]), Some(&renamed));
    assert_eq!(listed.len(), 5);
    assert_eq!(listed, truth().await);
    assert_eq!(connector.full_listings(), 1);

    // Deleted elsewhere: the count differs, so the target is listed in full.
    other.delete_user(&ids[2]).await.unwrap();
    let listed = users(&connector).await;
    assert!(!listed.contains_key(&ids[2]));
    assert_eq!(listed, truth().await);
    assert_eq!(connector.full_listings(), 2);

    // Deleted by this connector: it knows, and asks only for what changed.
    connector.delete_user(&ids[3]).await.unwrap();
    assert_eq!(users(&connector).await, truth().await);
    assert_eq!(connector.full_listings(), 2);

    // Groups likewise; a user this connector deleted may have left groups undated.
    let mut staff = staff(&ids[..2]);
    let group = connector.create_group(&staff).await.unwrap();
    let groups = || async { connector.list_groups().await.unwrap() };
    assert_eq!(groups().await.len(), 1);
    assert_eq!(connector.full_listings(), 3);
    staff.name = "Everyone".to_owned();
    other.replace_group(&group, &staff).await.unwrap();
    assert_eq!(
        groups().await,
        [Remote {
            id: group.clone(),
            entry: staff.clone(),
        }]
    );
    assert_eq!(connector.full_listings(), 3);
    connector.delete_user(&ids[0]).await.unwrap();
    assert_eq!(
        groups().await,
        self::connector(&server, false).list_groups().await.unwrap()
    );
    assert_eq!(connector.full_listings(), 4);
}

#[tokio::test]
async fn a_stopped_target_is_unavailable_until_it_is_back() {
    let Some(mut server) = ScimServer::start() else {
        return;
    };
    let connector = connector(&server, false);
    server.stop();
    for error in [
        connector.list_users().await.unwrap_err(),
        connector.create_user(&user(1)).await.unwrap_err(),
        connector.create_users(&[user(1)]).await.unwrap_err(),
    ] {
        assert!(matches!(error, ConnectorError::Unavailable(_)), "{error:?}");
    }
    server.restart();
    connector.create_user(&user(1)).await.unwrap();
    assert_eq!(users(&connector).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let Some(server) = ScimServer::start() else {
        return;
    };
    let connector = ScimConnector::new(ScimSettings {
        secret: "not-the-token".to_owned(),
        ..settings(&server, true)
    })
    .unwrap();
    let mut created = connector.create_users(&[user(1)]).await.unwrap();
    for error in [
        connector.list_users().await.unwrap_err(),
        connector.find_user("x").await.unwrap_err(),
        connector.create_user(&user(1)).await.unwrap_err(),
        created.pop().unwrap().unwrap_err(),
    ] {
        assert!(matches!(error, ConnectorError::Refused(_)), "{error:?}");
        assert!(!format!("{error}").contains("not-the-token"));
    }
}
