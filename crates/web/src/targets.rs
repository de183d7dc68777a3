//! Outbound targets from the console (`docs/outbound.md`): every target, a new SCIM or LDAP
//! one, a target's settings changed (its credential set, never shown), what it holds of
//! cadre's and the last errors, a reconcile started (a dry run first), and removal. The same
//! rules and audit events as `/api/targets`: the pages call what the API calls.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::outbound::USER_FIELDS;
use cadre_domain::{Connection, DomainError, Origin, OutboundTarget};
use cadre_server::targets::{
    Actor, TargetSettings, change_target, configure_target, remove_target,
};
use cadre_server::{ApiError, AppState, client_addr};
use minijinja::context;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::Action;
use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// At most this many of a target's last errors are shown.
const SHOWN_ERRORS: usize = 20;

/// What the target form sends; the fields of the other kind are ignored. No `Debug`: it holds
/// the credential.
#[derive(Deserialize)]
pub(crate) struct TargetForm {
    csrf_token: String,
    name: String,
    /// `scim` or `ldap`.
    kind: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    bulk: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    start_tls: Option<String>,
    #[serde(default)]
    bind_dn: String,
    #[serde(default)]
    people_dn: String,
    #[serde(default)]
    groups_dn: String,
    #[serde(default)]
    user_class: String,
    #[serde(default)]
    group_class: String,
    /// One `attribute = field` a line; empty: the kind's defaults.
    #[serde(default)]
    mapping: String,
    mode: String,
    deprovision: String,
    /// Empty keeps the credential a target has.
    #[serde(default)]
    secret: String,
}

impl TargetForm {
    /// The settings the form holds, or what is wrong with them.
    fn settings(&self) -> Result<TargetSettings, DomainError> {
        self.read()
            .map_err(|detail| DomainError::invalid("target", detail))
    }

    /// [`TargetForm::settings`], what is wrong said as text.
    fn read(&self) -> Result<TargetSettings, String> {
        let or = |value: &str, default: &str| {
            if value.trim().is_empty() {
                default.to_owned()
            } else {
                value.trim().to_owned()
            }
        };
        let connection = match self.kind.as_str() {
            "scim" => Connection::Scim {
                base_url: self.base_url.trim().to_owned(),
                username: Some(self.username.trim().to_owned()).filter(|name| !name.is_empty()),
                bulk: self.bulk.is_some(),
            },
            "ldap" => Connection::Ldap {
                url: self.url.trim().to_owned(),
                start_tls: self.start_tls.is_some(),
                bind_dn: self.bind_dn.trim().to_owned(),
                people_dn: self.people_dn.trim().to_owned(),
                groups_dn: self.groups_dn.trim().to_owned(),
                user_class: or(&self.user_class, "inetOrgPerson"),
                group_class: or(&self.group_class, "groupOfNames"),
            },
            other => return Err(format!("{other:?} is not a kind of target: scim or ldap")),
        };
        Ok(TargetSettings {
            name: self.name.trim().to_owned(),
            connection,
            mapping: mapping(&self.mapping)?,
            mode: Some(choice(&self.mode, "mode")?),
            deprovision: Some(choice(&self.deprovision, "deprovision")?),
            secret: Some(self.secret.clone()).filter(|secret| !secret.is_empty()),
        })
    }

    /// What the form showed, to show again (never the credential).
    fn values(&self) -> Value {
        json!({
            "name": self.name, "kind": self.kind, "base_url": self.base_url,
            "username": self.username, "bulk": self.bulk.is_some(), "url": self.url,
            "start_tls": self.start_tls.is_some(), "bind_dn": self.bind_dn,
            "people_dn": self.people_dn, "groups_dn": self.groups_dn,
            "user_class": self.user_class, "group_class": self.group_class,
            "mapping": self.mapping, "mode": self.mode, "deprovision": self.deprovision,
        })
    }
}

