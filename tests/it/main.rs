//! Workspace-wide integration tests: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod durability;
mod layering;
mod surface;
mod tidy;
mod workers;
