//! Cross-crate integration tests live in `it/`.
