//! Subscriptions: listing, detail with the domain model, and the workflows that may run on one.

use axum::Json;
use axum::extract::State;
use cadre_domain::{
    Lifecycle, ProductType, SortOrder, Subscription, SubscriptionQuery, SubscriptionSort,
    SubscriptionSummary,
};
use cadre_engine::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::products::ProductSchema;
use super::workflows::WorkflowSchema;
use super::{epoch, one_of, page_limit, page_offset};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{Path, Query};
use crate::state::AppState;
use crate::visibility::{require_visible_subscription, visible_subscriptions};

/// A subscription as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionSchema {
    /// Subscription id.
    pub subscription_id: Uuid,
    /// Human description.
    pub description: String,
    /// Lifecycle: `initial`, `provisioning`, `active`, `disabled`, `migrating`, `terminated`.
    pub status: String,
    /// False while a process works on it.
    pub insync: bool,
    /// Incremented by every change.
    pub version: i64,
    /// Its product.
    pub product_id: Uuid,
    /// Its product's name.
    pub product_name: String,
    /// Its product's type.
    pub product_type: String,
    /// The owning customer.
    pub customer_id: Uuid,
    /// When it came into service (seconds since the epoch).
    pub start_date: Option<f64>,
    /// When it ended.
    pub end_date: Option<f64>,
    /// Operator note.
    pub note: Option<String>,
}

impl SubscriptionSchema {
    fn new(subscription: Subscription, product_name: String, product_type: &ProductType) -> Self {
        Self {
            subscription_id: subscription.id,
            description: subscription.description,
            status: subscription.lifecycle.to_string(),
            insync: subscription.insync,
            version: subscription.version,
            product_id: subscription.product_id,
            product_name,
            product_type: product_type.to_string(),
            customer_id: subscription.customer_id,
            start_date: subscription.start_date.map(epoch),
            end_date: subscription.end_date.map(epoch),
            note: subscription.note,
        }
    }
}

impl From<SubscriptionSummary> for SubscriptionSchema {
    fn from(summary: SubscriptionSummary) -> Self {
        Self::new(
            summary.subscription,
            summary.product_name,
            &summary.product_type,
        )
    }
}

/// One page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    /// The subscriptions of this page.
    pub items: Vec<SubscriptionSchema>,
    /// How many match the filters in all.
    pub total: u64,
}

/// A subscription with its product and its full domain model.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionDetail {
    /// The subscription row.
    #[serde(flatten)]
    pub subscription: SubscriptionSchema,
    /// Its product.
    pub product: ProductSchema,
    /// The typed domain model (for a User: the subscription, product, affiliation and `user`
    /// block).
    #[schema(value_type = Object)]
    pub domain_model: serde_json::Value,
    /// What each outbound target has of it (admins only; absent for other callers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<PushStateSchema>>,
}

/// What one outbound target has of a subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushStateSchema {
    /// The target.
    pub target_id: Uuid,
    /// Its name.
    pub target_name: String,
    /// The target's id of the object, once pushed (a SCIM id, an LDAP DN).
    pub remote_id: Option<String>,
    /// A fingerprint (SHA-256) of what was last pushed.
    pub fingerprint: Option<String>,
    /// When it was last pushed.
    pub pushed_at: Option<DateTime<Utc>>,
    /// Why the last push failed; cleared by the next that succeeds.
    pub last_error: Option<String>,
    /// When the last push failed.
    pub failed_at: Option<DateTime<Utc>>,
}

/// The field listings sort by.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    /// Creation order.
    #[default]
    Created,
    /// Description.
    Description,
    /// Start date.
    StartDate,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Filters, sorting and paging of the subscription list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionFilter {
    /// Only subscriptions of products of this type, e.g. `User`.
    pub product_type: Option<String>,
    /// Only subscriptions in this lifecycle, e.g. `active`.
    #[param(schema_with = lifecycles)]
    pub status: Option<String>,
    /// Only subscriptions whose description contains this text, ignoring the case of ASCII
    /// letters (on PostgreSQL, of every letter its locale folds); at most 200 characters.
    #[param(max_length = 200)]
    pub query: Option<String>,
    /// Sort field (default `created`).
    #[param(inline)]
    pub sort: Option<SortField>,
    /// Sort direction (default `asc`).
    #[param(inline)]
    pub order: Option<Order>,
    /// Rows to skip (default 0).
    #[param(maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

fn lifecycles() -> utoipa::openapi::Object {
    one_of(Lifecycle::ALL.iter().map(|lifecycle| lifecycle.as_str()))
}

/// The longest text a listing searches for, in characters: descriptions are shorter, and a
/// longer pattern only costs the database.
pub const MAX_QUERY_CHARS: usize = 200;

impl SubscriptionFilter {
    fn to_query(&self) -> Result<SubscriptionQuery, ApiError> {
        if self
            .query
            .as_ref()
            .is_some_and(|text| text.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("query may have at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let lifecycle = self
            .status
            .as_deref()
            .map(str::parse::<Lifecycle>)
            .transpose()
            .map_err(|error| ApiError::new(ErrorCode::InvalidQuery, error.to_string()))?;
        Ok(SubscriptionQuery {
            ids: None,
            product_type: self
                .product_type
                .as_deref()
                .filter(|product_type| !product_type.is_empty())
                .map(ProductType::new),
            lifecycle,
            text: self.query.clone().filter(|text| !text.is_empty()),
            sort: match self.sort.unwrap_or_default() {
                SortField::Created => SubscriptionSort::Created,
                SortField::Description => SubscriptionSort::Description,
                SortField::StartDate => SubscriptionSort::StartDate,
            },
            order: match self.order.unwrap_or_default() {
                Order::Asc => SortOrder::Asc,
                Order::Desc => SortOrder::Desc,
            },
            offset: page_offset(self.offset)?,
            limit: Some(page_limit(self.limit)?),
            ..SubscriptionQuery::default()
        })
    }
}

/// Subscriptions matching the filters, one page.
#[utoipa::path(get, path = "/api/subscriptions", tag = "subscriptions", security(("bearer" = [])),
    params(SubscriptionFilter),
    responses(
        (status = 200, description = "One page of subscriptions", body = SubscriptionPage),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "A filter is malformed", body = Problem),
    ))]
