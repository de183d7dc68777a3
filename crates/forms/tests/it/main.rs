//! Tests of cadre-forms: pydantic-forms samples reproduced field by field, and validation error
//! shapes; no database (lookups come from `cadre_domain::testing`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod derive;
mod properties;
mod samples;
mod standard;
