//! The admin console's pages: the dashboard, subscriptions, processes with their actions, and
//! the audit log.

use std::collections::BTreeMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::{
    AuditAction, Lifecycle, Origin, ProcessStatus, ProductType, Role, SubscriptionQuery,
};
use cadre_server::api;
use cadre_server::api::audit::AuditFilter;
use cadre_server::api::processes::{ProcessFilter, ProcessSchema};
use cadre_server::api::subscriptions::SubscriptionFilter;
use cadre_server::{ApiError, AppState, client_addr};
use minijinja::context;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use uuid::Uuid;

use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// The dashboard: subscriptions by product type and lifecycle, the processes not done by
/// status, the registrations awaiting an admin's decision, and the outbox's backlog. Admins only; anyone else signed in gets a 403 page.
pub(crate) async fn dashboard(State(state): State<AppState>, Admin(session): Admin) -> Response {
    let store = state.engine.store();
    let mut rows = Vec::new();
    for product_type in [ProductType::user(), ProductType::user_group()] {
        let mut counts = Vec::new();
        for lifecycle in Lifecycle::ALL {
            let query = SubscriptionQuery {
                product_type: Some(product_type.clone()),
                lifecycle: Some(lifecycle),
                limit: Some(0),
                ..SubscriptionQuery::default()
            };
            match store.list_subscriptions(&query).await {
                Ok(page) => counts.push(page.total),
                Err(error) => return refused(Some(&session), error.into()),
            }
        }
        rows.push(context! { product_type => product_type.as_str(), counts });
    }
    // The processes that are not done: running, waiting for a retry, for input, or failed.
    let mut processes = Vec::new();
    for status in ProcessStatus::ALL
        .iter()
        .filter(|status| !status.is_final())
    {
        let filter = ProcessFilter {
            status: Some(status.as_str().to_owned()),
            limit: Some(1),
            ..ProcessFilter::default()
        };
        match api::processes::list(&state.engine, filter).await {
            Ok(page) => processes.push(context! { status => status.as_str(), count => page.total }),
            Err(error) => return refused(Some(&session), error),
        }
    }
    let outbox = match store.outbox_backlog().await {
        Ok(backlog) => backlog,
        Err(error) => return refused(Some(&session), error.into()),
    };
    let awaiting = match state.registration.list_pending().await {
        Ok(pending) => pending
            .iter()
            .filter(|registration| registration.status == "confirmed")
            .count(),
        Err(error) => return refused(Some(&session), error.into()),
    };
    let lifecycles: Vec<&str> = Lifecycle::ALL
        .iter()
        .map(|lifecycle| lifecycle.as_str())
        .collect();
    render(
        StatusCode::OK,
        "dashboard.html",
        context! {
            me => me(Some(&session)),
            lifecycles,
            rows,
            processes,
            awaiting,
            outbox_waiting => outbox.waiting,
            outbox_failed => outbox.failed,
        },
    )
}

/// A page of at most this many rows.
const PAGE_ROWS: u64 = 25;

/// The subscriptions: searched by text, filtered by product type and lifecycle, sorted, paged.
pub(crate) async fn subscriptions(
    State(state): State<AppState>,
    Admin(session): Admin,
    Query(mut filter): Query<SubscriptionFilter>,
    Query(raw): Query<BTreeMap<String, String>>,
) -> Response {
    filter.limit = Some(PAGE_ROWS);
    let offset = filter.offset.unwrap_or(0);
    // The sort as asked for (the filter has it parsed), kept on the page and its links.
    let sort = raw
        .get("sort")
        .cloned()
        .unwrap_or_else(|| "created".to_owned());
    let order = raw
        .get("order")
        .cloned()
        .unwrap_or_else(|| "asc".to_owned());
    let page = match api::subscriptions::list(&state.engine, &filter, None).await {
        Ok(page) => page,
        Err(error) => return refused(Some(&session), error),
    };
    // The same filters on the neighbouring pages.
    let link = |offset: u64| {
        let mut query = vec![format!("offset={offset}")];
        for (name, value) in [
            ("query", filter.query.as_deref()),
            ("product_type", filter.product_type.as_deref()),
            ("status", filter.status.as_deref()),
            ("sort", Some(sort.as_str())),
            ("order", Some(order.as_str())),
        ] {
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                query.push(format!(
                    "{name}={}",
                    utf8_percent_encode(value, NON_ALPHANUMERIC)
                ));
            }
        }
        format!("/admin/subscriptions?{}", query.join("&"))
    };
    let previous = (offset > 0).then(|| link(offset.saturating_sub(PAGE_ROWS)));
    let next = (offset + PAGE_ROWS < page.total).then(|| link(offset + PAGE_ROWS));
    let rows: Vec<minijinja::Value> = page
        .items
        .iter()
        .map(|item| {
            context! {
                id => item.subscription_id.to_string(),
                description => item.description,
                product => item.product_name,
                status => item.status,
                insync => item.insync,
            }
        })
        .collect();
    let lifecycles: Vec<&str> = Lifecycle::ALL
        .iter()
        .map(|lifecycle| lifecycle.as_str())
        .collect();
    render(
        StatusCode::OK,
        "subscriptions.html",
        context! {
            me => me(Some(&session)),
            rows,
            total => page.total,
            first => if page.total == 0 { 0 } else { offset + 1 },
            last => offset + page.items.len() as u64,
            previous,
            next,
            query => filter.query.clone().unwrap_or_default(),
            product_type => filter.product_type.clone().unwrap_or_default(),
            status => filter.status.clone().unwrap_or_default(),
            lifecycles,
            sort,
            order,
        },
    )
}

