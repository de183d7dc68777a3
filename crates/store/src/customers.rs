//! Customers.

use async_trait::async_trait;
use cadre_domain::{Customer, CustomerRepository, DomainError, Name, Result};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entities::customers;
use crate::{Conn, Repo, storage_error};

fn to_domain(row: customers::Model) -> Result<Customer> {
    Ok(Customer {
        id: row.id,
        name: Name::parse(&row.name)?,
        created_at: row.created_at.to_utc(),
    })
}

#[async_trait]
impl<C: Conn> CustomerRepository for Repo<C> {
    async fn create_customer(&self, customer: &Customer) -> Result<()> {
        customers::Entity::insert(customers::ActiveModel {
            id: Set(customer.id),
            name: Set(customer.name.to_string()),
            created_at: Set(customer.created_at.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn customer(&self, id: Uuid) -> Result<Customer> {
        customers::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("customer", id))
            .and_then(to_domain)
    }

    async fn customer_by_name(&self, name: &Name) -> Result<Customer> {
        customers::Entity::find()
            .filter(customers::Column::Name.eq(name.as_str()))
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::NotFound {
                kind: "customer",
                id: name.to_string(),
            })
            .and_then(to_domain)
    }
}
