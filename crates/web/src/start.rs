//! Workflows from the console: the workflows, each one's form, page by page (back and next),
//! drawn by the generic renderer ([`crate::forms`]) from the schema the API would answer with;
//! and a suspended process resumed with the form it waits for, the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::forms::{FormError, InputForm, ValidationError};
use cadre_domain::{Origin, Process, State as ProcessState, Target};
use cadre_engine::{Engine, EngineError};
use cadre_server::{ApiError, AppState, ErrorCode, client_addr};
use minijinja::context;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::forms::{fields, page_from};
use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// The workflows a console can start: those that create a subscription, and tasks. The others
/// start from a subscription's page.
pub(crate) async fn workflows(State(state): State<AppState>, Admin(session): Admin) -> Response {
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

/// What a form's pages are for: starting a workflow, or resuming a suspended process.
enum Goal {
    /// Starts the workflow `name`, whose initial form this is.
    Start {
        name: String,
        form: Arc<dyn InputForm>,
    },
    /// Resumes process `id` of `workflow`, which waits for this form; its answers are checked
    /// against the process's `state`.
    Resume {
        id: Uuid,
        workflow: String,
        form: Arc<dyn InputForm>,
        state: ProcessState,
    },
}

impl Goal {
    /// The start of the workflow `name`.
    fn start(state: &AppState, name: &str) -> Result<Goal, ApiError> {
        let workflow = state
            .engine
            .registry()
            .get(name)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "No such workflow."))?;
        Ok(Goal::Start {
            name: name.to_owned(),
            form: Arc::clone(&workflow.initial_form),
        })
    }

    /// The resumption of suspended process `id`.
    async fn resume(state: &AppState, id: Uuid) -> Result<Goal, ApiError> {
        let (form, process_state) = state.engine.awaited_form(id).await?;
        let workflow = state.engine.store().process(id).await?.workflow_name;
        Ok(Goal::Resume {
            id,
            workflow,
            form,
            state: process_state,
        })
    }

    /// Where the form's pages are posted.
    fn action(&self) -> String {
        match self {
            Goal::Start { name, .. } => format!("/admin/workflows/{name}"),
            Goal::Resume { id, .. } => format!("/admin/processes/{id}/resume"),
        }
    }

    /// The page's heading.
    fn heading(&self) -> String {
        match self {
            Goal::Start { name, .. } => name.clone(),
            Goal::Resume { workflow, .. } => format!("Resume {workflow}"),
        }
    }

    /// The schema of the page after `pages`, or `None` when `pages` answer every page.
    async fn next_page(
        &self,
        state: &AppState,
        pages: &[Value],
    ) -> Result<Option<Value>, ApiError> {
        let empty = Map::new();
        let (form, process_state) = match self {
            Goal::Start { form, .. } => (form, &empty),
            Goal::Resume { form, state, .. } => (form, state),
        };
        match form
            .submit(state.engine.store().as_ref(), process_state, pages)
            .await
        {
            Ok(_) => Ok(None),
            Err(FormError::NotComplete(body)) => Ok(Some(body.form)),
            Err(error) => Err(EngineError::from(error).into()),
        }
    }

    /// Starts or resumes with every page answered.
    async fn finish(
        &self,
        engine: &Engine,
        pages: &[Value],
        user: &str,
    ) -> Result<Process, EngineError> {
        match self {
            Goal::Start { name, .. } => engine.start(name, pages, user).await,
            Goal::Resume { id, .. } => engine.resume(*id, pages, user).await,
        }
    }
}

/// A page of a form to draw.
struct Drawn<'a> {
    /// What the form is for.
    goal: &'a Goal,
    /// The page's schema, if known; else the form is asked for the page after `pages`.
    schema: Option<&'a Value>,
    /// The pages answered before it.
    pages: &'a [Value],
    /// What its fields hold.
    answers: &'a Map<String, Value>,
    /// What is wrong, at the fields their `loc` names.
    errors: &'a [ValidationError],
    /// What is said above the form.
    problem: Option<&'a str>,
}

/// Draws a page of a form, answered with `status`.
async fn draw(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    drawn: Drawn<'_>,
) -> Response {
    let Drawn {
        goal,
        schema,
        pages,
        answers,
        errors,
        problem,
    } = drawn;
    let asked;
    let schema = match schema {
        Some(schema) => schema,
        None => match goal.next_page(state, pages).await {
            Ok(schema) => {
                asked = schema.unwrap_or_else(|| Value::Object(Map::new()));
                &asked
            }
            Err(error) => return refused(Some(session), error),
        },
    };
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
            heading => goal.heading(),
            action => goal.action(),
            title => schema.get("title").and_then(Value::as_str).filter(|title| *title != "unknown"),
            number => pages.len() + 1,
            pages => Value::Array(pages.to_vec()).to_string(),
            fields => fields(schema, answers, errors),
            problem,
            general,
        },
    )
}

/// The first page of `goal`'s form, its fields holding `answers`.
async fn first_page(
    state: &AppState,
    session: &SessionUser,
    goal: &Goal,
    answers: &Map<String, Value>,
) -> Response {
    draw(
        state,
        session,
        StatusCode::OK,
        Drawn {
            goal,
            schema: None,
            pages: &[],
            answers,
            errors: &[],
            problem: None,
        },
    )
    .await
}

