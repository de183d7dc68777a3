//! The LDAP connector against a real slapd (skipped where slapd is not installed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cadre_domain::outbound::default_mapping;
use cadre_outbound::connector::{Connector, ConnectorError, GroupEntry, UserEntry};
use cadre_outbound::ldap::{LdapConnector, LdapSettings};
use cadre_outbound::testing::Slapd;

/// Settings for `slapd` with the default LDAP mapping, binding with `password`.
fn settings(slapd: &Slapd, password: &str) -> LdapSettings {
    LdapSettings {
        url: slapd.url(),
        start_tls: false,
        bind_dn: slapd.bind_dn().to_owned(),
        password: password.to_owned(),
        people_dn: slapd.people_dn(),
        groups_dn: slapd.groups_dn(),
        user_class: "inetOrgPerson".to_owned(),
        group_class: "groupOfNames".to_owned(),
        id_attribute: "uid".to_owned(),
        attributes: default_mapping("ldap").into_keys().collect(),
    }
}

/// A connector to `slapd` with the default LDAP mapping.
fn connector(slapd: &Slapd) -> LdapConnector {
    LdapConnector::new(settings(slapd, slapd.password()))
}

/// The user `id` with `attributes` besides `uid`.
fn user(id: &str, attributes: &[(&str, &str)]) -> UserEntry {
    let mut attributes: BTreeMap<String, String> = attributes
        .iter()
        .map(|(attribute, value)| ((*attribute).to_owned(), (*value).to_owned()))
        .collect();
    attributes.insert("uid".to_owned(), id.to_owned());
    UserEntry {
        external_id: id.to_owned(),
        attributes,
        active: true,
    }
}

/// A user with every attribute of the default mapping.
fn full_user(id: &str) -> UserEntry {
    user(
        id,
        &[
            ("cn", "jdoe"),
            ("givenName", "Jane"),
            ("sn", "Doe"),
            ("mail", "jane.doe@example.org"),
            ("employeeNumber", "4711"),
            ("departmentNumber", "R&D, Berlin"),
        ],
    )
}

/// The group `id` named `name` with `members`.
fn group(id: &str, name: &str, members: &[&str]) -> GroupEntry {
    let mut members: Vec<String> = members.iter().map(|member| (*member).to_owned()).collect();
    members.sort();
    GroupEntry {
        external_id: id.to_owned(),
        name: name.to_owned(),
        members,
    }
}

#[tokio::test]
async fn a_created_user_reads_back_field_for_field() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let jane = full_user("4f1c-jane");

    let dn = ldap.create_user(&jane).await.unwrap();
    assert_eq!(dn, format!("uid=4f1c-jane,{}", slapd.people_dn()));

    let users = ldap.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, dn);
    assert_eq!(users[0].entry, jane);

    let again = ldap.create_user(&jane).await;
    assert!(
        matches!(again, Err(ConnectorError::Refused(ref text)) if text.contains("68")),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_user_without_a_last_name_or_username_gets_fallbacks_and_reads_back_as_written() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let no_last_name = user("u1", &[("cn", "jdoe"), ("mail", "j@example.org")]);
    let nothing = user("u2", &[]);

    ldap.create_user(&no_last_name).await.unwrap();
    ldap.create_user(&nothing).await.unwrap();

    let users = ldap.list_users().await.unwrap();
    let entries: Vec<&UserEntry> = users.iter().map(|user| &user.entry).collect();
    assert_eq!(entries.len(), 2);
    let written = ldap.written(&no_last_name);
    assert_eq!(
        written.attributes["sn"], "jdoe",
        "the cn stands in for the last name"
    );
    assert!(entries.contains(&&written), "{entries:?}");
    let written = ldap.written(&nothing);
    assert_eq!(
        (
            written.attributes["cn"].as_str(),
            written.attributes["sn"].as_str()
        ),
        ("u2", "u2"),
        "the external id stands in for both"
    );
    assert!(entries.contains(&&written), "{entries:?}");
}

#[tokio::test]
async fn an_unmapped_cn_is_written_but_not_read_back() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let mut settings = settings(&slapd, slapd.password());
    settings.attributes = vec!["uid".to_owned(), "mail".to_owned()];
    let ldap = LdapConnector::new(settings);
    let jane = user("jane", &[("mail", "jane@example.org")]);

    ldap.create_user(&jane).await.unwrap();

    let users = ldap.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].entry, jane);
}

