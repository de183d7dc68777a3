//! SCIM Users: cadre's User subscriptions (every lifecycle but `initial` and `terminated`).
//! `userName` is the user name, `externalId` the identity at the authentication provider
//! (`auth_id`: the identity provider's id), `name` the given and family names,
//! `emails` the one address, `active` whether the user is active (false: disabled), `groups`
//! the groups whose members they are. Writes run `create_user`, `modify_user`, `disable_user`,
//! `enable_user` and `terminate_user`.

use std::collections::{HashMap, HashSet};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cadre_domain::models::DomainModel;
use cadre_domain::{
    Email, ExternalId, Lifecycle, Name, Product, ProductType, SubscriptionRecord, identity_key,
};
use cadre_products::models::{Employment, UserGroupInactive, UserInactive};
use cadre_provisioning::{
    ALWAYS_PROTECTED, LoadSettings, Mode, Outcome, Provisioner, Rows, UserRow,
};
use cadre_scim::{AttrExp, Attributes, CompValue, CompareOp, Filter, apply_patch, parse_patch};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::listing;
use super::schema::{ENTERPRISE_SCHEMA, USER, USER_SCHEMA};
use super::{
    Client, Failure, ScimCaller, Write, base, boolean, check_if_match, completed, conflict,
    created, field, guard_user, invalid, not_found, not_modified, resource_id, resource_response,
    run_workflow, text, version_of,
};
use crate::state::AppState;

/// How the User schema's attributes behave under PATCH.
const ATTRIBUTES: Attributes = Attributes {
    case_exact: |path| USER.case_exact(path),
    multi_valued: |path| USER.multi_valued(path),
    extensions: &[ENTERPRISE_SCHEMA],
};

/// The EnterpriseUser extension's attributes, in the order of [`Employment::parts`].
const EMPLOYMENT_ATTRIBUTES: [&str; 6] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// What a client may set on a user.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct UserInput {
    user_name: Name,
    external_id: Option<String>,
    given_name: Option<Name>,
    family_name: Option<Name>,
    email: Email,
    active: bool,
    employment: Employment,
}

/// Reads the EnterpriseUser extension of a User resource a client sent: each text attribute,
/// and the manager's id (`{"value": id}`, or the id alone as identity providers PATCH it).
fn employment(body: &Value) -> Result<Employment, Failure> {
    let mut employment = Employment::default();
    let Some(extension) = field(body, ENTERPRISE_SCHEMA) else {
        return Ok(employment);
    };
    if !extension.is_object() {
        return Err(invalid(format!("{ENTERPRISE_SCHEMA} is an object")));
    }
    let names = employment.parts().map(|(name, _)| name);
    for (attribute, name) in EMPLOYMENT_ATTRIBUTES.into_iter().zip(names) {
        let value = match field(extension, attribute) {
            Some(manager @ Value::Object(_)) if attribute == "manager" => text(manager, "value")?,
            _ => text(extension, attribute)?,
        };
        if let Some(part) = employment.part_mut(name) {
            *part = value;
        }
    }
    employment.check().map_err(invalid)?;
    Ok(employment)
}

/// Reads a User resource a client sent (`id`, `meta`, `groups` and `password` are ignored).
fn user_input(body: &Value) -> Result<UserInput, Failure> {
    let user_name = text(body, "userName")?
        .ok_or_else(|| invalid("userName is required"))
        .and_then(|name| Name::parse(&name).map_err(invalid))?;
    let external_id = text(body, "externalId")?;
    if external_id.as_ref().is_some_and(|id| id.len() > 255) {
        return Err(invalid("externalId is at most 255 bytes"));
    }
    let name = field(body, "name").cloned().unwrap_or(Value::Null);
    let name_part = |part: &str| -> Result<Option<Name>, Failure> {
        text(&name, part)?
            .map(|value| Name::parse(&value).map_err(invalid))
            .transpose()
    };
    let emails: Vec<Value> = match field(body, "emails") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(invalid("emails is a list")),
    };
    let of_type = |email: &&Value| {
        field(email, "type")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("work"))
    };
    let email = emails
        .iter()
        .find(|email| field(email, "primary").and_then(boolean) == Some(true))
        .or_else(|| emails.iter().find(of_type))
        .or_else(|| emails.first())
        .map(|email| text(email, "value"))
        .transpose()?
        .flatten()
        .ok_or_else(|| invalid("cadre needs an email address: emails is required"))?;
    let active = match field(body, "active") {
        None => true,
        Some(value) => boolean(value).ok_or_else(|| invalid("active is a boolean"))?,
    };
    Ok(UserInput {
        user_name,
        external_id,
        given_name: name_part("givenName")?,
        family_name: name_part("familyName")?,
        email: Email::parse(&email).map_err(invalid)?,
        active,
        employment: employment(body)?,
    })
}

