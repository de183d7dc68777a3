//! Discovery (RFC 7644 §4): what this service provider supports, its resource types and their
//! schemas, from the same definitions the handlers use.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::schema::{ENTERPRISE, GROUP, LIST_SCHEMA, Schema, USER};
use super::writes::{MAX_BULK_OPERATIONS, MAX_BULK_PAYLOAD};
use super::{Failure, MAX_RESULTS, ScimCaller, base, not_found, scim_json};
use crate::state::AppState;

/// The resources' core schemas.
const RESOURCES: [&Schema; 2] = [&USER, &GROUP];

/// Every schema, extensions included.
const SCHEMAS: [&Schema; 3] = [&USER, &ENTERPRISE, &GROUP];

fn ok(body: &Value) -> Response {
    (StatusCode::OK, scim_json(body)).into_response()
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `GET /scim/v2/ServiceProviderConfig`
pub async fn service_provider_config(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
) -> Response {
    let base = base(&state);
    ok(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": MAX_BULK_OPERATIONS,
            "maxPayloadSize": MAX_BULK_PAYLOAD,
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 100,
            "maxPageSize": MAX_RESULTS,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A cadre API token with the scim (or admin) role: `Authorization: Bearer cadre_…`",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    }))
}

fn resource_type(schema: &Schema, base: &str) -> Value {
    let endpoint = format!("/{}s", schema.name);
    let extensions: Vec<Value> = schema
        .extensions
        .iter()
        .map(|extension| json!({"schema": extension.id, "required": false}))
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": schema.name,
        "name": schema.name,
        "endpoint": endpoint,
        "description": schema.description,
        "schema": schema.id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", schema.name),
        },
    })
}

/// `GET /scim/v2/ResourceTypes`
pub async fn resource_types(ScimCaller(_): ScimCaller, State(state): State<AppState>) -> Response {
    let base = base(&state);
    ok(&list(
        RESOURCES
            .iter()
            .map(|schema| resource_type(schema, &base))
            .collect(),
    ))
}

/// `GET /scim/v2/ResourceTypes/{name}`
pub async fn resource_type_named(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    let schema = RESOURCES
        .iter()
        .find(|schema| schema.name == name)
        .ok_or_else(|| not_found("resource type", &name))?;
    Ok(ok(&resource_type(schema, &base(&state))))
}

/// `GET /scim/v2/Schemas`
pub async fn schemas(ScimCaller(_): ScimCaller, State(state): State<AppState>) -> Response {
    let base = base(&state);
    ok(&list(
        SCHEMAS.iter().map(|schema| schema.to_json(&base)).collect(),
    ))
}

/// `GET /scim/v2/Schemas/{id}`
pub async fn schema(
    ScimCaller(_): ScimCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let schema = SCHEMAS
        .iter()
        .find(|schema| schema.id == id)
        .ok_or_else(|| not_found("schema", &id))?;
    Ok(ok(&schema.to_json(&base(&state))))
}
