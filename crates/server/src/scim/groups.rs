//! SCIM Groups: cadre's UserGroup subscriptions. `displayName` is the group's name,
//! `externalId` its identity provider's id (`external_id`; cadre's own group id is made new), `members` the users whose groups include it. Writes run
//! `create_user_group`, `modify_user_group` and `terminate_user_group`, and for each member who
//! comes or goes `join_user_group` or `leave_user_group`.

use std::collections::{BTreeSet, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cadre_domain::models::DomainModel;
use cadre_domain::{Name, ProductType, SubscriptionRecord};
use cadre_products::models::UserGroupInactive;
use cadre_registration::{JOIN_USER_GROUP, LEAVE_USER_GROUP};
use cadre_scim::{Attributes, apply_patch, parse_patch};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::listing;
use super::schema::{GROUP, GROUP_SCHEMA};
use super::users::{finish, shown};
use super::{
    Client, Failure, ScimCaller, Write, base, check_if_match, conflict, created, field, guard_user,
    invalid, not_found, not_modified, resource_id, resource_response, run_workflow, text,
};
use crate::state::AppState;

/// How the Group schema's attributes behave under PATCH.
const ATTRIBUTES: Attributes = Attributes {
    case_exact: |path| GROUP.case_exact(path),
    multi_valued: |path| GROUP.multi_valued(path),
    extensions: &[],
};

/// The most members that may join or leave in one request.
const MAX_MEMBERS: usize = 1000;

/// What a client may set on a group.
struct GroupInput {
    display_name: Name,
    external_id: Option<String>,
    /// `None` when the request names no members (a PUT without them leaves them).
    members: Option<BTreeSet<Uuid>>,
}

/// Reads a Group resource a client sent (`id` and `meta` are ignored).
fn group_input(body: &Value) -> Result<GroupInput, Failure> {
    let display_name = text(body, "displayName")?
        .ok_or_else(|| invalid("displayName is required"))
        .and_then(|name| Name::parse(&name).map_err(invalid))?;
    let external_id = text(body, "externalId")?;
    if external_id.as_ref().is_some_and(|id| id.len() > 255) {
        return Err(invalid("externalId is at most 255 bytes"));
    }
    let members = match field(body, "members") {
        None => None,
        Some(Value::Array(items)) => {
            let ids = items
                .iter()
                .map(|member| {
                    text(member, "value")?
                        .and_then(|id| id.parse().ok())
                        .ok_or_else(|| invalid("a member's value is a user's id"))
                })
                .collect::<Result<_, Failure>>()?;
            Some(ids)
        }
        Some(_) => return Err(invalid("members is a list")),
    };
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

/// The users in the group `group` (shown ones only), by id, in creation order.
async fn members_of(state: &AppState, group: &UserGroupInactive) -> Result<Vec<Uuid>, Failure> {
    let mut ids: Vec<Uuid> = state
        .engine
        .store()
        .subscriptions_using(group.user_group.instance_id)
        .await?
        .into_iter()
        .filter(|summary| {
            summary.product_type == ProductType::user() && shown(summary.subscription.lifecycle)
        })
        .map(|summary| summary.subscription.id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// One group as a SCIM Group; its members only when `with_members`.
async fn resource(
    state: &AppState,
    group: &UserGroupInactive,
    with_members: bool,
) -> Result<Value, Failure> {
    let base = base(state);
    let id = group.subscription.id;
    let mut resource = Map::new();
    resource.insert("schemas".into(), json!([GROUP_SCHEMA]));
    resource.insert("id".into(), json!(id));
    if let Some(external_id) = &group.user_group.external_id {
        resource.insert("externalId".into(), json!(external_id));
    }
    resource.insert("displayName".into(), json!(group.user_group.name));
    if with_members {
        let members: Vec<Value> = members_of(state, group)
            .await?
            .into_iter()
            .map(|user| {
                json!({
                    "value": user,
                    "$ref": format!("{base}/Users/{user}"),
                    "type": "User",
                })
            })
            .collect();
        resource.insert("members".into(), Value::Array(members));
    }
    Ok(finish(
        resource,
        "Group",
        &format!("{base}/Groups/{id}"),
        id,
    ))
}

/// The group `id`; not found unless it is a shown UserGroup subscription.
async fn load(
    state: &AppState,
    id: Uuid,
) -> Result<(SubscriptionRecord, UserGroupInactive, Value), Failure> {
    let record = match state.engine.store().load_subscription(id).await {
        Ok(record) => record,
        Err(cadre_domain::DomainError::NotFound { .. }) => {
            return Err(not_found("group", &id.to_string()));
        }
        Err(error) => return Err(error.into()),
    };
    if record.product.product_type != ProductType::user_group()
        || !shown(record.subscription.lifecycle)
    {
        return Err(not_found("group", &id.to_string()));
    }
    let group = UserGroupInactive::from_record(record.clone())?;
    let resource = resource(state, &group, true).await?;
    Ok((record, group, resource))
}

/// The Group resources of `records`; their members only when `with_members`.
pub(super) async fn resources(
    state: &AppState,
    records: Vec<SubscriptionRecord>,
    with_members: bool,
) -> Result<Vec<Value>, Failure> {
    let mut found = Vec::with_capacity(records.len());
    for record in records {
        let group = UserGroupInactive::from_record(record)?;
        found.push(resource(state, &group, with_members).await?);
    }
    Ok(found)
}

/// `GET /scim/v2/Groups/{id}`
pub async fn get_one(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    parameters: Result<QueryString<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, Failure> {
    let (_, _, resource) = load(&state, resource_id("group", &id)?).await?;
    if let Some(unchanged) = not_modified(&headers, &resource) {
        return Ok(unchanged);
    }
    let query = listing::parameters(parameters)?;
    Ok(resource_response(StatusCode::OK, &query.project(resource)))
}

/// Refuses a name another live group holds.
async fn check_unique(state: &AppState, name: &Name, except: Option<Uuid>) -> Result<(), Failure> {
    let holders = state
        .engine
        .store()
        .find_by_unique_values("user_group_name", &[name.to_string()])
        .await?;
    if holders.iter().any(|(_, holder)| Some(*holder) != except) {
        return Err(conflict("another group has this displayName"));
    }
    Ok(())
}

/// The users among `added` and `removed`, once every one added is a user and the caller may
/// change every one of them; checked before anything is written.
async fn checked_members(
    state: &AppState,
    caller: &Client,
    added: &[Uuid],
    removed: &[Uuid],
) -> Result<BTreeSet<Uuid>, Failure> {
    let store = state.engine.store();
    let named: Vec<Uuid> = added.iter().chain(removed).copied().collect();
    let users = store.load_subscriptions(&named).await?;
    let known: BTreeSet<Uuid> = users
        .iter()
        .filter(|record| {
            record.product.product_type == ProductType::user()
                && shown(record.subscription.lifecycle)
        })
        .map(|record| record.subscription.id)
        .collect();
    if let Some(unknown) = added.iter().find(|id| !known.contains(id)) {
        return Err(invalid(format!("member {unknown} is not a user")));
    }
    for user in &known {
        guard_user(state, caller, *user).await?;
    }
    Ok(known)
}

/// Refuses a request in which more than [`MAX_MEMBERS`] members join or leave: each is a
/// workflow of its own.
fn bounded(added: &[Uuid], removed: &[Uuid]) -> Result<(), Failure> {
    if added.len() + removed.len() > MAX_MEMBERS {
        return Err(invalid(format!(
            "at most {MAX_MEMBERS} members join or leave in one request"
        )));
    }
    Ok(())
}

/// Joins the users `added` to the group `group` and takes `removed` out, one workflow each,
/// for those of them `known` (from [`checked_members`]) holds.
async fn set_members(
    state: &AppState,
    caller: &Client,
    group: Uuid,
    (added, removed): (&[Uuid], &[Uuid]),
    known: &BTreeSet<Uuid>,
) -> Result<(), Failure> {
    for (workflow, users) in [(JOIN_USER_GROUP, added), (LEAVE_USER_GROUP, removed)] {
        for user in users.iter().filter(|user| known.contains(user)) {
            run_workflow(
                state,
                caller,
                workflow,
                &[json!({"subscription_id": user, "user_group": group})],
            )
            .await?;
        }
    }
    Ok(())
}

/// `POST /Groups`: its members checked, `create_user_group`, then its members join.
async fn create(state: &AppState, caller: &Client, body: &Value) -> Result<Value, Failure> {
    let input = group_input(body)?;
    check_unique(state, &input.display_name, None).await?;
    let members: Vec<Uuid> = input.members.unwrap_or_default().into_iter().collect();
    bounded(&members, &[])?;
    let known = checked_members(state, caller, &members, &[]).await?;
    // cadre's own id of the group, which the systems it provisions know it by.
    let group_id = Uuid::now_v7().simple().to_string();
    let product = state
        .engine
        .store()
        .list_products()
        .await?
        .into_iter()
        .find(|product| product.product_type == ProductType::user_group())
        .ok_or_else(|| {
            Failure(cadre_scim::ScimError {
                status: 500,
                scim_type: None,
                detail: "the catalogue has no UserGroup product".to_owned(),
            })
        })?;
    let process = run_workflow(
        state,
        caller,
        "create_user_group",
        &[
            json!({"product": product.id}),
            json!({"user_group_id": group_id, "user_group_name": input.display_name,
                   "external_id": input.external_id}),
        ],
    )
    .await?;
    let id = created(&process)?;
    set_members(state, caller, id, (&members, &[]), &known).await?;
    Ok(load(state, id).await?.2)
}

/// Makes the group what `input` says: `modify_user_group` for a new name, and its members
/// exactly those named (when it names them).
async fn change(
    state: &AppState,
    caller: &Client,
    group: &UserGroupInactive,
    current: &Value,
    input: GroupInput,
) -> Result<Value, Failure> {
    let id = group.subscription.id;
    // Who joins and leaves, checked before anything is written.
    let members = match &input.members {
        Some(wanted) => {
            let now: BTreeSet<Uuid> = current["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|member| member["value"].as_str()?.parse().ok())
                .collect();
            let added: Vec<Uuid> = wanted.difference(&now).copied().collect();
            let removed: Vec<Uuid> = now.difference(wanted).copied().collect();
            bounded(&added, &removed)?;
            let known = checked_members(state, caller, &added, &removed).await?;
            Some((added, removed, known))
        }
        None => None,
    };
    let mut page = Map::new();
    if Some(&input.display_name) != group.user_group.name.as_ref() {
        check_unique(state, &input.display_name, Some(id)).await?;
        page.insert("user_group_name".into(), json!(input.display_name));
    }
    if input.external_id != group.user_group.external_id {
        // Left out is cleared: sent empty.
        page.insert(
            "external_id".into(),
            json!(input.external_id.as_deref().unwrap_or_default()),
        );
    }
    if !page.is_empty() {
        run_workflow(
            state,
            caller,
            "modify_user_group",
            &[
                json!({"subscription_id": id, "version": group.subscription.version}),
                Value::Object(page),
            ],
        )
        .await?;
    }
    if let Some((added, removed, known)) = members {
        set_members(state, caller, id, (&added, &removed), &known).await?;
    }
    Ok(load(state, id).await?.2)
}

/// A write of a group: its resource afterwards (none once deleted).
pub(super) async fn write(
    state: &AppState,
    caller: &Client,
    write: Write<'_>,
    if_match: Option<&str>,
) -> Result<Option<Value>, Failure> {
    let id = match write {
        Write::Create(body) => return create(state, caller, body).await.map(Some),
        Write::Replace(id, _) | Write::Patch(id, _) | Write::Delete(id) => id,
    };
    let (record, group, current) = load(state, resource_id("group", id)?).await?;
    check_if_match(if_match, &current)?;
    let input = match write {
        Write::Create(_) => return Ok(None),
        Write::Replace(_, body) => group_input(body)?,
        // The operations applied to the group as it is, then changed as a replacement would.
        Write::Patch(_, body) => {
            let operations = parse_patch(body)?;
            let Value::Object(mut patched) = current.clone() else {
                return Err(not_found("group", id));
            };
            apply_patch(&mut patched, &operations, &ATTRIBUTES)?;
            group_input(&Value::Object(patched))?
        }
        // Its members leave, then `terminate_user_group`.
        Write::Delete(_) => {
            let members = members_of(state, &group).await?;
            let group_id = record.subscription.id;
            let known = checked_members(state, caller, &[], &members).await?;
            set_members(state, caller, group_id, (&[], &members), &known).await?;
            run_workflow(
                state,
                caller,
                "terminate_user_group",
                &[json!({"subscription_id": group_id}), json!({})],
            )
            .await?;
            return Ok(None);
        }
    };
    // A replacement sets every member: one without members leaves none.
    let mut input = input;
    input.members.get_or_insert_with(BTreeSet::new);
    change(state, caller, &group, &current, input)
        .await
        .map(Some)
}
