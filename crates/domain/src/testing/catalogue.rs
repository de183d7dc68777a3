//! The catalogue of a [`super::MemoryStore`]: given once, ordered as the real store reads it,
//! and read by every repository.

use async_trait::async_trait;
use uuid::Uuid;

use crate::catalogue::{Product, ProductBlock, ProductType};
use crate::error::{DomainError, Result};
use crate::ports::CatalogueRepository;

use super::Access;

/// Products and blocks, each ordered by name.
#[derive(Debug)]
pub(super) struct Catalogue {
    products: Vec<Product>,
    blocks: Vec<ProductBlock>,
}

/// `block` with its resource types ordered by name and its dependencies sorted.
fn normalised(mut block: ProductBlock) -> ProductBlock {
    block
        .resource_types
        .sort_by(|a, b| a.resource_type.cmp(&b.resource_type));
    block.depends_on.sort();
    block
}

impl Catalogue {
    /// The catalogue of `products` and `blocks` and the blocks of the products; each product's
    /// blocks become the catalogue's definitions of them.
    pub(super) fn new(products: Vec<Product>, blocks: Vec<ProductBlock>) -> Self {
        let mut all: Vec<ProductBlock> = Vec::new();
        for block in blocks
            .into_iter()
            .chain(products.iter().flat_map(|product| product.blocks.clone()))
        {
            if !all.iter().any(|known| known.name == block.name) {
                all.push(normalised(block));
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        let mut products: Vec<Product> = products
            .into_iter()
            .map(|mut product| {
                product.fixed_inputs.sort_by(|a, b| a.name.cmp(&b.name));
                product.blocks = all
                    .iter()
                    .filter(|block| product.blocks.iter().any(|own| own.name == block.name))
                    .cloned()
                    .collect();
                product
            })
            .collect();
        products.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            products,
            blocks: all,
        }
    }

    /// Every product, by name.
    pub(super) fn products(&self) -> &[Product] {
        &self.products
    }

    /// One product by id.
    pub(super) fn product(&self, id: Uuid) -> Result<&Product> {
        self.products
            .iter()
            .find(|product| product.id == id)
            .ok_or_else(|| DomainError::not_found("product", id))
    }

    /// The ids of the products of `product_type`.
    pub(super) fn products_of_type(&self, product_type: &ProductType) -> Vec<Uuid> {
        self.products
            .iter()
            .filter(|product| &product.product_type == product_type)
            .map(|product| product.id)
            .collect()
    }

    /// Every block, by name.
    pub(super) fn blocks(&self) -> &[ProductBlock] {
        &self.blocks
    }

    /// One block by name; an unknown name is invalid, as a save reports it.
    pub(super) fn block(&self, name: &str) -> Result<&ProductBlock> {
        self.blocks
            .iter()
            .find(|block| block.name == name)
            .ok_or_else(|| {
                DomainError::invalid("block", format!("no product block named {name:?}"))
            })
    }
}

#[async_trait]
impl<T: Access> CatalogueRepository for T {
    async fn list_products(&self) -> Result<Vec<Product>> {
        Ok(self.core().catalogue.products().to_vec())
    }

    async fn product(&self, id: Uuid) -> Result<Product> {
        self.core().catalogue.product(id).cloned()
    }

    async fn product_by_name(&self, name: &str) -> Result<Product> {
        self.core()
            .catalogue
            .products()
            .iter()
            .find(|product| product.name == name)
            .cloned()
            .ok_or_else(|| DomainError::NotFound {
                kind: "product",
                id: name.to_owned(),
            })
    }

    async fn list_product_blocks(&self) -> Result<Vec<ProductBlock>> {
        Ok(self.core().catalogue.blocks().to_vec())
    }
}
