//! Integration tests of cadre-products on SQLite, or on PostgreSQL with `DATABASE_URL`: the
//! built-in workflows end to end, started through their real forms, and snapshots of the forms.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod engine_forms;
mod fixtures;
mod forms;
mod workflows;
