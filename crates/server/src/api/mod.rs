//! The REST API: routes, their OpenAPI description, and the wire shapes.
//!
//! Paths and field names follow orchestrator-core's REST API where it has one
//! (`/api/processes/{workflow_name}`, `process_id`, `last_status`, …), so its clients feel at
//! home. Timestamps are seconds since the Unix epoch as JSON numbers, as orchestrator-core sends.

#[allow(unused_qualifications)]
pub mod audit;
#[allow(unused_qualifications)]
pub mod auth;
#[allow(unused_qualifications)]
pub mod groups;
pub mod health;
// utoipa's expansion of `params(SomeFilter)` names the filter type with a needless path.
#[allow(unused_qualifications)]
pub mod processes;
pub mod products;
#[allow(unused_qualifications)]
pub mod provisioning;
#[allow(unused_qualifications)]
pub mod registration;
#[allow(unused_qualifications)]
pub mod subscriptions;
#[allow(unused_qualifications)]
pub mod targets;
pub mod workflows;

use chrono::{DateTime, Utc};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cadre",
        description = "Users and groups as subscriptions, changed only by durable workflows.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerToken),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Signing in and out, the caller, passwords"),
        (name = "products", description = "The product catalogue"),
        (name = "subscriptions", description = "Subscriptions and their domain models"),
        (name = "workflows", description = "Workflows and their initial forms"),
        (name = "processes", description = "Workflow runs: start, inspect, resume, abort"),
        (name = "workflow-groups", description = "Teams of users attached to a workflow, with their files"),
        (name = "provisioning", description = "Bulk loads of users and user groups"),
        (name = "registration", description = "Self-registration and discoverable groups"),
        (name = "audit", description = "The audit log"),
        (name = "targets", description = "The applications cadre provisions into"),
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `cadre token create`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "cadre_session",
                "The session cookie `POST /api/auth/login` sets; unsafe requests also send the session's CSRF token in `X-CSRF-Token`",
            ))),
        );
    }
}

/// Every route cadre serves but the document itself (`/api/openapi.json`), with its OpenAPI
/// description, from the same annotations: the API and the pages of mailed links.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::get_me, auth::change_names))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::change_email))
        .routes(routes!(auth::list_sessions, auth::end_all_sessions))
        .routes(routes!(auth::end_session))
        .routes(routes!(auth::end_user_sessions))
        .routes(routes!(auth::request_reset))
        .routes(routes!(auth::confirm_reset))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::set_roles))
        .routes(routes!(targets::list_targets, targets::create_target))
        .routes(routes!(
            targets::get_target,
            targets::replace_target,
            targets::delete_target
        ))
        .routes(routes!(products::list_products))
        .routes(routes!(products::get_product))
        .routes(routes!(products::list_product_blocks))
        .routes(routes!(products::get_product_block))
        .routes(routes!(subscriptions::list_subscriptions))
        .routes(routes!(subscriptions::get_subscription))
        .routes(routes!(subscriptions::get_domain_model))
        .routes(routes!(subscriptions::subscription_workflows))
        .routes(routes!(workflows::list_workflows))
        .routes(routes!(workflows::get_workflow))
        .routes(routes!(processes::list_processes))
        .routes(routes!(processes::start_process))
        .routes(routes!(processes::get_process))
        .routes(routes!(processes::resume_process))
        .routes(routes!(processes::skip_step))
        .routes(routes!(processes::abort_process))
        .routes(routes!(groups::create_group, groups::list_groups))
        .routes(routes!(
            groups::get_group,
            groups::update_group,
            groups::delete_group
        ))
        .routes(routes!(groups::upload_file, groups::list_files))
        .routes(routes!(groups::download_file, groups::delete_file))
        .routes(routes!(provisioning::start_load))
        .routes(routes!(provisioning::get_load))
        .routes(routes!(
            registration::submit,
            registration::list_registrations
        ))
        .routes(routes!(registration::resend))
        .routes(routes!(
            registration::get_registration,
            registration::delete_registration
        ))
        .routes(routes!(registration::list_groups))
        .routes(routes!(
            registration::get_group,
            registration::join_group,
            registration::leave_group
        ))
        .routes(routes!(crate::link_pages::show, crate::link_pages::act))
        .routes(routes!(audit::list_audit))
}

/// Seconds since the Unix epoch, with millisecond precision.
fn epoch(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// The default and largest page sizes of listings.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

/// The largest offset a listing accepts: databases count rows in signed 64-bit integers.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// The offset a listing uses for the `offset` a client asked for.
fn page_offset(offset: Option<u64>) -> Result<u64, crate::error::ApiError> {
    match offset.unwrap_or(0) {
        offset if offset > MAX_OFFSET => Err(crate::error::ApiError::new(
            crate::error::ErrorCode::InvalidQuery,
            format!("offset must be at most {MAX_OFFSET}"),
        )),
        offset => Ok(offset),
    }
}

/// A string schema that accepts only `values`, for query parameters parsed from wire strings.
fn one_of(values: impl IntoIterator<Item = &'static str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values))
        .build()
}

/// The page size a listing uses for the `limit` a client asked for.
fn page_limit(limit: Option<u64>) -> Result<u64, crate::error::ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(crate::error::ApiError::new(
            crate::error::ErrorCode::InvalidQuery,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}
