//! Pages for people beyond their account: signing up, and the discoverable groups they join
//! and leave.

use axum::extract::{Form, Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use cadre_domain::models::DomainModel;
use cadre_products::models::User;
use cadre_registration::Joined;
use cadre_server::{ApiError, AppState, ErrorCode};
use minijinja::context;
use serde::Deserialize;

use crate::page::{
    Person, anonymous_form_ok, forged, form_token, me, message, refused, render, session_form_ok,
    with_cookie,
};

/// The sign-up form, while registration is on.
pub(crate) async fn sign_up_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.registration.settings().enabled {
        return registration_off();
    }
    sign_up_form(&headers, StatusCode::OK, "", "", None)
}

fn registration_off() -> Response {
    refused(
        None,
        ApiError::new(ErrorCode::NotFound, "Registration is not open here."),
    )
}

fn sign_up_form(
    headers: &HeaderMap,
    status: StatusCode,
    user_name: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    match form_token(headers) {
        Ok((csrf_token, cookie)) => with_cookie(
            render(
                status,
                "sign_up.html",
                context! { me => me(None), csrf_token, user_name, email, error },
            ),
            cookie,
        ),
        Err(error) => refused(None, error),
    }
}

/// What the sign-up form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct SignUpForm {
    user_name: String,
    email: String,
    password: String,
    csrf_token: String,
}

/// Registers: a confirmation link goes to the address. Says the same whether or not the name
/// or address is taken (as the API does); a field that is unusable as such is told.
pub(crate) async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<SignUpForm>,
) -> Response {
    if !state.registration.settings().enabled {
        return registration_off();
    }
    if !anonymous_form_ok(&headers, &form.csrf_token) {
        return forged(None);
    }
    if let Err(error) = state.limiter.check(&extensions) {
        return refused(None, error);
    }
    match state
        .registration
        .submit(&form.user_name, &form.email, &form.password)
        .await
    {
        Ok(()) => message(
            StatusCode::ACCEPTED,
            None,
            "Check your mail",
            "A mail is on its way to your address: open its link to confirm your registration.",
        ),
        Err(cadre_registration::RegistrationError::Invalid { field, reason }) => sign_up_form(
            &headers,
            StatusCode::BAD_REQUEST,
            &form.user_name,
            &form.email,
            Some(&format!("The {} {reason}.", field.replace('_', " "))),
        ),
        Err(error) => refused(None, error.into()),
    }
}

/// The discoverable groups: each with its terms, and whether the person belongs to it.
pub(crate) async fn groups(State(state): State<AppState>, Person(session): Person) -> Response {
    let groups = match state.registration.discoverable_groups().await {
        Ok(groups) => groups,
        Err(error) => return refused(Some(&session), error.into()),
    };
    let member_of: Vec<String> = match state
        .engine
        .store()
        .load_subscription(session.user.user_id)
        .await
        .map_err(ApiError::from)
        .and_then(|record| User::from_record(record).map_err(ApiError::from))
    {
        Ok(user) => {
            let owners: Vec<uuid::Uuid> = user
                .user
                .groups
                .iter()
                .map(|group| group.owner_subscription_id)
                .collect();
            match state.engine.store().load_subscriptions(&owners).await {
                Ok(records) => records
                    .into_iter()
                    .filter_map(|record| {
                        cadre_products::models::UserGroup::from_record(record).ok()
                    })
                    .map(|group| group.user_group.user_group_id.to_string())
                    .collect(),
                Err(error) => return refused(Some(&session), error.into()),
            }
        }
        Err(error) => return refused(Some(&session), error),
    };
    let rows: Vec<minijinja::Value> = groups
        .iter()
        .map(|group| {
            context! {
                id => group.user_group_id,
                name => group.name,
                terms => group.terms,
                member => member_of.contains(&group.user_group_id),
            }
        })
        .collect();
    render(
        StatusCode::OK,
        "groups.html",
        context! { me => me(Some(&session)), groups => rows },
    )
}

/// What the join and leave buttons send.
#[derive(Debug, Deserialize)]
pub(crate) struct Membership {
    csrf_token: String,
}

/// Joins a discoverable group (`join`) or leaves it (`leave`): at once, or, for a group with
/// terms, once the person accepts them from the mailed link.
pub(crate) async fn membership(
    State(state): State<AppState>,
    Person(session): Person,
    Path((group, change)): Path<(String, String)>,
    Form(form): Form<Membership>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let user = Some(session.user.user_id);
    let said = match change.as_str() {
        "join" => state.registration.join(user, &group).await.map(|joined| match joined {
            Joined::Member(_) => ("You are joining", "Your membership is being added."),
            Joined::TermsSent => (
                "Accept the terms",
                "This group has terms: a mail with them and a link to accept them is on its way to you.",
            ),
        }),
        "leave" => state
            .registration
            .leave(user, &group)
            .await
            .map(|_| ("You are leaving", "Your membership is being removed.")),
        _ => return refused(Some(&session), ApiError::new(ErrorCode::NotFound, "No such page.")),
    };
    match said {
        Ok((title, text)) => message(StatusCode::ACCEPTED, Some(&session), title, text),
        Err(error) => refused(Some(&session), error.into()),
    }
}