/// The User resources of `records`, the names of their groups read at once.
pub(super) async fn resources(
    state: &AppState,
    records: Vec<SubscriptionRecord>,
) -> Result<Vec<Value>, Failure> {
    let users: Vec<UserInactive> = records
        .into_iter()
        .filter(|record| shown(record.subscription.lifecycle))
        .map(UserInactive::from_record)
        .collect::<Result<_, _>>()?;
    let group_ids: Vec<Uuid> = users
        .iter()
        .flat_map(|user| user.user.groups.iter())
        .map(|group| group.owner_subscription_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let names: HashMap<Uuid, String> = state
        .engine
        .store()
        .load_subscriptions(&group_ids)
        .await?
        .into_iter()
        .filter_map(|record| UserGroupInactive::from_record(record).ok())
        .filter_map(|group| {
            let name = group.user_group.name?;
            Some((group.subscription.id, name.to_string()))
        })
        .collect();
    let base = base(state);
    Ok(users
        .iter()
        .map(|user| resource(user, &names, &base))
        .collect())
}

/// Whether a subscription in `lifecycle` is a SCIM resource: it exists and is not gone.
pub(super) fn shown(lifecycle: Lifecycle) -> bool {
    !matches!(lifecycle, Lifecycle::Initial | Lifecycle::Terminated)
}

/// One user as a SCIM User.
fn resource(user: &UserInactive, group_names: &HashMap<Uuid, String>, base: &str) -> Value {
    let block = &user.user;
    let id = user.subscription.id;
    let mut resource = Map::new();
    resource.insert("schemas".into(), json!([USER_SCHEMA]));
    resource.insert("id".into(), json!(id));
    if let Some(external_id) = &block.auth_id {
        resource.insert("externalId".into(), json!(external_id));
    }
    resource.insert("userName".into(), json!(block.username));
    let mut name = Map::new();
    if let Some(given) = &block.firstname {
        name.insert("givenName".into(), json!(given));
    }
    if let Some(family) = &block.lastname {
        name.insert("familyName".into(), json!(family));
    }
    if !name.is_empty() {
        resource.insert("name".into(), Value::Object(name));
    }
    if let Some(email) = &block.email {
        resource.insert("emails".into(), json!([{"value": email}]));
    }
    resource.insert(
        "active".into(),
        json!(user.subscription.lifecycle != Lifecycle::Disabled),
    );
    let groups: Vec<Value> = block
        .groups
        .iter()
        .filter_map(|group| {
            let group_id = group.owner_subscription_id;
            let name = group_names.get(&group_id)?;
            Some(json!({
                "value": group_id,
                "$ref": format!("{base}/Groups/{group_id}"),
                "display": name,
                "type": "direct",
            }))
        })
        .collect();
    if !groups.is_empty() {
        resource.insert("groups".into(), Value::Array(groups));
    }
    if block.employment != Employment::default() {
        let parts = block.employment.parts();
        let extension: Map<String, Value> = EMPLOYMENT_ATTRIBUTES
            .into_iter()
            .zip(parts)
            .filter_map(|(attribute, (_, value))| {
                let value = match attribute {
                    "manager" => json!({"value": value?}),
                    _ => json!(value?),
                };
                Some((attribute.to_owned(), value))
            })
            .collect();
        resource.insert(ENTERPRISE_SCHEMA.into(), Value::Object(extension));
        resource.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE_SCHEMA]));
    }
    finish(resource, "User", &format!("{base}/Users/{id}"), id)
}

