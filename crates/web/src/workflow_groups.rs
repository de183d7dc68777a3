//! Workflow groups (teams with files): the groups a person belongs to (an admin: all of them),
//! a new group, a group's name and members, and its files uploaded, downloaded and deleted.
//! Every action goes through `cadre_groups`, which decides per caller and per group: members
//! and admins act on a group, only its owner or an admin deletes it.

use std::collections::BTreeMap;
use std::io;

use axum::extract::{Form, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::Target;
use cadre_domain::models::DomainModel;
use cadre_groups::{Actor, GroupChanges, NewGroup};
use cadre_products::models::User;
use cadre_server::api::groups::file_response;
use cadre_server::multipart::Multipart;
use cadre_server::{ApiError, AppState, ErrorCode};
use futures_util::TryStreamExt;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use crate::admin::at;
use crate::page::{Person, forged, me, refused, render, session_form_ok};

/// Who acts on groups: the signed-in person, with their role.
fn actor(session: &SessionUser) -> Actor {
    Actor {
        user: Some(session.user.user_id),
        admin: session.user.role() == cadre_domain::Role::Admin,
    }
}

/// The user names of User subscriptions `ids`, by id (an id that is no user is left out).
async fn user_names(state: &AppState, ids: &[Uuid]) -> Result<BTreeMap<Uuid, String>, ApiError> {
    let records = state.engine.store().load_subscriptions(ids).await?;
    Ok(records
        .into_iter()
        .filter_map(|record| User::from_record(record).ok())
        .map(|user| (user.subscription.id, user.user.username.as_str().to_owned()))
        .collect())
}

/// The User subscriptions named by `text` (user names, separated by commas, spaces or lines),
/// or the names no user has.
async fn user_ids(state: &AppState, text: &str) -> Result<Result<Vec<Uuid>, String>, ApiError> {
    let names: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    let found = state
        .engine
        .store()
        .find_by_unique_values("username", &names)
        .await?;
    let unknown: Vec<&str> = names
        .iter()
        .filter(|name| !found.iter().any(|(value, _)| value == *name))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(Ok(found.into_iter().map(|(_, id)| id).collect()))
    } else {
        Ok(Err(format!("No user is named {}.", unknown.join(", "))))
    }
}

/// The workflows a group can belong to: those that create something, and tasks.
fn group_workflows(state: &AppState) -> Vec<String> {
    let mut names: Vec<String> = state
        .engine
        .registry()
        .iter()
        .filter(|workflow| matches!(workflow.target, Target::Create | Target::System))
        .map(|workflow| workflow.name.clone())
        .collect();
    names.sort();
    names
}

/// The groups the signed-in person belongs to (an admin: every group), and a form for a new one.
pub(crate) async fn groups(State(state): State<AppState>, Person(session): Person) -> Response {
    list(&state, &session, StatusCode::OK, None, &NewForm::default()).await
}

async fn list(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    problem: Option<&str>,
    form: &NewForm,
) -> Response {
    let groups = match state.groups.list(&actor(session), None, None).await {
        Ok(groups) => groups,
        Err(error) => return refused(Some(session), error.into()),
    };
    let owners: Vec<Uuid> = groups.iter().map(|group| group.owner).collect();
    let names = match user_names(state, &owners).await {
        Ok(names) => names,
        Err(error) => return refused(Some(session), error),
    };
    let rows: Vec<minijinja::Value> = groups
        .iter()
        .map(|group| {
            context! {
                id => group.id.to_string(),
                name => group.name.to_string(),
                workflow => group.workflow,
                owner => names.get(&group.owner),
                members => group.members.len(),
            }
        })
        .collect();
    render(
        status,
        "workflow_groups.html",
        context! {
            me => me(Some(session)),
            rows,
            workflows => group_workflows(state),
            problem,
            form => context! { workflow => form.workflow, name => form.name, members => form.members },
        },
    )
}

/// What the new-group form sends.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    name: String,
    /// Members besides the creator, by user name.
    #[serde(default)]
    members: String,
}

/// Creates a group owned by the signed-in person; then its page, or the form again with what
/// is wrong.
pub(crate) async fn create(
    State(state): State<AppState>,
    Person(session): Person,
    Form(form): Form<NewForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let members = match user_ids(&state, &form.members).await {
        Ok(Ok(members)) => members,
        Ok(Err(unknown)) => {
            return list(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&unknown),
                &form,
            )
            .await;
        }
        Err(error) => return refused(Some(&session), error),
    };
    let new = NewGroup {
        workflow: form.workflow.clone(),
        name: form.name.clone(),
        members,
        ..NewGroup::default()
    };
    match state.groups.create(&actor(&session), new).await {
        Ok(group) => Redirect::to(&format!("/workflow-groups/{}", group.id)).into_response(),
        Err(error) => match ApiError::from(error) {
            ApiError::Problem(code, detail) if !code.status().is_server_error() => {
                list(&state, &session, code.status(), Some(&detail), &form).await
            }
            other => refused(Some(&session), other),
        },
    }
}

/// A group: its name and members (to change), its files (to download, delete, upload).
pub(crate) async fn group(
    State(state): State<AppState>,
    Person(session): Person,
    Path(id): Path<String>,
) -> Response {
    group_page(&state, &session, &id, StatusCode::OK, None).await
}

