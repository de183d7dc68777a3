//! Outbound provisioning against real targets: a `scim2-server` and a `slapd`, started on free
//! ports. Where one is not installed its part says so and does not run (`REQUIRE_OUTBOUND_TESTS=1`,
//! which `.ci/run` sets, makes that a failure).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cadre_domain::SystemClock;
use cadre_migrations::demo::USER_INTERNAL_PRODUCT_ID;
use cadre_outbound::connector::{Connector, GroupEntry, Remote, UserEntry, connect};
use cadre_outbound::testing::{ScimServer, Slapd};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Server;
use super::accounts::PASSWORD;
use super::web::Browser;

const KEY: &str = "0b1c2a9e8b7d6c5f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

/// A running target and what cadre is told of it.
struct Target {
    /// The body that configures it (with its secret).
    body: Value,
    /// Its secret, to read it back with a connector of our own.
    secret: String,
    /// Whether it has SCIM's `active` (an LDAP directory keeps inactive users out of groups).
    has_active: bool,
}

fn scim_target(server: &ScimServer) -> Target {
    Target {
        body: json!({
            "name": "App",
            "connection": {"kind": "scim", "base_url": server.base_url(), "bulk": true},
            "secret": server.token(),
        }),
        secret: server.token().to_owned(),
        has_active: true,
    }
}

fn ldap_target(slapd: &Slapd) -> Target {
    Target {
        body: json!({
            "name": "Directory",
            "connection": {
                "kind": "ldap", "url": slapd.url(), "start_tls": false,
                "bind_dn": slapd.bind_dn(), "people_dn": slapd.people_dn(),
                "groups_dn": slapd.groups_dn(),
            },
            "secret": slapd.password(),
        }),
        secret: slapd.password().to_owned(),
        has_active: false,
    }
}

async fn with_key() -> Server {
    Server::start_with(
        1,
        Vec::new(),
        |config| config.outbound_key = Some(cadre_server::config::SecretSetting(KEY.to_owned())),
        Arc::new(SystemClock),
    )
    .await
}

/// Configures `target` on `server`; its id and a connector to read it back.
async fn configure(server: &Server, target: &Target) -> (Uuid, Box<dyn Connector>) {
    let (status, created) = server.post("/api/targets", target.body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let stored = server.engine.store().target(id).await.unwrap();
    (id, connect(&stored, &target.secret).unwrap())
}

/// Polls process `id` for up to a minute (pushes retry with backoff) until it is `wanted`.
async fn wait_long(server: &Server, id: &str, wanted: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, process) = server.get(&format!("/api/processes/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        if process["last_status"] == wanted {
            return process;
        }
        last = process;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "process {id} never became {wanted}: {} at {}, {}",
        last["last_status"], last["last_step"], last["failed_reason"]
    );
}

/// Runs `workflow` with `pages` to completion; the process.
async fn run(server: &Server, workflow: &str, pages: Value) -> Value {
    let id = server.start_process(workflow, pages).await;
    wait_long(server, &id, "completed").await
}

/// The users on a target with `external_id`.
async fn users_named(connector: &dyn Connector, external_id: &str) -> Vec<Remote<UserEntry>> {
    connector
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|user| user.entry.external_id == external_id)
        .collect()
}

/// The one group on a target with `external_id`.
async fn group_named(connector: &dyn Connector, external_id: &str) -> Option<Remote<GroupEntry>> {
    connector
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .find(|group| group.entry.external_id == external_id)
}

/// The attributes a target of `target`'s kind has for a user with these fields.
fn expected(target: &Target, fields: &[(&str, &str)]) -> BTreeMap<String, String> {
    let names: &[(&str, &str, &str)] = &[
        ("user_id", "externalId", "uid"),
        ("username", "userName", "cn"),
        ("firstname", "name.givenName", "givenName"),
        ("lastname", "name.familyName", "sn"),
        ("email", "emails", "mail"),
    ];
    fields
        .iter()
        .map(|(field, value)| {
            let (_, scim, ldap) = names.iter().find(|(name, ..)| name == field).unwrap();
            let attribute = if target.has_active { scim } else { ldap };
            ((*attribute).to_owned(), (*value).to_owned())
        })
        .collect()
}