/// Adds `meta` to a resource: its type, location, creation time (from its time-ordered id)
/// and version.
pub(super) fn finish(
    mut resource: Map<String, Value>,
    kind: &str,
    location: &str,
    id: Uuid,
) -> Value {
    let version = version_of(&Value::Object(resource.clone()));
    let created = id
        .get_timestamp()
        .and_then(|stamp| {
            let (seconds, nanos) = stamp.to_unix();
            chrono::DateTime::from_timestamp(seconds as i64, nanos)
        })
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let mut meta = json!({
        "resourceType": kind,
        "location": location,
        "version": version,
    });
    if let Some(created) = created {
        meta["created"] = json!(created);
    }
    resource.insert("meta".into(), meta);
    Value::Object(resource)
}

/// The user `id` as a SCIM User; not found unless it is a shown User subscription.
async fn load(state: &AppState, id: Uuid) -> Result<(SubscriptionRecord, Value), Failure> {
    let record = match state.engine.store().load_subscription(id).await {
        Ok(record) => record,
        Err(cadre_domain::DomainError::NotFound { .. }) => {
            return Err(not_found("user", &id.to_string()));
        }
        Err(error) => return Err(error.into()),
    };
    if record.product.product_type != ProductType::user() || !shown(record.subscription.lifecycle) {
        return Err(not_found("user", &id.to_string()));
    }
    let resource = resources(state, vec![record.clone()])
        .await?
        .pop()
        .ok_or_else(|| not_found("user", &id.to_string()))?;
    Ok((record, resource))
}

/// The unique resource type and value a filter's one equality names, if that is all it is.
pub(super) fn indexed(filter: &Filter) -> Option<(&'static str, String)> {
    let Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) = filter
    else {
        return None;
    };
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    let resource_type = match (name.as_str(), sub.as_deref()) {
        ("username", None) => "username",
        ("emails", None | Some("value")) => "email",
        _ => return None,
    };
    Some((resource_type, value.clone()))
}