/// `text`'s `attribute = field` lines; `None` when it has none.
fn mapping(text: &str) -> Result<Option<BTreeMap<String, String>>, String> {
    let mut mapping = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((attribute, field))
                if !attribute.trim().is_empty() && !field.trim().is_empty() =>
            {
                mapping.insert(attribute.trim().to_owned(), field.trim().to_owned());
            }
            _ => {
                return Err(format!(
                    "mapping, line {}: write `attribute = field`",
                    number + 1
                ));
            }
        }
    }
    Ok(Some(mapping).filter(|mapping| !mapping.is_empty()))
}

/// The value `wire` names of a setting (`enabled`, `paused`; `delete`, `disable`).
fn choice<T: DeserializeOwned>(wire: &str, setting: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(wire.to_owned()))
        .map_err(|_| format!("{setting}: {wire:?} is not one of the choices"))
}

/// `values` over a form with every field blank: a page names each one.
fn every_field(values: Value) -> Value {
    let mut all = json!({
        "name": "", "kind": "scim", "base_url": "", "username": "", "bulk": false, "url": "",
        "start_tls": false, "bind_dn": "", "people_dn": "", "groups_dn": "",
        "user_class": "inetOrgPerson", "group_class": "groupOfNames", "mapping": "",
        "mode": "enabled", "deprovision": "delete",
    });
    if let (Some(all), Value::Object(values)) = (all.as_object_mut(), values) {
        all.extend(values.into_iter().filter(|(_, value)| !value.is_null()));
    }
    all
}

/// `target`'s settings as the form shows them.
fn values_of(target: &OutboundTarget) -> Value {
    let mut values = match serde_json::to_value(&target.connection) {
        Ok(Value::Object(values)) => values,
        _ => serde_json::Map::new(),
    };
    let mapping: Vec<String> = target
        .mapping
        .iter()
        .map(|(attribute, field)| format!("{attribute} = {field}"))
        .collect();
    values.insert("name".to_owned(), json!(target.name.as_str()));
    values.insert("mapping".to_owned(), json!(mapping.join("\n")));
    values.insert("mode".to_owned(), json!(target.mode.as_str()));
    values.insert("deprovision".to_owned(), json!(target.deprovision.as_str()));
    Value::Object(values)
}

/// Who changes a target, for the audit log.
fn actor<'a>(session: &'a SessionUser, extensions: &Extensions) -> Actor<'a> {
    Actor {
        name: &session.user.user_name,
        origin: Origin {
            user_id: Some(session.user.user_id),
            client_addr: client_addr(extensions),
        },
    }
}

/// What the admin can put right in the form, with its status; `Err` for the error page.
fn problem(error: DomainError) -> Result<(StatusCode, String), ApiError> {
    match ApiError::from(error) {
        ApiError::Problem(code, detail) if code.status().is_client_error() => {
            Ok((code.status(), detail))
        }
        other => Err(other),
    }
}

/// Every target, and the form for a new one.
pub(crate) async fn targets(State(state): State<AppState>, Admin(session): Admin) -> Response {
    list_page(&state, &session, StatusCode::OK, None, Value::Null).await
}

async fn list_page(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    problem: Option<&str>,
    values: Value,
) -> Response {
    let targets = match state.engine.store().list_targets().await {
        Ok(targets) => targets,
        Err(error) => return refused(Some(session), error.into()),
    };
    let rows: Vec<Value> = targets
        .iter()
        .map(|target| {
            let (kind, address, _) = target.connection.credential_scope();
            json!({
                "id": target.id, "name": target.name.as_str(), "kind": kind,
                "address": address, "mode": target.mode.as_str(),
                "deprovision": target.deprovision.as_str(),
            })
        })
        .collect();
    render(
        status,
        "targets.html",
        context! {
            me => me(Some(session)), targets => rows, problem, values => every_field(values),
            editing => false,
            has_key => state.outbound_key.is_some(), fields => USER_FIELDS.join(", "),
        },
    )
}

