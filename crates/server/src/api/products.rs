//! The product catalogue.

use axum::Json;
use axum::extract::State;
use cadre_domain::{DomainError, FixedInput, Product, ProductBlock, ResourceType};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::epoch;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::Path;
use crate::state::AppState;

/// A product with its fixed inputs and root blocks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSchema {
    /// Product id.
    pub product_id: Uuid,
    /// Unique name, e.g. `User internal`.
    pub name: String,
    /// What the product is.
    pub description: String,
    /// The domain-model family, e.g. `User`.
    pub product_type: String,
    /// Short tag.
    pub tag: String,
    /// `active`, `pre production`, `phase out` or `end of life`.
    pub status: String,
    /// When it was added (seconds since the epoch).
    pub created_at: f64,
    /// When it is retired, if scheduled.
    pub end_date: Option<f64>,
    /// Product-level constants.
    pub fixed_inputs: Vec<FixedInputSchema>,
    /// The root blocks of its subscriptions.
    pub product_blocks: Vec<ProductBlockSchema>,
}

/// A product-level constant.
#[derive(Debug, Serialize, ToSchema)]
pub struct FixedInputSchema {
    /// Id.
    pub fixed_input_id: Uuid,
    /// Field name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A product block with its resource types.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBlockSchema {
    /// Block id.
    pub product_block_id: Uuid,
    /// Unique name, e.g. `UserBlock`.
    pub name: String,
    /// What the block represents.
    pub description: String,
    /// Short tag.
    pub tag: String,
    /// The block's status.
    pub status: String,
    /// When it was added (seconds since the epoch).
    pub created_at: f64,
    /// Its scalar fields.
    pub resource_types: Vec<ResourceTypeSchema>,
    /// Names of the blocks it may reference.
    pub depends_on: Vec<String>,
}

/// A typed field of a block.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceTypeSchema {
    /// Id.
    pub resource_type_id: Uuid,
    /// Field name.
    pub resource_type: String,
    /// What it holds.
    pub description: String,
    /// Whether its value identifies a subscription (unique among live ones).
    pub unique: bool,
}

impl From<Product> for ProductSchema {
    fn from(product: Product) -> Self {
        Self {
            product_id: product.id,
            name: product.name,
            description: product.description,
            product_type: product.product_type.to_string(),
            tag: product.tag,
            status: product.status.to_string(),
            created_at: epoch(product.created_at),
            end_date: product.end_date.map(epoch),
            fixed_inputs: product.fixed_inputs.into_iter().map(Into::into).collect(),
            product_blocks: product.blocks.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<FixedInput> for FixedInputSchema {
    fn from(fixed_input: FixedInput) -> Self {
        Self {
            fixed_input_id: fixed_input.id,
            name: fixed_input.name,
            value: fixed_input.value,
        }
    }
}

impl From<ProductBlock> for ProductBlockSchema {
    fn from(block: ProductBlock) -> Self {
        Self {
            product_block_id: block.id,
            name: block.name,
            description: block.description,
            tag: block.tag,
            status: block.status.to_string(),
            created_at: epoch(block.created_at),
            resource_types: block.resource_types.into_iter().map(Into::into).collect(),
            depends_on: block.depends_on,
        }
    }
}

impl From<ResourceType> for ResourceTypeSchema {
    fn from(resource_type: ResourceType) -> Self {
        Self {
            resource_type_id: resource_type.id,
            resource_type: resource_type.resource_type,
            description: resource_type.description,
            unique: resource_type.unique,
        }
    }
}

/// Every product, by name.
#[utoipa::path(get, path = "/api/products", tag = "products", security(("bearer" = [])),
    responses(
        (status = 200, description = "The products", body = Vec<ProductSchema>),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn list_products(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<ProductSchema>>, ApiError> {
    let products = state.engine.store().list_products().await?;
    Ok(Json(products.into_iter().map(Into::into).collect()))
}

/// One product.
#[utoipa::path(get, path = "/api/products/{product_id}", tag = "products", security(("bearer" = [])),
    params(("product_id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductSchema),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 404, description = "No such product", body = Problem),
    ))]
pub async fn get_product(
    _caller: Caller,
    State(state): State<AppState>,
    Path(product_id): Path<Uuid>,
) -> Result<Json<ProductSchema>, ApiError> {
    Ok(Json(state.engine.store().product(product_id).await?.into()))
}

/// Every product block, by name.
#[utoipa::path(get, path = "/api/product_blocks", tag = "products", security(("bearer" = [])),
    responses(
        (status = 200, description = "The product blocks", body = Vec<ProductBlockSchema>),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn list_product_blocks(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<ProductBlockSchema>>, ApiError> {
    let blocks = state.engine.store().list_product_blocks().await?;
    Ok(Json(blocks.into_iter().map(Into::into).collect()))
}

/// One product block.
#[utoipa::path(get, path = "/api/product_blocks/{product_block_id}", tag = "products",
    security(("bearer" = [])),
    params(("product_block_id" = Uuid, Path, description = "Product block id")),
    responses(
        (status = 200, description = "The product block", body = ProductBlockSchema),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such product block", body = Problem),
    ))]
pub async fn get_product_block(
    _caller: Caller,
    State(state): State<AppState>,
    Path(product_block_id): Path<Uuid>,
) -> Result<Json<ProductBlockSchema>, ApiError> {
    let block = state
        .engine
        .store()
        .list_product_blocks()
        .await?
        .into_iter()
        .find(|block| block.id == product_block_id)
        .ok_or_else(|| DomainError::not_found("product block", product_block_id))?;
    Ok(Json(block.into()))
}
