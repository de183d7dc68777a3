//! Integration tests of cadre-engine on SQLite, or on PostgreSQL with `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod commits;
mod fixtures;
mod operators;
mod registry;
mod running;
mod workers;
