//! The product catalogue, read whole and cached: it changes only through migrations.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::{
    CatalogueRepository, DomainError, FixedInput, Product, ProductBlock, ProductType, ResourceType,
    Result,
};
use sea_orm::{EntityTrait, QueryOrder};
use uuid::Uuid;

use crate::entities::{
    fixed_inputs, product_block_relations, product_block_resource_types, product_blocks,
    product_product_blocks, products, resource_types,
};
use crate::{Conn, Repo, storage_error};

/// The whole catalogue with lookups by id.
#[derive(Debug)]
pub(crate) struct Catalogue {
    /// Products ordered by name.
    pub products: Vec<Product>,
    /// Blocks ordered by name.
    pub blocks: Vec<ProductBlock>,
    /// Block name by block id.
    pub block_names: HashMap<Uuid, String>,
}

impl Catalogue {
    pub fn product(&self, id: Uuid) -> Result<&Product> {
        self.products
            .iter()
            .find(|product| product.id == id)
            .ok_or_else(|| DomainError::not_found("product", id))
    }

    pub fn block(&self, name: &str) -> Result<&ProductBlock> {
        self.blocks
            .iter()
            .find(|block| block.name == name)
            .ok_or_else(|| {
                DomainError::invalid("block", format!("no product block named {name:?}"))
            })
    }

    pub fn block_name(&self, id: Uuid) -> Result<&str> {
        self.block_names
            .get(&id)
            .map(String::as_str)
            .ok_or_else(|| DomainError::not_found("product block", id))
    }

    pub fn resource_type_name(&self, id: Uuid) -> Result<&str> {
        self.blocks
            .iter()
            .flat_map(|block| &block.resource_types)
            .find(|resource_type| resource_type.id == id)
            .map(|resource_type| resource_type.resource_type.as_str())
            .ok_or_else(|| DomainError::not_found("resource type", id))
    }
}

/// Where a store keeps the catalogue once read.
pub(crate) type CatalogueCache = Arc<std::sync::OnceLock<Arc<Catalogue>>>;

impl<C: Conn> Repo<C> {
    /// The catalogue, read on first use. Until one caller has stored it, each reads it through
    /// its own connection rather than waiting for another: a transaction waiting on a read
    /// that needs a pooled connection could starve the pool (with SQLite's one connection, at
    /// once), and the reads are the same whoever makes them.
    pub(crate) async fn catalogue(&self) -> Result<Arc<Catalogue>> {
        if let Some(catalogue) = self.catalogue.get() {
            return Ok(Arc::clone(catalogue));
        }
        let catalogue = Arc::new(read_catalogue(&self.conn).await?);
        // Another caller may have stored it meanwhile: theirs is the same.
        let _ = self.catalogue.set(Arc::clone(&catalogue));
        Ok(catalogue)
    }
}

async fn read_catalogue(conn: &impl Conn) -> Result<Catalogue> {
    let resource_types: HashMap<Uuid, resource_types::Model> = resource_types::Entity::find()
        .all(conn)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let block_resource_types = product_block_resource_types::Entity::find()
        .all(conn)
        .await
        .map_err(storage_error)?;
    let block_relations = product_block_relations::Entity::find()
        .all(conn)
        .await
        .map_err(storage_error)?;
    let block_rows = product_blocks::Entity::find()
        .order_by_asc(product_blocks::Column::Name)
        .all(conn)
        .await
        .map_err(storage_error)?;
    let block_names: HashMap<Uuid, String> = block_rows
        .iter()
        .map(|row| (row.id, row.name.clone()))
        .collect();

    let mut blocks = Vec::with_capacity(block_rows.len());
    for row in block_rows {
        let mut fields: Vec<ResourceType> = block_resource_types
            .iter()
            .filter(|link| link.product_block_id == row.id)
            .filter_map(|link| resource_types.get(&link.resource_type_id))
            .map(|resource_type| ResourceType {
                id: resource_type.id,
                resource_type: resource_type.resource_type.clone(),
                description: resource_type.description.clone(),
                unique: resource_type.is_unique,
            })
            .collect();
        fields.sort_by(|a, b| a.resource_type.cmp(&b.resource_type));
        let mut depends_on: Vec<String> = block_relations
            .iter()
            .filter(|relation| relation.in_use_by_id == row.id)
            .filter_map(|relation| block_names.get(&relation.depends_on_id).cloned())
            .collect();
        depends_on.sort();
        blocks.push(ProductBlock {
            id: row.id,
            name: row.name,
            description: row.description,
            tag: row.tag,
            status: row.status.parse()?,
            resource_types: fields,
            depends_on,
            created_at: row.created_at.to_utc(),
        });
    }

    let fixed_inputs = fixed_inputs::Entity::find()
        .order_by_asc(fixed_inputs::Column::Name)
        .all(conn)
        .await
        .map_err(storage_error)?;
    let product_blocks = product_product_blocks::Entity::find()
        .all(conn)
        .await
        .map_err(storage_error)?;
    let product_rows = products::Entity::find()
        .order_by_asc(products::Column::Name)
        .all(conn)
        .await
        .map_err(storage_error)?;
    let mut products = Vec::with_capacity(product_rows.len());
    for row in product_rows {
        products.push(Product {
            id: row.id,
            fixed_inputs: fixed_inputs
                .iter()
                .filter(|fixed_input| fixed_input.product_id == row.id)
                .map(|fixed_input| FixedInput {
                    id: fixed_input.id,
                    name: fixed_input.name.clone(),
                    value: fixed_input.value.clone(),
                })
                .collect(),
            blocks: blocks
                .iter()
                .filter(|block| {
                    product_blocks
                        .iter()
                        .any(|link| link.product_id == row.id && link.product_block_id == block.id)
                })
                .cloned()
                .collect(),
            name: row.name,
            description: row.description,
            product_type: ProductType::new(row.product_type),
            tag: row.tag,
            status: row.status.parse()?,
            created_at: row.created_at.to_utc(),
            end_date: row.end_date.map(|date| date.to_utc()),
        });
    }
    Ok(Catalogue {
        products,
        blocks,
        block_names,
    })
}

#[async_trait]
impl<C: Conn> CatalogueRepository for Repo<C> {
    async fn list_products(&self) -> Result<Vec<Product>> {
        Ok(self.catalogue().await?.products.clone())
    }

    async fn product(&self, id: Uuid) -> Result<Product> {
        self.catalogue().await?.product(id).cloned()
    }

    async fn product_by_name(&self, name: &str) -> Result<Product> {
        self.catalogue()
            .await?
            .products
            .iter()
            .find(|product| product.name == name)
            .cloned()
            .ok_or_else(|| DomainError::NotFound {
                kind: "product",
                id: name.to_owned(),
            })
    }

    async fn list_product_blocks(&self) -> Result<Vec<ProductBlock>> {
        Ok(self.catalogue().await?.blocks.clone())
    }
}