#[tokio::test]
async fn find_user_finds_by_external_id() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let dn = ldap.create_user(&full_user("a*b(c)")).await.unwrap();

    assert_eq!(ldap.find_user("a*b(c)").await.unwrap(), Some(dn));
    // A DN cadre makes is the DN the directory answers with.
    let dn = ldap.create_user(&full_user("#Doe, Jane+1 ")).await.unwrap();
    assert_eq!(
        ldap.find_user("#Doe, Jane+1 ").await.unwrap(),
        Some(dn.clone())
    );
    assert!(
        ldap.list_users()
            .await
            .unwrap()
            .iter()
            .any(|user| user.id == dn)
    );
    assert_eq!(ldap.find_user("a*").await.unwrap(), None);
    assert_eq!(ldap.find_user("unknown").await.unwrap(), None);
}

#[tokio::test]
async fn replace_changes_and_removes_attributes() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let dn = ldap.create_user(&full_user("jane")).await.unwrap();
    let mut jane = full_user("jane");
    jane.attributes
        .insert("mail".to_owned(), "jane@example.com".to_owned());
    jane.attributes.remove("employeeNumber");
    jane.attributes.remove("departmentNumber");
    jane.active = false;

    assert_eq!(ldap.replace_user(&dn, &jane).await.unwrap(), dn);
    // Twice: removing what is already gone is no error.
    assert_eq!(ldap.replace_user(&dn, &jane).await.unwrap(), dn);

    let users = ldap.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    jane.active = true;
    assert_eq!(users[0].entry, jane);
    assert!(!users[0].entry.attributes.contains_key("employeeNumber"));

    let mut no_last_name = jane.clone();
    no_last_name.attributes.remove("sn");
    ldap.replace_user(&dn, &no_last_name).await.unwrap();
    let users = ldap.list_users().await.unwrap();
    assert_eq!(users[0].entry, ldap.written(&no_last_name));
    assert_eq!(users[0].entry.attributes["sn"], "jdoe");
}

#[tokio::test]
async fn deleting_twice_is_no_error() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let dn = ldap.create_user(&full_user("jane")).await.unwrap();

    ldap.delete_user(&dn).await.unwrap();
    ldap.delete_user(&dn).await.unwrap();

    assert!(ldap.list_users().await.unwrap().is_empty());
    assert_eq!(ldap.find_user("jane").await.unwrap(), None);
}

#[tokio::test]
async fn groups_are_created_found_renamed_listed_and_deleted() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let jane = ldap.create_user(&full_user("jane")).await.unwrap();
    let john = ldap.create_user(&full_user("john")).await.unwrap();
    let staff = group("g-1", "Staff, all", &[&jane, &john]);
    let empty = group("g-2", "Nobody", &[]);

    let staff_dn = ldap.create_group(&staff).await.unwrap();
    let empty_dn = ldap.create_group(&empty).await.unwrap();
    assert_eq!(
        ldap.find_group(&staff).await.unwrap(),
        Some(staff_dn.clone())
    );
    assert_eq!(
        ldap.find_group(&empty).await.unwrap(),
        Some(empty_dn.clone())
    );
    assert_eq!(
        ldap.find_group(&group("g-3", "Staff, all", &[]))
            .await
            .unwrap(),
        None
    );

    let mut groups = ldap.list_groups().await.unwrap();
    groups.sort_by(|a, b| a.entry.external_id.cmp(&b.entry.external_id));
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].id, staff_dn);
    assert_eq!(groups[0].entry, staff);
    assert_eq!(groups[1].id, empty_dn);
    assert_eq!(groups[1].entry, empty);

    // Renamed, and its members changed: it moves, and is found where it went.
    let renamed = group("g-1", "Everyone", &[&john]);
    let renamed_dn = ldap.replace_group(&staff_dn, &renamed).await.unwrap();
    assert_eq!(renamed_dn, format!("cn=Everyone,{}", slapd.groups_dn()));
    assert_eq!(
        ldap.find_group(&renamed).await.unwrap(),
        Some(renamed_dn.clone())
    );
    // Emptied under the same name: it stays.
    let emptied = group("g-1", "Everyone", &[]);
    assert_eq!(
        ldap.replace_group(&renamed_dn, &emptied).await.unwrap(),
        renamed_dn
    );
    // Filled again.
    let refilled = group("g-2", "Nobody", &[&jane]);
    assert_eq!(
        ldap.replace_group(&empty_dn, &refilled).await.unwrap(),
        empty_dn
    );

    let mut groups = ldap.list_groups().await.unwrap();
    groups.sort_by(|a, b| a.entry.external_id.cmp(&b.entry.external_id));
    let entries: Vec<GroupEntry> = groups.into_iter().map(|group| group.entry).collect();
    assert_eq!(entries, [emptied, refilled]);

    ldap.delete_group(&renamed_dn).await.unwrap();
    ldap.delete_group(&renamed_dn).await.unwrap();
    let groups = ldap.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].id, empty_dn);
}