/// What `remote` holds of a user with these fields, as it writes them (LDAP's `cn` and `sn`
/// are required: the username and the last name, or stand-ins).
fn as_written(
    remote: &dyn Connector,
    target: &Target,
    fields: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let entry = UserEntry {
        external_id: fields[0].1.to_owned(),
        attributes: expected(target, fields),
        active: true,
    };
    remote.written(&entry).attributes
}

/// The targets that are installed here, started.
async fn targets() -> (Option<ScimServer>, Option<Slapd>) {
    (ScimServer::start(), Slapd::start().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_group_lifecycles_reach_each_target_field_for_field() {
    let (scim, slapd) = targets().await;
    let mut kinds = Vec::new();
    kinds.extend(scim.as_ref().map(scim_target));
    kinds.extend(slapd.as_ref().map(ldap_target));
    for target in kinds {
        lifecycle_reaches(&target).await;
    }
}

async fn lifecycle_reaches(target: &Target) {
    let server = with_key().await;
    let (target_id, remote) = configure(&server, target).await;
    let remote = remote.as_ref();

    let group = server.create_group("ops", "Ops").await;
    let ops = group_named(remote, "ops")
        .await
        .expect("the group was pushed");
    assert_eq!(
        (ops.entry.name.as_str(), ops.entry.members.len()),
        ("Ops", 0)
    );

    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
    let created = run(
        &server,
        "create_user",
        json!([{"product": USER_INTERNAL_PRODUCT_ID},
               {"user_id": "ada", "username": "ada.l", "email": "ada@example.org",
                "firstname": "Ada", "lastname": "Lovelace", "user_group_ids": [group]}]),
    )
    .await;
    let user = created["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fields = [
        ("user_id", "ada"),
        ("username", "ada.l"),
        ("firstname", "Ada"),
        ("lastname", "Lovelace"),
        ("email", "ada@example.org"),
    ];
    let [ada] = users_named(remote, "ada").await.try_into().unwrap();
    assert_eq!(
        ada.entry.attributes,
        expected(target, &fields),
        "field for field"
    );
    assert!(ada.entry.active);
    let ops = group_named(remote, "ops").await.unwrap();
    assert_eq!(
        ops.entry.members,
        std::slice::from_ref(&ada.id),
        "a member on the target"
    );

    // The subscription's detail shows what the target has.
    let (_, detail) = server.get(&format!("/api/subscriptions/{user}")).await;
    let state = &detail["targets"][0];
    assert_eq!(state["target_id"], target_id.to_string(), "{detail}");
    assert_eq!(state["remote_id"], ada.id.as_str());
    assert_eq!(state["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(state["last_error"], Value::Null);
    server.admin_with_password("root").await;
    let mut console = Browser::new(&server);
    console.sign_in("root", PASSWORD).await;
    let page = console
        .get(&format!("/admin/subscriptions/{user}"))
        .await
        .body;
    assert!(
        page.contains("Outbound targets") && page.contains(&ada.id),
        "the console shows it: {page}"
    );

    // The same values again: nothing is sent (the push time stays).
    run(
        &server,
        "modify_user",
        json!([{"subscription_id": user}, {"email": "ada@example.org"}]),
    )
    .await;
    let (_, again) = server.get(&format!("/api/subscriptions/{user}")).await;
    assert_eq!(
        again["targets"][0]["pushed_at"], state["pushed_at"],
        "not sent again"
    );

    // Someone deletes ada in the target; the next push makes her anew.
    remote.delete_user(&ada.id).await.unwrap();
    // Modified: a new address, the last name cleared.
    run(
        &server,
        "modify_user",
        json!([{"subscription_id": user}, {"email": "ada@ops.example.org", "lastname": ""}]),
    )
    .await;
    let [ada] = users_named(remote, "ada").await.try_into().unwrap();
    let modified = [
        ("user_id", "ada"),
        ("username", "ada.l"),
        ("firstname", "Ada"),
        ("email", "ada@ops.example.org"),
    ];
    assert_eq!(ada.entry.attributes, as_written(remote, target, &modified));
    if !target.has_active {
        assert_eq!(
            ada.entry.attributes["sn"], "ada.l",
            "the cn stands in for the last name"
        );
    }

    // Disabled: inactive (SCIM), or out of every group (LDAP); enabled again: back.
    run(
        &server,
        "disable_user",
        json!([{"subscription_id": user}, {}]),
    )
    .await;
    let [disabled] = users_named(remote, "ada").await.try_into().unwrap();
    let ops = group_named(remote, "ops").await.unwrap();
    assert!(
        ops.entry.members.is_empty(),
        "a disabled user is in no group"
    );
    assert_eq!(disabled.entry.active, !target.has_active);
    // Joining a group while disabled changes neither: the user goes out as it is.
    let dev = server.create_group("dev", "Dev").await;
    run(
        &server,
        "join_user_group",
        json!([{"subscription_id": user, "user_group": dev}]),
    )
    .await;
    let [still] = users_named(remote, "ada").await.try_into().unwrap();
    assert_eq!(still.entry.active, !target.has_active, "still inactive");
    let dev_remote = group_named(remote, "dev").await.unwrap();
    assert!(dev_remote.entry.members.is_empty(), "and in no group");
    run(
        &server,
        "enable_user",
        json!([{"subscription_id": user}, {}]),
    )
    .await;
    let [enabled] = users_named(remote, "ada").await.try_into().unwrap();
    assert!(enabled.entry.active);
    let ops = group_named(remote, "ops").await.unwrap();
    assert_eq!(ops.entry.members, [enabled.id]);

    // Renamed group; then the user terminated (deleted remotely), then the group.
    run(
        &server,
        "modify_user_group",
        json!([{"subscription_id": group}, {"user_group_name": "Operations"}]),
    )
    .await;
    assert_eq!(
        group_named(remote, "ops").await.unwrap().entry.name,
        "Operations"
    );
    run(
        &server,
        "terminate_user",
        json!([{"subscription_id": user}, {}]),
    )
    .await;
    assert!(
        users_named(remote, "ada").await.is_empty(),
        "deleted remotely"
    );
    assert!(
        group_named(remote, "ops")
            .await
            .unwrap()
            .entry
            .members
            .is_empty()
    );
    let (_, detail) = server.get(&format!("/api/subscriptions/{user}")).await;
    assert_eq!(detail["targets"], json!([]), "nothing left on the target");
    run(
        &server,
        "terminate_user_group",
        json!([{"subscription_id": group}, {}]),
    )
    .await;
    assert!(
        group_named(remote, "ops").await.is_none(),
        "removed remotely"
    );
    server.stop().await;
}

/// A target that can be stopped and started again.
enum Running {
    Scim(ScimServer),
    Ldap(Slapd),
}

impl Running {
    async fn stop(&mut self) {
        match self {
            Running::Scim(server) => server.stop(),
            Running::Ldap(slapd) => slapd.stop(),
        }
    }

    async fn start_again(&mut self) {
        match self {
            Running::Scim(server) => server.restart(),
            Running::Ldap(slapd) => slapd.start_again().await,
        }
    }

    fn target(&self) -> Target {
        match self {
            Running::Scim(server) => scim_target(server),
            Running::Ldap(slapd) => ldap_target(slapd),
        }
    }
}

async fn running() -> Vec<Running> {
    let (scim, slapd) = targets().await;
    let mut all = Vec::new();
    all.extend(scim.map(Running::Scim));
    all.extend(slapd.map(Running::Ldap));
    all
}

/// Starts create_user for `user_id` in `groups`; the process id.
async fn start_user(server: &Server, user_id: &str, groups: &[&str]) -> String {
    server
        .start_process(
            "create_user",
            json!([{"product": USER_INTERNAL_PRODUCT_ID},
                   {"user_id": user_id, "username": user_id,
                    "email": format!("{user_id}@example.org"), "user_group_ids": groups}]),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_makes_processes_wait_and_each_completes_once_it_is_back() {
    for mut target in running().await {
        let server = with_key().await;
        let (_, remote) = configure(&server, &target.target()).await;
        target.stop().await;
        let mut processes = Vec::new();
        for user_id in ["u1", "u2", "u3"] {
            processes.push(start_user(&server, user_id, &[]).await);
        }
        for process in &processes {
            wait_long(&server, process, "waiting").await;
        }
        let (_, waiting) = server
            .get(&format!("/api/processes/{}", processes[0]))
            .await;
        let user = waiting["current_state"]["subscription_id"]
            .as_str()
            .unwrap();
        // Recorded once the failed step is over: a moment after the process waits.
        let mut detail = Value::Null;
        for _ in 0..100 {
            detail = server.get(&format!("/api/subscriptions/{user}")).await.1;
            if detail["targets"][0]["last_error"].is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let state = &detail["targets"][0];
        assert!(
            state["last_error"]
                .as_str()
                .unwrap()
                .contains("cannot be reached"),
            "the last error shows: {detail}"
        );
        assert_eq!(state["remote_id"], Value::Null);

        target.start_again().await;
        for process in &processes {
            wait_long(&server, process, "completed").await;
        }
        for user_id in ["u1", "u2", "u3"] {
            let found = users_named(remote.as_ref(), user_id).await;
            assert_eq!(found.len(), 1, "exactly one remote {user_id}");
        }
        let (_, detail) = server.get(&format!("/api/subscriptions/{user}")).await;
        let [u1] = users_named(remote.as_ref(), "u1").await.try_into().unwrap();
        assert_eq!(
            detail["targets"][0]["remote_id"],
            u1.id.as_str(),
            "{detail}"
        );
        assert_eq!(detail["targets"][0]["last_error"], Value::Null, "{detail}");
        server.stop().await;
    }
}

/// Starts reconcile_target for `target`; the process id.
async fn start_reconcile(
    server: &Server,
    target: Uuid,
    dry_run: bool,
    max_removals: u32,
) -> String {
    server
        .start_process(
            "reconcile_target",
            json!([{"target_id": target, "dry_run": dry_run, "max_removals": max_removals}]),
        )
        .await
}

/// The rows of a reconcile's report as `kind id action`, sorted.
fn rows(process: &Value) -> Vec<String> {
    let mut rows: Vec<String> = process["current_state"]["report"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            format!(
                "{} {} {}",
                row["kind"].as_str().unwrap(),
                row["external_id"].as_str().unwrap(),
                row["action"].as_str().unwrap()
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_plans_then_repairs_what_was_changed_and_deleted_in_the_target() {
    for running in running().await {
        let target = running.target();
        let server = with_key().await;
        let (target_id, remote) = configure(&server, &target).await;
        let remote = remote.as_ref();
        let group = server.create_group("ops", "Ops").await;
        tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
        let mut users = BTreeMap::new();
        for user_id in ["u1", "u2", "u3"] {
            let process = start_user(&server, user_id, &[&group]).await;
            let process = wait_long(&server, &process, "completed").await;
            users.insert(
                user_id,
                process["current_state"]["subscription_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }

        // Someone changes u1 and deletes u2 in the target, and adds a user of their own.
        let mail = if target.has_active { "emails" } else { "mail" };
        let changed = change_mail(remote, "u1", mail, "changed@elsewhere.org").await;
        delete_in_target(remote, "u2").await;
        let mut stranger = changed.clone();
        stranger.external_id = "stranger".to_owned();
        stranger.attributes = expected(
            &target,
            &[
                ("user_id", "stranger"),
                ("username", "stranger"),
                ("lastname", "S"),
            ],
        );
        remote.create_user(&stranger).await.unwrap();
        // And u3 is terminated while the target is paused: it stays there, cadre's to remove.
        set_mode(&server, &target, target_id, "paused").await;
        run(
            &server,
            "terminate_user",
            json!([{"subscription_id": users["u3"]}, {}]),
        )
        .await;
        assert_eq!(
            users_named(remote, "u3").await.len(),
            1,
            "a paused target takes no push"
        );

        let plan = start_reconcile(&server, target_id, true, 0).await;
        let plan = wait_long(&server, &plan, "completed").await;
        let planned = rows(&plan);
        for row in [
            "user u1 update",
            "user u2 create",
            "user u3 remove",
            "group ops update",
        ] {
            assert!(planned.contains(&row.to_owned()), "{row} in {planned:?}");
        }
        assert_eq!(planned.len(), 4, "{planned:?}");
        assert_eq!(plan["current_state"]["report"]["dry_run"], true);
        assert!(
            plan["current_state"]["report"]["foreign"].as_u64().unwrap() >= 1,
            "the stranger"
        );
        assert_eq!(
            users_named(remote, "u1").await[0].entry.attributes[mail],
            "changed@elsewhere.org",
            "a dry run changes nothing"
        );
        assert!(users_named(remote, "u2").await.is_empty());

        // The removal guard: one removal is one too many for max_removals 0.
        let guarded = start_reconcile(&server, target_id, false, 0).await;
        let guarded = wait_long(&server, &guarded, "failed").await;
        assert!(
            guarded["failed_reason"].as_str().unwrap().contains(
                "removal guard stopped the run: it plans to remove 1 (at most 0 allowed)"
            ),
            "{guarded}"
        );
        assert_eq!(users_named(remote, "u3").await.len(), 1, "nothing removed");

        let repair = start_reconcile(&server, target_id, false, 1).await;
        let repair = wait_long(&server, &repair, "completed").await;
        assert_eq!(rows(&repair), planned);
        let report = &repair["current_state"]["report"];
        assert_eq!(
            (
                report["created"].as_u64(),
                report["removed"].as_u64(),
                report["failed"].as_u64()
            ),
            (Some(1), Some(1), Some(0)),
            "{report}"
        );
        assert_u1_and_u2_repaired(remote, mail).await;
        assert!(users_named(remote, "u3").await.is_empty(), "removed");
        assert_eq!(
            users_named(remote, "stranger").await.len(),
            1,
            "never what cadre did not make"
        );
        reconcile_finds_nothing(&server, target_id).await;

        // Changed and deleted in the target after that: the next run (which asks a SCIM
        // target only for what changed since the last) repairs both, and then finds nothing.
        change_mail(remote, "u1", mail, "again@elsewhere.org").await;
        delete_in_target(remote, "u2").await;
        let repair = start_reconcile(&server, target_id, false, 0).await;
        let repair = wait_long(&server, &repair, "completed").await;
        // A SCIM target gives the new u2 a new id, which its group must then name; an LDAP
        // DN stays what it was.
        let mut expected = vec!["user u1 update", "user u2 create"];
        if target.has_active {
            expected.insert(0, "group ops update");
        }
        assert_eq!(rows(&repair), expected);
        assert_u1_and_u2_repaired(remote, mail).await;
        reconcile_finds_nothing(&server, target_id).await;
        server.stop().await;
    }
}

/// Sets `user_id`'s `mail` attribute to `value` in the target, behind cadre's back; the user
/// as changed.
async fn change_mail(remote: &dyn Connector, user_id: &str, mail: &str, value: &str) -> UserEntry {
    let [user] = users_named(remote, user_id).await.try_into().unwrap();
    let mut changed = user.entry;
    changed.attributes.insert(mail.to_owned(), value.to_owned());
    remote.replace_user(&user.id, &changed).await.unwrap();
    changed
}

/// Deletes `user_id` in the target, behind cadre's back.
async fn delete_in_target(remote: &dyn Connector, user_id: &str) {
    let [user] = users_named(remote, user_id).await.try_into().unwrap();
    remote.delete_user(&user.id).await.unwrap();
}

/// Checks that u1 has cadre's address again and that u1 and u2 are the members of ops.
async fn assert_u1_and_u2_repaired(remote: &dyn Connector, mail: &str) {
    let [u1] = users_named(remote, "u1").await.try_into().unwrap();
    assert_eq!(u1.entry.attributes[mail], "u1@example.org", "repaired");
    let [u2] = users_named(remote, "u2").await.try_into().unwrap();
    let mut members = vec![u1.id, u2.id];
    members.sort();
    assert_eq!(
        group_named(remote, "ops").await.unwrap().entry.members,
        members
    );
}

/// Reconciles `target` and checks that there was nothing to do.
async fn reconcile_finds_nothing(server: &Server, target: Uuid) {
    let again = start_reconcile(server, target, false, 0).await;
    let again = wait_long(server, &again, "completed").await;
    assert!(rows(&again).is_empty(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_of_a_thousand_users_reaches_every_target() {
    let all = running().await;
    if all.is_empty() {
        return;
    }
    let server = with_key().await;
    let mut remotes = Vec::new();
    for target in &all {
        remotes.push(configure(&server, &target.target()).await.1);
    }
    server.create_group("crowd", "Crowd").await;
    let rows: Vec<Value> = (0..1000)
        .map(|n| json!({"user_id": format!("user{n:04}"), "firstname": "Many", "lastname": format!("Person {n}"),
                        "email": format!("user{n:04}@example.org"), "auth_id": null, "user_groups": ["crowd"], "is_active": true}))
        .collect();
    let (status, started) = server
        .post_text(
            "/api/provisioning/users?mode=incremental",
            &server.admin,
            "application/json",
            &Value::from(rows).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let load = started["process_id"].as_str().unwrap().to_owned();
    let load = wait_long(&server, &load, "completed").await;
    assert!(
        load["current_state"]["pushed"].as_u64().unwrap() >= 1000,
        "{}",
        load["current_state"]
    );
    for remote in &remotes {
        let users: Vec<_> = remote
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .filter(|user| user.entry.external_id.starts_with("user"))
            .collect();
        assert_eq!(users.len(), 1000);
        let crowd = group_named(remote.as_ref(), "crowd").await.unwrap();
        assert_eq!(crowd.entry.members.len(), 1000);
        let sample = users
            .iter()
            .find(|user| user.entry.external_id == "user0042")
            .unwrap();
        assert!(
            sample
                .entry
                .attributes
                .values()
                .any(|value| value == "user0042@example.org"),
            "{sample:?}"
        );
    }

    // A second load moves one of them to another group: it leaves the first on every target.
    server.create_group("few", "Few").await;
    let moved = json!([{"user_id": "user0001", "firstname": "Many", "lastname": "Person 1",
                        "email": "user0001@example.org", "auth_id": null, "user_groups": ["few"],
                        "is_active": true}]);
    let (status, started) = server
        .post_text(
            "/api/provisioning/users?mode=incremental",
            &server.admin,
            "application/json",
            &moved.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let load = started["process_id"].as_str().unwrap().to_owned();
    wait_long(&server, &load, "completed").await;
    for remote in &remotes {
        let crowd = group_named(remote.as_ref(), "crowd").await.unwrap();
        assert_eq!(crowd.entry.members.len(), 999, "left the first group");
        let few = group_named(remote.as_ref(), "few").await.unwrap();
        assert_eq!(few.entry.members.len(), 1, "joined the other");
    }
    server.stop().await;
}

/// Pauses or enables `target`.
async fn set_mode(server: &Server, target: &Target, id: Uuid, mode: &str) {
    let body =
        json!({"name": target.body["name"], "connection": target.body["connection"], "mode": mode});
    let (status, body) = server.put(&format!("/api/targets/{id}"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_reconcile_leave_alone_what_cadre_did_not_make() {
    let Some(scim) = ScimServer::start() else {
        return;
    };
    let target = scim_target(&scim);
    let server = with_key().await;
    let (target_id, remote) = configure(&server, &target).await;
    let remote = remote.as_ref();

    // The application has a "mia" of its own; cadre makes one while the target is paused, and
    // terminates it once it is enabled again: the application's mia stays.
    let theirs = UserEntry {
        external_id: "mia".to_owned(),
        attributes: expected(&target, &[("user_id", "mia"), ("username", "mia.app")]),
        active: true,
    };
    remote.create_user(&theirs).await.unwrap();
    set_mode(&server, &target, target_id, "paused").await;
    let process = start_user(&server, "mia", &[]).await;
    let mia = wait_long(&server, &process, "completed").await["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_mode(&server, &target, target_id, "enabled").await;
    run(
        &server,
        "terminate_user",
        json!([{"subscription_id": mia}, {}]),
    )
    .await;
    assert_eq!(
        users_named(remote, "mia").await.len(),
        1,
        "not cadre's to delete"
    );

    // Reconciling is for admins: a user's token, or none, starts nothing.
    let attempt = json!([{"target_id": target_id, "dry_run": false, "max_removals": 1000}]);
    let callers = [
        (Some(server.user.as_str()), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ];
    for (token, refused) in callers {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/processes/reconcile_target",
                token,
                Some(attempt.clone()),
            )
            .await;
        assert_eq!(status, refused);
    }

    // Two objects share cadre's "zoe": reconcile changes neither and says why.
    let process = start_user(&server, "zoe", &[]).await;
    wait_long(&server, &process, "completed").await;
    let mut twin = theirs.clone();
    twin.external_id = "zoe".to_owned();
    twin.attributes = expected(&target, &[("user_id", "zoe"), ("username", "zoe.twin")]);
    remote.create_user(&twin).await.unwrap();
    let reconcile = start_reconcile(&server, target_id, false, 10).await;
    let reconcile = wait_long(&server, &reconcile, "completed").await;
    let report = &reconcile["current_state"]["report"];
    assert_eq!(report["removed"], 0, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    assert!(
        report["rows"][0]["error"]
            .as_str()
            .unwrap()
            .contains("more than one object")
    );
    assert_eq!(
        users_named(remote, "zoe").await.len(),
        2,
        "both left as they were"
    );
    assert_eq!(users_named(remote, "mia").await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_ended_before_a_target_had_it_is_not_made_there_to_be_disabled() {
    let Some(scim) = ScimServer::start() else {
        return;
    };
    let mut target = scim_target(&scim);
    target.body["deprovision"] = json!("disable");
    target.body["mode"] = json!("paused");
    let server = with_key().await;
    let (target_id, remote) = configure(&server, &target).await;
    let process = start_user(&server, "old", &[]).await;
    let old = wait_long(&server, &process, "completed").await["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    run(
        &server,
        "terminate_user",
        json!([{"subscription_id": old}, {}]),
    )
    .await;
    let reconcile = start_reconcile(&server, target_id, false, 0).await;
    let reconcile = wait_long(&server, &reconcile, "completed").await;
    assert_eq!(reconcile["current_state"]["report"]["created"], 0);
    assert!(users_named(remote.as_ref(), "old").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_deprovisions_by_disabling_keeps_a_terminated_user_disabled() {
    for running in running().await {
        let mut target = running.target();
        target.body["deprovision"] = json!("disable");
        let server = with_key().await;
        let (target_id, remote) = configure(&server, &target).await;
        let remote = remote.as_ref();
        let group = server.create_group("ops", "Ops").await;
        tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
        let process = start_user(&server, "leo", &[&group]).await;
        let leo =
            wait_long(&server, &process, "completed").await["current_state"]["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned();
        assert_eq!(
            group_named(remote, "ops")
                .await
                .unwrap()
                .entry
                .members
                .len(),
            1
        );

        run(
            &server,
            "terminate_user",
            json!([{"subscription_id": leo}, {}]),
        )
        .await;
        let [kept] = users_named(remote, "leo")
            .await
            .try_into()
            .expect("kept on the target");
        assert_eq!(kept.entry.active, !target.has_active, "inactive (SCIM)");
        assert!(
            group_named(remote, "ops")
                .await
                .unwrap()
                .entry
                .members
                .is_empty(),
            "and in no group"
        );
        let (_, detail) = server.get(&format!("/api/subscriptions/{leo}")).await;
        assert_eq!(
            detail["targets"][0]["remote_id"],
            kept.id.as_str(),
            "still cadre's there: {detail}"
        );
        reconcile_finds_nothing(&server, target_id).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_waits_for_every_target_and_reaches_each_exactly_once() {
    let mut running = running().await;
    if running.len() < 2 {
        // Each missing target said so when it did not start.
        return;
    }
    let server = with_key().await;
    let mut remotes = Vec::new();
    for target in &running {
        remotes.push(configure(&server, &target.target()).await.1);
    }
    running[1].stop().await;
    let process = start_user(&server, "kim", &[]).await;
    let waiting = wait_long(&server, &process, "waiting").await;
    assert_eq!(
        users_named(remotes[0].as_ref(), "kim").await.len(),
        1,
        "the target that is up has it already"
    );
    let kim = waiting["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, detail) = server.get(&format!("/api/subscriptions/{kim}")).await;
    assert!(
        detail["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|state| state["remote_id"].is_null()),
        "no state is kept until every target took the change: {detail}"
    );

    running[1].start_again().await;
    wait_long(&server, &process, "completed").await;
    for remote in &remotes {
        let [user] = users_named(remote.as_ref(), "kim")
            .await
            .try_into()
            .expect("exactly one on each target");
        let (_, detail) = server.get(&format!("/api/subscriptions/{kim}")).await;
        let states = detail["targets"].as_array().unwrap();
        assert_eq!(states.len(), 2, "{detail}");
        assert!(
            states.iter().any(
                |state| state["remote_id"] == user.id.as_str() && state["last_error"].is_null()
            ),
            "{detail}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_configure_change_reconcile_and_remove_a_target_in_the_console() {
    let Some(scim) = ScimServer::start() else {
        return;
    };
    let server = with_key().await;
    server.admin_with_password("root").await;
    let mut console = Browser::new(&server);
    console.sign_in("root", PASSWORD).await;
    let page = console.get("/admin/targets").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No target yet"), "{}", page.body);
    let csrf = page.csrf();
    let base_url = scim.base_url();
    let form = |csrf: &str, base_url: &str, mapping: &str, mode: &str| {
        vec![
            ("csrf_token", csrf.to_owned()),
            ("name", "App".to_owned()),
            ("kind", "scim".to_owned()),
            ("base_url", base_url.to_owned()),
            ("bulk", "true".to_owned()),
            ("mapping", mapping.to_owned()),
            ("mode", mode.to_owned()),
            ("deprovision", "delete".to_owned()),
            ("secret", scim.token().to_owned()),
        ]
    };

    // A forged form does nothing; what breaks a rule is shown with the form as it was sent,
    // the credential left out.
    let forged = form("forged", &base_url, "", "enabled");
    let refused = console.post("/admin/targets", &pairs(&forged)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let ftp = form(&csrf, "ftp://127.0.0.1/scim", "", "enabled");
    let refused = console.post("/admin/targets", &pairs(&ftp)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(r#"value="ftp:&#x2f;&#x2f;127.0.0.1&#x2f;scim""#),
        "kept: {}",
        refused.body
    );
    assert!(!refused.body.contains(scim.token()), "never the credential");
    let bad_mapping = form(
        &csrf,
        &base_url,
        "externalId = user_id\nnonsense",
        "enabled",
    );
    let refused = console.post("/admin/targets", &pairs(&bad_mapping)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("mapping, line 2"), "{}", refused.body);
    let (_, targets) = server.get("/api/targets").await;
    assert_eq!(targets, json!([]), "nothing configured");

    let configured = form(&csrf, &base_url, "", "enabled");
    let created = console.post("/admin/targets", &pairs(&configured)).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let at = created.location.unwrap();
    let id: Uuid = at.trim_start_matches("/admin/targets/").parse().unwrap();
    let (_, target) = server.get(&format!("/api/targets/{id}")).await;
    assert_eq!(
        (
            &target["connection"]["base_url"],
            &target["connection"]["bulk"]
        ),
        (&json!(base_url), &json!(true)),
        "{target}"
    );
    assert_eq!(
        target["mapping"]["externalId"], "user_id",
        "the kind's defaults"
    );

    // The target's page: what it holds of cadre's, once a user went out.
    let process = start_user(&server, "ann", &[]).await;
    wait_long(&server, &process, "completed").await;
    let page = console.get(&at).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Users and groups pushed: 1; with an error: 0."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(scim.token()), "never the credential");

    // Paused, the mapping as shown and the credential kept.
    let csrf = page.csrf();
    let shown = target["mapping"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(attribute, field)| format!("{attribute} = {}", field.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paused = form(&csrf, &base_url, &shown, "paused");
    paused.retain(|(name, _)| *name != "secret");
    let changed = console.post(&at, &pairs(&paused)).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let (_, after) = server.get(&format!("/api/targets/{id}")).await;
    assert_eq!(after["mode"], "paused");
    assert_eq!(after["mapping"], target["mapping"]);
    // A new address needs its credential: said on the page.
    let mut moved = form(&csrf, "http://127.0.0.1:1/scim/v2", &shown, "paused");
    moved.retain(|(name, _)| *name != "secret");
    let refused = console.post(&at, &pairs(&moved)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("needs its credential"),
        "{}",
        refused.body
    );

    // A dry run from the page: its process plans nothing to change and writes nothing.
    let started = console
        .post(
            &format!("{at}/reconcile"),
            &[
                ("csrf_token", &csrf),
                ("dry_run", "true"),
                ("max_removals", "10"),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let process = started.location.unwrap();
    let process = process.trim_start_matches("/admin/processes/");
    let done = wait_long(&server, process, "completed").await;
    let report = &done["current_state"]["report"];
    assert_eq!(
        (report["dry_run"].as_bool(), report["unchanged"].as_u64()),
        (Some(true), Some(1)),
        "{report}"
    );

    let removed = console
        .post(&format!("{at}/remove"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(removed.location.as_deref(), Some("/admin/targets"));
    let (status, _) = server.get(&format!("/api/targets/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = server.get("/api/audit?limit=20").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["target"] == id.to_string())
        .filter_map(|event| event["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["target_removed", "target_changed", "target_configured"],
        "{audit}"
    );
    server.stop().await;
}

/// `fields` as a form's name-value pairs.
fn pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}