/// The first page of `name`'s form, filled from the query string (a subscription's page links
/// here with its `subscription_id`). Looking starts nothing.
pub(crate) async fn first(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(name): Path<String>,
    Query(prefill): Query<BTreeMap<String, String>>,
) -> Response {
    let goal = match Goal::start(&state, &name) {
        Ok(goal) => goal,
        Err(error) => return refused(Some(&session), error),
    };
    let answers: Map<String, Value> = prefill
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    first_page(&state, &session, &goal, &answers).await
}

/// The first page of the form suspended process `id` waits for. Looking resumes nothing.
pub(crate) async fn resume_first(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    match Goal::resume(&state, id).await {
        Ok(goal) => first_page(&state, &session, &goal, &Map::new()).await,
        Err(error) => refused(Some(&session), error),
    }
}

/// What a page of a form posts: its fields, each with every value sent for it.
type Posted = BTreeMap<String, Vec<String>>;

fn posted(pairs: Vec<(String, String)>) -> Posted {
    let mut fields: Posted = BTreeMap::new();
    for (key, value) in pairs {
        fields.entry(key).or_default().push(value);
    }
    fields
}

fn single(posted: &Posted, key: &str) -> String {
    posted
        .get(key)
        .and_then(|values| values.first())
        .cloned()
        .unwrap_or_default()
}

/// A page of `name`'s form posted: the next page, the previous one (Back), the same page with
/// what is wrong at its fields, or, once every page is answered, the process started and its
/// page.
pub(crate) async fn next(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = posted(pairs);
    if !session_form_ok(&session, &single(&posted, "csrf_token")) {
        return forged(Some(&session));
    }
    match Goal::start(&state, &name) {
        Ok(goal) => advance(&state, &session, &extensions, &goal, &posted).await,
        Err(error) => refused(Some(&session), error),
    }
}

/// A page of the form suspended process `id` waits for posted, as [`next`] does for a start;
/// once every page is answered, the process resumes and its page follows.
pub(crate) async fn resume_next(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path(id): Path<Uuid>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = posted(pairs);
    if !session_form_ok(&session, &single(&posted, "csrf_token")) {
        return forged(Some(&session));
    }
    match Goal::resume(&state, id).await {
        Ok(goal) => advance(&state, &session, &extensions, &goal, &posted).await,
        Err(error) => refused(Some(&session), error),
    }
}

/// The answer to a posted page of `goal`'s form.
async fn advance(
    state: &AppState,
    session: &SessionUser,
    extensions: &Extensions,
    goal: &Goal,
    posted: &Posted,
) -> Response {
    let Ok(Value::Array(mut pages)) = serde_json::from_str::<Value>(&single(posted, "__pages"))
    else {
        return refused(
            Some(session),
            ApiError::new(
                ErrorCode::InvalidArgument,
                "The form's earlier pages are missing.",
            ),
        );
    };
    // Back: the previous page again, with what it was answered.
    if posted.contains_key("__back") {
        let answers = match pages.pop() {
            Some(Value::Object(answers)) => answers,
            _ => Map::new(),
        };
        return draw(
            state,
            session,
            StatusCode::OK,
            Drawn {
                goal,
                schema: None,
                pages: &pages,
                answers: &answers,
                errors: &[],
                problem: None,
            },
        )
        .await;
    }
    let schema = match goal.next_page(state, &pages).await {
        Ok(schema) => schema.unwrap_or_else(|| Value::Object(Map::new())),
        Err(error) => return refused(Some(session), error),
    };
    pages.push(page_from(&schema, posted));
    let engine = state.engine.with_origin(Origin {
        user_id: Some(session.user.user_id),
        client_addr: client_addr(extensions),
    });
    let error = match goal.finish(&engine, &pages, &session.user.user_name).await {
        Ok(process) => {
            return Redirect::to(&format!("/admin/processes/{}", process.id)).into_response();
        }
        Err(error) => ApiError::from(error),
    };
    match error {
        ApiError::FormNotComplete(body) => {
            draw(
                state,
                session,
                StatusCode::OK,
                Drawn {
                    goal,
                    schema: Some(&body.form),
                    pages: &pages,
                    answers: &Map::new(),
                    errors: &[],
                    problem: None,
                },
            )
            .await
        }
        ApiError::FormInvalid(body) => {
            // The page at fault: this one, or (the answers depend on each other) an earlier one.
            pages.truncate(body.page.min(pages.len() - 1) + 1);
            let answers = match pages.pop() {
                Some(Value::Object(answers)) => answers,
                _ => Map::new(),
            };
            draw(
                state,
                session,
                StatusCode::BAD_REQUEST,
                Drawn {
                    goal,
                    schema: None,
                    pages: &pages,
                    answers: &answers,
                    errors: &body.validation_errors,
                    problem: Some("Some answers need fixing."),
                },
            )
            .await
        }
        ApiError::Problem(code, detail) if !code.status().is_server_error() => {
            let answers = match pages.pop() {
                Some(Value::Object(answers)) => answers,
                _ => Map::new(),
            };
            draw(
                state,
                session,
                code.status(),
                Drawn {
                    goal,
                    schema: None,
                    pages: &pages,
                    answers: &answers,
                    errors: &[],
                    problem: Some(&detail),
                },
            )
            .await
        }
        other => refused(Some(session), other),
    }
}