/// A node of a JSON value drawn as a tree: a key, and either a scalar or children.
fn tree(value: &serde_json::Value) -> Vec<minijinja::Value> {
    let node = |key: String, value: &serde_json::Value| match value {
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
            context! { key, children => tree(value) }
        }
        serde_json::Value::String(text) => context! { key, text },
        serde_json::Value::Null => context! { key, text => "—" },
        other => context! { key, text => other.to_string() },
    };
    match value {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| node(key.clone(), value))
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, value)| node(format!("{}", index + 1), value))
            .collect(),
        scalar => vec![node(String::new(), scalar)],
    }
}

/// One subscription: its domain model as a tree, its processes, and the workflows that can run
/// on it now (and why the others cannot).
pub(crate) async fn subscription(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let detail = match api::subscriptions::detail(&state.engine, id).await {
        Ok(detail) => detail,
        Err(error) => return refused(Some(&session), error),
    };
    let processes = match api::processes::list(
        &state.engine,
        ProcessFilter {
            subscription_id: Some(id),
            ..ProcessFilter::default()
        },
    )
    .await
    {
        Ok(page) => page.items,
        Err(error) => return refused(Some(&session), error),
    };
    let workflows = match api::subscriptions::workflows_on(&state.engine, id).await {
        Ok(workflows) => workflows,
        Err(error) => return refused(Some(&session), error),
    };
    // An active user's roles, which an admin sets here.
    let roles: Option<Vec<&str>> = match state.accounts.active_user(id).await {
        Ok(user) => user.map(|user| user.roles.iter().map(|role| role.as_str()).collect()),
        Err(error) => return refused(Some(&session), error.into()),
    };
    render(
        StatusCode::OK,
        "subscription.html",
        context! {
            me => me(Some(&session)),
            id => id.to_string(),
            description => detail.subscription.description,
            product => detail.subscription.product_name,
            status => detail.subscription.status,
            insync => detail.subscription.insync,
            version => detail.subscription.version,
            model => tree(&detail.domain_model),
            targets => detail.targets.iter().flatten().map(|state| context! {
                name => state.target_name,
                remote_id => state.remote_id,
                pushed_at => state.pushed_at.map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string()),
                last_error => state.last_error,
                failed_at => state.failed_at.map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string()),
            }).collect::<Vec<_>>(),
            is_admin => roles.as_ref().is_some_and(|roles| roles.contains(&Role::Admin.as_str())),
            roles,
            processes => process_rows(&processes),
            workflows => workflows.iter().map(|workflow| context! {
                name => workflow.workflow.name,
                description => workflow.workflow.description,
                reason => workflow.reason,
            }).collect::<Vec<_>>(),
        },
    )
}

pub(crate) fn process_rows(processes: &[ProcessSchema]) -> Vec<minijinja::Value> {
    processes
        .iter()
        .map(|process| {
            context! {
                id => process.process_id.to_string(),
                workflow => process.workflow_name,
                status => process.last_status,
                step => process.last_step,
                by => process.created_by,
                started => when(process.started_at),
            }
        })
        .collect()
}

/// Seconds since the epoch, as people read them (UTC).
pub(crate) fn when(seconds: f64) -> String {
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0) as i64).map_or_else(String::new, at)
}