async fn group_page(
    state: &AppState,
    session: &SessionUser,
    id: &str,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let actor = actor(session);
    let group = match state.groups.get(&actor, id).await {
        Ok(group) => group,
        Err(error) => return refused(Some(session), error.into()),
    };
    let files = match state.groups.files(&actor, id).await {
        Ok(files) => files,
        Err(error) => return refused(Some(session), error.into()),
    };
    let members: Vec<Uuid> = group.members.iter().copied().collect();
    let names = match user_names(state, &members).await {
        Ok(names) => names,
        Err(error) => return refused(Some(session), error),
    };
    let member_names: Vec<&String> = names.values().collect();
    render(
        status,
        "workflow_group.html",
        context! {
            me => me(Some(session)),
            id => group.id.to_string(),
            name => group.name.to_string(),
            workflow => group.workflow,
            owner => names.get(&group.owner),
            members => member_names,
            members_text => names
                .iter()
                .filter(|(id, _)| **id != group.owner)
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created => at(group.created_at),
            may_delete => actor.admin || actor.user == Some(group.owner),
            files => files.iter().map(|file| context! {
                id => file.id.to_string(),
                name => file.name.to_string(),
                size => file.size,
                mime_type => file.mime_type,
                uploaded => at(file.created_at),
            }).collect::<Vec<_>>(),
            problem,
        },
    )
}

/// What the group form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct ChangeForm {
    csrf_token: String,
    name: String,
    /// Members besides the owner, by user name.
    #[serde(default)]
    members: String,
}

/// Renames a group and sets its members (the owner always stays one).
pub(crate) async fn change(
    State(state): State<AppState>,
    Person(session): Person,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let actor = actor(&session);
    let owner = match state.groups.get(&actor, &id).await {
        Ok(group) => group.owner,
        Err(error) => return refused(Some(&session), error.into()),
    };
    let mut members = match user_ids(&state, &form.members).await {
        Ok(Ok(members)) => members,
        Ok(Err(unknown)) => {
            return group_page(
                &state,
                &session,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&unknown),
            )
            .await;
        }
        Err(error) => return refused(Some(&session), error),
    };
    members.push(owner);
    let changes = GroupChanges {
        name: Some(form.name),
        members: Some(members),
    };
    done(
        &state,
        &session,
        &id,
        state.groups.update(&actor, &id, changes).await.map(drop),
    )
    .await
}

/// The group's page after an action: the page itself, or with the refusal said on it.
async fn done(
    state: &AppState,
    session: &SessionUser,
    id: &str,
    result: Result<(), cadre_groups::GroupError>,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/workflow-groups/{id}")).into_response(),
        Err(error) => match ApiError::from(error) {
            ApiError::Problem(code, detail) if !code.status().is_server_error() => {
                group_page(state, session, id, code.status(), Some(&detail)).await
            }
            other => refused(Some(session), other),
        },
    }
}

/// What a button's form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct Button {
    csrf_token: String,
}

/// Deletes a group with its files (its owner or an admin); then the list.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Person(session): Person,
    Path(id): Path<String>,
    Form(form): Form<Button>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    match state.groups.delete(&actor(&session), &id).await {
        Ok(()) => Redirect::to("/workflow-groups").into_response(),
        Err(error) => done(&state, &session, &id, Err(error)).await,
    }
}

/// Uploads a file to a group: a multipart form whose CSRF token comes before the file, which
/// is streamed to storage (never held whole in memory).
pub(crate) async fn upload(
    State(state): State<AppState>,
    Person(session): Person,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let invalid = |detail: &str| ApiError::new(ErrorCode::InvalidUpload, detail);
    let Some(boundary) = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
    else {
        return refused(
            Some(&session),
            invalid("Send the form as multipart/form-data."),
        );
    };
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["csrf_token", "file"])
        .size_limit(multer::SizeLimit::new().for_field("csrf_token", 1024));
    let mut multipart = Multipart::new(request.into_body(), boundary, constraints);
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf_token") => {
            field.text().await.unwrap_or_default()
        }
        _ => String::new(),
    };
    if !session_form_ok(&session, &token) {
        multipart.linger();
        return forged(Some(&session));
    }
    let field = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("file") => field,
        Ok(_) => {
            multipart.linger();
            return refused(Some(&session), invalid("Choose a file to upload."));
        }
        Err(error) => {
            multipart.linger();
            return refused(
                Some(&session),
                invalid(&format!("The form broke off: {error}")),
            );
        }
    };
    let name = field.file_name().unwrap_or_default().to_owned();
    let content = Box::pin(field.map_err(io::Error::other));
    let uploaded = state
        .groups
        .upload(&actor(&session), &id, &name, content)
        .await
        .map(drop);
    multipart.finish().await;
    done(&state, &session, &id, uploaded).await
}

/// Downloads a file of a group, as the API does.
pub(crate) async fn download(
    State(state): State<AppState>,
    Person(session): Person,
    Path((id, file_id)): Path<(String, Uuid)>,
) -> Response {
    match state.groups.read_file(&actor(&session), &id, file_id).await {
        Ok((file, content)) => file_response(&file, content),
        Err(error) => refused(Some(&session), error.into()),
    }
}

/// Deletes a file of a group; then the group's page.
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    Person(session): Person,
    Path((id, file_id)): Path<(String, Uuid)>,
    Form(form): Form<Button>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let deleted = state
        .groups
        .delete_file(&actor(&session), &id, file_id)
        .await;
    done(&state, &session, &id, deleted).await
}