/// `GET /scim/v2/Users/{id}`
pub async fn get_one(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    parameters: Result<QueryString<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, Failure> {
    let (_, resource) = load(&state, resource_id("user", &id)?).await?;
    if let Some(unchanged) = not_modified(&headers, &resource) {
        return Ok(unchanged);
    }
    let query = listing::parameters(parameters)?;
    Ok(resource_response(StatusCode::OK, &query.project(resource)))
}

/// `GET /scim/v2/Me`: the user the caller's token acts for.
pub async fn me(
    ScimCaller(caller): ScimCaller,
    State(state): State<AppState>,
) -> Result<Response, Failure> {
    let id = caller
        .caller
        .user_id()
        .ok_or_else(|| not_found("user", "for this token: it acts for no user"))?;
    let (_, resource) = load(&state, id).await?;
    Ok(resource_response(StatusCode::OK, &resource))
}

/// Refuses `input` when another live user holds its user name or email address.
async fn check_unique(
    state: &AppState,
    input: &UserInput,
    except: Option<Uuid>,
) -> Result<(), Failure> {
    let store = state.engine.store();
    for (resource_type, value, attribute) in [
        ("username", input.user_name.to_string(), "userName"),
        ("email", input.email.to_string(), "emails"),
    ] {
        let holders = store.find_by_unique_values(resource_type, &[value]).await?;
        if holders.iter().any(|(_, holder)| Some(*holder) != except) {
            return Err(conflict(format!("another user has this {attribute}")));
        }
    }
    Ok(())
}

/// cadre's ids for new users: each one's user name where that is a valid id no one (and no
/// earlier one of them) holds, compared as the store compares ids, else a new one.
async fn new_user_ids(state: &AppState, inputs: &[&UserInput]) -> Result<Vec<ExternalId>, Failure> {
    let candidates: Vec<String> = inputs
        .iter()
        .filter_map(|input| ExternalId::parse(input.user_name.as_str()).ok())
        .map(|id| id.to_string())
        .collect();
    let mut held: HashSet<String> = state
        .engine
        .store()
        .find_by_unique_values("user_id", &candidates)
        .await?
        .into_iter()
        .map(|(id, _)| identity_key(&id))
        .collect();
    held.insert(identity_key(ALWAYS_PROTECTED));
    Ok(inputs
        .iter()
        .map(|input| {
            ExternalId::parse(input.user_name.as_str())
                .ok()
                .filter(|id| held.insert(identity_key(id.as_str())))
                .unwrap_or_else(|| {
                    ExternalId::parse(&Uuid::now_v7().simple().to_string())
                        .unwrap_or_else(|_| unreachable!("a simple uuid is a valid id"))
                })
        })
        .collect())
}

/// The User product SCIM creates users of: an internal one, if the catalogue has one.
async fn user_product(state: &AppState) -> Result<Product, Failure> {
    let products: Vec<_> = state
        .engine
        .store()
        .list_products()
        .await?
        .into_iter()
        .filter(|product| product.product_type == ProductType::user())
        .collect();
    products
        .iter()
        .find(|product| product.fixed_input("affiliation") == Some("internal"))
        .or_else(|| products.first())
        .cloned()
        .ok_or_else(|| {
            Failure(cadre_scim::ScimError {
                status: 500,
                scim_type: None,
                detail: "the catalogue has no User product".to_owned(),
            })
        })
}

/// `POST /Users`: the body checked, then created.
async fn create(state: &AppState, caller: &Client, body: &Value) -> Result<Value, Failure> {
    let input = unique_inputs(state, std::slice::from_ref(body))
        .await?
        .pop()
        .unwrap_or_else(|| unreachable!("one input per body"))?;
    create_checked(state, caller, &input).await
}

/// Creates the user `input` (from [`unique_inputs`]): `create_user` (in no group), then
/// `disable_user` when it arrives inactive.
async fn create_checked(
    state: &AppState,
    caller: &Client,
    input: &UserInput,
) -> Result<Value, Failure> {
    let user_id = new_user_ids(state, &[input])
        .await?
        .pop()
        .unwrap_or_else(|| unreachable!("one id per input"));
    let product = user_product(state).await?;
    let mut page = json!({
        "user_id": user_id,
        "username": input.user_name,
        "email": input.email,
        "user_group_ids": [],
    });
    if let Some(external_id) = &input.external_id {
        page["auth_id"] = json!(external_id);
    }
    if let Some(given) = &input.given_name {
        page["firstname"] = json!(given);
    }
    if let Some(family) = &input.family_name {
        page["lastname"] = json!(family);
    }
    for (name, value) in input.employment.parts() {
        page[name] = json!(value);
    }
    let process = run_workflow(
        state,
        caller,
        "create_user",
        &[json!({"product": product.id}), page],
    )
    .await?;
    let id = created(&process)?;
    if !input.active {
        lifecycle(state, caller, id, None, false).await?;
    }
    Ok(load(state, id).await?.1)
}

/// Each body read as a new user, refused (409) when a live user or an earlier body holds its
/// user name or email address.
pub(super) async fn unique_inputs(
    state: &AppState,
    bodies: &[Value],
) -> Result<Vec<Result<UserInput, Failure>>, Failure> {
    let inputs: Vec<Result<UserInput, Failure>> = bodies.iter().map(user_input).collect();
    let valid = || inputs.iter().filter_map(|input| input.as_ref().ok());
    // Claimed values, by the key the store makes them unique by.
    let held = |resource_type: &'static str, values: Vec<String>| async move {
        Ok::<HashSet<String>, Failure>(
            state
                .engine
                .store()
                .find_by_unique_values(resource_type, &values)
                .await?
                .into_iter()
                .map(|(value, _)| identity_key(&value))
                .collect(),
        )
    };
    let mut names = held(
        "username",
        valid().map(|i| i.user_name.to_string()).collect(),
    )
    .await?;
    let mut emails = held("email", valid().map(|i| i.email.to_string()).collect()).await?;
    Ok(inputs
        .into_iter()
        .map(|input| {
            let input = input?;
            let name = identity_key(input.user_name.as_str());
            let email = identity_key(input.email.as_str());
            if names.contains(&name) {
                return Err(conflict("another user has this userName"));
            }
            if emails.contains(&email) {
                return Err(conflict("another user has this emails"));
            }
            names.insert(name);
            emails.insert(email);
            Ok(input)
        })
        .collect())
}

