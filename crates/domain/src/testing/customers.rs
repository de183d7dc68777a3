//! Customers in memory: ids and names unique, as the real store's schema keeps them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::Name;
use crate::ports::{Customer, CustomerRepository};

use super::{Access, DUPLICATE};

/// The customers, by id.
#[derive(Debug, Clone, Default)]
pub(super) struct Customers {
    rows: BTreeMap<Uuid, Customer>,
}

impl Customers {
    /// Whether customer `id` exists.
    pub(super) fn contains(&self, id: Uuid) -> bool {
        self.rows.contains_key(&id)
    }
}

#[async_trait]
impl<T: Access> CustomerRepository for T {
    async fn create_customer(&self, customer: &Customer) -> Result<()> {
        let customer = customer.clone();
        self.write(move |tables, _| {
            let customers = Arc::make_mut(&mut tables.customers);
            if customers.rows.contains_key(&customer.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            if customers.rows.values().any(|row| row.name == customer.name) {
                return Err(DomainError::Conflict(
                    "a customer with this name already exists".to_owned(),
                ));
            }
            customers.rows.insert(customer.id, customer.clone());
            Ok(())
        })
    }

    async fn customer(&self, id: Uuid) -> Result<Customer> {
        self.read(|tables, _| tables.customers.rows.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("customer", id))
    }

    async fn customer_by_name(&self, name: &Name) -> Result<Customer> {
        self.read(|tables, _| {
            tables
                .customers
                .rows
                .values()
                .find(|row| &row.name == name)
                .cloned()
        })
        .ok_or_else(|| DomainError::NotFound {
            kind: "customer",
            id: name.to_string(),
        })
    }
}
