//! SCIM 2.0 protocol pieces for cadre (RFC 7643, RFC 7644), with no I/O. Filters and PATCH
//! paths are `scim_v2`'s (its LALRPOP grammar, depth-bounded); this crate bounds their length
//! and turns a refusal into SCIM's error ([`parse_filter`], [`parse_patch_path`]), matches a
//! resource, as JSON, against a filter ([`matches`]), applies a PATCH request to it
//! ([`parse_patch`], [`apply_patch`]), and writes SCIM's error response
//! ([`ScimError`]).

mod error;
mod matching;
mod patch;

pub use error::{ERROR_SCHEMA, ScimError, ScimType};
pub use matching::{CaseExact, matches, named};
pub use patch::{
    Attributes, MAX_OPERATIONS, PATCH_SCHEMA, PatchKind, PatchOperation, apply_patch, parse_patch,
};
pub use scim_v2::filter::{
    AttrExp, AttrPath, CompValue, CompareOp, Filter, PatchPath, PatchValuePath, ValFilter,
    ValuePath,
};

/// The longest filter or path parsed, in bytes; a longer one is refused before it is read.
pub const MAX_FILTER_LENGTH: usize = 8 * 1024;

/// Parses a filter (`?filter=…`, a search's `filter`): a refusal is a `400 invalidFilter`.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    bounded(text, ScimType::InvalidFilter)?;
    text.parse()
        .map_err(|error| ScimError::bad_request(ScimType::InvalidFilter, format!("{error}")))
}

/// Parses a PATCH operation's `path`: a refusal is a `400 invalidPath`.
pub fn parse_patch_path(text: &str) -> Result<PatchPath, ScimError> {
    bounded(text, ScimType::InvalidPath)?;
    text.parse()
        .map_err(|error| ScimError::bad_request(ScimType::InvalidPath, format!("{error}")))
}

fn bounded(text: &str, scim_type: ScimType) -> Result<(), ScimError> {
    if text.len() > MAX_FILTER_LENGTH {
        return Err(ScimError::bad_request(
            scim_type,
            format!("longer than {MAX_FILTER_LENGTH} characters"),
        ));
    }
    Ok(())
}