/// `POST /Users` of many users at once, as `/Bulk` runs a series of them: `inputs` (from
/// [`unique_inputs`]) created by one create-only `provision_users` load (a workflow as
/// `create_user` is, as fast as a bulk load), those that arrive inactive created disabled. When
/// the load fails as a whole (a value taken between its plan and its write, say), it is
/// aborted and each user is created on its own. Each one's resource, or why it was not
/// created, in order.
pub(super) async fn create_many(
    state: &AppState,
    caller: &Client,
    inputs: &[&UserInput],
) -> Result<Vec<Result<Value, Failure>>, Failure> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let store = state.engine.store();
    let rows: Vec<UserRow> = (0u64..)
        .zip(inputs)
        .zip(new_user_ids(state, inputs).await?)
        .map(|((row, input), user_id)| UserRow {
            row,
            user_id,
            firstname: input.given_name.clone(),
            lastname: input.family_name.clone(),
            email: Some(input.email.clone()),
            auth_id: input.external_id.clone(),
            user_groups: Vec::new(),
            active: true,
            username: Some(input.user_name.clone()),
            employment: Some(input.employment.clone()),
            disabled: !input.active,
        })
        .collect();
    let mut settings = LoadSettings::new(Mode::Incremental);
    settings.create_only = true;
    settings.user_product = user_product(state).await?.name;
    let engine = state.engine.with_origin(caller.caller.origin(caller.addr));
    let provisioner = Provisioner::new(engine.clone());
    let process = provisioner
        .start(&Rows::Users(rows.clone()), settings, caller.caller.name())
        .await?;
    match completed(state, &process).await {
        Ok(_) => {}
        Err(Failure(error)) if error.status == 409 => {
            // Failed, not merely slow: never to be resumed, and each user on its own instead.
            engine.abort(process.id, caller.caller.name()).await?;
            let mut made = Vec::with_capacity(inputs.len());
            for input in inputs {
                made.push(create_checked(state, caller, input).await);
            }
            return Ok(made);
        }
        Err(failure) => return Err(failure),
    }
    let report = provisioner.report(process.id).await?;
    let outcomes: HashMap<u64, (Outcome, Option<String>)> = report
        .rows
        .into_iter()
        .filter_map(|row| Some((row.row?, (row.outcome, row.reason))))
        .collect();
    let ids: HashMap<String, Uuid> = store
        .find_by_unique_values(
            "user_id",
            &rows
                .iter()
                .map(|row| row.user_id.to_string())
                .collect::<Vec<_>>(),
        )
        .await?
        .into_iter()
        .collect();
    let made: Vec<Result<Uuid, Failure>> = rows
        .iter()
        .map(|row| match outcomes.get(&row.row) {
            Some((Outcome::Created, _)) => ids
                .get(row.user_id.as_str())
                .copied()
                .ok_or_else(|| not_found("user", row.user_id.as_str())),
            Some((_, reason)) => Err(conflict(reason.clone().unwrap_or_default())),
            None => Err(invalid("the load did not report this user")),
        })
        .collect();
    let live: Vec<Uuid> = made
        .iter()
        .filter_map(|id| id.as_ref().ok().copied())
        .collect();
    let mut resources: HashMap<Uuid, Value> =
        resources(state, store.load_subscriptions(&live).await?)
            .await?
            .into_iter()
            .filter_map(|resource| Some((resource["id"].as_str()?.parse().ok()?, resource)))
            .collect();
    Ok(made
        .into_iter()
        .map(|id| {
            let id = id?;
            resources
                .remove(&id)
                .ok_or_else(|| not_found("user", &id.to_string()))
        })
        .collect())
}