#[tokio::test]
async fn listing_pages_past_the_size_limit() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let users: Vec<UserEntry> = (0..1200)
        .map(|n| user(&format!("user-{n:04}"), &[("cn", &format!("user {n}"))]))
        .collect();

    let created = ldap.create_users(&users).await.unwrap();
    assert_eq!(created.len(), 1200);
    assert!(created.iter().all(Result::is_ok));

    // Unpaged, the bind DN gets no more than 500 entries.
    let (conn, mut raw) = ldap3::LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    raw.simple_bind(slapd.bind_dn(), slapd.password())
        .await
        .unwrap()
        .success()
        .unwrap();
    let unpaged = raw
        .search(
            &slapd.people_dn(),
            ldap3::Scope::OneLevel,
            "(objectClass=inetOrgPerson)",
            vec!["1.1"],
        )
        .await
        .unwrap();
    assert_eq!(unpaged.1.rc, 4, "{}", unpaged.1);
    assert_eq!(unpaged.0.len(), 500);

    let mut listed: Vec<UserEntry> = ldap
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.entry)
        .collect();
    listed.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let written: Vec<UserEntry> = users.iter().map(|user| ldap.written(user)).collect();
    assert!(listed == written, "every user read back as written");
}

#[tokio::test]
async fn a_directory_down_is_unavailable_until_it_is_back() {
    let Some(mut slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let dn = ldap.create_user(&full_user("jane")).await.unwrap();

    slapd.stop();
    let down = ldap.find_user("jane").await;
    assert!(
        matches!(down, Err(ConnectorError::Unavailable(_))),
        "{down:?}"
    );
    let still_down = ldap.list_users().await;
    assert!(
        matches!(still_down, Err(ConnectorError::Unavailable(_))),
        "{still_down:?}"
    );

    slapd.start_again().await;
    assert_eq!(ldap.find_user("jane").await.unwrap(), Some(dn));
    ldap.create_user(&full_user("john")).await.unwrap();
    assert_eq!(ldap.list_users().await.unwrap().len(), 2);
}

#[tokio::test]
async fn many_users_are_created_in_order_each_with_its_outcome() {
    let Some(mut slapd) = Slapd::start().await else {
        return;
    };
    let ldap = connector(&slapd);
    let taken = ldap.create_user(&full_user("user-05")).await.unwrap();
    let users: Vec<UserEntry> = (0..12)
        .map(|n| full_user(&format!("user-{n:02}")))
        .collect();
    let created = ldap.create_users(&users).await.unwrap();
    assert_eq!(created.len(), 12);
    for (n, outcome) in created.iter().enumerate() {
        match outcome {
            Err(ConnectorError::Refused(_)) if n == 5 => {}
            Ok(dn) if n != 5 => assert!(dn.starts_with(&format!("uid=user-{n:02},"))),
            other => panic!("user {n}: {other:?}"),
        }
    }
    assert_eq!(ldap.list_users().await.unwrap().len(), 12);
    assert_eq!(ldap.find_user("user-05").await.unwrap(), Some(taken));

    slapd.stop();
    let down = ldap
        .create_users(&[full_user("user-20"), full_user("user-21")])
        .await;
    assert!(
        matches!(down, Err(ConnectorError::Unavailable(_))),
        "{down:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_not_shown() {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let ldap = LdapConnector::new(settings(&slapd, "not-the-password"));

    let refused = ldap.list_users().await;
    let Err(ConnectorError::Refused(text)) = refused else {
        panic!("{refused:?}");
    };
    assert!(text.contains("49"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
}
