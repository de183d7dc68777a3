//! Tests of cadre-scim: RFC 7644's filter examples parsed and matched, refusals as SCIM
//! errors, PATCH paths and requests, and properties (no input panics).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod filters;
mod patch;
mod properties;