/// Disables (`active: false`) or enables the user `id`, which is at `version` when known.
async fn lifecycle(
    state: &AppState,
    caller: &Client,
    id: Uuid,
    version: Option<i64>,
    active: bool,
) -> Result<(), Failure> {
    let workflow = if active {
        "enable_user"
    } else {
        "disable_user"
    };
    run_workflow(
        state,
        caller,
        workflow,
        &[
            json!({"subscription_id": id, "version": version}),
            json!({}),
        ],
    )
    .await?;
    Ok(())
}

/// Makes the user `record` (now `current`) what `input` says: `modify_user` for the fields
/// that changed, then `disable_user` or `enable_user` when `active` changed.
async fn change(
    state: &AppState,
    caller: &Client,
    record: &SubscriptionRecord,
    input: UserInput,
) -> Result<Value, Failure> {
    let id = record.subscription.id;
    guard_user(state, caller, id).await?;
    let user = UserInactive::from_record(record.clone())?.user;
    check_unique(state, &input, Some(id)).await?;
    let mut page = Map::new();
    if Some(&input.user_name) != user.username.as_ref() {
        page.insert("username".into(), json!(input.user_name));
    }
    if Some(&input.email) != user.email.as_ref() {
        page.insert("email".into(), json!(input.email));
    }
    // What is left out is cleared: sent empty.
    let given = input.given_name.as_ref().map(Name::to_string);
    let family = input.family_name.as_ref().map(Name::to_string);
    let now_given = user.firstname.as_ref().map(Name::to_string);
    let now_family = user.lastname.as_ref().map(Name::to_string);
    for (key, wanted, now) in [
        ("firstname", &given, &now_given),
        ("lastname", &family, &now_family),
        ("auth_id", &input.external_id, &user.auth_id),
    ] {
        if wanted != now {
            page.insert(key.into(), json!(wanted.as_deref().unwrap_or_default()));
        }
    }
    let wanted = input.employment.parts();
    for ((name, wanted), (_, now)) in wanted.into_iter().zip(user.employment.parts()) {
        if wanted != now {
            page.insert(name.into(), json!(wanted.unwrap_or_default()));
        }
    }
    // The first workflow starts only on the version the change was made against, so that a
    // change in between (after `If-Match` was checked) is a conflict, not overwritten.
    let mut version = Some(record.subscription.version);
    let mut active = record.subscription.lifecycle != Lifecycle::Disabled;
    if !page.is_empty() {
        let was_disabled = !active;
        if was_disabled {
            // A modify workflow starts on an active user: enabled first, and disabled again
            // when the modification fails.
            lifecycle(state, caller, id, version.take(), true).await?;
            active = true;
        }
        let modified = run_workflow(
            state,
            caller,
            "modify_user",
            &[
                json!({"subscription_id": id, "version": version.take()}),
                Value::Object(page),
            ],
        )
        .await;
        if let Err(failure) = modified {
            if was_disabled {
                lifecycle(state, caller, id, None, false).await?;
            }
            return Err(failure);
        }
    }
    if input.active != active {
        lifecycle(state, caller, id, version.take(), input.active).await?;
    }
    Ok(load(state, id).await?.1)
}

/// A write of a user: its resource afterwards (none once deleted).
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
    let (record, current) = load(state, resource_id("user", id)?).await?;
    check_if_match(if_match, &current)?;
    match write {
        Write::Create(_) => Ok(None),
        Write::Replace(_, body) => change(state, caller, &record, user_input(body)?)
            .await
            .map(Some),
        // The operations applied to the user as it is, then changed as a replacement would.
        Write::Patch(_, body) => {
            let operations = parse_patch(body)?;
            let Value::Object(mut patched) = current else {
                return Err(not_found("user", id));
            };
            apply_patch(&mut patched, &operations, &ATTRIBUTES)?;
            let input = user_input(&Value::Object(patched))?;
            change(state, caller, &record, input).await.map(Some)
        }
        Write::Delete(_) => {
            guard_user(state, caller, record.subscription.id).await?;
            run_workflow(
                state,
                caller,
                "terminate_user",
                &[
                    json!({"subscription_id": record.subscription.id,
                           "version": record.subscription.version}),
                    json!({}),
                ],
            )
            .await?;
            Ok(None)
        }
    }
}
