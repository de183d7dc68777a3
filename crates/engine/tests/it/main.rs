//! Integration tests of cadre-engine, on the domain's in-memory store: no database.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod commits;
mod fixtures;
mod operators;
mod registry;
mod running;
