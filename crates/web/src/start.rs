//! Starting workflows from the console: the workflows, and each one's form, page by page, drawn
//! by the generic renderer ([`crate::forms`]) from the schema the API would answer with.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::forms::{FormError, InputForm, ValidationError};
use cadre_domain::{Origin, Target};
use cadre_server::{ApiError, AppState, ErrorCode, client_addr};
use minijinja::context;
use serde_json::{Map, Value};

use crate::admin::admin;
use crate::forms::{fields, page_from};
use crate::page::{forged, me, refused, render, session_form_ok};

/// The workflows a console can start: those that create a subscription, and tasks. The others
/// start from a subscription's page.
pub(crate) async fn workflows(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let mut rows: Vec<minijinja::Value> = state
        .engine
        .registry()
        .iter()
        .filter(|workflow| matches!(workflow.target, Target::Create | Target::System))
        .map(|workflow| {
            context! {
                name => workflow.name,
                description => workflow.description,
                target => workflow.target.to_string(),
            }
        })
        .collect();
    rows.sort_by_key(|row| {
        row.get_attr("name")
            .map(|name| name.to_string())
            .unwrap_or_default()
    });
    render(
        StatusCode::OK,
        "workflows.html",
        context! { me => me(Some(&session)), workflows => rows },
    )
}

/// The schema of the page after `pages` of `workflow`'s form, or `None` when `pages` answer
/// every page.
async fn next_page(
    state: &AppState,
    form: &dyn InputForm,
    pages: &[Value],
) -> Result<Option<Value>, ApiError> {
    match form
        .submit(state.engine.store().as_ref(), &Map::new(), pages)
        .await
    {
        Ok(_) => Ok(None),
        Err(FormError::NotComplete(body)) => Ok(Some(body.form)),
        Err(error) => Err(cadre_engine::EngineError::from(error).into()),
    }
}

/// A page of a workflow's form to draw.
struct Drawn<'a> {
    /// The workflow.
    workflow: &'a str,
    /// The page's schema.
    schema: &'a Value,
    /// The pages answered before it.
    pages: &'a [Value],
    /// What its fields hold.
    answers: &'a Map<String, Value>,
    /// What is wrong, at the fields their `loc` names.
    errors: &'a [ValidationError],
    /// What is said above the form.
    problem: Option<&'a str>,
}

/// Draws a page of a workflow's form, answered with `status`.
fn form_page(session: &SessionUser, status: StatusCode, drawn: Drawn<'_>) -> Response {
    let Drawn {
        workflow,
        schema,
        pages,
        answers,
        errors,
        problem,
    } = drawn;
    // Errors of fields this page does not have are said above it.
    let names: Vec<&String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().collect())
        .unwrap_or_default();
    let general: Vec<String> = errors
        .iter()
        .filter(|error| {
            !error
                .loc
                .first()
                .and_then(Value::as_str)
                .is_some_and(|field| names.iter().any(|name| name.as_str() == field))
        })
        .map(|error| error.msg.clone())
        .collect();
    render(
        status,
        "form.html",
        context! {
            me => me(Some(session)),
            workflow,
            title => schema.get("title").and_then(Value::as_str).filter(|title| *title != "unknown"),
            number => pages.len() + 1,
            pages => Value::Array(pages.to_vec()).to_string(),
            fields => fields(schema, answers, errors),
            problem,
            general,
        },
    )
}

/// The first page of `name`'s form, filled from the query string (a subscription's page links
/// here with its `subscription_id`). Looking starts nothing.
pub(crate) async fn first(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(prefill): Query<BTreeMap<String, String>>,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(workflow) = state.engine.registry().get(&name).cloned() else {
        return refused(
            Some(&session),
            ApiError::new(ErrorCode::NotFound, "No such workflow."),
        );
    };
    let schema = match next_page(&state, workflow.initial_form.as_ref(), &[]).await {
        Ok(schema) => schema.unwrap_or_else(|| Value::Object(Map::new())),
        Err(error) => return refused(Some(&session), error),
    };
    let answers: Map<String, Value> = prefill
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    form_page(
        &session,
        StatusCode::OK,
        Drawn {
            workflow: &name,
            schema: &schema,
            pages: &[],
            answers: &answers,
            errors: &[],
            problem: None,
        },
    )
}

/// A page of `name`'s form posted: the next page, the same page with what is wrong at its
/// fields, or, once every page is answered, the process started and its page.
pub(crate) async fn next(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(name): Path<String>,
    Form(posted): Form<Vec<(String, String)>>,
) -> Response {
    let session = match admin(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let mut fields_posted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in posted {
        fields_posted.entry(key).or_default().push(value);
    }
    let single = |key: &str| {
        fields_posted
            .get(key)
            .and_then(|values| values.first())
            .cloned()
            .unwrap_or_default()
    };
    if !session_form_ok(&session, &single("csrf_token")) {
        return forged(Some(&session));
    }
    let Some(workflow) = state.engine.registry().get(&name).cloned() else {
        return refused(
            Some(&session),
            ApiError::new(ErrorCode::NotFound, "No such workflow."),
        );
    };
    let Ok(Value::Array(mut pages)) = serde_json::from_str::<Value>(&single("__pages")) else {
        return refused(
            Some(&session),
            ApiError::new(
                ErrorCode::InvalidArgument,
                "The form's earlier pages are missing.",
            ),
        );
    };
    let form = workflow.initial_form.as_ref();
    let schema = match next_page(&state, form, &pages).await {
        Ok(schema) => schema.unwrap_or_else(|| Value::Object(Map::new())),
        Err(error) => return refused(Some(&session), error),
    };
    let page = page_from(&schema, &fields_posted);
    pages.push(page);
    let engine = state.engine.with_origin(Origin {
        user_id: Some(session.user.user_id),
        client_addr: client_addr(&extensions),
    });
    let error = match engine.start(&name, &pages, &session.user.user_name).await {
        Ok(process) => {
            return Redirect::to(&format!("/admin/processes/{}", process.id)).into_response();
        }
        Err(error) => ApiError::from(error),
    };
    match error {
        ApiError::FormNotComplete(body) => form_page(
            &session,
            StatusCode::OK,
            Drawn {
                workflow: &name,
                schema: &body.form,
                pages: &pages,
                answers: &Map::new(),
                errors: &[],
                problem: None,
            },
        ),
        ApiError::FormInvalid(body) => {
            // The page at fault: this one, or (the answers depend on each other) an earlier one.
            let at = body.page.min(pages.len() - 1);
            pages.truncate(at + 1);
            let answers = match pages.pop() {
                Some(Value::Object(answers)) => answers,
                _ => Map::new(),
            };
            let schema = match next_page(&state, form, &pages).await {
                Ok(schema) => schema.unwrap_or_else(|| Value::Object(Map::new())),
                Err(error) => return refused(Some(&session), error),
            };
            form_page(
                &session,
                StatusCode::BAD_REQUEST,
                Drawn {
                    workflow: &name,
                    schema: &schema,
                    pages: &pages,
                    answers: &answers,
                    errors: &body.validation_errors,
                    problem: Some("Some answers need fixing."),
                },
            )
        }
        ApiError::Problem(code, detail) if !code.status().is_server_error() => {
            let answers = match pages.pop() {
                Some(Value::Object(answers)) => answers,
                _ => Map::new(),
            };
            form_page(
                &session,
                code.status(),
                Drawn {
                    workflow: &name,
                    schema: &schema,
                    pages: &pages,
                    answers: &answers,
                    errors: &[],
                    problem: Some(&detail),
                },
            )
        }
        other => refused(Some(&session), other),
    }
}
