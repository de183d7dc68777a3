//! Integration tests of cadre-store, run on SQLite by default and on PostgreSQL when
//! `DATABASE_URL=postgres://…` is set. One binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod batches;
mod catalogue;
mod contract;
mod fixtures;
mod listing;
mod migrations;
mod processes;
mod registration;
mod scratch;
mod subscriptions;
mod tokens;
mod uniqueness;
