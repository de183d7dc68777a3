//! Integration tests of cadre-groups on SQLite, or on PostgreSQL with `DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod faults;
mod files;
mod fixtures;
mod groups;
