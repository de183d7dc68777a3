//! A downstream crate that adds a product outside identity to cadre without forking it: a
//! `Mailbox` owned by a User, with a quota, an address and aliases.
//!
//! What it takes, and all it takes:
//! - [`catalogue`]: the product as data and a migration that installs it (with a history table
//!   of its own), written with `cadre-migrations`' catalogue helpers;
//! - [`model`]: the typed model, implementing `cadre_domain::models::DomainModel`;
//! - [`workflows`]: create, modify and terminate, each with its form, from cadre's standard
//!   steps and pages;
//! - [`api`]: a route of its own (`GET /api/mailboxes`), in cadre's OpenAPI document;
//! - [`cadre`]: the server with the built-in products and this one, which `main.rs` serves.

pub mod api;
pub mod catalogue;
pub mod model;
pub mod workflows;

pub use model::{Mailbox, MailboxInactive};

/// This crate's migrations, for `cadre_server::Cadre::migrations`.
pub fn migrations() -> cadre_store::ProductMigrations {
    cadre_store::ProductMigrations::of::<catalogue::Migrator>()
}

/// A cadre server with the built-in products and Mailbox.
pub fn cadre() -> cadre_server::Cadre {
    cadre_server::Cadre::new()
        .migrations(migrations())
        .workflows(workflows::workflows())
        .routes(api::routes())
}
