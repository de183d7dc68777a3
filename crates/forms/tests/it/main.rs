//! Tests of cadre-forms: pydantic-forms samples reproduced field by field, validation error
//! shapes, and snapshots of the built-in forms.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod builtin;
mod samples;