/// A moment as people read it (UTC).
pub(crate) fn at(moment: chrono::DateTime<chrono::Utc>) -> String {
    moment.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The processes, newest first, filtered by status and workflow.
pub(crate) async fn processes(
    State(state): State<AppState>,
    Admin(session): Admin,
    Query(mut filter): Query<ProcessFilter>,
) -> Response {
    filter.limit = Some(PAGE_ROWS);
    filter.status = filter.status.filter(|status| !status.is_empty());
    let status = filter.status.clone().unwrap_or_default();
    let workflow = filter.workflow_name.clone().unwrap_or_default();
    let page = match api::processes::list(&state.engine, filter).await {
        Ok(page) => page,
        Err(error) => return refused(Some(&session), error),
    };
    let statuses: Vec<&str> = ProcessStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    render(
        StatusCode::OK,
        "processes.html",
        context! {
            me => me(Some(&session)),
            rows => process_rows(&page.items),
            total => page.total,
            statuses,
            status,
            workflow,
        },
    )
}

/// One process: its steps with what each changed, and what an operator may do now.
pub(crate) async fn process(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    process_page(&state, &session, id, StatusCode::OK, None).await
}

async fn process_page(
    state: &AppState,
    session: &SessionUser,
    id: Uuid,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let detail = match api::processes::detail(&state.engine, id).await {
        Ok(detail) => detail,
        Err(error) => return refused(Some(session), error),
    };
    let current: ProcessStatus = match detail.process.last_status.parse() {
        Ok(current) => current,
        Err(error) => return refused(Some(session), ApiError::internal(error)),
    };
    let steps: Vec<minijinja::Value> = detail
        .steps
        .iter()
        .map(|step| {
            context! {
                name => step.name,
                status => step.status,
                completed => step.completed.map(when),
                changed => step.state.as_ref().map(tree),
                error => step.error.as_ref().map(|error| match error {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                }),
            }
        })
        .collect();
    render(
        status,
        "process.html",
        context! {
            me => me(Some(session)),
            id => id.to_string(),
            workflow => detail.process.workflow_name,
            status => detail.process.last_status,
            failed_reason => detail.process.failed_reason,
            created_by => detail.process.created_by,
            started => when(detail.process.started_at),
            subscriptions => detail.subscriptions.iter().map(Uuid::to_string).collect::<Vec<_>>(),
            steps,
            retry => ProcessStatus::RESUMABLE.contains(&current) && current != ProcessStatus::Suspended,
            needs_input => current == ProcessStatus::Suspended,
            abort => !current.is_final(),
            live => !current.is_final(),
            error,
        },
    )
}

/// What an operator's action form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    pub(crate) csrf_token: String,
}

/// Retries a failed or waiting process (resumes it without input), skips its failed step,
/// or aborts an unfinished one; then the process page again, with the engine's refusal if there was one.
pub(crate) async fn act(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path((id, action)): Path<(Uuid, String)>,
    Form(form): Form<Action>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let engine = state.engine.with_origin(Origin {
        user_id: Some(session.user.user_id),
        client_addr: client_addr(&extensions),
    });
    let name = &session.user.user_name;
    let done = match action.as_str() {
        "retry" => engine.resume(id, &[], name).await,
        "abort" => engine.abort(id, name).await,
        "skip" => engine.skip_step(id, name).await,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match done {
        Ok(_) => Redirect::to(&format!("/admin/processes/{id}")).into_response(),
        Err(error) => match ApiError::from(error) {
            ApiError::Problem(code, detail) if !code.status().is_server_error() => {
                process_page(&state, &session, id, code.status(), Some(&detail)).await
            }
            other => refused(Some(&session), other),
        },
    }
}

/// The audit log, newest first, filtered by action and actor, paged by cursor.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Admin(session): Admin,
    Query(mut filter): Query<AuditFilter>,
) -> Response {
    filter.action = filter.action.filter(|action| !action.is_empty());
    filter.actor = filter.actor.filter(|actor| !actor.is_empty());
    filter.limit = Some(PAGE_ROWS);
    let action = filter.action.clone().unwrap_or_default();
    let actor = filter.actor.clone().unwrap_or_default();
    let page = match api::audit::list(state.engine.store().as_ref(), filter).await {
        Ok(page) => page,
        Err(error) => return refused(Some(&session), error),
    };
    let rows: Vec<minijinja::Value> = page
        .items
        .iter()
        .map(|event| {
            context! {
                at => when(event.at),
                actor => event.actor,
                action => event.action,
                target => event.target,
                outcome => event.outcome,
                client => event.client_addr,
                detail => event.detail,
            }
        })
        .collect();
    let actions: Vec<&str> = AuditAction::ALL
        .iter()
        .map(|action| action.as_str())
        .collect();
    render(
        StatusCode::OK,
        "audit.html",
        context! {
            me => me(Some(&session)),
            rows,
            actions,
            action => action.as_str(),
            actor => actor.as_str(),
            next => page.next.map(|next| {
                let keep = |name: &str, value: &str| {
                    if value.is_empty() {
                        String::new()
                    } else {
                        format!("&{name}={}", utf8_percent_encode(value, NON_ALPHANUMERIC))
                    }
                };
                format!("/admin/audit?after={next}{}{}", keep("action", &action), keep("actor", &actor))
            }),
        },
    )
}