/// Configures a new target; then its page.
pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Form(form): Form<TargetForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let configured = async {
        configure_target(
            state.engine.store().as_ref(),
            state.outbound_key.as_ref(),
            form.settings()?,
            actor(&session, &extensions),
            state.engine.clock().now(),
        )
        .await
    };
    match configured.await.map_err(problem) {
        Ok(target) => Redirect::to(&format!("/admin/targets/{}", target.id)).into_response(),
        Err(Ok((status, detail))) => {
            list_page(&state, &session, status, Some(&detail), form.values()).await
        }
        Err(Err(error)) => refused(Some(&session), error),
    }
}

/// One target: its settings to change, what it holds of cadre's, its last errors, a
/// reconcile to start, and removal.
pub(crate) async fn target(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    match state.engine.store().target(id).await {
        Ok(target) => {
            let values = values_of(&target);
            target_page(&state, &session, &target, StatusCode::OK, None, values).await
        }
        Err(error) => refused(Some(&session), error.into()),
    }
}

async fn target_page(
    state: &AppState,
    session: &SessionUser,
    target: &OutboundTarget,
    status: StatusCode,
    problem: Option<&str>,
    values: Value,
) -> Response {
    let states = match state.engine.store().target_push_states(target.id).await {
        Ok(states) => states,
        Err(error) => return refused(Some(session), error.into()),
    };
    let held = states
        .iter()
        .filter(|state| state.remote_id.is_some())
        .count();
    let mut failing: Vec<_> = states
        .iter()
        .filter(|state| state.last_error.is_some())
        .collect();
    failing.sort_by_key(|state| std::cmp::Reverse(state.failed_at));
    let errors: Vec<Value> = failing
        .iter()
        .take(SHOWN_ERRORS)
        .map(|state| {
            json!({
                "subscription_id": state.subscription_id,
                "error": state.last_error,
                "failed_at": state.failed_at.map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            })
        })
        .collect();
    render(
        status,
        "target.html",
        context! {
            me => me(Some(session)), id => target.id, name => target.name.as_str(),
            created_by => target.created_by, problem, values => every_field(values), held,
            failing => failing.len(), errors, fields => USER_FIELDS.join(", "),
        },
    )
}

/// Changes target `id`'s settings (an empty credential keeps the one it has); then its page.
pub(crate) async fn change(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path(id): Path<Uuid>,
    Form(form): Form<TargetForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let changed = async {
        change_target(
            state.engine.store().as_ref(),
            state.outbound_key.as_ref(),
            id,
            form.settings()?,
            actor(&session, &extensions),
            state.engine.clock().now(),
        )
        .await
    };
    let (status, detail) = match changed.await.map_err(problem) {
        Ok(_) => return Redirect::to(&format!("/admin/targets/{id}")).into_response(),
        Err(Ok(problem)) => problem,
        Err(Err(error)) => return refused(Some(&session), error),
    };
    match state.engine.store().target(id).await {
        Ok(target) => {
            target_page(
                &state,
                &session,
                &target,
                status,
                Some(&detail),
                form.values(),
            )
            .await
        }
        Err(error) => refused(Some(&session), error.into()),
    }
}

/// Removes target `id`; then every target.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path(id): Path<Uuid>,
    Form(form): Form<Action>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let removed = remove_target(
        state.engine.store().as_ref(),
        id,
        actor(&session, &extensions),
        state.engine.clock().now(),
    )
    .await;
    match removed {
        Ok(()) => Redirect::to("/admin/targets").into_response(),
        Err(error) => refused(Some(&session), error.into()),
    }
}

/// What the reconcile form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct ReconcileForm {
    csrf_token: String,
    /// Present for a dry run.
    #[serde(default)]
    dry_run: Option<String>,
    max_removals: u32,
}

/// Starts `reconcile_target` for target `id`; then its process.
pub(crate) async fn reconcile(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<ReconcileForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let page = json!({
        "target_id": id, "dry_run": form.dry_run.is_some(), "max_removals": form.max_removals,
    });
    match state
        .engine
        .start("reconcile_target", &[page], &session.user.user_name)
        .await
    {
        Ok(process) => Redirect::to(&format!("/admin/processes/{}", process.id)).into_response(),
        Err(error) => refused(Some(&session), error.into()),
    }
}
