//! Workspace-wide integration tests for cadre live in `it/`; this library is intentionally
//! empty and exists so that the tests have a package to belong to.