pub async fn list_subscriptions(
    caller: Caller,
    State(state): State<AppState>,
    Query(filter): Query<SubscriptionFilter>,
) -> Result<Json<SubscriptionPage>, ApiError> {
    let visible = visible_subscriptions(&state, &caller).await?;
    Ok(Json(list(&state.engine, &filter, visible).await?))
}

/// The subscriptions matching `filter` among `visible` (all when `None`), one page.
pub async fn list(
    engine: &Engine,
    filter: &SubscriptionFilter,
    visible: Option<Vec<Uuid>>,
) -> Result<SubscriptionPage, ApiError> {
    let query = SubscriptionQuery {
        ids: visible,
        ..filter.to_query()?
    };
    let page = engine.store().list_subscriptions(&query).await?;
    Ok(SubscriptionPage {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
    })
}

/// One subscription with its product and domain model.
#[utoipa::path(get, path = "/api/subscriptions/{subscription_id}", tag = "subscriptions",
    security(("bearer" = [])),
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionDetail),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 404, description = "No such subscription", body = Problem),
    ))]
pub async fn get_subscription(
    caller: Caller,
    State(state): State<AppState>,
    Path(subscription_id): Path<Uuid>,
) -> Result<Json<SubscriptionDetail>, ApiError> {
    require_visible_subscription(&state, &caller, subscription_id).await?;
    let mut detail = detail(&state.engine, subscription_id).await?;
    if !caller.is_admin() {
        // Remote ids and the targets' errors are the operators' business.
        detail.targets = None;
    }
    Ok(Json(detail))
}

/// Subscription `id` with its product, domain model and state on each outbound target.
pub async fn detail(engine: &Engine, id: Uuid) -> Result<SubscriptionDetail, ApiError> {
    let record = engine.store().load_subscription(id).await?;
    let subscription = SubscriptionSchema::new(
        record.subscription.clone(),
        record.product.name.clone(),
        &record.product.product_type,
    );
    let product = record.product.clone().into();
    let store = engine.store();
    let targets = store.list_targets().await?;
    let targets = store
        .push_states_of(id)
        .await?
        .into_iter()
        .map(|state| PushStateSchema {
            target_name: targets
                .iter()
                .find(|target| target.id == state.target_id)
                .map(|target| target.name.to_string())
                .unwrap_or_default(),
            target_id: state.target_id,
            remote_id: state.remote_id,
            fingerprint: state.fingerprint,
            pushed_at: state.pushed_at,
            last_error: state.last_error,
            failed_at: state.failed_at,
        })
        .collect();
    Ok(SubscriptionDetail {
        subscription,
        product,
        domain_model: cadre_products::models::to_json(record)?,
        targets: Some(targets),
    })
}

/// The typed domain model of a subscription.
#[utoipa::path(get, path = "/api/subscriptions/domain-model/{subscription_id}",
    tag = "subscriptions", security(("bearer" = [])),
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The domain model", body = Object),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 404, description = "No such subscription", body = Problem),
    ))]
pub async fn get_domain_model(
    caller: Caller,
    State(state): State<AppState>,
    Path(subscription_id): Path<Uuid>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_visible_subscription(&state, &caller, subscription_id).await?;
    let record = state
        .engine
        .store()
        .load_subscription(subscription_id)
        .await?;
    Ok(Json(cadre_products::models::to_json(record)?))
}

/// A workflow and whether it may start on a given subscription now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionWorkflow {
    /// The workflow.
    #[serde(flatten)]
    pub workflow: WorkflowSchema,
    /// Why it cannot start now; absent when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The modify, terminate and validate workflows of a subscription's product type, each with the
/// reason it cannot start now, if any.
#[utoipa::path(get, path = "/api/subscriptions/workflows/{subscription_id}", tag = "subscriptions",
    security(("bearer" = [])),
    params(("subscription_id" = Uuid, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The workflows", body = Vec<SubscriptionWorkflow>),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 404, description = "No such subscription", body = Problem),
    ))]
pub async fn subscription_workflows(
    caller: Caller,
    State(state): State<AppState>,
    Path(subscription_id): Path<Uuid>,
) -> Result<Json<Vec<SubscriptionWorkflow>>, ApiError> {
    require_visible_subscription(&state, &caller, subscription_id).await?;
    Ok(Json(workflows_on(&state.engine, subscription_id).await?))
}

/// The workflows that run on subscription `id`'s product type, each with why it cannot start
/// now, if it cannot.
pub async fn workflows_on(
    engine: &Engine,
    id: Uuid,
) -> Result<Vec<SubscriptionWorkflow>, ApiError> {
    let record = engine.store().load_subscription(id).await?;
    Ok(engine
        .registry()
        .iter()
        .filter(|workflow| {
            // Create workflows make new subscriptions; tasks are not offered on one.
            !matches!(
                workflow.target,
                cadre_domain::Target::Create | cadre_domain::Target::System
            ) && workflow
                .product_types
                .contains(&record.product.product_type)
        })
        .map(|workflow| SubscriptionWorkflow {
            reason: workflow.refusal(&record),
            workflow: WorkflowSchema::from(workflow.as_ref()),
        })
        .collect())
}
